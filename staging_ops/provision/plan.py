"""The plan of one host: desired state + facts -> the changes per step, the file work for one
SFTP session, the prepare script's arguments, the nginx files to put back if `nginx -t`
fails, the handlers and the services script's arguments. Pure: it runs no command, so
`--check` is free and tests/unit/provision feed it facts from JSON fixtures.

Two calls, because the files' owner ids are the service user's, known only once the prepare
step made it: `prepare_plan(want, facts)`, then `converge_plan(want, facts_after_prepare)`.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from staging_ops import slot_access
from staging_ops.inventory import Host
from staging_ops.provision.certificates import CertificatePlan, plan_certificate
from staging_ops.provision.desired import Desired, tls_links, tls_paths
from staging_ops.provision.facts import (
    declared_units,
    deployed_slots,
    marker_left,
    pending_handlers,
)
from staging_ops.provision.handlers import FileOps, Handlers, Restore
from staging_ops.provision.reloads import FileChange, Reload, carried, reloads
from staging_ops.remote.facts import HostFacts, PathState
from staging_ops.remote.files import Link, Write
from staging_ops.render import RenderedFile

PREPARE_SCRIPT = "provision-prepare.sh"
SERVICES_SCRIPT = "provision-services.sh"
INSTALL_SCRIPT = "provision-install.sh"
ACME_SCRIPT = "acme-certbot.sh"
ACME_STEP = "acme certificate"
# The steps a report shows for each kind of rendered file.
FILE_STEPS = {"nginx": "nginx files", "unit": "unit files", "env": "env files"}
# An env file's own password lines (the slot's Airflow admin's).
_ENV_PASSWORD = re.compile(r"(?m)^([A-Z0-9_]*PASSWORD=).+$")
_URL_PASSWORD = re.compile(r"(postgresql://[^:/\s]+:)[^@\s]+@")
# Debian packages whose installation installs (and starts) a PostgreSQL server: `postgresql`,
# `postgresql-16`, and extensions such as `postgresql-16-postgis-3` that depend on one. Client,
# docs and common-only packages bring no server.
_PG_SERVER_PACKAGE = re.compile(r"^(postgresql|postgis)(?!-(client|common|doc)(-|$))")


@dataclass(frozen=True)
class Change:
    step: str
    target: str
    action: str
    diff: str = ""
    # Why (a slot reloaded: what changed that its processes read).
    reason: str = ""


def hide_url_passwords(text: str) -> str:
    """`postgresql://role:secret@` -> `postgresql://role:********@` (diffs, error lines)."""
    return _URL_PASSWORD.sub(r"\1********@", text)


def installs_postgres_server(missing_packages: Iterable[str]) -> bool:
    """Whether installing these packages brings the PostgreSQL server: until then there is no
    server to ask (--check on a fresh host plans the databases without one)."""
    return any(_PG_SERVER_PACKAGE.match(name) for name in missing_packages)


def package_changes(missing_packages: Iterable[str]) -> list[Change]:
    return [Change("packages", p, "install") for p in missing_packages]


def boot_service_changes(facts: HostFacts, services: Iterable[str]) -> list[Change]:
    """Services that must start at boot and run (nginx, PostgreSQL) but are not enabled or
    not active: each gets `systemctl enable --now`."""
    return [
        Change("services", name, "enable --now")
        for name in services
        if not facts.service(name).running_at_boot
    ]


def placeholder_needed(facts: HostFacts, host: Host) -> bool:
    """Only a host with neither the certificate nor its key gets a placeholder: one file
    without the other is an operator's half-done change, for `nginx -t` to report rather than
    for us to overwrite."""
    return all(facts.state(p).missing for p in tls_paths(host))


def certificate_args(host: Host, names: list[str]) -> list[str]:
    """The prepare script's `certificate CRT KEY SUBJECT SAN` action: a self-signed
    certificate for `names`, so nginx can load its HTTPS servers on a fresh droplet."""
    crt, key = tls_paths(host)
    return [
        "certificate",
        crt,
        key,
        f"/CN={names[0]}/O=staging-ops placeholder",
        "subjectAltName=" + ",".join(f"DNS:{n}" for n in names),
    ]


# --- prepare: service user, directories, certificate -------------------------------------------


@dataclass(frozen=True)
class PreparePlan:
    """Changes of the steps before the upload, and the prepare script's arguments ([]: no
    prepare command). The script always ends with `ids USER` (the user's uid and gid)."""

    changes: dict[str, list[Change]]
    args: list[str]

    @property
    def needed(self) -> bool:
        return bool(self.args)


def prepare_plan(want: Desired, facts: HostFacts) -> PreparePlan:
    host = want.host
    user = host.service_user
    actions: list[str] = []
    user_changes = []
    if facts.user is None:
        user_changes.append(Change("service user", user, "create"))
        actions += ["useradd", user]
    dir_changes = []
    for path, (mode, owner) in want.dirs.items():
        state = facts.state(path)
        if state.type != "dir":
            dir_changes.append(Change("directories", path, "create"))
            actions += ["mkdir", f"{mode:o}", owner, path]
            continue
        if state.mode != mode:
            dir_changes.append(Change("directories", path, "mode"))
            actions += ["chmod", f"{mode:o}", path]
        # `user:` is the user and their primary (login) group: the group compared here.
        if (state.uid, state.gid) != facts.owner_ids(owner):
            dir_changes.append(Change("directories", path, "owner"))
            actions += ["chown", owner, path]
    cert_changes = []
    if placeholder_needed(facts, host):
        cert_changes = [
            Change("certificate", path, "self-signed placeholder") for path in tls_paths(host)
        ]
        actions += certificate_args(host, want.certificate_names)
    changes = {
        "service user": user_changes,
        "directories": dir_changes,
        "certificate": cert_changes,
    }
    return PreparePlan(changes, [*actions, "ids", user] if actions else [])


# --- converge: files, handlers, services --------------------------------------------------------


@dataclass(frozen=True)
class ConvergePlan:
    """The upload (marker first, then files and links, then removals), what to put back if
    nginx -t fails, the handlers, and the services script's arguments."""

    changes: dict[str, list[Change]]  # nginx files, unit files, env files, services
    upload: FileOps
    files: int  # rendered files written (the marker aside)
    restore: list[Restore]
    handlers: Handlers
    services_args: list[str]
    # Run the services script: something to do, or an earlier run's marker to clear.
    run_services: bool = False
    # An ACME host's certificate: what to ask the server for (None: not an ACME host).
    acme: CertificatePlan | None = None
    # Deployed slots to reload once the services script has run (reloads.py).
    reloads: tuple[Reload, ...] = ()


def _sha256(text: str) -> str:
    """The digest the probe computes of a file's bytes, for the bytes we would write."""
    return hashlib.sha256(text.encode()).hexdigest()


def redact(rendered: RenderedFile, text: str) -> str:
    """A secret file's text as output may show it: env files without their database
    passwords, the basic-auth file without its hashes."""
    if not rendered.secret:
        return text
    if rendered.path.rpartition("/")[2] == slot_access.HTPASSWD_NAME:
        return slot_access.hide_hashes(text)
    return _ENV_PASSWORD.sub(r"\1********", hide_url_passwords(text))


def _unified(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (current)",
            tofile=f"{path} (desired)",
        )
    )


