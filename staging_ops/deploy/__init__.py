"""deploy, rollback, verify and logs of one slot (deployer.py), under the slot's deploy lock
(lock.py); stop.py stops a slot's services for `release --stop`."""

from staging_ops.deploy.deployer import (
    SERVICE_NAMES,
    DeployResult,
    deploy,
    logs,
    rollback,
    task_from_branch,
    validate_branch,
    verify_slot,
)

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
