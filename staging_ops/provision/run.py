"""provision-all: converge every non-protected host into a ready staging droplet.

Desired state is rendered locally; actual state is read in ONE remote command per host; only
the differences are applied (one prepare command, one SFTP session, one handler command);
handlers run once. A handler interrupted by a crash is remembered in a marker file on the host
and run by the next provision. `check=True` computes the same plan and changes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NoReturn

import psycopg2

from staging_ops import crash_points, output, remote
from staging_ops.errors import StagingError
from staging_ops.inventory import Host, Inventory, Slot
from staging_ops.provision import databases
from staging_ops.render import (
    SERVICES,
    RenderedFile,
    render_host,
    slot_units,
    unit_template,
    vhost_name,
)

MARKER = ".staging-ops-pending.json"
NGINX_FAILED = 90
_SECRET = re.compile(r"(postgresql://[^:/\s]+:)[^@\s]+@")
# Debian packages whose installation installs (and starts) a PostgreSQL server: `postgresql`,
# `postgresql-16`, and extensions such as `postgresql-16-postgis-3` that depend on one. Client,
# docs and common-only packages bring no server.
_PG_SERVER_PACKAGE = re.compile(r"^(postgresql|postgis)(?!-(client|common|doc)(-|$))")
# nginx's own severities for a configuration it refuses.
_NGINX_ERROR = re.compile(r"\[(emerg|alert|crit|error)\]")


def redact(text: str) -> str:
    return _SECRET.sub(r"\1********@", text)


def installs_postgres_server(missing_packages: Iterable[str]) -> bool:
    """Whether installing these packages brings the PostgreSQL server: until then there is no
    server to ask (--check on a fresh host plans the databases without one)."""
    return any(_PG_SERVER_PACKAGE.match(name) for name in missing_packages)


@dataclass(frozen=True)
class Change:
    step: str
    target: str
    action: str
    diff: str = ""


@dataclass
class HostReport:
    """What one host's run did (or, with check, would do)."""

    host: str
    changes: list[Change] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    commands: int = 0
    uploads: int = 0
    seconds: float = 0.0
    waiting: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "changed": self.changed,
            "failed": self.error is not None,
            "error": self.error,
            "commands": self.commands,
            "uploads": self.uploads,
            "seconds": round(self.seconds, 3),
            "waiting_for_first_deploy": self.waiting,
            "changes": [
                {"step": c.step, "target": c.target, "action": c.action} for c in self.changes
            ],
            "steps": self.steps,
        }


