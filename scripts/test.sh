#!/usr/bin/env bash
# Sets up everything the tests need (packages, .venv) and runs the whole suite: lint, then
# pytest against a real sandbox (sshd, PostgreSQL, nginx, systemctl stand-in) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
