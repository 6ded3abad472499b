"""provision-all: converge every non-protected host into a ready staging droplet.

Per host: facts (ONE remote command) -> [install packages, facts again] -> plan (plan.py,
pure) -> [prepare] -> [upload, one SFTP session] -> [services, one command] -> the nginx
decision (handlers.py, pure); the databases converge in a thread alongside. A no-op run is
the facts command alone. A handler interrupted by a crash is remembered in a marker file on
the host and run by the next provision. Deployed slots whose processes read a changed file
are reloaded last, one at a time, through the `reload` the caller hands in (the deploy's
hand-over: provision cannot import deploy), each removed from the marker once done.
`check=True` computes the same plan and changes nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import NoReturn, Protocol

import psycopg2

from staging_ops import crash_points, output, remote, slot_access
from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Host, Inventory, Slot
from staging_ops.provision import apply, databases, handlers
from staging_ops.provision.certificates import certbot_arguments
from staging_ops.provision.desired import Desired, access_file, desired_state, slot_passwords
from staging_ops.provision.facts import deployed_slots, facts_request, pending_handlers
from staging_ops.provision.handlers import FileOps, Handlers
from staging_ops.provision.plan import (
    ACME_STEP,
    Change,
    ConvergePlan,
    converge_plan,
    hide_url_passwords,
    installs_postgres_server,
    live_certificate_links,
    package_changes,
    prepare_plan,
    services_args,
)
from staging_ops.provision.reloads import Reload
from staging_ops.provision.report import (
    HostReport,
    ProvisionReport,
    RegistryMigrations,
    SlotReload,
)
from staging_ops.remote.connection import CONNECTION_LOST
from staging_ops.remote.errors import reason
from staging_ops.remote.facts import HostFacts
from staging_ops.remote.files import Write

__all__ = ["HostReport", "HostRun", "ProvisionReport", "installs_postgres_server", "provision_all"]


def _lost(host: Host, exc: BaseException) -> StagingError:
    return StagingError(f"{host.name}: lost the SSH connection ({reason(exc)})")


# nginx's own severities for a configuration it refuses.
_NGINX_ERROR = re.compile(r"\[(emerg|alert|crit|error)\]")


class Reloaded(Protocol):
    """What a reload reports (deploy.reload.Reloaded): how (`hand-over`, `restart in place`),
    for how long the slot did not answer (None: it never stopped), a detail."""

    how: str
    down_seconds: float | None
    detail: str


# reload(inventory, slot, in_place, log) -> Reloaded, or StagingError with one line.
Reloader = Callable[[Inventory, Slot, bool, output.StepLog], Reloaded]


@dataclass
class _ReloadLog(output.StepLog):
    """A reload's steps, kept for the host's report (quiet); its waiting lines (a real
    Airflow takes tens of seconds to start) go to the run's progress as they come."""

    on_progress: Callable[[str], None] = lambda line: None

    def progress(self, line: str) -> None:
        self.on_progress(line)