def tls_link_targets(want: Desired, facts: HostFacts) -> dict[str, str]:
    """An ACME host's served certificate and key link to certbot's lineage once it has a
    certificate, else to the placeholder."""
    host = want.host
    if not host.acme:
        return {}
    live = facts.certificate(host.tls_certificate).exists
    targets = [host.tls_certificate, host.tls_certificate_key] if live else tls_paths(host)
    return dict(zip(tls_links(host), targets, strict=True))


def acme_plan(want: Desired, facts: HostFacts, now: datetime) -> CertificatePlan | None:
    """Whether to ask the ACME server for the host's certificate (None: not an ACME host)."""
    if not want.host.acme:
        return None
    names = tuple(dict.fromkeys(want.certificate_names))
    return plan_certificate(names, facts.certificate(want.host.tls_certificate), now)


def live_certificate_links(want: Desired) -> tuple[FileOps, list[Restore]]:
    """Once certbot made the host's first certificate: the served links moved from the
    placeholder to certbot's lineage, and how to put them back if `nginx -t` refuses it."""
    host = want.host
    live = [host.tls_certificate, host.tls_certificate_key]
    links = [Link(link, target) for link, target in zip(tls_links(host), live, strict=True)]
    restores = [
        Restore(link, PathState("link", target=placeholder), None)
        for link, placeholder in zip(tls_links(host), tls_paths(host), strict=True)
    ]
    return FileOps(links=links), restores


def _file_work(want: Desired, facts: HostFacts, diff: bool):
    writes: list[Write] = []
    by_kind: dict[str, list[Change]] = {kind: [] for kind in FILE_STEPS}
    for path, rendered in want.files.items():
        state = facts.state(path)
        uid, gid = facts.owner_ids(rendered.owner or "root")
        if rendered.group:
            gid = facts.group_id(rendered.group)
        if state.type == "file" and state.sha256 == _sha256(rendered.content):
            if state.mode == rendered.mode and (state.uid, state.gid) == (uid, gid):
                continue
            action = "mode/owner"
        else:
            action = "create" if state.missing else "update"
        text = ""
        if diff and action != "mode/owner":
            text = _unified(
                path, redact(rendered, facts.text(path) or ""), redact(rendered, rendered.content)
            ) or (f"{path}: a secret changed (not shown)\n" if rendered.secret else "")
        step = FILE_STEPS.get(rendered.kind, rendered.kind)
        by_kind.setdefault(rendered.kind, []).append(Change(step, path, action, text))
        writes.append(Write(path, rendered.content, rendered.mode, uid, gid))
    links: list[Link] = []
    for path, target in {**want.links, **tls_link_targets(want, facts)}.items():
        state = facts.state(path)
        if state.type == "link" and state.target == target:
            continue
        kind = "nginx" if path.startswith(want.host.nginx_dir) else "unit"
        by_kind[kind].append(Change(FILE_STEPS[kind], path, "link"))
        links.append(Link(path, target))
    removes = [p for p in want.removes if not facts.state(p).missing]
    by_kind["nginx"] += [Change("nginx files", p, "remove") for p in removes]
    return writes, links, removes, by_kind


