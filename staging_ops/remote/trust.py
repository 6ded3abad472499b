"""`invoke hosts.trust`: the key each hop to a host presents, shown and, once the operator
confirms it, recorded in the known_hosts file the host's connections read. A known key is
left as it is; a changed one is refused as every connection refuses it (the old line is
never overwritten: the operator removes it himself, after checking why it changed)."""

from __future__ import annotations

from collections.abc import Callable

import paramiko

from staging_ops.errors import StagingError
from staging_ops.inventory import Host
from staging_ops.remote.connection import presented_key
from staging_ops.remote.known_hosts import Expectation, UnknownHostKey, fingerprint, record
from staging_ops.remote.route import route


def trust(host: Host, confirm: Callable[[str], bool], say: Callable[[str], None]) -> int:
    """Walk the route to `host` hop by hop (a jump host must be trusted before we log in to
    it to reach the next); returns how many keys were recorded. `confirm` gets the question
    and answers it (--yes: always yes); StagingError when one is declined."""
    path = route(host)
    recorded = 0
    # One pass per hop at most: each pass either records one unknown key or ends.
    for _ in range(len(path.hops) + 1):
        try:
            key = presented_key(path)
        except UnknownHostKey as unknown:  # a jump host's, found on the way
            _offer(unknown.expect, unknown.key, confirm, say)
            recorded += 1
            continue
        expect = path.target.expect
        refused = expect.verdict(key)
        if refused is None:
            where = "the inventory's host_key" if expect.pin else f"{expect.path}"
            say(f"{expect.label}: {key.get_name()} {fingerprint(key)} is trusted ({where})")
            return recorded
        if not isinstance(refused, UnknownHostKey):
            raise refused
        _offer(expect, key, confirm, say)
        return recorded + 1
    raise StagingError(f"{host.name}: the route kept presenting new keys; nothing more recorded")


def _offer(
    expect: Expectation,
    key: paramiko.PKey,
    confirm: Callable[[str], bool],
    say: Callable[[str], None],
) -> None:
    shown = f"{key.get_name()} {fingerprint(key)}"
    say(f"{expect.label} presents {shown}")
    if not confirm(f"Is that its key? Record it in {expect.path} as {expect.name}"):
        raise StagingError(f"{expect.label}: {shown} not trusted; nothing recorded")
    record(expect.path, expect.name, key)
    say(f"{expect.label}: recorded {shown} in {expect.path}")
