"""The file descriptors our remote scripts hold their flocks on: the one Python place that
names them. A shell redirection takes the number literally (`exec 8>file`), so each script
writes its numbers out and names them in its header; tests/unit/deploy/test_scripts.py checks
that every script uses only the ones listed for it here.

Each lock has a number of its own: a guarded command (lock-guard.sh's PROGRAM) runs as a child
of the shell that holds the fence, so a step that took another lock on the fence's number would
drop it."""

from __future__ import annotations

FENCE = 6  # <slot>/.deploy.lock.holder: the fencing token's file (lock-hold.sh, lock-guard.sh)
VENV = 7  # <base>/venvs/<key>.lock: a venv being built (deploy-release.sh)
MIRROR = 8  # <base>/repo.git.lock: the droplet's shared git mirror (deploy-fetch.sh)
DEPLOY_LOCK = 9  # <slot>/.deploy.lock: the slot's deploy lock (lock-hold.sh)

# Which script holds which: checked against the scripts' text by the unit tests.
BY_SCRIPT: dict[str, tuple[int, ...]] = {
    "lock-hold.sh": (DEPLOY_LOCK, FENCE),
    "lock-guard.sh": (FENCE,),
    "deploy-release.sh": (VENV,),
    "deploy-fetch.sh": (MIRROR,),
}
