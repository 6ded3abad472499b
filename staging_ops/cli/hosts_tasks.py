"""`invoke hosts.*`: the droplets' SSH host keys."""

from __future__ import annotations

import sys

from invoke import task

from staging_ops.cli.common import load, operator_errors
from staging_ops.errors import BadInput


@task(
    name="trust",
    help={
        "host": "the inventory host (its [hosts.NAME] table) whose key to show and record",
        "yes": "record the key(s) seen without asking (scripts; check the fingerprint first)",
    },
)
@operator_errors
def trust(c, host, yes=False):
    """Show a host's SSH key fingerprint (and its jump hosts') and record it once confirmed."""
    from staging_ops.remote.trust import trust as trust_host

    inventory = load(c)
    chosen = inventory.hosts.get(host)
    if chosen is None:
        raise BadInput(f"--host {host!r}: no such host (known: {', '.join(inventory.hosts)})")

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            print("(no terminal to answer on: check the fingerprint, then run with --yes)")
            return False
        return input(f"{question}? [y/N] ").strip().lower() in ("y", "yes")

    recorded = trust_host(chosen, confirm, print)
    print(f"{chosen.name}: {recorded} key(s) recorded")
