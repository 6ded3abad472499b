"""A row of `status` (and of the dashboard's slots): a slot of the inventory or the registry,
its claim, and its live health when it was asked for (pure: no host, no database)."""

from __future__ import annotations

from dataclasses import dataclass

from staging_ops.drift import Drift
from staging_ops.health import CertificateCheck, LiveChecks
from staging_ops.inventory import Slot
from staging_ops.jsondoc import JSONObject
from staging_ops.processes.status import Processes, processes_json
from staging_ops.slots.model import SlotState

UNKNOWN_HEALTH = "?"
UNREGISTERED = "unregistered"


@dataclass(frozen=True)
class StatusRow:
    """One slot: its claim (`state`, None for an inventory slot the registry does not know),
    its inventory slot (None for a registry row no inventory slot matches), whether its claim
    has expired, and its live health (`checks`; None when health was not asked, or for a slot
    it was not checked for: `with_health` tells which)."""

    slot_id: int
    state: SlotState | None
    slot: Slot | None
    expired: bool
    with_health: bool = False
    checks: LiveChecks | None = None

    @property
    def status(self) -> str:
        return self.state.status if self.state else UNREGISTERED

    @property
    def commit(self) -> str | None:
        return self.state.commit if self.state else None

    @property
    def subdomain(self) -> str | None:
        if self.state:
            return self.state.subdomain
        return self.slot.subdomain if self.slot else None

    def _health(self, value: str | None) -> str | None:
        """A probe's answer as status shows it: "?" for a check that could not run."""
        return (value or UNKNOWN_HEALTH) if self.with_health else None

    @property
    def ui(self) -> str | None:
        probes = self.checks.probes if self.checks else None
        return self._health(probes.ui if probes else None)

    @property
    def airflow(self) -> str | None:
        probes = self.checks.probes if self.checks else None
        return self._health(probes.airflow if probes else None)

    @property
    def processes(self) -> Processes | None:
        return self.checks.processes if self.checks else None

    @property
    def certificate(self) -> CertificateCheck | None:
        probes = self.checks.probes if self.checks else None
        return probes.certificate if probes else None

    def drift(self) -> Drift | None:
        """Registry, `current` on the droplet and /api/version: which of them disagree (None
        when health was not asked)."""
        if not self.with_health:
            return None
        return (self.checks or LiveChecks()).drift(self.commit, self.status)

    def claim_json(self) -> JSONObject:
        """The registry's side: {"slot", the claim's fields (or the inventory's for an
        unregistered slot), "expired"}."""
        if self.state:
            claim = self.state.to_dict()
        else:
            claim = {
                "slot_id": self.slot_id,
                "identifier": self.slot.identifier if self.slot else None,
                "subdomain": self.slot.subdomain if self.slot else None,
                "role": self.slot.role if self.slot else None,
                "status": UNREGISTERED,
            }
        return {"slot": self.slot_id, **claim, "expired": self.expired}

    def as_json(self) -> JSONObject:
        """status --json's row; every health field None when health was not asked."""
        checks = self.checks
        certificate = self.certificate
        drift = self.drift()
        return {
            **self.claim_json(),
            "ui": self.ui,
            "airflow": self.airflow,
            # Each process the live release declares: {type: {"state", "unit", "problem"}}.
            "processes": processes_json(self.processes),
            # The certificate nginx serves for the slot: expiry, issuer, what is wrong with it.
            "certificate": certificate.as_json() if certificate else None,
            # Registry, `current` on the droplet and /api/version: which of them disagree.
            "live": checks.live_json() if checks else None,
            "served_commit": checks.served if checks else None,
            "drift": drift.as_json() if drift else None,
            # PSS of the slot's processes on the droplet, MB (0: none runs; None: not read).
            "memory_mb": checks.memory_mb if checks else None,
        }
