"""What a certificate says (names, expiry, issuer) and what is wrong with it for a slot: shared
by provision-all (which reads the droplet's file) and status/verify (which read the one nginx
serves)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# status/verify warn this close to the expiry (provision-all renews 30 days before).
WARN_WITHIN = timedelta(days=14)


@dataclass(frozen=True)
class CertificateFacts:
    """What the droplet's certificate says (read with the other facts, by the probe)."""

    exists: bool
    names: frozenset[str] = frozenset()
    not_after: datetime | None = None
    issuer: str = ""

    @classmethod
    def from_probe(cls, raw: dict | None) -> CertificateFacts:
        if not raw or not raw.get("exists"):
            return cls(exists=False)
        not_after = raw.get("not_after")
        return cls(
            exists=True,
            names=frozenset(raw.get("names", [])),
            not_after=datetime.fromtimestamp(not_after, UTC) if not_after else None,
            issuer=str(raw.get("issuer", "")),
        )


def certificate_problem(name: str, have: CertificateFacts, now: datetime) -> str | None:
    """What status/verify report about the certificate a slot is served with, or None."""
    if not have.exists:
        return "no certificate"
    if not covers(have.names, name):
        return f"certificate does not cover {name}"
    if have.not_after is not None and have.not_after - now <= WARN_WITHIN:
        return f"certificate expires in {days_text(have.not_after - now)}"
    return None


def covers(names: frozenset[str], name: str) -> bool:
    """Whether a certificate for `names` is valid for `name` (RFC 6125: a wildcard stands for
    exactly one leftmost label)."""
    name = name.lower()
    if name in {n.lower() for n in names}:
        return True
    _, _, parent = name.partition(".")
    return bool(parent) and f"*.{parent}" in {n.lower() for n in names}


def days_text(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f}d" if abs(days) >= 1 else f"{delta.total_seconds() / 3600:.0f}h"
