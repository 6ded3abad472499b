"""deploy, rollback, verify and logs for one slot.

A deploy never replaces a working release with a broken one: the new release is exported,
given its venv and migrated before `current` moves; after the switch it must answer
/api/version with its own commit (on the UI port and through nginx) or the previous release is
switched back, verified, and the failed one marked bad. The switch and restart run detached
from our SSH session, so a deploy killed at any moment leaves the old or the new release
serving, never nothing.

Only a release that passed verify gets `.ok`; rollback (asked for, or after a failed deploy)
goes only to such a release, so a release a killed deploy left behind is never picked.
Ctrl-C and SIGTERM after the switch roll back like a failure does before the process exits.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paramiko

from staging_ops import crash_points, output, remote
from staging_ops.claims.model import SlotState, parse_branch, parse_task, parse_ttl
from staging_ops.deploy import lock as slot_lock
from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.health import slot_get
from staging_ops.inventory import Inventory, Slot
from staging_ops.render import public_url, render_release_env, slot_units
from staging_ops.slot_layout import SlotPaths

LINEAR_KEY = re.compile(r"(?i)(?:^|[^a-z0-9])([a-z][a-z0-9]*-[0-9]+)(?:[^0-9]|$)")
KEEP_RELEASES = 5
# Shell (run in the releases directory): is release "$1" verified-good? Its `.ok`, or, for
# releases made before `.ok` existed, a line for it in the deploy log, which only a verified
# deploy or rollback ever wrote (the release is the line's last field).
VERIFIED_SH = (
    'verified() { [ -e "$1/.ok" ] || '
    "awk -v r=\"$1\" '$NF == r { found = 1 } END { exit !found }' ../deploys.log 2>/dev/null; }"
)
NOT_FOUND = 44
RESTARTS_MARK = "restarts-before:"
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class Stop(BaseException):
    """Ctrl-C or SIGTERM during a deploy or rollback. Not a KeyboardInterrupt: Fabric catches
    that while a remote command runs (it sends ^C and goes on waiting), which would lose it;
    this one surfaces as soon as the running remote command has ended."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Interrupted(StagingError):
    """Ctrl-C or SIGTERM stopped a deploy or rollback; the message says what state it left."""

    def __init__(self, message: str, stop: Stop):
        super().__init__(message)
        self.exit_code = EXIT_SIGTERM if stop.signum == signal.SIGTERM else EXIT_SIGINT


@dataclass
class DeployResult:
    slot: int
    identifier: str
    branch: str
    commit: str = ""
    release: str = ""
    url: str = ""
    venv: str = ""
    warnings: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def validate_branch(branch: str) -> str:
    """Our safe characters (the branch goes into .release-env, which sh sources), then git's
    own rules (`git check-ref-format --branch`); never an option."""
    if not branch or branch.startswith("-"):
        raise BadInput(f"invalid branch name {branch!r}")
    parse_branch(branch)
    result = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or result.stdout.strip() != branch:
        raise BadInput(f"invalid branch name {branch!r} (git check-ref-format --branch refuses it)")
    return branch


def task_from_branch(branch: str) -> str | None:
    """`alice/ja-123-search` -> `JA-123`."""
    match = LINEAR_KEY.search(branch)
    return match.group(1).upper() if match else None


# --- the deploy -----------------------------------------------------------------------------


