"""Facts for the plan fixtures, and the plan as JSON.

A fixture names a starting host ("fresh": nothing there, nothing installed; "converged":
everything as desired) and overrides some of its facts; the loader answers the plan's own
facts request the way the probe would, so a fixture states only what differs:

    {"base": "converged", "deployed": [1],
     "stat": {PATH: {"type": "file", "sha256": "old", ...}}, "content": {PATH: TEXT},
     (a "sha256" of "as desired" is the desired content's, for mode or owner drift)
     "packages": {...}, "user": {...} | null, "units": {...}, "services": {...},
     "user_after_prepare": {"uid": 999, "gid": 999}}
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from staging_ops.inventory import Inventory, load_inventory
from staging_ops.provision.desired import Desired, desired_state, tls_paths
from staging_ops.provision.facts import facts_request
from staging_ops.provision.plan import (
    ConvergePlan,
    PreparePlan,
    converge_plan,
    package_changes,
    prepare_plan,
)
from staging_ops.remote.facts import HostFacts, UserIds

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SERVICE_IDS = {"uid": 999, "gid": 999}
# Every fixture's passwords: the desired env files are the same on every run.
PASSWORDS = {1: "pw-slot-1", 2: "pw-slot-2"}


def inventory() -> Inventory:
    return load_inventory(FIXTURES / "inventory.toml")


def desired() -> Desired:
    inv = inventory()
    host = inv.hosts["d1"]
    return desired_state(inv, host, [inv.slots[1], inv.slots[2]], PASSWORDS)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def host_facts(want: Desired, spec: dict[str, Any]) -> HostFacts:
    """The probe's answer to the plan's request, for the fixture's host."""
    inv = inventory()
    request = facts_request(inv, want.host, want.slots)
    converged = spec.get("base", "fresh") == "converged"
    user = SERVICE_IDS if converged else None
    user = spec.get("user", user)
    ids = {"root": {"uid": 0, "gid": 0}, want.host.service_user: user or {"uid": -1, "gid": -1}}
    deployed = {want.current_link(s) for s in want.slots if s.id in spec.get("deployed", [])}
    stat: dict[str, Any] = {}
    for path in request.stat:
        stat[path] = {"type": "missing"}
        if path in deployed:
            stat[path] = {"type": "link", "target": "releases/r1"}
        if not converged:
            continue
        if path in want.dirs:
            mode, owner = want.dirs[path]
            stat[path] = {"type": "dir", "mode": mode, **ids[owner]}
        elif path in want.files:
            rendered = want.files[path]
            stat[path] = {
                "type": "file",
                "sha256": _sha256(rendered.content),
                "mode": rendered.mode,
                **ids[rendered.owner or "root"],
            }
        elif path in want.links:
            stat[path] = {"type": "link", "target": want.links[path]}
        elif path in tls_paths(want.host):
            stat[path] = {"type": "file", "sha256": "cert", "mode": 0o644, "uid": 0, "gid": 0}
    for path, state in spec.get("stat", {}).items():
        if state.get("sha256") == "as desired":
            state = {**state, "sha256": _sha256(want.files[path].content)}
        stat[path] = state
    content = {
        p: (want.files[p].content if converged and p in want.files else None) for p in request.read
    }
    content.update(spec.get("content", {}))
    units = {
        unit: "active"
        for link, names, _workers, _own in request.units_if_deployed
        if link in deployed
        for unit in names
    }
    units.update(spec.get("units", {}))
    running = {"enabled": "enabled", "active": "active"}
    services = {name: running for name in request.services} if converged else {}
    services.update(spec.get("services", {}))
    packages = {name: converged for name in request.packages}
    packages.update(spec.get("packages", {}))
    return HostFacts.from_json(
        {
            "stat": stat,
            "content": content,
            "packages": packages,
            "user": user,
            "units": units,
            "services": services,
            "euid": 0,
        }
    )


def plan_host(spec: dict[str, Any]) -> tuple[HostFacts, PreparePlan, ConvergePlan]:
    """Both halves of the plan, as a run makes them (the prepare step's user in between)."""
    want = desired()
    facts = host_facts(want, spec)
    prep = prepare_plan(want, facts)
    if prep.needed:
        facts = facts.with_user(UserIds(**spec.get("user_after_prepare", SERVICE_IDS)))
    return facts, prep, converge_plan(want, facts)


def plan_as_json(facts: HostFacts, prep: PreparePlan, conv: ConvergePlan) -> dict[str, Any]:
    """The plan as a fixture states it: changes per step ("action target"), the commands'
    arguments, the upload, the handlers and what a restore puts back."""
    steps = {"packages": package_changes(facts.missing_packages), **prep.changes, **conv.changes}
    upload = conv.upload
    # Each slot to reload, how and why (only where there is one: older fixtures have none).
    reloads = {r.slot.identifier: f"{r.how}: {r.why}" for r in conv.reloads}
    return {
        **({"reloads": reloads} if reloads else {}),
        "changes": {
            step: [f"{c.action} {c.target}" for c in changes]
            for step, changes in steps.items()
            if changes
        },
        "install": facts.missing_packages,
        "prepare": prep.args,
        "upload": {
            "writes": [f"{w.path} {w.mode:o} {w.uid}:{w.gid}" for w in upload.writes],
            "links": [f"{link.path} -> {link.target}" for link in upload.links],
            "removes": upload.removes,
        },
        "handlers": conv.handlers.as_json(),
        "restore": {r.path: r.state.as_json() for r in conv.restore},
        "services": conv.services_args if conv.run_services else None,
    }
