"""An integration event: what happened to a slot, with everything its delivery needs (the
slot's URL, the dashboard's page, the repository, the task), so that a deliverer in another
process (the Staging API server) needs no inventory."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from staging_ops.jsondoc import JSONObject

STARTED = "started"
SUCCEEDED = "succeeded"
FAILED = "failed"
RELEASED = "released"
KINDS = (STARTED, SUCCEEDED, FAILED, RELEASED)


@dataclass(frozen=True)
class Event:
    """`kind` of KINDS for slot `slot_id` (`environment` is its identifier, `staging-4`).
    `commit` is what the deploy made live (or tried to; for a release, what served); `task`
    the Linear issue (None: Linear is not told); `repository` GitHub's owner/name (None:
    GitHub is not told)."""

    kind: str
    slot_id: int
    environment: str
    url: str
    commit: str
    branch: str = ""
    task: str | None = None
    repository: str | None = None
    log_url: str | None = None
    by: str = ""
    rollback: bool = False
    step: str | None = None  # the failed step
    serving: str | None = None  # what serves after a failure

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown integration event {self.kind!r}")

    def to_json(self) -> JSONObject:
        return asdict(self)

    @classmethod
    def from_json(cls, data: JSONObject) -> Event:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def what(self) -> str:
        """`feat-x@abc1234def56`, or the commit alone."""
        short = self.commit[:12]
        return f"{self.branch}@{short}" if self.branch else short


def slot_page(dashboard_url: str | None, environment: str) -> str | None:
    """The dashboard's page for a slot (the board, scrolled to its card), if the dashboard's
    address is known."""
    if not dashboard_url:
        return None
    return f"{dashboard_url.rstrip('/')}#{environment}"