class Deployer:
    """One deploy (or rollback) of one slot, step by step, on one SSH connection."""

    def __init__(self, inventory: Inventory, slot: Slot, log: output.StepLog, operator: str):
        self.inventory = inventory
        self.slot = slot
        self.host = inventory.host_of(slot)
        self.paths = SlotPaths(self.host, slot)
        self.app = inventory.app
        self.units = slot_units(self.app, slot)
        self.log = log
        self.operator = operator
        self.remote: remote.RemoteHost | None = None
        self.lock: slot_lock.SlotLock | None = None
        # Each unit's NRestarts just before our last restart (see restart()).
        self.restarts_before: dict[str, int] = {}

    # connection and lock --------------------------------------------------------------------

    def open(self) -> None:
        with self.log.step("connect"):
            self.remote = remote.connect(self.host)
        with self.log.step("lock") as rec:
            self.lock = slot_lock.acquire(
                self.remote,
                self.paths.lock,
                self.slot.identifier,
                slot_lock.hung_after(self.app.verify_timeout),
                self.operator,
            )
            if self.lock.warning:
                rec["outcome"], rec["detail"] = "warn", self.lock.warning

    def close(self) -> None:
        if self.lock:
            self.lock.release()
        if self.remote:
            self.remote.close()

    def run(self, command: str, check: bool = True, guarded: bool = False) -> tuple[int, str, str]:
        assert self.remote is not None
        if guarded and self.lock:  # only while our lock was not taken over (else LockLost)
            return self.lock.run(self.remote, command, check=check)
        return self.remote.run(command, check=check)

    # steps ----------------------------------------------------------------------------------

    def fetch(self, branch: str) -> str:
        """Update the droplet's shared mirror; the branch's commit, or exit 1 if unknown."""
        q = remote.quote
        mirror = q(self.paths.mirror)
        script = f"""set -e
mkdir -p {q(self.host.base_dir)}
exec 8>{q(self.paths.mirror + ".lock")}
flock 8
if [ ! -d {mirror} ]; then
  git clone --quiet --mirror {q(self.app.repo_url)} {mirror}.tmp && mv {mirror}.tmp {mirror}
else
  git --git-dir {mirror} fetch --quiet --prune origin
fi
git --git-dir {mirror} rev-parse --verify --quiet {q(f"refs/heads/{branch}^{{commit}}")} \\
  || exit {NOT_FOUND}
"""
        code, out, err = self.run(script, check=False)
        if code == NOT_FOUND:
            raise StagingError(f"branch not found: {branch!r} in {self.app.repo_url}")
        if code != 0:
            raise StagingError(_tail(err or out))
        return out.strip().splitlines()[-1]

    def export(self, commit: str, branch: str) -> tuple[str, str, str | None]:
        """Export the commit into a new release dir with the slot's env and a cached venv.
        Returns (release name, 'built <hash>' or 'reused <hash>', the live release or None):
        the live one is read here to save a round trip (the lock keeps it from changing)."""
        q = remote.quote
        now = datetime.now(UTC)
        name = f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{commit[:7]}"
        release = f"{self.paths.releases}/{name}"
        partial = f"{self.paths.releases}/.{name}.partial"
        release_env = render_release_env(commit, branch, now.isoformat(timespec="seconds"))
        requirements = " ".join(q(f"{partial}/{r}") for r in self.app.requirements)
        python = self.app.python
        svc = q(self.host.service_user)
        script = f"""set -e
rm -rf {q(partial)}
mkdir -p {q(partial)} {q(self.paths.venvs)}
git --git-dir {q(self.paths.mirror)} archive {q(commit)} | tar -x -C {q(partial)}
ln -s ../../shared/env {q(partial + "/.env")}
printf '%s' {q(release_env)} > {q(partial + "/.release-env")}
reqs=""
for r in {requirements}; do [ -f "$r" ] && reqs="$reqs $r"; done
key=$( (cat $reqs 2>/dev/null; {python} -V 2>&1) | sha256sum | cut -c1-16)
venv={q(self.paths.venvs)}/$key
exec 7>"$venv.lock"
flock 7
if [ -e "$venv/.complete" ]; then state=reused; else
  rm -rf "$venv"
  if [ -n "$reqs" ] && grep -qvE '^[[:space:]]*(#|$)' $reqs; then
    {python} -m venv "$venv"
    for r in $reqs; do "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$r"; done
  else
    {python} -m venv --without-pip "$venv"
  fi
  touch "$venv/.complete"
  state=built
fi
exec 7>&-
ln -s "$venv" {q(partial + "/.venv")}
chown -R {svc}: {q(partial)}
mv -T {q(partial)} {q(release)}
echo "$state $key"
echo "live $(readlink {q(self.paths.current)} || true)"
"""
        code, out, err = self.run(script, check=False)
        if code != 0:
            self.run(f"rm -rf {q(partial)}", check=False)
            raise StagingError(_tail(err or out))
        *_, venv, live = out.strip().splitlines()
        target = live.removeprefix("live").strip()
        return name, venv, target.rsplit("/", 1)[-1] if target else None

    def migrate(self, release: str) -> None:
        q = remote.quote
        path = f"{self.paths.releases}/{release}"
        command = self.app.migrate_command.replace("{release}", path).replace("{current}", path)
        inner = f"set -a; . ./.env; . ./.release-env; set +a; exec {command}"
        script = (
            f"cd {q(path)} && runuser -u {q(self.host.service_user)} -- env -i "
            f"PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp sh -c {q(inner)}"
        )
        code, out, err = self.run(script, check=False)
        if code != 0:
            self.mark_bad(release)
            raise StagingError(_tail(err or out))

    def current_release(self) -> str | None:
        _, out, _ = self.run(f"readlink {remote.quote(self.paths.current)} || true")
        target = out.strip()
        return target.rsplit("/", 1)[-1] if target else None

    def switch(self, release: str | None) -> None:
        """Point `current` at `release` atomically (a new link renamed over the old one)."""
        q = remote.quote
        tmp = f"{self.paths.root}/.current.tmp"
        if release is None:
            self.run(f"rm -f {q(self.paths.current)}", guarded=True)
            return
        self.run(
            f"ln -sfn {q('releases/' + release)} {q(tmp)} "
            f"&& mv -T {q(tmp)} {q(self.paths.current)}",
            guarded=True,
        )

    def restart(self, stop_only: bool = False) -> None:
        """Restart the slot's units, all at once, detached from our session (setsid): a deploy
        killed now still leaves them restarted."""
        q = remote.quote
        verb = "stop" if stop_only else "restart"
        outlog = f"{self.paths.root}/.restart.log"
        each = " ".join(f"systemctl {verb} {q(u)} & p{i}=$!;" for i, u in enumerate(self.units))
        waits = " ".join(f"wait $p{i} || rc=1;" for i in range(len(self.units)))
        # reset-failed first: a unit that crash-looped (a broken release) has hit systemd's
        # start limit, and a restart into a good release would be refused.
        reset = f"systemctl reset-failed {q(*self.units)} 2>/dev/null;"
        inner = f"rc=0; {reset} {each} {waits} exit $rc"
        # systemd's NRestarts counts automatic restarts and is not reset by our restart (a
        # restart of a unit waiting to auto-restart keeps the count): remember it first, so
        # that verify counts only the restarts that come after ours.
        script = (
            f"echo {RESTARTS_MARK} $(systemctl show -p NRestarts --value {q(*self.units)} "
            "2>/dev/null); "
            f"setsid sh -c {q(inner)} > {q(outlog)} 2>&1 < /dev/null & wait $!; rc=$?; "
            f"cat {q(outlog)}; exit $rc"
        )
        code, out, err = self.run(script, check=False, guarded=True)
        first, _, out = out.partition("\n")
        counts = first.removeprefix(RESTARTS_MARK).split()
        self.restarts_before = dict(zip(self.units, map(_count, counts), strict=False))
        if code != 0:
            raise StagingError(_tail(out or err))

    def verify(self, commit: str, timeout: float | None = None) -> None:
        """/api/version on the UI port (through our SSH connection) and through nginx (the
        slot's Host header and TLS name) must report `commit`, and then every unit of the slot
        must be up. A UI unit that is down (crashed at start, crash-looping) fails at once
        instead of at the timeout."""
        timeout = self.app.verify_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        next_unit_check = time.monotonic() + 0.5
        where = "UI port"
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                seen = self._version_via_ssh() if where == "UI port" else self._version_via_nginx()
            except (OSError, paramiko.SSHException, ValueError, http.client.HTTPException) as exc:
                last = f"no answer ({type(exc).__name__})"
                seen = None
            if seen == commit:
                if where == "nginx":
                    # The UI answers; Airflow's units must not have failed at start either.
                    self._check_units_alive(self.units)
                    return
                where = "nginx"
                continue
            if seen is not None:
                # The old process is gone after the restart: an answer is the new release's.
                raise StagingError(f"{where} serves commit {seen!r}, not {commit}")
            if time.monotonic() >= next_unit_check:
                self._check_units_alive(self.units[:1])
                next_unit_check = time.monotonic() + 1.0
            time.sleep(0.1)
        raise StagingError(f"{where}: {last} within {timeout:.0f}s")

    def _check_units_alive(self, units: list[str]) -> None:
        """Each of `units` is up and has not restarted since our restart; one command."""
        quoted = remote.quote(*units)
        _, out, _ = self.run(
            f"systemctl is-active {quoted}; systemctl show -p NRestarts --value {quoted} "
            "2>/dev/null",
            check=False,
        )
        lines = out.split()
        states, restarts = lines[: len(units)], lines[len(units) :]
        for n, unit in enumerate(units):
            state = states[n] if n < len(states) else "unknown"
            count = restarts[n] if n < len(restarts) else ""
            restarted = count.isdigit() and int(count) > self.restarts_before.get(unit, 0)
            if state in ("failed", "inactive") or restarted:
                raise StagingError(f"{unit} is {state}: it does not stay up")

    def _version_via_ssh(self) -> str | None:
        assert self.remote is not None
        transport = self.remote.connection.client.get_transport()
        channel = transport.open_channel(
            "direct-tcpip", ("127.0.0.1", self.slot.ui_port), ("127.0.0.1", 0), timeout=5
        )
        try:
            channel.settimeout(5)
            conn = http.client.HTTPConnection("127.0.0.1", self.slot.ui_port, timeout=5)
            conn.sock = channel  # type: ignore[assignment]
            conn.request("GET", "/api/version", headers={"Host": self.slot.subdomain})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                return None
            return json.loads(body).get("commit")
        finally:
            channel.close()

    def _version_via_nginx(self) -> str | None:
        response = slot_get(self.host, self.slot, "/api/version", timeout=5)
        if response.status_code != 200:
            return None
        return response.json().get("commit")

    def mark_bad(self, release: str) -> None:
        # Guarded like every step that changes what rollback and pruning see.
        self.run(
            f"touch {remote.quote(self.paths.releases + '/' + release + '/.bad')}",
            check=False,
            guarded=True,
        )

    def service_log(self, lines: int = 20) -> str:
        unit = remote.quote(self.units[0])
        _, out, err = self.run(f"journalctl -u {unit} -n {lines} --no-pager 2>&1", check=False)
        return (out or err).rstrip()

    def finish(self, release: str, branch: str, commit: str, previous: str | None) -> None:
        """Mark `release` verified-good (`.ok`), append to the slot's deploy log and keep the
        newest releases: never the current, the previous, or the one rollback would pick (the
        newest verified-good one older than `release`). One command: verify already passed."""
        q = remote.quote
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        line = f"{stamp} {self.operator} {branch} {commit} {release}"
        keep = "|".join(q(k) for k in (release, previous) if k)
        script = f"""echo {q(line)} >> {q(self.paths.root + "/deploys.log")}
cd {q(self.paths.releases)} || exit 0
touch {q(release + "/.ok")}
{VERIFIED_SH}
target=""; past=""
for r in $(ls -1 | sort -r); do
  if [ -n "$past" ] && verified "$r" && [ ! -e "$r/.bad" ]; then target=$r; break; fi
  [ "$r" = {q(release)} ] && past=1
done
ls -1 | sort | head -n -{KEEP_RELEASES} | while read -r r; do
  case "$r" in {keep}|"$target") ;; *) rm -rf -- "$r" ;; esac
done
"""
        # Guarded: a deploy whose lock was taken over must not mark or prune releases.
        self.run(script, check=False, guarded=True)

    def releases(self) -> list[dict[str, Any]]:
        """Every release of the slot, newest first, with its commit, branch, `.bad` mark and
        `.ok` mark (verify passed)."""
        q = remote.quote
        script = (
            f"cd {q(self.paths.releases)} 2>/dev/null || exit 0\n{VERIFIED_SH}\n"
            "for r in $(ls -1 | sort -r); do "
            'c=$(sed -n "s/^DEPLOYED_COMMIT=//p" "$r/.release-env" 2>/dev/null); '
            'b=$(sed -n "s/^DEPLOYED_BRANCH=//p" "$r/.release-env" 2>/dev/null); '
            'bad=0; [ -e "$r/.bad" ] && bad=1; ok=0; verified "$r" && ok=1; '
            'echo "$r $bad $ok $c $b"; done'
        )
        _, out, _ = self.run(script)
        found = []
        for line in out.splitlines():
            parts = line.split(" ", 4)
            if len(parts) == 5:
                found.append(
                    {
                        "release": parts[0],
                        "bad": parts[1] == "1",
                        "ok": parts[2] == "1",
                        # Quoted since .release-env is sourced by sh; older releases are not.
                        "commit": parts[3].strip('"'),
                        "branch": parts[4].strip('"'),
                    }
                )
        return found


