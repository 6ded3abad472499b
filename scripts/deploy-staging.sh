#!/usr/bin/env bash
# The documented deploy command: ./scripts/deploy-staging.sh <slot-id> [branch]
# (branch defaults to the current git branch). Same as `invoke deploy --slot N --branch B`.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 <slot-id> [branch]" >&2
  exit 2
fi
slot=$1
branch=${2:-$(git rev-parse --abbrev-ref HEAD)}
here=$(cd "$(dirname "$0")/.." && pwd)
invoke=$here/.venv/bin/invoke
[ -x "$invoke" ] || invoke=invoke
cd "$here"
exec "$invoke" deploy --slot "$slot" --branch "$branch"
