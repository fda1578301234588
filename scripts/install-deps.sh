#!/usr/bin/env bash
# install-deps.sh: installs every Debian and Python package millipost needs to build and test. Idempotent.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev librapidcheck-dev
  swaks curl procps
)
PIP_PACKAGES=(
  "scikit-build-core>=0.8" "pybind11>=2.10" "pytest>=7" "hypothesis>=6" "imapclient>=3"
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install-deps: apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY - "${PIP_PACKAGES[@]}" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
import re
for spec in sys.argv[1:]:
    name = re.split(r"[<>=]", spec)[0]
    try:
        version(name)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
then
  echo "install-deps: pip packages: ${PIP_PACKAGES[*]}"
  $PY -m pip install --root-user-action=ignore -q "${PIP_PACKAGES[@]}"
fi
echo "install-deps: ok"