@dataclass(frozen=True)
class ClaimCheck:
    """What the claim rules allow, decided before anything on the droplet is touched.

    `task` is the claim the registry must still hold when the deploy is recorded (the holder's,
    also under --force: the claim stays theirs); `record` is False for a forced run on a free
    slot, which the registry cannot note (it records deploys on claimed slots only)."""

    detail: str
    task: str | None = None
    record: bool = True
    renew: bool = False


def deploy(
    inventory: Inventory,
    slot: Slot,
    branch: str,
    *,
    registry: Any,
    operator: str,
    task: str | None = None,
    force: bool = False,
    log: output.StepLog | None = None,
) -> DeployResult:
    """Deploy `branch` to `slot`: claim, lock, fetch, export, venv, migrate, switch, restart,
    verify (rolling back on failure, Ctrl-C or SIGTERM), record. Raises on failure with the
    slot's state."""
    log = log or output.StepLog()
    validate_branch(branch)
    result = DeployResult(slot.id, slot.identifier, branch)
    with log.step("claim") as rec:
        claim = _ensure_claim(registry, slot, task or task_from_branch(branch), operator, force)
        rec["detail"] = claim.detail
    deployer = Deployer(inventory, slot, log, operator)
    with _session(deployer, log):
        if deployer.lock and deployer.lock.warning:
            result.warnings.append(deployer.lock.warning)
        previous = _prepare(deployer, log, result, branch)
        _switch_and_verify(deployer, log, result.release, result.commit, previous)
        _record_step(deployer, log, registry, claim, result, previous)
    return _done(result, deployer, log)


