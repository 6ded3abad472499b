"""The claim vocabulary shared by every registry backend: rows, events, results, the Protocol.

`registry/postgres.py` and `registry/api_client.py` (the Staging API) both implement
`SlotRegistry`; the task code only ever sees this interface. The parsers here are the single
place where an operator's (or an API caller's) task key, TTL and free-text fields are
validated, so both the CLI and the API refuse the same inputs with the same words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from staging_ops.errors import BadInput, Conflict
from staging_ops.jsondoc import JSONObject
from staging_ops.parsing import duration, shown

TASK_KEY = re.compile(r"^[A-Z][A-Z0-9]*-[0-9]+$")
# git refuses most of what this excludes anyway; we also refuse a leading '-' so a branch can
# never be read as an option by the git commands `reap` runs. Nothing a shell or systemd would
# read specially (quotes, `$`, `;`, parentheses, spaces, backslash): a deploy writes the branch
# into the release's .release-env, which the migrate step sources with sh.
BRANCH_PATTERN = r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$"  # ECMA too (the OpenAPI document's)
BRANCH = re.compile(BRANCH_PATTERN)
# The app repository's main line: what "merged" means, and never a branch reap judges.
MAIN_BRANCH = "main"
COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
DEFAULT_TTL = timedelta(days=7)
MIN_TTL = timedelta(minutes=1)
MAX_TTL = timedelta(days=365)
MAX_TEXT = {"owner": 200, "note": 1000, "by": 200}
# C0 controls and DEL: a newline would break the status table, and PostgreSQL text cannot hold
# NUL at all. Everything else (quotes, `;`, `--`, unicode, SQL words) is stored verbatim.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnknownSlot(BadInput):
    """The slot is not in the registry (the API answers 404)."""

    code = "unknown_slot"


class HoldsAnotherSlot(Conflict):
    """The task already holds another slot: waiting for a free one cannot change that."""

    code = "holds_another_slot"


def parse_task(value: object) -> str:
    """A Linear key like `ja-123` → `JA-123` (ASCII letters in either case); anything else,
    blanks around it included, is BadInput."""
    text = value if isinstance(value, str) else ""
    if not TASK_KEY.fullmatch(text.upper()) or not text.isascii():
        raise BadInput(f"invalid task key {shown(value)}: expected a Linear key like JA-123")
    return text.upper()


def parse_ttl(value: object) -> timedelta:
    """A claim's time to live, 1m to 365d; None/empty means the default (7 days)."""
    if value is None or value == "":
        return DEFAULT_TTL
    return duration(value, "ttl", low=MIN_TTL, high=MAX_TTL)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_text(value: object, what: str, required: bool = False) -> str | None:
    """Free text (owner, note, by): stored verbatim; only control characters are refused."""
    if value is None or value == "":
        if required:
            raise BadInput(f"{what} is required")
        return None
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string")
    if _CONTROL.search(value):
        raise BadInput(f"{what} must not contain control characters (newlines, tabs, NUL)")
    if not value.isascii() and not _encodable(value):
        raise BadInput(f"{what} is not valid Unicode (a lone surrogate)")
    limit = MAX_TEXT.get(what, 1000)
    if len(value) > limit:
        raise BadInput(f"{what} is longer than {limit} characters")
    return value


def parse_branch(value: object) -> str:
    text = value if isinstance(value, str) else ""
    if not BRANCH.fullmatch(text):
        raise BadInput(
            f"invalid branch {shown(value)}: only letters, digits, '.', '_', '-' and '/' are "
            "allowed (no leading '-', no '..', at most 200 characters)"
        )
    return text


def parse_commit(value: object) -> str:
    text = value.lower() if isinstance(value, str) and value.isascii() else ""
    if not COMMIT.fullmatch(text):
        raise BadInput(f"invalid commit {shown(value)}: expected a hex SHA (7-64 digits)")
    return text


