#!/usr/bin/env bash
# Sets up everything the tests need (packages, .venv) and runs the whole suite: lint (ruff, then
# ShellCheck, then the import contracts), then pytest against a real sandbox (sshd,
# PostgreSQL, nginx, systemctl stand-in) on loopback.
set -euo pipefail
# shellcheck source=scripts/as-root.sh
source "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The remote scripts run as `sh -c SCRIPT` on the droplet (dash on Debian): POSIX sh.
remote_scripts=(staging_ops/remote/scripts/*.sh)
if [ -e "${remote_scripts[0]}" ]; then shellcheck -s sh "${remote_scripts[@]}"; fi
shellcheck scripts/*.sh .ci/run
.venv/bin/lint-imports --no-cache
# Two workers: most tests wait on servers, not on the CPU. A module stays on one worker, in
# order (they share module fixtures; a droplet module its droplet), each worker with its own
# sandbox and ports (tests/conftest.py).
# The 25 slowest tests close the report: where the suite's time goes.
exec .venv/bin/pytest -n "${STAGING_TEST_WORKERS:-2}" --dist loadfile --durations=25 "$@"