@contextmanager
def _session(deployer: Deployer, log: output.StepLog) -> Iterator[None]:
    """The deployer connected and locked for the block, Ctrl-C and SIGTERM raising Stop; an
    interruption that reaches here (the switch rolls back on its own) leaves as Interrupted.
    Always closed: the lock goes with the connection."""
    try:
        with _signals_stop():
            deployer.open()
            yield
    except Stop as stop:
        raise Interrupted(
            f"{deployer.slot.identifier}: interrupted during {_failed_step(log)}", stop
        ) from None
    finally:
        deployer.close()


def _record_step(
    deployer: Deployer,
    log: output.StepLog,
    registry: Any,
    claim: ClaimCheck,
    result: DeployResult,
    previous: str | None,
) -> None:
    """Mark `result.release` verified, log it, prune, and tell the registry."""
    with log.step("record") as rec:
        deployer.finish(result.release, result.branch, result.commit, previous)
        _record(registry, deployer.slot, result.branch, result.commit, deployer.operator, claim)
        rec["detail"] = "registry + deploy log"


def _done(result: DeployResult, deployer: Deployer, log: output.StepLog) -> DeployResult:
    result.url = public_url(deployer.host, deployer.slot)
    result.steps = log.steps
    return result


def _prepare(
    deployer: Deployer, log: output.StepLog, result: DeployResult, branch: str
) -> str | None:
    """fetch, export + venv, migrate: nothing serves from the new release yet, so a failure
    (or an interruption) here needs no rollback. Returns the release live before."""
    try:
        with log.step("fetch") as rec:
            result.commit = deployer.fetch(branch)
            rec["detail"] = result.commit[:12]
        crash_points.crash_point("deploy:after-fetch")
        with log.step("export + venv") as rec:
            result.release, result.venv, previous = deployer.export(result.commit, branch)
            rec["detail"] = f"{result.release}, venv {result.venv}"
        crash_points.crash_point("deploy:after-venv")
        with log.step("migrate"):
            deployer.migrate(result.release)
        crash_points.crash_point("deploy:after-migrate")
    except (StagingError, Stop) as failure:
        state = "nothing was switched, the previous release keeps serving"
        step = _failed_step(log)
        if isinstance(failure, Stop):
            raise Interrupted(
                f"{deployer.slot.identifier}: interrupted during {step}; {state}", failure
            ) from None
        raise type(failure)(
            f"{deployer.slot.identifier}: {step} failed: {failure}; {state}"
        ) from None
    return previous


