"""deploy, rollback, verify and logs of one slot: recipes.py lists each as its steps, one
module per step as the operator sees it printed (claim, fetch, release = export + venv,
migrate, switch, restart, verify, record; rollback's choice in rollback.py), run on the
connection and deploy lock that session.py holds (lock.py); stop.py stops a slot's services
for `release --stop`. The remote shell is in staging_ops/remote/scripts/deploy-*.sh and
lock-*.sh, run with its values as arguments.

Here `rollback` and `logs` are the functions; the modules of those names hold their pieces
(import from them by full name: `from staging_ops.deploy.rollback import rollback_target`)."""

from staging_ops.deploy.logs import SERVICE_NAMES, logs
from staging_ops.deploy.recipes import deploy, rollback
from staging_ops.deploy.steps import DeployResult
from staging_ops.deploy.verify import verify_slot
from staging_ops.slots.branch import task_from_branch, validate_branch

__all__ = [
    "SERVICE_NAMES",
    "DeployResult",
    "deploy",
    "logs",
    "rollback",
    "task_from_branch",
    "validate_branch",
    "verify_slot",
]