class HostRun:
    """Provision one host: the steps in order, each recorded in the host's report."""

    def __init__(
        self,
        inventory: Inventory,
        host: Host,
        slots: list[Slot],
        check: bool,
        diff: bool,
        progress: Callable[[str], None] | None = None,
        credentials: tuple[slot_access.Credential, ...] | None = None,
        reload: Reloader | None = None,
    ):
        self.inventory = inventory
        self.reload = reload
        self.host = host
        self.slots = slots
        self.check = check
        self.diff = diff
        self.credentials = credentials
        self.report = HostReport(host.name)
        self.log = output.StepLog(quiet=True)
        self.progress = progress or (lambda line: None)
        # The packages missing when the run began (a second pass after a cut still counts them).
        self.missing_at_start: list[str] | None = None

    def step(self, name: str):
        return self.log.step(name)

    def run(self) -> HostReport:
        start = time.monotonic()
        try:
            with self.step("connect"):
                self.remote = remote.connect(self.host)
            try:
                self._converge_once_more_if_cut()
            finally:
                self.report.commands = self.remote.commands
                self.report.uploads = self.remote.uploads
                self.remote.close()
        except StagingError as exc:
            self.report.error = str(exc)
            self.report.exit_code = exc.exit_code
        self.report.seconds = time.monotonic() - start
        self.report.steps = self.log.steps
        return self.report

    def _converge_once_more_if_cut(self) -> None:
        """Converge; if the SSH connection was lost on the way (a network drop, or a fresh
        droplet's sshd session gone right after apt), connect again and converge once more:
        every step plans from the host as it is, so what was done is not done twice. The
        steps the lost connection failed are marked `retried`; the report counts the changes
        of the second pass, and the packages the first found missing: this run installed
        them, even when the cut came before apt-get's exit status did."""
        mark = len(self.log.steps)
        try:
            self._converge()
        except (StagingError, *CONNECTION_LOST) as exc:
            # A command that lost its connection says so (Unreachable) before paramiko's
            # transport thread has noticed: as deploy's recovery does, trust the command.
            if self._connected() and not isinstance(exc, remote.Unreachable):
                raise
            if self.check:
                raise _lost(self.host, exc) from None
            for rec in self.log.steps[mark:]:
                if rec.outcome == "failed":
                    rec.outcome = "retried"
            with self.step("reconnect") as rec:
                self.remote.close()
                self.remote = remote.connect(self.host)
                rec.outcome = "changed"
                rec.detail = f"the connection was lost ({reason(exc)}): converging again"
            self.report.changes.clear()
            try:
                self._converge()
            except CONNECTION_LOST as again:
                raise _lost(self.host, again) from None

    def _connected(self) -> bool:
        transport = self.remote.connection.client.get_transport()
        return transport is not None and transport.is_active()

    def _cut_point(self, name: str) -> None:
        """crash_points.cut_point on this run's SSH connection (the tests' dropped network)."""
        transport = self.remote.connection.client.get_transport()
        crash_points.cut_point(name, transport and transport.sock)

    def _converge(self) -> None:
        request = facts_request(self.inventory, self.host, self.slots)
        with self.step("facts"):
            facts = remote.gather_facts(self.remote, request)
        # Decided before anything is installed or written: no credentials and no file to
        # keep is bad input, refused with the host untouched.
        htpasswd = access_file(facts, self.host, self.credentials)
        group = self.host.nginx_group
        if htpasswd is not None and facts.group_id(group) < 0:
            raise BadInput(
                f"{self.host.name}: nginx_group {group!r} (which reads the basic-auth file) "
                "does not exist on the host: name the group nginx's workers run as; nothing "
                "was changed"
            )
        missing = facts.missing_packages
        if self.missing_at_start is None:
            self.missing_at_start = missing
        with self.step("packages") as rec:
            self._record(rec, "packages", package_changes(self.missing_at_start))
        # --check on a host without the PostgreSQL server: there is no server to ask yet.
        server_missing = installs_postgres_server(missing)
        if missing and not self.check:
            with self.step("install packages") as rec:
                rec.outcome = "changed"
                apply.install_packages(self.remote, missing, self.progress)
                rec.detail = f"apt-get update + install {len(missing)} package(s)"
            # Where a fresh droplet's session has gone away on its own (seen in CI).
            self._cut_point("provision:after-install")
            # Packages bring files and services of their own (Debian's nginx its default
            # site, PostgreSQL its cluster): plan against the host as it is now.
            with self.step("facts after install"):
                facts = remote.gather_facts(self.remote, request)
        passwords, fresh = slot_passwords(facts, self.host, self.slots)
        admin_password = databases.admin_password(
            facts.text(databases.admin_secret_path(self.host))
        )
        want = desired_state(self.inventory, self.host, self.slots, passwords, htpasswd)
        deployed = deployed_slots(want, facts)
        self.report.waiting = [s.identifier for s in self.slots if s not in deployed]
        # The databases need only the passwords (and the server, installed by now): converge
        # them while the files go up.
        with ThreadPoolExecutor(max_workers=1) as db_pool:
            db_done = db_pool.submit(
                self._database_step, fresh, passwords, server_missing, admin_password
            )
            self._converge_files(facts, want)
        db_done.result()

    def _converge_files(self, facts: HostFacts, want: Desired) -> None:
        prep = prepare_plan(want, facts)
        for step, changes in prep.changes.items():
            with self.step(step) as rec:
                self._record(rec, step, changes)
        if not self.check and prep.needed:
            with self.step("prepare") as rec:
                rec.outcome = "changed"
                facts = facts.with_user(apply.prepare(self.remote, prep.args))
        plan = converge_plan(want, facts, self.diff)
        for step in ("nginx files", "unit files", "env files"):
            with self.step(step) as rec:
                self._record(rec, step, plan.changes[step])
        if not self.check:
            self._cut_point("provision:before-upload")
            with self.step("upload") as rec:
                apply.upload(self.remote, plan.upload)
                rec.detail = f"{plan.files} files, {len(plan.upload.links)} links"
            crash_points.crash_point("provision:after-upload")
        with self.step("services") as rec:
            self._services(rec, want, facts, plan)
        if plan.acme is not None:
            with self.step(ACME_STEP) as rec:
                self._acme(rec, want, facts, plan)
        if plan.handlers.reload and not self.check:
            self._reloads(want, plan)

    def _record(self, rec: output.StepRecord, step: str, changes: list[Change]) -> None:
        self.report.changes.extend(changes)
        rec.outcome = "changed" if changes else "ok"
        if changes:
            rec.detail = ", ".join(f"{c.action} {_short(c.target)}" for c in changes[:2])
            if len(changes) > 2:
                rec.detail += f" (+{len(changes) - 2} more)"
        if self.check:
            rec.outcome = "would change" if changes else "ok"
        if self.diff:
            for change in changes:
                if change.diff:
                    self.log.emit(change.diff.rstrip("\n"))

    # databases -----------------------------------------------------------------------------

    def _database_step(
        self,
        fresh: set[int],
        passwords: dict[int, str],
        server_missing: bool,
        admin_password: str | None,
    ) -> None:
        secret = databases.admin_secret_path(self.host)
        with self.step("databases") as rec:
            try:
                done = databases.converge(
                    self.remote,
                    self.host,
                    self.slots,
                    fresh,
                    passwords,
                    check=self.check,
                    server_missing=server_missing,
                    admin_password=admin_password,
                )
            except psycopg2.Error as exc:
                # One line naming host and step, like every other failure: the other hosts'
                # reports and the registry migration still happen.
                raise StagingError(self._database_error(exc, passwords)) from None
            if done.admin_secret_needed:
                self._record(rec, "databases", [Change("databases", secret, "create")])
                return
            if done.admin_secret_made:
                self.report.changes.append(Change("databases", secret, "create"))
            if self.slots:
                changes = [Change("databases", c.target, c.action) for c in done.changes]
                self._record(rec, "databases", changes)

    def _database_error(self, exc: psycopg2.Error, passwords: dict[int, str]) -> str:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = hide_url_passwords(lines[0] if lines else type(exc).__name__)
        for password in passwords.values():
            # A statement echoed back (LINE 1: ... PASSWORD '...') must not show a password.
            text = text.replace(password, "********")
        return f"{self.host.name}: databases: {text}"

    # services and the nginx decision -------------------------------------------------------

    def _services(
        self, rec: output.StepRecord, want: Desired, facts: HostFacts, plan: ConvergePlan
    ) -> None:
        """Run the handlers (and start what should run) in one command, then act on its exit
        code as handlers.after_services decides."""
        self._record(rec, "services", plan.changes["services"])
        would = "would " if self.check else ""
        for change in plan.changes["services"]:
            if change.reason:
                self.log.emit(f"    {change.target}: {would}{change.action} ({change.reason})")
        if self.check:
            return
        if not plan.run_services:
            rec.detail = _waiting(self.report.waiting)
            return
        code, out, err = apply.run_services(self.remote, plan.services_args)
        outcome = handlers.after_services(
            code, plan.handlers, pending_handlers(want, facts), restorable=bool(plan.restore)
        )
        if outcome.verdict in (handlers.RESTORED, handlers.FAILS_AS_IS):
            self._nginx_failed(outcome, out, err, want, plan)
        if outcome.verdict == handlers.SERVICES_FAILED:
            raise StagingError(f"{self.host.name}: services: {(err or out).strip()[-300:]}")
        if self.report.waiting:
            detail = rec.detail + "; " + _waiting(self.report.waiting)
            rec.detail = detail.strip("; ")

    def _reloads(self, want: Desired, plan: ConvergePlan) -> None:
        """Each slot to reload, one at a time (each hand-over runs a second copy of the slot's
        web processes: all at once might not fit in memory), as its own step with the
        reload's steps under it; the marker then names only the slots still to reload."""
        left = list(plan.handlers.reload)
        self._mark(want, left)
        failures = []
        for item in plan.reloads:
            try:
                self._reload_one(item)
            except StagingError as exc:
                failures.append(str(exc))
                continue
            left.remove(item.slot.identifier)
            self._mark(want, left)
        if failures:
            raise StagingError(
                f"{self.host.name}: {len(failures)} slot(s) not reloaded, left for the next run: "
                + "\n".join(failures)
            )

    def _reload_one(self, item: Reload) -> None:
        if self.reload is None:
            raise StagingError(f"{item.slot.identifier}: no way to reload it was given")
        where = f"{self.host.name}: {item.slot.identifier}"
        sub = _ReloadLog(quiet=True, on_progress=lambda line: self.progress(f"{where}: {line}"))
        reloaded = SlotReload(item.slot.identifier, item.why)
        try:
            with self.step(f"{item.how} {item.slot.identifier}") as rec:
                done = self.reload(self.inventory, item.slot, item.in_place, sub)
                rec.outcome, rec.detail = "changed", done.detail
                reloaded = replace(reloaded, how=done.how, ok=True, down_seconds=done.down_seconds)
        except StagingError as exc:
            reloaded = replace(reloaded, how=item.how, ok=False, error=str(exc))
            raise
        finally:
            self.report.reloads.append(reloaded)
            for line in sub.lines:
                self.log.emit(f"    {line.strip()}")

    def _mark(self, want: Desired, left: list[str]) -> None:
        """The marker names the slots still to reload, or is gone when none is."""
        if left:
            text = Handlers(reload=tuple(left)).marker_text()
            apply.upload(self.remote, FileOps(writes=[Write(want.marker, text, 0o600)]))
        else:
            apply.upload(self.remote, FileOps(removes=[want.marker]))

    def _acme(
        self, rec: output.StepRecord, want: Desired, facts: HostFacts, plan: ConvergePlan
    ) -> None:
        """After nginx serves the challenge (and HTTPS, on the placeholder at first): certbot
        gets, expands or renews the certificate; the first one is then put under nginx
        (`nginx -t` first, the placeholder put back if it refuses)."""
        acme = plan.acme
        assert acme is not None
        self._record(rec, ACME_STEP, plan.changes[ACME_STEP])
        rec.detail = acme.summary
        if self.check or not acme.request:
            return
        host = self.host
        args = certbot_arguments(host, acme.names, f"{host.base_dir}/acme")
        apply.obtain_certificate(self.remote, args, host.acme_directory)
        if facts.certificate(host.tls_certificate).exists:
            return  # certbot renewed the files behind the links; its deploy hook reloaded
        ops, restores = live_certificate_links(want)
        apply.upload(self.remote, ops)
        code, out, err = apply.run_services(
            self.remote, services_args(want, [], False, [], [], True)
        )
        nginx_only = handlers.Handlers(nginx=True)
        outcome = handlers.after_services(code, nginx_only, handlers.Handlers(), restorable=True)
        if outcome.verdict == handlers.RESTORED:
            apply.upload(self.remote, handlers.put_back(restores, want.marker, outcome.marker))
            message = (out or err).strip().splitlines() or ["nginx -t failed"]
            raise StagingError(
                f"{host.name}: {ACME_STEP}: nginx -t refuses the new certificate, the "
                f"placeholder put back: {_first_error(message)}"
            )
        if outcome.verdict != handlers.OK:
            raise StagingError(f"{host.name}: {ACME_STEP}: {(err or out).strip()[-300:]}")

    def _nginx_failed(
        self, outcome: handlers.Outcome, out: str, err: str, want: Desired, plan: ConvergePlan
    ) -> NoReturn:
        """`nginx -t` refused the files: put back what this run changed (nginx kept serving
        the old ones) and leave the marker as decided, then fail saying which it was."""
        message = out.strip().splitlines() or err.strip().splitlines() or ["nginx -t failed"]
        restores = plan.restore if outcome.restore else []
        apply.upload(self.remote, handlers.put_back(restores, want.marker, outcome.marker))
        if outcome.verdict == handlers.FAILS_AS_IS:
            raise StagingError(
                f"{self.host.name}: nginx -t fails with the files as they are (nothing of this "
                f"run to restore), nginx not reloaded: {_first_error(message)}"
            )
        raise StagingError(
            f"{self.host.name}: nginx -t failed, previous files restored, nginx not "
            f"reloaded: {' | '.join(message[-3:])}"
        )


