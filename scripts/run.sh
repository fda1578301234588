#!/usr/bin/env bash
# run.sh: the main job on the embedded default: install what is missing, build, then run
# `millipost demo` (reference server on SQLite, a synthetic population, concurrent SMTP
# deliveries and POP3 retrievals, checked by an oracle; report under reports/out/).
# Extra arguments go to `millipost demo` (see `millipost demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
MILLIPOST_TESTS=OFF bash scripts/build.sh
export PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
exec millipost demo "$@"
