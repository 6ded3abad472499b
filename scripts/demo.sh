#!/usr/bin/env bash
# Sets up and runs the main job on the local sandbox droplet, exactly as an operator runs it
# against the real droplet: provision-all, claim, deploy feat-x, verify, status, release.
set -euo pipefail
# shellcheck source=scripts/as-root.sh
source "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
# The demo needs no browser: only the dashboard's tests do.
STAGING_WITH_BROWSER=${STAGING_WITH_BROWSER:-0} bash scripts/setup.sh
invoke=.venv/bin/invoke
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s$ invoke %s%s\n' "$bold" "$*" "$plain"; }

step sandbox.up
$invoke sandbox.up
# shellcheck disable=SC1091
source .sandbox/env
step provision-all
$invoke provision-all
step claim --slot 4 --task JA-123
$invoke claim --slot 4 --task JA-123 --note "sandbox demo"
step deploy --slot 4 --branch feat-x
$invoke deploy --slot 4 --branch feat-x --task JA-123
step verify --slot 4
$invoke verify --slot 4
step status
$invoke status
step release --slot 4 --stop
$invoke release --slot 4 --task JA-123 --stop
echo
echo "demo: done; the sandbox stays up (source .sandbox/env to use it; .venv/bin/invoke sandbox.down stops it)"
