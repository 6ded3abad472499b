"""A slot's releases as the dashboard and the API show them: each release with its commit,
branch and state (verified, bad, or never verified), and which one is live; read from the
droplet in one command, without the slot's deploy lock (it changes nothing)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from staging_ops import remote
from staging_ops.deploy import current_sh, releases_sh
from staging_ops.inventory import Inventory, Slot
from staging_ops.jsondoc import JSONObject
from staging_ops.slot_layout import SlotPaths

# Between the two scripts' output in the one command.
MARKER = "--- current ---"


@dataclass(frozen=True)
class ReleaseView:
    release: str
    commit: str
    branch: str
    state: str  # verified | bad | unverified
    live: bool

    def to_dict(self) -> JSONObject:
        return asdict(self)


def release_views(listing: str, current: str) -> list[ReleaseView]:
    """deploy-releases.sh `list` output and `current`'s target -> the views, newest first."""
    live = current.strip().rsplit("/", 1)[-1]
    return [
        ReleaseView(
            r.name,
            r.commit,
            r.branch,
            "bad" if r.bad else "verified" if r.ok else "unverified",
            r.name == live,
        )
        for r in releases_sh.parse_list(listing)
    ]


def slot_releases(inventory: Inventory, slot: Slot) -> list[ReleaseView]:
    """The slot's releases, read over SSH (Unreachable when the droplet is not)."""
    host = inventory.host_of(slot)
    paths = SlotPaths(host, slot)
    command = (
        f"{releases_sh.list_command(paths.releases)}; echo {MARKER};"
        f" {current_sh.read_command(paths.current)}"
    )
    connection = remote.connect(host)
    try:
        _, out, _ = connection.run(command)
    finally:
        connection.close()
    listing, _, current = out.partition(f"{MARKER}\n")
    return release_views(listing, current)
