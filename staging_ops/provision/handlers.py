"""The handlers of a run (nginx test + reload, daemon-reload, restarts), the marker that keeps
them on the host until they have run, and the one decision taken after the services script
ran: nothing, put the nginx files back, or fail keeping only the nginx test pending. Pure.

The services script (remote/scripts/provision-services.sh) reports with its exit code:
0 all done (marker removed), 1 a systemd step or the reload failed (marker kept),
`NGINX_FAILED` nginx -t refused the files (systemd steps succeeded), `NGINX_AND_SYSTEMD_FAILED`
nginx -t refused them and a systemd step failed too. Both scripts and Python take the codes
from here (the script's header says so; tests/unit/provision runs it to hold them equal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from staging_ops.jsondoc import JSONObject
from staging_ops.remote.facts import PathState
from staging_ops.remote.files import Link, Write

NGINX_FAILED = 90
NGINX_AND_SYSTEMD_FAILED = 91

KEEP: Literal["keep"] = "keep"  # the marker stays as the run left it
REMOVE: Literal["remove"] = "remove"

OK = "ok"
SERVICES_FAILED = "services failed"
RESTORED = "restored"  # nginx -t failed on this run's files: the previous ones are back
FAILS_AS_IS = "fails as is"  # nginx -t failed on files that are not this run's


@dataclass(frozen=True)
class Handlers:
    """Handlers to run once: the marker's content while they are pending."""

    nginx: bool = False
    daemon_reload: bool = False
    restart: tuple[str, ...] = ()
    # Deployed slots whose processes are still to take this run's files, by identifier:
    # reloaded (reloads.py) after the services script, one at a time.
    reload: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return self.nginx or self.daemon_reload or bool(self.restart) or bool(self.reload)

    @property
    def systemd_work(self) -> bool:
        return self.daemon_reload or bool(self.restart)

    def as_json(self) -> JSONObject:
        value: JSONObject = {
            "nginx": self.nginx,
            "daemon_reload": self.daemon_reload,
            "restart": list(self.restart),
        }
        if self.reload:  # a marker without slots to reload reads as an older run's wrote it
            value["reload"] = list(self.reload)
        return value

    def marker_text(self) -> str:
        return json.dumps(self.as_json())

    @classmethod
    def from_marker(cls, text: str | None) -> Handlers:
        """The handlers a marker keeps; an unreadable marker means every handler, since we
        cannot tell which ones a crashed run left (its restarts are not known either)."""
        if not text:
            return cls()
        try:
            value = json.loads(text)
        except ValueError:
            return cls(nginx=True, daemon_reload=True)
        if not isinstance(value, dict):
            return cls()
        return cls(
            nginx=bool(value.get("nginx", False)),
            daemon_reload=bool(value.get("daemon_reload", False)),
            restart=tuple(value.get("restart", [])),
            reload=tuple(value.get("reload", [])),
        )


@dataclass(frozen=True)
class Restore:
    """A path under nginx_dir this run changes, as it was before: put back if nginx -t fails."""

    path: str
    state: PathState
    content: str | None


@dataclass(frozen=True)
class Outcome:
    """What to do once the services script has exited."""

    verdict: str  # OK, SERVICES_FAILED, RESTORED or FAILS_AS_IS
    restore: bool = False
    marker: Handlers | Literal["keep", "remove"] = KEEP


def after_services(code: int, handlers: Handlers, earlier: Handlers, restorable: bool) -> Outcome:
    """Decide from the services script's exit `code`, the `handlers` this run wrote to the
    marker, the `earlier` marker's handlers and whether this run changed nginx files it can
    put back (`restorable`).

    Never claims a restore it did not make; systemd work that succeeded is not left pending;
    restored files that an earlier, interrupted run wrote were never tested by nginx, so their
    test stays pending. Slots to reload stay pending whatever failed: none was reloaded."""
    outcome = _after_services(code, handlers, earlier, restorable)
    if code == 0 or not handlers.reload or outcome.marker == KEEP:
        return outcome  # done, nothing to reload, or the marker as uploaded names them
    kept = outcome.marker if isinstance(outcome.marker, Handlers) else Handlers()
    return Outcome(
        outcome.verdict,
        outcome.restore,
        Handlers(kept.nginx, kept.daemon_reload, kept.restart, handlers.reload),
    )


def _after_services(code: int, handlers: Handlers, earlier: Handlers, restorable: bool) -> Outcome:
    if code == 0:
        return Outcome(OK)
    if code not in (NGINX_FAILED, NGINX_AND_SYSTEMD_FAILED):
        return Outcome(SERVICES_FAILED)  # the marker keeps every handler for the next run
    systemd_failed = code == NGINX_AND_SYSTEMD_FAILED
    if not restorable:
        # The failing files are already on disk (a crashed run's): nothing to put back. The
        # script exited before removing the marker, so the next run tests nginx again.
        if not systemd_failed and handlers.systemd_work:
            return Outcome(FAILS_AS_IS, marker=Handlers(nginx=True))
        return Outcome(FAILS_AS_IS)
    if not (systemd_failed or earlier.nginx):
        return Outcome(RESTORED, restore=True, marker=REMOVE)
    still = Handlers(
        nginx=earlier.nginx,
        daemon_reload=handlers.daemon_reload and systemd_failed,
        restart=handlers.restart if systemd_failed else (),
    )
    return Outcome(RESTORED, restore=True, marker=still)


@dataclass(frozen=True)
class FileOps:
    """Writes, links and removes for one SFTP session."""

    writes: list[Write] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)


def put_back(restores: list[Restore], marker_path: str, marker: Handlers | str) -> FileOps:
    """The SFTP work that puts the nginx files back as nginx kept serving them, and leaves
    the marker as `marker` says (written first, or removed last)."""
    ops = FileOps()
    if isinstance(marker, Handlers):
        ops.writes.append(Write(marker_path, marker.marker_text(), 0o600))
    elif marker == REMOVE:
        ops.removes.append(marker_path)
    for item in restores:
        state = item.state
        if state.type == "missing":
            ops.removes.append(item.path)
        elif state.type == "link" and state.target is not None:
            ops.links.append(Link(item.path, state.target))
        elif state.type == "file" and item.content is not None:
            ops.writes.append(
                Write(item.path, item.content, state.mode or 0, state.uid or 0, state.gid or 0)
            )
    return ops
