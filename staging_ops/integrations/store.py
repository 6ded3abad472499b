"""Where the GitHub Deployment made for each slot and commit is kept: the registry's table
(PgStore), or memory for a process without database access (MemoryStore: an operator on the
Staging API, and the unit tests)."""

from __future__ import annotations

from typing import Protocol

from staging_ops.registry import outbox as rows


class DeploymentStore(Protocol):
    def deployment_id(self, repository: str, slot_id: int, commit: str) -> int | None: ...
    def keep(self, repository: str, slot_id: int, commit: str, ident: int) -> None: ...
    def set_state(self, repository: str, ident: int, state: str) -> None: ...
    def active(self, repository: str, slot_id: int) -> list[int]: ...


class PgStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def deployment_id(self, repository: str, slot_id: int, commit: str) -> int | None:
        return rows.deployment_id(self.dsn, repository, slot_id, commit)

    def keep(self, repository: str, slot_id: int, commit: str, ident: int) -> None:
        rows.keep_deployment(self.dsn, repository, slot_id, commit, ident)

    def set_state(self, repository: str, ident: int, state: str) -> None:
        rows.set_deployment_state(self.dsn, repository, ident, state)

    def active(self, repository: str, slot_id: int) -> list[int]:
        return rows.active_deployments(self.dsn, repository, slot_id)


class MemoryStore:
    def __init__(self) -> None:
        self.ids: dict[tuple[str, int, str], int] = {}
        self.states: dict[tuple[str, int], str] = {}

    def deployment_id(self, repository: str, slot_id: int, commit: str) -> int | None:
        return self.ids.get((repository, slot_id, commit))

    def keep(self, repository: str, slot_id: int, commit: str, ident: int) -> None:
        self.ids[(repository, slot_id, commit)] = ident
        self.states[(repository, ident)] = "in_progress"

    def set_state(self, repository: str, ident: int, state: str) -> None:
        self.states[(repository, ident)] = state

    def active(self, repository: str, slot_id: int) -> list[int]:
        return [
            ident
            for (repo, slot, _), ident in self.ids.items()
            if repo == repository
            and slot == slot_id
            and self.states.get((repo, ident)) != "inactive"
        ]
