"""Drift: whether the three places that say what a slot runs agree (pure, no host).

- the registry's commit (marts.staging_slots: what was deployed and recorded),
- the commit of the release the slot's `current` link points to on the droplet (its
  .release-env, written by the deploy),
- the commit the running UI serves at /api/version.

Any two that differ are drift, named as a pair. A side that could not be read (the droplet
unreachable) makes the verdict "unknown" unless the sides that were read already disagree; a
UI that does not answer says nothing about commits (that is health's "down"), so it is left
out of the comparison rather than counted as a difference.

And one more fact of the droplet's side: whether the release `current` points to was ever
verified (its `.ok`). A deploy killed or cut off after its switch leaves an unverified release
live, possibly with every commit agreeing (a redeploy of the same commit); that is "unverified",
shown beside any drift, so status, verify and the dashboard all say it from this one verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from staging_ops.jsondoc import JSONObject

REGISTRY, CURRENT, SERVED = "registry", "current", "served"
PAIRS = ((REGISTRY, CURRENT), (REGISTRY, SERVED), (CURRENT, SERVED))
SHORT = 12


@dataclass(frozen=True)
class LiveRelease:
    """What a slot's `current` link points to on its droplet: release None means no link."""

    release: str | None = None
    commit: str | None = None
    branch: str | None = None
    verified: bool = False

    def as_json(self) -> JSONObject:
        return {
            "release": self.release,
            "commit": self.commit,
            "branch": self.branch,
            "verified": self.verified,
        }


@dataclass(frozen=True)
class Drift:
    """The verdict: state "drift" (some pairs differ), else "unverified" (the live release
    never was), else "unknown" (the droplet not read), else "ok": nothing to say. The pairs
    that differ; the live release if it was never verified (beside "drift" too); one line."""

    state: str
    pairs: tuple[tuple[str, str], ...] = ()
    message: str | None = None
    unverified: str | None = None

    @property
    def drifted(self) -> bool:
        return self.state == "drift"

    def label(self) -> str:
        """The status table's cell (and the dashboard's flag): "no", "unknown", "unverified",
        or the pairs that differ ("registry≠current", then ", unverified" if it is that
        too); the whole sentence is the message."""
        parts = [f"{a}≠{b}" for a, b in self.pairs]
        if self.unverified:
            parts.append("unverified")
        if parts:
            return ", ".join(parts)
        return "no" if self.state == "ok" else self.state

    def as_json(self) -> JSONObject:
        return {
            "state": self.state,
            "pairs": [list(p) for p in self.pairs],
            "unverified": self.unverified,
            "label": self.label(),
            "message": self.message,
        }


def _short(commit: str | None) -> str:
    return commit[:SHORT] if commit else "no commit"


def decide(
    registry_commit: str | None,
    current: LiveRelease | None,
    served: str | None,
    *,
    released: bool = False,
    unread_reason: str | None = None,
) -> Drift:
    """The verdict for one slot.

    + registry_commit: the registry's commit (None: nothing recorded)
    + current: what `current` points to (None: not read, e.g. the host is unreachable)
    + served: the commit /api/version serves (None: no answer, or not asked)
    + released: the slot is free; a free slot without a `current` link (release --stop)
      agrees with any recorded commit, which says what ran last, not what runs
    + unread_reason: why `current` was not read, for the message

    >>> decide("a" * 40, LiveRelease("r2", "b" * 40), "a" * 40).pairs
    (('registry', 'current'), ('current', 'served'))
    """
    commits: dict[str, str | None] = {REGISTRY: registry_commit}
    if current is not None and not (released and current.release is None):
        commits[CURRENT] = current.commit
    if served is not None:
        commits[SERVED] = served
    pairs = tuple(
        (a, b) for a, b in PAIRS if a in commits and b in commits and commits[a] != commits[b]
    )
    unverified = current.release if current and current.release and not current.verified else None
    sentences = []
    if pairs:
        sentences.append("drift: " + "; ".join(_pair_text(p, commits, current) for p in pairs))
    if unverified:
        sentences.append(f"unverified: current points to {unverified}, never verified")
    if sentences:
        state = "drift" if pairs else "unverified"
        return Drift(state, pairs, "; ".join(sentences), unverified)
    if current is None:
        why = f": {unread_reason}" if unread_reason else ""
        return Drift(
            "unknown", (), f"drift unknown: the droplet's current release was not read{why}"
        )
    return Drift("ok")


def _where(side: str, commits: Mapping[str, str | None], current: LiveRelease | None) -> str:
    commit = _short(commits[side])
    if side == CURRENT:
        assert current is not None
        if current.release is None:
            return "current points to no release"
        return f"current points to {current.release} ({commit})"
    if side == SERVED:
        return f"/api/version serves {commit}"
    return f"the registry records {commit}"


def _pair_text(
    pair: tuple[str, str], commits: Mapping[str, str | None], current: LiveRelease | None
) -> str:
    """ "<the other side> but <the registry, or current>": the registry (the record) or else
    `current` (what a restart would serve) is the reference each sentence ends on."""
    reference, other = pair
    return f"{_where(other, commits, current)} but {_where(reference, commits, current)}"


def of_slot(
    registry_commit: str | None,
    status: str | None,
    current: LiveRelease | None,
    served: str | None,
    unread: str = "not read",
) -> Drift:
    """The verdict as status, verify and the dashboard ask it: of the claim's commit and
    status, the release `current` points to (None: not read, `unread` says why) and the commit
    /api/version serves."""
    return decide(
        registry_commit,
        current,
        served,
        released=status != "claimed",
        unread_reason=None if current is not None else unread,
    )


def live_json(current: LiveRelease | None, unread: str = "not read") -> JSONObject:
    """`live` as status --json, verify --json and the dashboard carry it: the release
    `current` points to, or {"error": why it was not read}."""
    return current.as_json() if current is not None else {"error": unread}