def _switch_and_verify(
    deployer: Deployer, log: output.StepLog, release: str, commit: str, previous: str | None
) -> None:
    """Make `release` current and prove it serves `commit`; on a failure, Ctrl-C or SIGTERM
    from the switch on, back to `previous` if it is verified-good, else the newest
    verified-good release (see _roll_back)."""
    try:
        with log.step("switch") as rec:
            deployer.switch(release)
            rec["detail"] = f"{previous or 'nothing'} -> {release}"
        crash_points.crash_point("deploy:after-switch")
        with log.step("restart"):
            _restart_with_crash_point(deployer)
        with log.step("verify") as rec:
            deployer.verify(commit)
            rec["detail"] = f"/api/version = {commit[:12]} (UI port and nginx)"
    except Stop as stop:
        _roll_back(deployer, log, release, stop, previous)
    except StagingError as failure:
        if _failed_step(log) == "switch":
            raise  # `current` did not move: what served before still serves
        _roll_back(deployer, log, release, failure, previous)


def _record(
    registry: Any, slot: Slot, branch: str, commit: str, operator: str, claim: ClaimCheck
) -> None:
    if claim.record:
        registry.record_deploy(slot.id, branch, commit, operator, task=claim.task)


@contextmanager
def _signals_stop() -> Iterator[None]:
    """For the duration of a deploy or rollback, Ctrl-C and SIGTERM raise Stop, so either
    rolls back a switched release instead of leaving a broken one live."""
    with _signal_handlers(_raise_stop):
        yield


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while a rollback runs: stopping it halfway would leave the
    release it is rolling away from (or nothing) in place. It is bounded by verify's timeout."""
    with _signal_handlers(signal.SIG_IGN):
        yield


