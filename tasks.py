"""Operator tasks for the justapply.net staging droplet. `invoke --list` shows them all.

The tasks live in staging_ops/cli (one module per concern or namespace) and devtools'
sandbox_tasks.py and droplet_tasks.py (the sandbox and the test droplet); this file only
collects them. Exit codes: 0 done, 1 failed, 2 bad input or configuration, 3 conflict.
"""

from __future__ import annotations

from pathlib import Path

from invoke import Collection

from staging_ops.cli import (
    api_tasks,
    claim_tasks,
    deploy_tasks,
    host_tasks,
    hosts_tasks,
    registry_tasks,
    webhook_tasks,
)

ns = Collection()
for module in (host_tasks, deploy_tasks, claim_tasks):
    # Invoke's own module scan (what `invoke` does with a tasks.py), at the root namespace.
    for each in Collection.from_module(module).tasks.values():
        ns.add_task(each)
ns.add_collection(Collection.from_module(hosts_tasks, name="hosts"))
ns.add_collection(Collection.from_module(registry_tasks, name="registry"))
ns.add_collection(Collection.from_module(api_tasks, name="api"))
ns.add_collection(Collection.from_module(webhook_tasks, name="webhooks"))

# The dev tooling is in the checkout, not in the product's wheel.
try:
    from devtools import droplet_tasks, sandbox_tasks
except ImportError:
    pass
else:
    ns.add_collection(Collection.from_module(sandbox_tasks, name="sandbox"))
    ns.add_collection(Collection.from_module(droplet_tasks, name="droplet"))

# Where the default inventory and docs/staging-slots.md are: beside this file.
ns.configure({"staging": {"root": str(Path(__file__).resolve().parent)}})
