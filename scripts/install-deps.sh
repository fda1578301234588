#!/usr/bin/env bash
# install-deps.sh: installs every Debian and Python package millipost needs to build and test. Idempotent.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev librapidcheck-dev
  swaks libnet-ssleay-perl curl procps  # Net::SSLeay: swaks --tls (test_submission.py)
  postfix  # for /usr/sbin/smtp-sink, a second SMTP server the contract tests run against
  libldap-dev  # OpenLDAP's client library: [auth] directory = "ldap" (server/auth/ldap_directory.cpp)
)
# Dovecot, the peer server the conformance tests run `millipost conform` against (private
# instances on ephemeral loopback ports, millipost.peers.DovecotPeer); the packaged system
# service must not start (it would take ports 143/110 and is never used).
DOVECOT_PACKAGES=(dovecot-imapd dovecot-pop3d dovecot-lmtpd)
# OpenLDAP's server and tools for the LDAP directory tests (pybindings/tests/test_ldap.py starts
# private slapd instances on ephemeral ports); likewise the system service must not start.
SLAPD_PACKAGES=(slapd ldap-utils)
PIP_PACKAGES=(
  "scikit-build-core>=0.8" "pybind11>=2.10" "pytest>=7" "hypothesis>=6" "imapclient>=3" "scramp>=1.4"
  "pyopenssl>=23"  # TLS exporter values for the SCRAM-SHA-256-PLUS tests (Python ssl has none)
)

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # Postfix is here only for smtp-sink: "No configuration" leaves it without main.cf, so no
  # system MTA starts listening on port 25 (the tests start smtp-sink on ephemeral ports).
  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# install_stopped SERVICE PACKAGE...: installs packages whose postinst would start a system
# service, without starting it, and keeps the service off at boot if it was not there before.
install_stopped() {
  local service=$1; shift
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "install-deps: apt packages (service kept stopped): ${missing[*]}"
  local had=0
  [ -x "/etc/init.d/$service" ] && had=1
  # policy-rc.d exit 101 tells invoke-rc.d and deb-systemd-invoke not to start services during
  # this install (the postinst would start the daemon); only if no policy exists yet.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { [ -n "$policy" ] && $SUDO rm -f "$policy"; exit 1; }
  [ -n "$policy" ] && $SUDO rm -f "$policy"
  # The service was not there before: keep it off at boot too (a machine that already ran it
  # on purpose is left alone).
  if [ "$had" = 0 ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
      $SUDO systemctl disable --now "$service.service" "$service.socket" >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null && [ -x "/etc/init.d/$service" ]; then
      $SUDO update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
  fi
}

install_stopped dovecot "${DOVECOT_PACKAGES[@]}"
# slapd's postinst would otherwise ask for a domain and an admin password and create a
# database under /var/lib/ldap; "no configuration" installs the binaries only (the tests bring
# their own configuration).
if ! dpkg-query -W -f='${Status}' slapd 2>/dev/null | grep -q "install ok installed"; then
  echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
fi
install_stopped slapd "${SLAPD_PACKAGES[@]}"

PY=${PYTHON:-python3}
# A Debian-managed Python refuses pip without this flag (PEP 668); pyenv's and venvs do not.
PIP_FLAGS=(--root-user-action=ignore)
if $PY -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
  PIP_FLAGS+=(--break-system-packages)
fi
if ! $PY -m pip --version >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq python3-pip >/dev/null
fi
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
  $PY -m pip install "${PIP_FLAGS[@]}" -q "${PIP_PACKAGES[@]}"
fi
echo "install-deps: ok"