@contextmanager
def _signal_handlers(handler: Any) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)


def _raise_stop(signum: int, frame: Any) -> None:
    raise Stop(signum)


def _restart_with_crash_point(deployer: Deployer) -> None:
    if os.environ.get(crash_points.ENV) == "deploy:during-restart":
        # Dies while the remote restart is under way, as a Ctrl-\\ or kill -9 would.
        threading.Timer(0.15, crash_points.crash_point, args=("deploy:during-restart",)).start()
    deployer.restart()


def _roll_back(
    deployer: Deployer,
    log: output.StepLog,
    failed: str,
    failure: StagingError | Stop,
    previous: str | None = None,
) -> None:
    """Back to `previous` (what served before) if it is verified-good, else the newest
    verified-good release other than `failed` (never one that was not verified, e.g. left by
    a killed deploy), verified; the slot is stopped if there is none. A failure marks
    `failed` bad; an interruption leaves it unverified. Always raises."""
    interrupted = isinstance(failure, Stop)
    step = _failed_step(log)
    with _signals_ignored():
        logs = "" if interrupted else deployer.service_log()
        if not interrupted:
            deployer.mark_bad(failed)
        target = _restore_good_release(deployer, log, failed, previous)
    back = f"rolled back to {target or 'nothing (slot stopped)'}"
    where = deployer.slot.identifier
    if interrupted:
        raise Interrupted(
            f"{where}: interrupted during {step}; {back}; {failed} left unverified", failure
        )
    raise StagingError(
        f"{where}: {step} failed: {failure}; {back}; {failed} marked bad\n--- last lines of "
        f"{deployer.units[0]} ---\n{logs}"
    )