def _first_error(lines: list[str]) -> str:
    """nginx's first error line (warnings may come before it)."""
    for line in lines:
        if _NGINX_ERROR.search(line):
            return line.strip()
    return lines[0].strip()


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1] if "/" in path else path


def _waiting(slots: list[str]) -> str:
    if not slots:
        return ""
    return f"{len(slots)} slot(s) waiting for first deploy"


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
    credentials: tuple[slot_access.Credential, ...] | None = None,
    reload: Reloader | None = None,
) -> ProvisionReport:
    """Converge every non-protected host that carries one of `slots` (default: all), in
    parallel; then apply the registry migrations when a registry DSN is configured.
    `progress` gets a line now and then during long steps (package installs); `credentials`
    (STAGING_SLOT_CREDENTIALS) are who may open the slots of an `access = "password"` host;
    `reload` serves a deployed slot's live release again once its files changed (the deploy's
    hand-over, deploy.reload.reload_slot; without it such a slot fails, left to the next run)."""
    chosen = slots if slots is not None else list(inventory.slots.values())
    # A slot named twice would plan (and apply) each of its database changes twice.
    chosen = list(dict.fromkeys(chosen))
    hosts = [h for h in inventory.target_hosts() if any(s.host == h.name for s in chosen)]
    runs = [
        HostRun(
            inventory,
            h,
            [s for s in chosen if s.host == h.name],
            check,
            diff,
            progress,
            credentials,
            reload,
        )
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


def _migrate_registry(dsn: str, inventory: Inventory, check: bool) -> RegistryMigrations:
    from staging_ops import registry

    start = time.monotonic()
    try:
        if check:
            # The migration runs in one transaction, rolled back: it reports, changes nothing.
            pending = registry.migrate_report(dsn, inventory, dry_run=True).changes
            return RegistryMigrations(pending, round(time.monotonic() - start, 3))
        changed = registry.migrate(dsn, inventory)
    except StagingError as exc:
        return RegistryMigrations(0, time.monotonic() - start, str(exc))
    return RegistryMigrations(changed, round(time.monotonic() - start, 3))
