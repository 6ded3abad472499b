"""The commands of a plan, run on the host through staging_ops.remote: the install script, the
prepare script, the upload (one SFTP session) and the services script. Each function is one
remote command or one SFTP session; the decisions were taken in plan.py and handlers.py."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from staging_ops import remote
from staging_ops.errors import StagingError
from staging_ops.provision.handlers import FileOps
from staging_ops.provision.plan import ACME_SCRIPT, INSTALL_SCRIPT, PREPARE_SCRIPT, SERVICES_SCRIPT
from staging_ops.remote.facts import UserIds
from staging_ops.remote.scripts import home, script_command

# dpkg's own milestones, shown at most every this many seconds.
PROGRESS_EVERY = 2.0


@home(INSTALL_SCRIPT)
def install_command(*packages: str) -> str:
    """apt-get update, then install `packages` (its answer: apt's progress lines)."""
    return script_command(INSTALL_SCRIPT, *packages)


@home(PREPARE_SCRIPT)
def prepare_command(*actions: str) -> str:
    """Each ACTION with its arguments, in order (plan.py builds them); `ids` prints the ids."""
    return script_command(PREPARE_SCRIPT, *actions)


def parse_ids(out: str) -> UserIds:
    """The service user's ids, the last line `ids USER` printed: `{"uid": N, "gid": N}`."""
    *_, last = out.strip().splitlines() or [""]
    try:
        found = json.loads(last)
        return UserIds(int(found["uid"]), int(found["gid"]))
    except (ValueError, TypeError, KeyError):
        raise StagingError(f"{PREPARE_SCRIPT}: no user ids in its answer {last[:200]!r}") from None


@home(SERVICES_SCRIPT)
def services_command(marker: str, nginx_test: str, nginx_reload: str, *actions: str) -> str:
    """The handlers: each ACTION (plan.py builds them), MARKER removed when all succeeded."""
    return script_command(SERVICES_SCRIPT, marker, nginx_test, nginx_reload, *actions)


@home(ACME_SCRIPT)
def certbot_command(ca_bundle: str, *certbot_args: str) -> str:
    """certbot with `certbot_args`, trusting CA_BUNDLE for the ACME server ('' the system's)."""
    return script_command(ACME_SCRIPT, ca_bundle, *certbot_args)


def install_packages(
    session: remote.RemoteHost, packages: list[str], progress: Callable[[str], None]
) -> None:
    """apt-get update, then install `packages`, showing progress as it goes: a fresh
    droplet has no package lists, and the install takes tens of seconds."""
    name = session.host.name
    start = time.monotonic()
    names = " ".join(packages)
    progress(f"{name}: installing {names} (apt-get update first)")
    last = [0.0]

    def on_line(line: str) -> None:
        now = time.monotonic()
        if line.startswith(("Setting up ", "Unpacking ", "Fetched ")) and (
            now - last[0] > PROGRESS_EVERY
        ):
            last[0] = now
            what = line.split(" (")[0]
            progress(f"{name}: {what} ({now - start:.0f}s)")

    session.run(install_command(*packages), on_line=on_line)
    progress(f"{name}: installed {names} in {time.monotonic() - start:.1f}s")


def prepare(session: remote.RemoteHost, args: list[str]) -> UserIds:
    """Run the prepare script; the service user's ids, which it prints last."""
    _, out, _ = session.run(prepare_command(*args))
    return parse_ids(out)


def upload(session: remote.RemoteHost, ops: FileOps) -> None:
    """Writes, links and removes in one SFTP session (none at all when there is nothing)."""
    remote.apply_files(session, ops.writes, ops.links, ops.removes)


def run_services(session: remote.RemoteHost, args: list[str]) -> tuple[int, str, str]:
    """The services script; its exit code is decoded by handlers.after_services."""
    return session.run(services_command(*args), check=False)


def obtain_certificate(session: remote.RemoteHost, args: list[str], directory: str) -> None:
    """certbot on the droplet (scripts/acme-certbot.sh); one line with the ACME server's own
    reason when it fails."""
    code, out, err = session.run(certbot_command(*args), check=False)
    if code != 0:
        raise StagingError(
            f"{session.host.name}: acme certificate from {directory}: {certbot_reason(err or out)}"
        )


def certbot_reason(text: str) -> str:
    """The line of certbot's output that says why: the server's `Detail:`, else its last
    line that is not advice."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    details = [line.removeprefix("Detail:").strip() for line in lines if line.startswith("Detail:")]
    if details:
        return " | ".join(details)[:400]
    advice = ("Ask for help", "See the logfile", "Some challenges have failed", "Hint:")
    useful = [line for line in lines if not line.startswith(advice)]
    if not useful:
        return "certbot said nothing (its log: /var/log/letsencrypt/letsencrypt.log)"
    return useful[-1][:400]
