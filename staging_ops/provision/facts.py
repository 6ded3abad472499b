"""The facts provision-all asks a host for (one probe request per host) and what it reads
from the answer. The answer's type, `HostFacts`, lives beside the probe (remote/facts.py)."""

from __future__ import annotations

from staging_ops import slot_access
from staging_ops.inventory import Host, Inventory, Slot
from staging_ops.processes import ProcessSpec, spec_from_json
from staging_ops.provision import databases
from staging_ops.provision.desired import Desired, desired_state, tls_links, tls_paths
from staging_ops.provision.handlers import Handlers
from staging_ops.remote.facts import FactsRequest, HostFacts
from staging_ops.render import TYPE_SERVICES, slot_units, worker_unit_prefix

SPEC_FILE = ".process-spec.json"
# A release a deploy verified (deploy/record.py): one a reload may hand over to.
VERIFIED_MARK = ".ok"


def facts_request(inventory: Inventory, host: Host, slots: list[Slot]) -> FactsRequest:
    """Every path the plan compares, every file whose content it needs (rendered files for
    diffs and restores, the marker, the admin secret), packages, user and service states."""
    probe = desired_state(inventory, host, slots, {})
    currents = [probe.current_link(s) for s in slots]
    return FactsRequest(
        stat=(
            *probe.dirs,
            *probe.files,
            *probe.links,
            *probe.removes,
            *currents,
            *(f"{link}/{VERIFIED_MARK}" for link in currents),
            *tls_paths(host),
            *tls_links(host),
        ),
        # The basic-auth file also on a public host: a run that removes it puts it back if
        # `nginx -t` refuses the run's vhosts.
        read=(
            *probe.files,
            probe.marker,
            databases.admin_secret_path(host),
            *([] if host.access == slot_access.PASSWORD else [slot_access.htpasswd_path(host)]),
            *(f"{link}/{SPEC_FILE}" for link in currents),
        ),
        packages=tuple(host.packages),
        services=tuple(host.services_at_boot),
        user=host.service_user,
        # An ACME host's certificate: its names and expiry decide whether to ask the server.
        certificates=(host.tls_certificate,) if host.acme else (),
        # The basic-auth file's group (an access = "password" host's), by its gid.
        groups=(host.nginx_group,) if host.access == slot_access.PASSWORD else (),
        # Unit states only matter (and are only asked, in one systemctl call) for deployed
        # slots.
        units_if_deployed=tuple(
            (
                probe.current_link(s),
                tuple(slot_units(inventory.app, s)),
                worker_unit_prefix(inventory.app, s),
                tuple(TYPE_SERVICES),
            )
            for s in slots
        ),
    )


def deployed_slots(want: Desired, facts: HostFacts) -> list[Slot]:
    """Slots with a release (`current` exists): only their units restart or start."""
    return [s for s in want.slots if not facts.state(want.current_link(s)).missing]


def pending_handlers(want: Desired, facts: HostFacts) -> Handlers:
    """What an earlier run left pending in the marker (killed after its upload)."""
    return Handlers.from_marker(facts.text(want.marker))


def marker_left(want: Desired, facts: HostFacts) -> bool:
    """Whether an earlier run's marker is on the host (to clear even with nothing to do)."""
    return facts.text(want.marker) is not None


def live_spec(want: Desired, facts: HostFacts, slot: Slot) -> ProcessSpec:
    """What the slot's live release declares (its `.process-spec.json`; the inventory's
    commands for a release from before there was one)."""
    return spec_from_json(facts.text(f"{want.current_link(slot)}/{SPEC_FILE}"), want.app)


def verified_link(want: Desired, slot: Slot) -> str:
    """The live release's verified mark, through `current`: present once a deploy verified it."""
    return f"{want.current_link(slot)}/{VERIFIED_MARK}"


def declared_units(want: Desired, facts: HostFacts, slot: Slot) -> list[str]:
    """The main units of the processes the slot's live release declares."""
    return slot_units(want.app, slot, live_spec(want, facts, slot).types)