def _restore_good_release(
    deployer: Deployer, log: output.StepLog, failed: str, previous: str | None
) -> str | None:
    """Switch to, restart and verify `previous` if verified-good, else the newest
    verified-good release but `failed`; its name."""
    with log.step("rollback") as rec:
        target = _newest_good(deployer.releases(), exclude=failed, prefer=previous)
        deployer.switch(target["release"] if target else None)
        if target is None:
            deployer.restart(stop_only=True)
            rec["detail"] = "no verified-good release: slot stopped"
            return None
        deployer.restart()
        # The full commit from the release's .release-env (the name has only 7 digits).
        deployer.verify(target["commit"] or "unknown")
        rec["detail"] = f"{target['release']} serves again"
        return target["release"]


def _newest_good(
    releases: list[dict[str, Any]], exclude: str | None, prefer: str | None = None
) -> dict[str, Any] | None:
    """`prefer` if it passed verify and was not marked bad since, else the newest such
    release, never `exclude`. `prefer` is what served before: a newer good release may be
    one an operator rolled away from."""
    good = [r for r in releases if r["ok"] and not r["bad"] and r["release"] != exclude]
    chosen = next((r for r in good if r["release"] == prefer), None)
    return chosen or (good[0] if good else None)  # newest first: names start with UTC time


def _failed_step(log: output.StepLog) -> str:
    return next((s["step"] for s in reversed(log.steps) if s["outcome"] == "failed"), "deploy")


def _ensure_claim(
    registry: Any, slot: Slot, task: str | None, operator: str, force: bool
) -> ClaimCheck:
    """Deploy's claim rules: the holder's task (or owner, with no task known) deploys and renews;
    --force deploys to another task's slot, the claim staying theirs; a free slot is claimed for
    the task. A bad --task or a conflict raises before the droplet is touched."""
    task = parse_task(task) if task else None
    state = registry.get(slot.id)
    if state.claimed:
        check = _check_holder(state, slot, task, operator, force, "deploy")
        if check.renew:
            registry.claim(slot.id, state.task, state.owner or operator, parse_ttl("7d"))
        return check
    if not task:
        raise BadInput(
            f"{slot.identifier} is free and no task is known: pass --task JA-123 or deploy a "
            "branch named after its Linear issue (e.g. alice/ja-123-search)"
        )
    registry.claim(slot.id, task, operator, parse_ttl("7d"))
    return ClaimCheck(f"claimed for {task} by {operator}", task=task)


def _check_holder(
    state: SlotState, slot: Slot, task: str | None, operator: str, force: bool, what: str
) -> ClaimCheck:
    """A claimed slot: whose run this is, or a Conflict unless --force."""
    mine = state.task == task if task else state.owner == operator
    if mine:
        return ClaimCheck(f"held by {state.task}, renewed", task=state.task, renew=True)
    if force:
        return ClaimCheck(
            f"held by {state.task} ({state.owner}); {what} anyway (--force)", task=state.task
        )
    raise Conflict(
        f"{slot.identifier} is held by {state.holder_text()}: pass --task {state.task} if "
        f"this {what} is for it, or --force"
    )


def _check_rollback_claim(
    registry: Any, slot: Slot, task: str | None, operator: str, force: bool
) -> ClaimCheck:
    """Rollback's claim rules, deploy's without claiming: a free slot or another task's slot is
    refused unless --force."""
    task = parse_task(task) if task else None
    state = registry.get(slot.id)
    if state.claimed:
        return _check_holder(state, slot, task, operator, force, "rollback")
    if not force:
        raise Conflict(
            f"{slot.identifier} is free: claim it first (invoke claim --slot {slot.id} --task "
            "JA-123) or pass --force"
        )
    return ClaimCheck("free; rolling back anyway (--force), not in the registry", record=False)