def services_args(
    want: Desired,
    enable: list[str],
    daemon_reload: bool,
    restart: list[str],
    start: list[str],
    nginx: bool,
    reload: bool = False,
) -> list[str]:
    """provision-services.sh's arguments: MARKER NGINX_TEST NGINX_RELOAD, then its actions in
    the order they run (`enable N UNIT...`, `daemon-reload`, `restart N UNIT...`,
    `start N UNIT...`, `nginx`). MARKER is `-` while slots are left to reload: the run
    removes the marker itself once they are (run.py)."""
    host = want.host
    marker = "-" if reload else want.marker
    args = [marker, host.nginx_test_command, host.nginx_reload_command]
    if enable:
        args += ["enable", str(len(enable)), *enable]
    if daemon_reload:
        args.append("daemon-reload")
    if restart:
        args += ["restart", str(len(restart)), *restart]
    if start:
        args += ["start", str(len(start)), *start]
    if nginx:
        args.append("nginx")
    return args


def converge_plan(
    want: Desired, facts: HostFacts, diff: bool = False, now: datetime | None = None
) -> ConvergePlan:
    """`facts` as after the prepare step (the service user's ids known, if it exists); `now`
    decides certificate renewals (default: the current time)."""
    acme = acme_plan(want, facts, now or datetime.now(UTC))
    deployed = deployed_slots(want, facts)
    pending = pending_handlers(want, facts)
    writes, links, removes, by_kind = _file_work(want, facts, diff)
    changed = [FileChange(c.target, kind, c.action) for kind, cs in by_kind.items() for c in cs]
    # Deployed slots whose processes read a changed file are reloaded (a hand-over), never
    # restarted in place by the services script; a marker's restarts are an older run's.
    slot_reloads = reloads(want, changed, deployed, facts, pending.reload)
    handlers = Handlers(
        nginx=bool(by_kind["nginx"]) or placeholder_needed(facts, want.host) or pending.nginx,
        daemon_reload=bool(by_kind["unit"]) or pending.daemon_reload,
        restart=tuple(sorted(set(pending.restart))),
        reload=(
            *(r.slot.identifier for r in slot_reloads),
            *carried(want, pending.reload, changed),
        ),
    )
    # What this run changes under nginx_dir, as it was: put back if `nginx -t` fails.
    touched = [w.path for w in writes] + [link.path for link in links] + removes
    restore = [
        Restore(path, facts.state(path), facts.text(path))
        for path in touched
        if path.startswith(want.host.nginx_dir)
    ]
    marker = [Write(want.marker, handlers.marker_text(), 0o600)] if handlers.any else []
    # Start what should run and does not (after a reboot, a crash, a first provision); a
    # slot to reload gets its units (re)started by the reload.
    reloading = {r.slot.identifier for r in slot_reloads}
    start = [
        unit
        for slot in deployed
        if slot.identifier not in reloading
        for unit in declared_units(want, facts, slot)
        if facts.units.get(unit) != "active" and unit not in handlers.restart
    ]
    boot = boot_service_changes(facts, want.host.services_at_boot)
    enable = [c.target for c in boot]
    # Changed unit files need it before a restart uses them; enabled boot services too.
    daemon_reload = bool(boot) or handlers.daemon_reload
    services = list(boot)
    if daemon_reload:
        services.append(Change("services", "systemd", "daemon-reload"))
    services += [Change("services", u, "restart") for u in handlers.restart]
    services += [Change("services", u, "start") for u in start]
    if handlers.nginx:
        services.append(Change("services", "nginx", "reload"))
    services += [Change("services", r.slot.identifier, r.how, reason=r.why) for r in slot_reloads]
    acme_changes = (
        [Change(ACME_STEP, ", ".join(acme.names), acme.reason)] if acme and acme.request else []
    )
    return ConvergePlan(
        changes={
            **{FILE_STEPS.get(k, k): v for k, v in by_kind.items()},
            "services": services,
            ACME_STEP: acme_changes,
        },
        upload=FileOps(marker + writes, links, removes),
        files=len(writes),
        restore=restore,
        handlers=handlers,
        services_args=services_args(
            want,
            enable,
            daemon_reload,
            list(handlers.restart),
            start,
            handlers.nginx,
            bool(handlers.reload),
        ),
        run_services=bool(services) or marker_left(want, facts),
        acme=acme,
        reloads=tuple(slot_reloads),
    )