@dataclass
class ProvisionReport:
    hosts: list[HostReport]
    registry: dict[str, Any] = field(default_factory=dict)
    check: bool = False

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts) + int(self.registry.get("changed", 0))

    @property
    def failed(self) -> bool:
        return any(h.error for h in self.hosts) or bool(self.registry.get("error"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "changed": self.changed,
            "failed": self.failed,
            "hosts": [h.as_dict() for h in self.hosts],
            "registry": self.registry,
        }


# --- desired state -------------------------------------------------------------------------


@dataclass
class Desired:
    """Everything one host should have, computed locally."""

    host: Host
    slots: list[Slot]
    dirs: dict[str, tuple[int, str]]  # path -> (mode, owner name)
    files: dict[str, RenderedFile]
    links: dict[str, str]  # path -> target
    removes: list[str]
    marker: str

    def current_link(self, slot: Slot) -> str:
        return f"{slot.directory(self.host)}/current"


def desired_state(
    inventory: Inventory, host: Host, slots: list[Slot], passwords: dict[int, str]
) -> Desired:
    svc = host.service_user
    dirs: dict[str, tuple[int, str]] = {
        host.base_dir: (0o755, "root"),
        f"{host.base_dir}/acme": (0o755, "root"),
        host.sites_available: (0o755, "root"),
        host.sites_enabled: (0o755, "root"),
        f"{host.systemd_dir}/multi-user.target.wants": (0o755, "root"),
    }
    for slot in slots:
        base = slot.directory(host)
        dirs[base] = (0o755, svc)
        dirs[f"{base}/releases"] = (0o755, svc)
        dirs[f"{base}/shared"] = (0o750, svc)
    files = render_host(inventory, host, slots, passwords)
    links = {
        f"{host.sites_enabled}/{name}": f"{host.sites_available}/{name}"
        for name in ["00-default.conf", *(vhost_name(s) for s in slots)]
    }
    wants = f"{host.systemd_dir}/multi-user.target.wants"
    for slot in slots:
        for service in SERVICES:
            template = unit_template(inventory.app, service)
            instance = template.replace("@.", f"@{slot.identifier}.")
            links[f"{wants}/{instance}"] = f"{host.systemd_dir}/{template}"
    return Desired(
        host=host,
        slots=slots,
        dirs=dirs,
        files=files,
        links=links,
        # Debian's stock site also claims default_server on port 80.
        removes=[f"{host.sites_enabled}/default"],
        marker=f"{host.base_dir}/{MARKER}",
    )


def facts_request(inventory: Inventory, host: Host, slots: list[Slot]) -> dict[str, Any]:
    probe = desired_state(inventory, host, slots, {})
    currents = [probe.current_link(s) for s in slots]
    return {
        "stat": [
            *probe.dirs,
            *probe.files,
            *probe.links,
            *probe.removes,
            *currents,
            *tls_paths(host),
        ],
        "read": [*probe.files, probe.marker, databases.admin_secret_path(host)],
        "packages": list(host.packages),
        "services": list(host.services_at_boot),
        "user": host.service_user,
        # Unit states only matter (and are only asked, in one systemctl call) for deployed slots.
        "units_if_deployed": [[probe.current_link(s), slot_units(inventory.app, s)] for s in slots],
    }


def tls_paths(host: Host) -> list[str]:
    return [host.tls_certificate, host.tls_certificate_key]


def placeholder_needed(facts: dict[str, Any], host: Host) -> bool:
    """Only a host with neither the certificate nor its key gets a placeholder: one file
    without the other is an operator's half-done change, for `nginx -t` to report rather than
    for us to overwrite."""
    return all(facts["stat"][p]["type"] == "missing" for p in tls_paths(host))


def placeholder_certificate_command(host: Host, names: list[str]) -> str:
    """A self-signed certificate for `names` at the host's certificate paths, so that nginx
    can load its HTTPS servers on a host that has no certificate yet (a fresh droplet)."""
    crt, key = host.tls_certificate, host.tls_certificate_key
    q = remote.quote
    san = ",".join(f"DNS:{n}" for n in names)
    dirs = sorted({crt.rsplit("/", 1)[0] or "/", key.rsplit("/", 1)[0] or "/"})
    return (
        f"mkdir -p {q(*dirs)} && (umask 077 && openssl req -x509 -newkey ec "
        "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 "
        f"-subj {q('/CN=' + names[0] + '/O=staging-ops placeholder')} "
        f"-addext {q('subjectAltName=' + san)} -keyout {q(key)} -out {q(crt)} 2>&1) "
        f">/dev/null && chmod 644 {q(crt)}"
    )


def boot_service_changes(facts: dict[str, Any], services: Iterable[str]) -> list[Change]:
    """Services that must start at boot and run (nginx, PostgreSQL) but are not enabled or
    not active: each gets `systemctl enable --now`."""
    changes = []
    for name in services:
        state = facts.get("services", {}).get(name, {})
        if state.get("enabled") != "enabled" or state.get("active") != "active":
            changes.append(Change("services", name, "enable --now"))
    return changes


# --- one host ------------------------------------------------------------------------------


class HostRun:
    """Provision one host; every remote interaction goes through `self.remote`."""

    def __init__(
        self,
        inventory: Inventory,
        host: Host,
        slots: list[Slot],
        check: bool,
        diff: bool,
        progress: Callable[[str], None] | None = None,
    ):
        self.inventory = inventory
        self.host = host
        self.slots = slots
        self.check = check
        self.diff = diff
        self.report = HostReport(host.name)
        self.log = output.StepLog(quiet=True)
        self.progress = progress or (lambda line: None)
        self.admin_password: str | None = None

    def step(self, name: str):
        return self.log.step(name)

    def run(self) -> HostReport:
        start = time.monotonic()
        try:
            with self.step("connect"):
                self.remote = remote.connect(self.host)
            try:
                self._converge()
            finally:
                self.report.commands = self.remote.commands
                self.report.uploads = self.remote.uploads
                self.remote.close()
        except StagingError as exc:
            self.report.error = str(exc)
        self.report.seconds = time.monotonic() - start
        self.report.steps = self.log.steps
        return self.report

    def _converge(self) -> None:
        request = facts_request(self.inventory, self.host, self.slots)
        with self.step("facts"):
            facts = remote.gather_facts(self.remote, request)
        missing = [p for p, ok in facts["packages"].items() if not ok]
        with self.step("packages") as rec:
            self._record(rec, "packages", [Change("packages", p, "install") for p in missing])
        # --check on a host without the PostgreSQL server: there is no server to ask yet.
        self._postgres_missing = installs_postgres_server(missing)
        if missing and not self.check:
            with self.step("install packages") as rec:
                rec["outcome"] = "changed"
                self._install(missing)
                rec["detail"] = f"apt-get update + install {len(missing)} package(s)"
            # Packages bring files and services of their own (Debian's nginx its default
            # site, PostgreSQL its cluster): plan against the host as it is now.
            with self.step("facts after install"):
                facts = remote.gather_facts(self.remote, request)
        passwords, fresh = self._passwords(facts)
        self.admin_password = databases.admin_password(
            facts["content"].get(databases.admin_secret_path(self.host))
        )
        want = desired_state(self.inventory, self.host, self.slots, passwords)
        deployed = [
            s for s in self.slots if facts["stat"][want.current_link(s)]["type"] != "missing"
        ]
        self.report.waiting = [s.identifier for s in self.slots if s not in deployed]
        pending = _parse_marker(facts["content"].get(want.marker))

        # The databases need only the passwords (and the server, installed by now): converge
        # them while the files go up.
        with ThreadPoolExecutor(max_workers=1) as db_pool:
            db_done = db_pool.submit(self._database_step, fresh, passwords)
            self._converge_files(facts, want, deployed, pending)
        db_done.result()

    def _database_step(self, fresh: set[int], passwords: dict[int, str]) -> None:
        with self.step("databases") as rec:
            try:
                self._databases(rec, fresh, passwords)
            except psycopg2.Error as exc:
                # One line naming host and step, like every other failure: the other hosts'
                # reports and the registry migration still happen.
                raise StagingError(self._database_error(exc, passwords)) from None

    def _database_error(self, exc: psycopg2.Error, passwords: dict[int, str]) -> str:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = redact(lines[0] if lines else type(exc).__name__)
        for password in passwords.values():
            # A statement echoed back (LINE 1: ... PASSWORD '...') must not show a password.
            text = text.replace(password, "********")
        return f"{self.host.name}: databases: {text}"

    def _converge_files(
        self,
        facts: dict[str, Any],
        want: Desired,
        deployed: list[Slot],
        pending: dict,
    ) -> None:
        user_missing = facts["user"] is None
        dir_cmds = self._dir_changes(want, facts)
        tls_missing = tls_paths(self.host) if placeholder_needed(facts, self.host) else []
        with self.step("service user") as rec:
            self._record(
                rec,
                "service user",
                [Change("service user", self.host.service_user, "create")] if user_missing else [],
            )
        with self.step("directories") as rec:
            self._record(rec, "directories", [c for c, _ in dir_cmds])
        with self.step("certificate") as rec:
            self._record(
                rec,
                "certificate",
                [Change("certificate", p, "self-signed placeholder") for p in tls_missing],
            )
        tls_cmds = []
        if tls_missing:
            names = [s.subdomain for s in self.inventory.slots_on(self.host)]
            tls_cmds.append(placeholder_certificate_command(self.host, names))
        if not self.check and (user_missing or dir_cmds or tls_cmds):
            with self.step("prepare") as rec:
                rec["outcome"] = "changed"
                facts["user"] = self._prepare(user_missing, [cmd for _, cmd in dir_cmds] + tls_cmds)
        writes, links, removes, by_kind = self._file_changes(want, facts)
        for kind, label in (("nginx", "nginx files"), ("unit", "unit files"), ("env", "env files")):
            with self.step(label) as rec:
                self._record(rec, label, by_kind.get(kind, []))
        nginx_changed = bool(by_kind.get("nginx"))
        units_changed = bool(by_kind.get("unit"))
        restart = self._restarts(want, by_kind, deployed)
        handlers = {
            "nginx": nginx_changed or bool(tls_missing) or pending.get("nginx", False),
            "daemon_reload": units_changed or pending.get("daemon_reload", False),
            "restart": sorted(set(restart) | set(pending.get("restart", []))),
        }
        if not self.check:
            marker = []
            if handlers["nginx"] or handlers["daemon_reload"] or handlers["restart"]:
                marker = [remote.Write(want.marker, json.dumps(handlers), 0o600)]
            with self.step("upload") as rec:
                remote.apply_files(self.remote, marker + writes, links, removes)
                rec["detail"] = f"{len(writes)} files, {len(links)} links"
            crash_points.crash_point("provision:after-upload")
        with self.step("services") as rec:
            marker_left = facts["content"].get(want.marker) is not None
            self._services(rec, want, deployed, handlers, facts, marker_left)

    # facts -> changes ----------------------------------------------------------------------

    def _record(self, rec: dict[str, Any], step: str, changes: list[Change]) -> None:
        self.report.changes.extend(changes)
        rec["outcome"] = "changed" if changes else "ok"
        if changes:
            rec["detail"] = ", ".join(f"{c.action} {_short(c.target)}" for c in changes[:2])
            if len(changes) > 2:
                rec["detail"] += f" (+{len(changes) - 2} more)"
        if self.check:
            rec["outcome"] = "would change" if changes else "ok"
        if self.diff:
            for change in changes:
                if change.diff:
                    self.log.emit(change.diff.rstrip("\n"))

    def _passwords(self, facts: dict[str, Any]) -> tuple[dict[int, str], set[int]]:
        passwords: dict[int, str] = {}
        fresh: set[int] = set()
        for slot in self.slots:
            path = f"{slot.directory(self.host)}/shared/env"
            content = facts["content"].get(path)
            # Contents come byte-exact (CRLF kept); a drifted CRLF env file keeps its password.
            existing = databases.password_from_env_file(
                content.replace("\r\n", "\n") if content else content
            )
            if existing:
                passwords[slot.id] = existing
            else:
                passwords[slot.id] = secrets.token_urlsafe(24)
                fresh.add(slot.id)
        return passwords, fresh

    def _owner_ids(self, facts: dict[str, Any], owner: str) -> tuple[int, int]:
        if owner == "root":
            return 0, 0
        user = facts.get("user") or {"uid": -1, "gid": -1}
        return user["uid"], user["gid"]

    def _dir_changes(self, want: Desired, facts: dict[str, Any]) -> list[tuple[Change, str]]:
        found = []
        for path, (mode, owner) in want.dirs.items():
            state = facts["stat"][path]
            uid, gid = self._owner_ids(facts, owner)
            quoted = remote.quote(path)
            # `user:` is the user and their primary (login) group: the group compared below.
            chown = f"chown {remote.quote(owner + ':')} {quoted}"
            if state["type"] != "dir":
                found.append(
                    (
                        Change("directories", path, "create"),
                        f"mkdir -p {quoted} && chmod {mode:o} {quoted} && {chown}",
                    )
                )
                continue
            if state["mode"] != mode:
                found.append((Change("directories", path, "mode"), f"chmod {mode:o} {quoted}"))
            if (state["uid"], state["gid"]) != (uid, gid):
                found.append((Change("directories", path, "owner"), chown))
        return found

    def _file_changes(self, want: Desired, facts: dict[str, Any]):
        writes: list[remote.Write] = []
        by_kind: dict[str, list[Change]] = {}
        for path, rendered in want.files.items():
            state = facts["stat"][path]
            old = facts["content"].get(path)
            uid, gid = self._owner_ids(facts, rendered.owner or "root")
            if state["type"] == "file" and state.get("sha256") == _sha256(rendered.content):
                if state["mode"] == rendered.mode and (state["uid"], state["gid"]) == (uid, gid):
                    continue
                action = "mode/owner"
            else:
                action = "create" if state["type"] == "missing" else "update"
            diff = ""
            if self.diff and action != "mode/owner":
                diff = _unified(path, old or "", rendered.content, rendered.secret)
            by_kind.setdefault(rendered.kind, []).append(
                Change(_kind_step(rendered.kind), path, action, diff)
            )
            writes.append(remote.Write(path, rendered.content, rendered.mode, uid, gid))
        links: list[remote.Link] = []
        for path, target in want.links.items():
            state = facts["stat"][path]
            if state["type"] == "link" and state.get("target") == target:
                continue
            kind = "nginx" if path.startswith(self.host.nginx_dir) else "unit"
            by_kind.setdefault(kind, []).append(Change(_kind_step(kind), path, "link"))
            links.append(remote.Link(path, target))
        removes = [p for p in want.removes if facts["stat"][p]["type"] != "missing"]
        for path in removes:
            by_kind.setdefault("nginx", []).append(Change("nginx files", path, "remove"))
        # What this run changes under nginx_dir, as it was: restored if `nginx -t` fails.
        touched = [w.path for w in writes] + [link.path for link in links] + removes
        self._restore = {
            path: (facts["stat"][path], facts["content"].get(path))
            for path in touched
            if path.startswith(self.host.nginx_dir)
        }
        return writes, links, removes, by_kind

    def _restarts(self, want: Desired, by_kind: dict[str, list[Change]], deployed: list[Slot]):
        unit_changed = {c.target.rsplit("/", 1)[-1] for c in by_kind.get("unit", [])}
        env_changed = {c.target for c in by_kind.get("env", [])}
        restart: list[str] = []
        for slot in deployed:
            env_path = f"{slot.directory(self.host)}/shared/env"
            for service, unit in zip(SERVICES, slot_units(self.inventory.app, slot), strict=True):
                template = unit_template(self.inventory.app, service)
                if template in unit_changed or env_path in env_changed:
                    restart.append(unit)
        return restart

    # apply ---------------------------------------------------------------------------------

    def _install(self, packages: list[str]) -> None:
        """apt-get update, then install `packages`, showing progress as it goes: a fresh
        droplet has no package lists, and the install takes tens of seconds."""
        start = time.monotonic()
        names = " ".join(packages)
        self.progress(f"{self.host.name}: installing {names} (apt-get update first)")
        last = [0.0]

        def on_line(line: str) -> None:
            now = time.monotonic()
            # dpkg's own milestones, at most one line every 2 s.
            if line.startswith(("Setting up ", "Unpacking ", "Fetched ")) and now - last[0] > 2:
                last[0] = now
                what = line.split(" (")[0]
                self.progress(f"{self.host.name}: {what} ({now - start:.0f}s)")

        script = (
            "set -e\nexport DEBIAN_FRONTEND=noninteractive\napt-get update -q\n"
            "apt-get install -y -q -o Dpkg::Progress-Fancy=0 -o Dpkg::Use-Pty=0 "
            + remote.quote(*packages)
        )
        self.remote.run_streaming(script, on_line)
        self.progress(f"{self.host.name}: installed {names} in {time.monotonic() - start:.1f}s")

    def _prepare(self, user_missing: bool, dir_cmds: list[str]) -> dict:
        svc = remote.quote(self.host.service_user)
        parts = ["set -e"]
        if user_missing:
            parts.append(
                f"id -u {svc} >/dev/null 2>&1 || useradd --system --user-group --no-create-home "
                f"--shell /usr/sbin/nologin {svc}"
            )
        parts.extend(dir_cmds)
        parts.append(f'echo "$(id -u {svc}) $(id -g {svc})"')
        _, out, _ = self.remote.run("\n".join(parts))
        uid, gid = out.split()[-2:]
        return {"uid": int(uid), "gid": int(gid)}

    def _databases(self, rec: dict[str, Any], fresh: set[int], passwords: dict[int, str]) -> None:
        if not self.slots:
            return
        if self.check and self._postgres_missing:
            # --check on a fresh host: no server to ask yet; everything would be created.
            state = databases.DbState(frozenset(), {}, frozenset())
            changes = databases.plan(state, self.slots, fresh, passwords)
            self._record(
                rec, "databases", [Change("databases", c.target, c.action) for c in changes]
            )
            return
        with remote.tunnel(self.remote, self.host.postgres_host, self.host.postgres_port) as port:
            conn = self._admin_connect(port, rec)
            if conn is None:
                return
            try:
                state = databases.read_state(conn, self.slots)
                changes = databases.plan(state, self.slots, fresh, passwords)
                self._record(
                    rec,
                    "databases",
                    [Change("databases", c.target, c.action) for c in changes],
                )
                if changes and not self.check:
                    by_slot: dict[int, list[databases.DbChange]] = {}
                    for change in changes:
                        by_slot.setdefault(change.slot, []).append(change)
                    groups = list(by_slot.values())
                    databases.apply(conn, groups.pop(0), passwords)
                    if groups:
                        # CREATE DATABASE copies a template (~0.2 s each): a few at once.
                        with ThreadPoolExecutor(max_workers=min(4, len(groups))) as pool:
                            list(pool.map(lambda g: self._apply_db(port, g, passwords), groups))
            finally:
                conn.close()

    def _admin_connect(self, port: int, rec: dict[str, Any]):
        """The admin connection; on a fresh PostgreSQL (peer authentication only, no password
        of ours yet) the admin password is set up first. With --check that is only reported
        (None is returned: the roles cannot be read without it)."""
        try:
            return databases.admin_connect(self.host, port, password=self.admin_password)
        except databases.AdminPasswordNeeded:
            if os.environ.get(databases.ADMIN_PASSWORD_ENV):
                raise  # the operator's password is refused: theirs to fix, not ours to replace
            if self.check:
                self._record(
                    rec,
                    "databases",
                    [Change("databases", databases.admin_secret_path(self.host), "create")],
                )
                return None
        self.admin_password = databases.bootstrap_admin_password(self.remote, self.host)
        self.report.changes.append(
            Change("databases", databases.admin_secret_path(self.host), "create")
        )
        return databases.admin_connect(self.host, port, password=self.admin_password)

    def _apply_db(self, port: int, group: list, passwords: dict[int, str]) -> None:
        conn = databases.admin_connect(self.host, port, password=self.admin_password)
        try:
            databases.apply(conn, group, passwords)
        finally:
            conn.close()

    def _services(
        self,
        rec: dict[str, Any],
        want: Desired,
        deployed: list[Slot],
        handlers: dict[str, Any],
        facts: dict[str, Any],
        marker_left: bool,
    ) -> None:
        """Run the handlers (and start what should run) in one command; `marker_left` means an
        earlier run's marker must be cleared even when there is nothing else to do."""
        inactive = [
            u
            for s in deployed
            for u in slot_units(self.inventory.app, s)
            if facts["units"].get(u) != "active" and u not in handlers["restart"]
        ]
        script = ["rc=0"]
        changes: list[Change] = []
        boot = boot_service_changes(facts, self.host.services_at_boot)
        if boot:
            names = [c.target for c in boot]
            script.append(f"systemctl enable --now --quiet {remote.quote(*names)} || rc=1")
            changes += boot
            script.append("systemctl daemon-reload || rc=1")
            changes.append(Change("services", "systemd", "daemon-reload"))
        if handlers["restart"]:
            script.append(f"systemctl restart {remote.quote(*handlers['restart'])} || rc=1")
            changes += [Change("services", u, "restart") for u in handlers["restart"]]
        if inactive:
            # Start what should run and does not (after a reboot, a crash, a first provision).
            script.append(f"systemctl start {remote.quote(*inactive)} || rc=1")
            changes += [Change("services", u, "start") for u in inactive]
        if handlers["nginx"]:
            test = self.host.nginx_test_command
            script.append(
                f'out=$({test} 2>&1) || {{ echo "$out"; exit $(({NGINX_FAILED} + rc)); }}; '
                f"{self.host.nginx_reload_command} || rc=1"
            )
            changes.append(Change("services", "nginx", "reload"))
        script.append(f"[ $rc -eq 0 ] && rm -f {remote.quote(want.marker)}; exit $rc")
        if self.check:
            self._record(rec, "services", changes)
            return
        self._record(rec, "services", changes)
        if not changes and not marker_left:
            rec["detail"] = _waiting(self.report.waiting)
            return
        code, out, err = self.remote.run("\n".join(script), check=False)
        if code in (NGINX_FAILED, NGINX_FAILED + 1):
            earlier = _parse_marker(facts["content"].get(want.marker))
            self._nginx_failed(code, out, err, want.marker, handlers, earlier)
        if code != 0:
            raise StagingError(f"{self.host.name}: services: {(err or out).strip()[-300:]}")
        if self.report.waiting:
            rec["detail"] = (rec.get("detail", "") + "; " + _waiting(self.report.waiting)).strip(
                "; "
            )

    def _nginx_failed(
        self,
        code: int,
        out: str,
        err: str,
        marker: str,
        handlers: dict[str, Any],
        earlier: dict[str, Any],
    ) -> NoReturn:
        """`nginx -t` refused the files: put back what this run changed, or, when it changed
        nothing there, say that the files as they are fail. Never claims a restore it did not
        make."""
        message = out.strip().splitlines() or err.strip().splitlines() or ["nginx -t failed"]
        if not self._restore:
            # The failing files are not this run's (e.g. a crashed run's, already on disk):
            # nothing to put back. The script exited before removing the marker, so the next
            # run tests (and reloads) again; systemd work that succeeded is not redone.
            if code == NGINX_FAILED and (handlers["daemon_reload"] or handlers["restart"]):
                only_nginx = {"nginx": True, "daemon_reload": False, "restart": []}
                remote.apply_files(
                    self.remote, [remote.Write(marker, json.dumps(only_nginx), 0o600)], []
                )
            raise StagingError(
                f"{self.host.name}: nginx -t fails with the files as they are (nothing of this "
                f"run to restore), nginx not reloaded: {_first_error(message)}"
            )
        systemd_left = code > NGINX_FAILED
        # Restored files that an earlier, interrupted run wrote were never tested by nginx:
        # the test stays pending.
        nginx_left = bool(earlier.get("nginx"))
        still = None
        if systemd_left or nginx_left:
            still = {
                "nginx": nginx_left,
                "daemon_reload": handlers["daemon_reload"] and systemd_left,
                "restart": handlers["restart"] if systemd_left else [],
            }
        self._restore_nginx(marker, still)
        raise StagingError(
            f"{self.host.name}: nginx -t failed, previous files restored, nginx not "
            f"reloaded: {' | '.join(message[-3:])}"
        )

    def _restore_nginx(self, marker: str, pending: dict[str, Any] | None) -> None:
        """Put back the nginx files as they were before this run (nginx kept serving them)."""
        writes, links, removes = [], [], []
        if pending:
            writes.append(remote.Write(marker, json.dumps(pending), 0o600))
        else:
            removes.append(marker)
        for path, (state, content) in self._restore.items():
            if state["type"] == "missing":
                removes.append(path)
            elif state["type"] == "link":
                links.append(remote.Link(path, state["target"]))
            elif state["type"] == "file" and content is not None:
                writes.append(
                    remote.Write(path, content, state["mode"], state["uid"], state["gid"])
                )
        remote.apply_files(self.remote, writes, links, removes)


def _parse_marker(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"nginx": True, "daemon_reload": True, "restart": []}
    return value if isinstance(value, dict) else {}


def _first_error(lines: list[str]) -> str:
    """nginx's first error line (warnings may come before it)."""
    for line in lines:
        if _NGINX_ERROR.search(line):
            return line.strip()
    return lines[0].strip()


def _sha256(text: str) -> str:
    """The digest remote_facts computes of a file's bytes, for the bytes we would write."""
    return hashlib.sha256(text.encode()).hexdigest()


def _kind_step(kind: str) -> str:
    return {"nginx": "nginx files", "unit": "unit files", "env": "env files"}.get(kind, kind)


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1] if "/" in path else path


