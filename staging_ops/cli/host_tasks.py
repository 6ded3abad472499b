"""Host tasks: render the files, write the slot table, converge the droplets."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Exit, task

from staging_ops import output
from staging_ops.cli.common import load, operator, operator_errors, project_root
from staging_ops.errors import StagingError


@task(
    name="render",
    help={
        "slot": "slot number to render (default: every slot)",
        "out": "write the files under this directory (mirroring remote paths) instead of printing",
    },
)
@operator_errors
def render_(c, slot=None, out=None):
    """Render nginx vhosts, systemd units and env files (secrets redacted)."""
    from staging_ops import render, slot_access

    inventory = load(c)
    slots = [inventory.slot(slot)] if slot is not None else list(inventory.slots.values())
    # The basic-auth file as output may show it: the users, never a password or a hash.
    credentials = slot_access.credentials_from_env()
    htpasswd = (
        "".join(f"{c.user}:{slot_access.HIDDEN}\n" for c in credentials) if credentials else None
    )
    for host in inventory.target_hosts():
        chosen = [s for s in slots if s.host == host.name]
        if not chosen:
            continue
        files = render.render_host(inventory, host, chosen, htpasswd=htpasswd)
        for path, rendered in files.items():
            if out:
                target = Path(out) / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(rendered.content)
                target.chmod(rendered.mode)
                print(f"wrote {target}")
            else:
                print(f"# ==> {host.name}:{path} (mode {rendered.mode:04o})")
                print(rendered.content)


@task(name="registry-doc", help={"check": "only report whether the document is out of date"})
@operator_errors
def registry_doc(c, check=False):
    """Write docs/staging-slots.md (the static slot table) from the inventory."""
    from staging_ops.slot_table import SLOT_TABLE, render_slot_table, write_slot_table

    inventory = load(c)
    doc_path = project_root(c) / SLOT_TABLE
    if check:
        current = doc_path.read_text() if doc_path.exists() else ""
        if current != render_slot_table(inventory):
            raise StagingError(f"{doc_path} is out of date: run `invoke registry-doc`")
        print(f"{doc_path}: up to date")
        return
    changed = write_slot_table(inventory, doc_path)
    print(f"{doc_path}: {'changed' if changed else 'unchanged'}")


@task(
    name="provision-all",
    help={
        "check": "dry run: print the plan, change nothing",
        "diff": "show unified diffs of changed files (secrets redacted)",
        "slots": "limit the run to these slots, e.g. 3,4 (default: all)",
        "json": "print a machine-readable summary (with a `changed` total) instead",
    },
)
@operator_errors
def provision_all(c, check=False, diff=False, slots=None, json=False):
    """Converge every staging host: packages, dirs, nginx, units, env files, databases; a
    deployed slot whose unit or env changed goes live through the deploy's hand-over."""
    import os
    from functools import partial

    from staging_ops import provision, slot_access
    from staging_ops.deploy.reload import reload_slot

    inventory = load(c)
    chosen = inventory.select_slots(slots)
    # Malformed: exit 2 here, before any host is asked.
    credentials = slot_access.credentials_from_env()

    def show(report: provision.HostReport, log: output.StepLog) -> None:
        if json:
            return
        print(f"{report.host}:")
        for line in log.lines:
            print(line)
        if report.error:
            print(f"  {output.paint('error', 'failed')}: {report.error}")

    result = provision.provision_all(
        inventory,
        chosen,
        check=check,
        diff=diff,
        registry_dsn=os.environ.get("STAGING_REGISTRY_DSN"),
        on_host_done=show,
        # Progress of long steps goes to stderr, so --json's stdout stays one document.
        progress=lambda line: print(f"  … {line}", file=sys.stderr, flush=True),
        credentials=credentials,
        reload=partial(reload_slot, operator=operator("")),
    )
    if json:
        print(output.to_json(result.as_dict()))
    else:
        registry = result.registry
        if registry:
            outcome = "failed" if registry.error else ("changed" if registry.changed else "ok")
            print(
                output.step_line(
                    "registry migrations", outcome, registry.seconds, registry.error or ""
                )
            )
        print("summary:" + (" (check: nothing was changed)" if check else ""))
        for report in result.hosts:
            ok = len([s for s in report.steps if s.outcome == "ok"])
            print(
                f"  {report.host:<12} ok={ok} changed={report.changed} "
                f"failed={int(report.error is not None)} commands={report.commands} "
                f"uploads={report.uploads} {report.seconds:.2f}s"
            )
    if result.failed:
        raise Exit(code=result.exit_code)