DEPLOY_FAILED = "deploy failed"


def failed_deploy_detail(branch: str, commit: str, step: str, serving: str) -> str:
    """A "deploy failed" event's detail: `feat-x@0123456789ab: candidate verify failed;
    serving 20250101T000000Z-abcdef0`. The commit is empty if the branch never resolved."""
    what = f"{branch}@{commit[:12]}" if commit else branch
    return f"{what}: {step} failed; serving {serving or 'nothing'}"


def format_duration(delta: timedelta) -> str:
    """timedelta → the shortest of `45s`, `30m`, `12h`, `7d`, `1d6h` that is exact enough."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")] if seconds >= 60 else [(secs, "s")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    return text or "0s"


def utc_text(moment: datetime | None) -> str:
    """A timestamp as operators read it: `2025-01-08 10:00 UTC`."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


@dataclass(frozen=True)
class SlotState:
    """One row of marts.staging_slots: who holds the slot, and what was deployed to it."""

    slot_id: int
    identifier: str
    subdomain: str
    role: str
    status: str
    task: str | None = None
    owner: str | None = None
    branch: str | None = None
    commit: str | None = None
    note: str | None = None
    claimed_at: datetime | None = None
    expires_at: datetime | None = None
    deployed_at: datetime | None = None
    updated_at: datetime | None = None
    ttl_seconds: int | None = None

    _TIMES = ("claimed_at", "expires_at", "deployed_at", "updated_at")

    @property
    def claimed(self) -> bool:
        return self.status == "claimed"

    def expired(self, now: datetime) -> bool:
        return self.claimed and self.expires_at is not None and self.expires_at <= now

    def holder_text(self) -> str:
        """`task JA-7 (owner alice@example.com) since 2025-01-01 10:00 UTC` for conflicts."""
        return (
            f"task {self.task} (owner {self.owner}) since {utc_text(self.claimed_at)}, "
            f"expires {utc_text(self.expires_at)}"
        )

    def to_dict(self) -> JSONObject:
        # Field by field rather than dataclasses.asdict, which deep-copies every value: this
        # runs for every slot of every GET /api/staging/slots.
        data = {name: getattr(self, name) for name in _SLOT_FIELDS}
        for key in self._TIMES:
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_dict(cls, data: JSONObject) -> SlotState:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in cls._TIMES:
            values[key] = _parse_time(values.get(key))
        return cls(**values)


_SLOT_FIELDS = tuple(f.name for f in fields(SlotState))


@dataclass(frozen=True)
class SlotEvent:
    """One row of the append-only marts.staging_slot_events."""

    id: int
    slot_id: int
    action: str
    actor: str
    via: str
    at: datetime
    detail: str | None
    before: JSONObject | None
    after: JSONObject | None

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """The fields this event changed (updated_at excluded: it always changes)."""
        before, after = self.before or {}, self.after or {}
        keys = [k for k in (after or before) if k != "updated_at"]
        return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}

    def to_dict(self) -> JSONObject:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: JSONObject) -> SlotEvent:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["at"] = _parse_time(values["at"])
        return cls(**values)


@dataclass(frozen=True)
class ClaimResult:
    """The slot after a claim; `renewed` when the task already held it."""

    slot: SlotState
    renewed: bool

    def to_dict(self) -> JSONObject:
        return {"slot": self.slot.to_dict(), "renewed": self.renewed}

    @classmethod
    def from_dict(cls, data: JSONObject) -> ClaimResult:
        return cls(SlotState.from_dict(data["slot"]), bool(data["renewed"]))


@dataclass(frozen=True)
class ReleaseResult:
    """The slot before and after a release; `released` is False when it was already free."""

    before: SlotState
    after: SlotState

    @property
    def released(self) -> bool:
        return self.before.claimed and not self.after.claimed

    def to_dict(self) -> JSONObject:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "released": self.released,
        }

    @classmethod
    def from_dict(cls, data: JSONObject) -> ReleaseResult:
        return cls(SlotState.from_dict(data["before"]), SlotState.from_dict(data["after"]))


