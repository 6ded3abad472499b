#!/usr/bin/env bash
# Sets up and runs the main job on the local sandbox droplet: start the sandbox, then run the
# operator tasks against it exactly as against the real droplet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
invoke=.venv/bin/invoke
$invoke sandbox.up
# shellcheck disable=SC1091
source .sandbox/env
$invoke render --slot 4 | head -40
$invoke sandbox.status
echo "demo: the sandbox stays up; stop it with: .venv/bin/invoke sandbox.down"