def _waiting(slots: list[str]) -> str:
    if not slots:
        return ""
    return f"{len(slots)} slot(s) waiting for first deploy"


def _unified(path: str, old: str, new: str, secret: bool) -> str:
    if secret:
        old, new = redact(old), redact(new)
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (current)",
            tofile=f"{path} (desired)",
        )
    )


# --- all hosts -----------------------------------------------------------------------------


def provision_all(
    inventory: Inventory,
    slots: list[Slot] | None = None,
    *,
    check: bool = False,
    diff: bool = False,
    registry_dsn: str | None = None,
    on_host_done=None,
    progress: Callable[[str], None] | None = None,
) -> ProvisionReport:
    """Converge every non-protected host that carries one of `slots` (default: all), in
    parallel; then apply the registry migrations when a registry DSN is configured.
    `progress` gets a line now and then during long steps (package installs)."""
    chosen = slots if slots is not None else list(inventory.slots.values())
    # A slot named twice would plan (and apply) each of its database changes twice.
    chosen = list(dict.fromkeys(chosen))
    hosts = [h for h in inventory.target_hosts() if any(s.host == h.name for s in chosen)]
    runs = [
        HostRun(inventory, h, [s for s in chosen if s.host == h.name], check, diff, progress)
        for h in hosts
    ]
    reports: list[HostReport] = []
    with ThreadPoolExecutor(max_workers=max(1, len(runs))) as pool:
        futures = [pool.submit(run.run) for run in runs]
        for run, future in zip(runs, futures, strict=True):
            report = future.result()
            reports.append(report)
            if on_host_done:
                on_host_done(report, run.log)
    result = ProvisionReport(reports, check=check)
    if registry_dsn:
        result.registry = _migrate_registry(registry_dsn, inventory, check)
    return result


def _migrate_registry(dsn: str, inventory: Inventory, check: bool) -> dict[str, Any]:
    from staging_ops import registry

    start = time.monotonic()
    try:
        if check:
            # The migration runs in one transaction, rolled back: it reports, changes nothing.
            pending = registry.migrate_report(dsn, inventory, dry_run=True).changes
            return {"changed": pending, "seconds": round(time.monotonic() - start, 3)}
        changed = registry.migrate(dsn, inventory)
    except StagingError as exc:
        return {"changed": 0, "error": str(exc), "seconds": time.monotonic() - start}
    return {"changed": changed, "seconds": round(time.monotonic() - start, 3)}