@dataclass(frozen=True)
class ReleaseTerms:
    """When SlotRegistry.release may free a claim, and what the history says of it."""

    task: str | None = None
    force: bool = False
    expired_only: bool = False
    action: str = "release"
    reason: str | None = None
    expect_commit: str | None = None


@dataclass(frozen=True)
class DeployRecord:
    """What SlotRegistry.record_deploy notes of a deploy."""

    slot_id: int
    branch: str
    commit: str
    by: str
    task: str | None = None
    serving: bool = False


@runtime_checkable
class SlotRegistry(Protocol):
    """Where claims live. Every method is one atomic operation on the registry.

    The backends subclass it: `release` and `record_deploy` are stated (and their arguments
    gathered) here once, and each backend implements `apply_release` and `apply_deploy`.

    Errors: BadInput (unknown slot, invalid field), Conflict (held by another task, no free
    slot), StagingError (registry unreachable or failing). Messages are operator-ready.
    """

    def status(self) -> Sequence[SlotState]:
        """Every registered slot, ordered by slot id."""
        ...

    def get(self, slot_id: int) -> SlotState:
        """One slot; BadInput if it is not registered."""
        ...

    def claim(
        self, slot_id: int | None, task: str, owner: str, ttl: timedelta, note: str | None = None
    ) -> ClaimResult:
        """Claim `slot_id` (None = the lowest free QA slot) for `task`.

        The task already holding that slot renews its expiry (and note, if one is given).
        """
        ...

    def release(
        self,
        slot_id: int,
        by: str,
        *,
        task: str | None = None,
        force: bool = False,
        expired_only: bool = False,
        action: str = "release",
        reason: str | None = None,
        expect_commit: str | None = None,
    ) -> ReleaseResult:
        """Free the slot. Allowed for its owner (`by`), for whoever names its task, or with
        `force`. `task`, when given, is also a precondition (the claim must still be that
        task's); `expired_only` releases only a claim that is past its expiry;
        `expect_commit` only one whose deployed commit is still that one. `action`
        ("release" or "reap") and `reason` are recorded in the history.
        """
        terms = ReleaseTerms(task, force, expired_only, action, reason, expect_commit)
        return self.apply_release(slot_id, by, terms)

    def apply_release(self, slot_id: int, by: str, terms: ReleaseTerms) -> ReleaseResult:
        """`release`, as each backend does it."""
        ...

    def record_deploy(
        self,
        slot_id: int,
        branch: str,
        commit: str,
        by: str,
        task: str | None = None,
        serving: bool = False,
    ) -> SlotState:
        """Note what was deployed to a claimed slot (held by `task`, if given) and renew the
        claim's expiry. `serving`: note only what serves, whatever the claim (free, or another
        task's: then its deployed time is left, so reap does not judge it by this deploy)."""
        return self.apply_deploy(DeployRecord(slot_id, branch, commit, by, task, serving))

    def apply_deploy(self, deploy: DeployRecord) -> SlotState:
        """`record_deploy`, as each backend does it."""
        ...

    def record_failed_deploy(
        self, slot_id: int, branch: str, commit: str, by: str, step: str, serving: str
    ) -> None:
        """Add a "deploy failed" event to the slot's history (the slot itself is unchanged):
        who, which branch and commit, the step that failed, what serves now."""
        ...

    def history(self, slot_id: int | None = None, limit: int = 50) -> list[SlotEvent]:
        """The newest events first (of one slot, or of all)."""
        ...

    def acting_via(self, channel: str) -> SlotRegistry:
        """This registry recording `channel` (e.g. "api:alice") as the events' channel."""
        ...

    def close(self) -> None:
        """Give back connections; the registry is unusable afterwards."""
        ...