def _count(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"


def rollback(
    inventory: Inventory,
    slot: Slot,
    *,
    registry: Any,
    operator: str,
    to: str | None = None,
    task: str | None = None,
    force: bool = False,
    log: output.StepLog | None = None,
) -> DeployResult:
    """Back to the previous verified-good release (or `to`), verified the same way, and
    recorded. The claim is checked first, with deploy's rules."""
    log = log or output.StepLog()
    with log.step("claim") as rec:
        claim = _check_rollback_claim(registry, slot, task, operator, force)
        rec["detail"] = claim.detail
    deployer = Deployer(inventory, slot, log, operator)
    with _session(deployer, log):
        with log.step("choose release") as rec:
            current = deployer.current_release()
            target = _rollback_target(deployer.releases(), current, to, slot)
            rec["detail"] = f"{current or 'nothing'} -> {target['release']}"
        result = DeployResult(
            slot.id, slot.identifier, target["branch"], target["commit"], target["release"]
        )
        _switch_and_verify(deployer, log, result.release, result.commit, current)
        _record_step(deployer, log, registry, claim, result, current)
    return _done(result, deployer, log)


def _rollback_target(
    releases: list[dict[str, Any]], current: str | None, to: str | None, slot: Slot
) -> dict[str, Any]:
    """`to` if it is not marked bad (it is verified on the way); else the newest verified-good
    release older than the current one (or any, if the current one is not a release)."""
    if to:
        for item in releases:
            if item["release"] == to:
                if item["bad"]:
                    raise BadInput(f"{slot.identifier}: release {to} is marked bad")
                return item
        names = ", ".join(r["release"] for r in releases) or "none"
        raise BadInput(f"{slot.identifier}: no release {to!r} (releases: {names})")
    names = [r["release"] for r in releases]
    older = releases[names.index(current) + 1 :] if current in names else releases
    target = _newest_good(older, exclude=current)
    if target is None:
        raise StagingError(f"{slot.identifier}: no earlier verified-good release to roll back to")
    return target


def verify_slot(inventory: Inventory, slot: Slot, registry: Any) -> dict[str, Any]:
    """The slot's public /api/version against what the registry says is deployed."""
    state = registry.get(slot.id)
    host = inventory.host_of(slot)
    answer: dict[str, Any] | None
    try:
        response = slot_get(host, slot, "/api/version", timeout=10)
        answer = response.json() if response.status_code == 200 else None
        problem = None if answer else f"HTTP {response.status_code}"
    except (OSError, ValueError) as exc:  # requests' errors are OSErrors
        answer, problem = None, f"no answer ({type(exc).__name__})"
    served = (answer or {}).get("commit")
    ok = answer is not None and bool(state.commit) and served == state.commit
    if answer is not None and not ok:
        problem = f"serves {served!r}, registry says {state.commit!r}"
    return {
        "slot": slot.id,
        "identifier": slot.identifier,
        "url": f"{public_url(host, slot)}/api/version",
        "served": answer,
        "registry_commit": state.commit,
        "registry_branch": state.branch,
        "ok": ok,
        "problem": problem,
    }


SERVICE_NAMES = ("ui", "airflow-webserver", "airflow-scheduler")


def logs(
    inventory: Inventory, slot: Slot, service: str, lines: int, follow: bool, out: Any
) -> None:
    """Stream the unit's log from the droplet (journalctl; the sandbox provides the same)."""
    if service not in SERVICE_NAMES:
        raise BadInput(f"invalid service {service!r}: choose {', '.join(SERVICE_NAMES)}")
    if not 1 <= lines <= 100000:
        raise BadInput(f"-n must be between 1 and 100000, not {lines}")
    unit = slot_units(inventory.app, slot)[SERVICE_NAMES.index(service)]
    host = inventory.host_of(slot)
    session = remote.connect(host)
    try:
        command = f"journalctl -u {remote.quote(unit)} -n {lines} --no-pager" + (
            " -f" if follow else ""
        )
        # stderr is kept (hide), not echoed: a failure is reported in our one line instead.
        result = session.connection.run(
            session.as_root(command),
            out_stream=out,
            warn=True,
            hide="err",
            pty=False,
            in_stream=False,
        )
    finally:
        session.close()
    if result.exited != 0:
        raise StagingError(
            f"{slot.identifier}: journalctl -u {unit} failed on {host.name} "
            f"(exit {result.exited}): {_tail(result.stderr, 1)}"
        )
