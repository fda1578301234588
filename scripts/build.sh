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
echo "build: pip install . (tests=$tests, build dir $build_dir)"
$PY -m pip install --no-build-isolation --no-deps --root-user-action=ignore -q . \
  -Cbuild-dir="$build_dir" \
  -Ccmake.define.MILLIPOST_TESTS="$tests" \
  -Ccmake.define.MILLIPOST_WERROR=ON
echo "build: ok ($(command -v millipost-server || echo 'millipost-server not on PATH'))"
