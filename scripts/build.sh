#!/usr/bin/env bash
# build.sh: builds and installs millipost (C++ libraries, millipost-server, the Python package)
# with pip and scikit-build-core. MILLIPOST_TESTS=ON also builds the C++ test executables into
# the same build directory, for ctest. Incremental: the build directory and ccache persist.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=${MILLIPOST_TESTS:-OFF}
build_dir=${MILLIPOST_BUILD_DIR:-build/py-tests-$tests}
export CCACHE_NOHASHDIR=true CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
PY=${PYTHON:-python3}
PIP_FLAGS=(--root-user-action=ignore)
if $PY -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
  PIP_FLAGS+=(--break-system-packages)
fi
echo "build: pip install . (tests=$tests, build dir $build_dir)"
$PY -m pip install --no-build-isolation --no-deps "${PIP_FLAGS[@]}" -q . \
  -Cbuild-dir="$build_dir" \
  -Ccmake.define.MILLIPOST_TESTS="$tests" \
  -Ccmake.define.MILLIPOST_WERROR=ON
scripts_dir=$($PY -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
echo "build: ok (millipost and millipost-server installed in $scripts_dir)"
