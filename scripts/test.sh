#!/usr/bin/env bash
# test.sh: every test: install what is missing, build with the C++ tests, run ctest (GoogleTest
# and RapidCheck properties), then pytest (system tests with real clients against the real
# server). Slow suites run in their short form unless MILLIPOST_LONG=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export MILLIPOST_BUILD_DIR=${MILLIPOST_BUILD_DIR:-build/py-tests-ON}
MILLIPOST_TESTS=ON bash scripts/build.sh
# The installed commands, whatever PATH the caller has (pyenv shims, venvs, system Python).
export PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
echo "test: ctest"
ctest --test-dir "$MILLIPOST_BUILD_DIR" --output-on-failure -j 2 --timeout 600
echo "test: pytest"
# Run from a neutral directory so that `import millipost` is the installed package.
python3 -m pytest -c "$PWD/pyproject.toml" --rootdir "$PWD" "$PWD/pybindings/tests" \
  -p no:cacheprovider -q
