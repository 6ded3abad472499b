"""The local sandbox droplet: this machine made to look like a staging droplet, on loopback.

Per host: a real OpenSSH server (generated keys), a real nginx (self-signed *.justapply.net
certificate), and a `systemctl` on the SSH session's PATH backed by docker-systemctl-replacement
with `--root` inside the sandbox, so our real unit files really run. Shared by all hosts: one
PostgreSQL cluster (run as the `postgres` OS user when we are root) and a bare git repository
of examples/sample-app. Everything lives under one directory and listens on 127.0.0.1 only;
`down` stops every process by the PID it recorded.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devtools.sandbox import stopping
from staging_ops.errors import BadInput, StagingError

SERVICE_USER = "staging-sandbox"
REGISTRY_DB = "staging_registry"
STATE_FILE = "state.json"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
PROJECT = Path(__file__).resolve().parents[2]
SYSTEMCTL = Path(__file__).resolve().parent / "systemctl.py"


@dataclass
class SandboxHost:
    name: str
    ssh_port: int
    http_port: int
    https_port: int
    dir: str

    @property
    def root(self) -> Path:
        # Three levels below the sandbox keep docker-systemctl-replacement from warning.
        return Path(self.dir) / "root"

    @property
    def nginx_conf(self) -> Path:
        return self.root / "etc/nginx/nginx.conf"

    @property
    def nginx_prefix(self) -> Path:
        return self.root / "var/lib/nginx"

    def nginx_args(self) -> list[str]:
        return [
            "nginx",
            "-p",
            str(self.nginx_prefix),
            "-c",
            str(self.nginx_conf),
            "-e",
            str(self.root / "var/log/nginx/error.log"),
        ]


@dataclass
class Sandbox:
    """What `up` built; saved as DIR/state.json so `down` and `status` can find it again."""

    dir: str
    pg_port: int
    slot_port_offset: int
    slots: int
    hosts: list[SandboxHost]
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    # The Staging API + Dashboard (`python -m staging_ops.web`); the secret signs its admin
    # JWTs (`invoke api.token`). A throwaway for this loopback-only sandbox, like its SSH keys.
    dashboard_port: int | None = None
    api_jwt_secret: str = ""
    # The server's webhook secrets (STAGING_GITHUB/LINEAR_WEBHOOK_SECRET), throwaways as well.
    github_webhook_secret: str = ""
    linear_webhook_secret: str = ""

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def inventory_path(self) -> Path:
        return self.path / "inventory.toml"

    @property
    def env_path(self) -> Path:
        return self.path / "env"

    @property
    def repo_path(self) -> Path:
        return self.path / "repo" / "sample-app.git"

    @property
    def key_path(self) -> Path:
        return self.path / "keys" / "id_ed25519"

    @property
    def ca_path(self) -> Path:
        return self.path / "tls" / "justapply.net.crt"

    @property
    def pg_socket_dir(self) -> Path:
        return self.path / "pg" / "run"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    @property
    def registry_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{REGISTRY_DB}"

    def env(self) -> dict[str, str]:
        return {
            "STAGING_INVENTORY": str(self.inventory_path),
            "STAGING_REGISTRY_DSN": self.registry_dsn,
            "STAGING_SANDBOX_REPO": str(self.repo_path),
            "STAGING_SANDBOX_DIR": str(self.path),
            **self.dashboard_env(),
        }

    def dashboard_env(self) -> dict[str, str]:
        if not self.dashboard_port:
            return {}
        return {
            "STAGING_API_JWT_SECRET": self.api_jwt_secret,
            "STAGING_GITHUB_WEBHOOK_SECRET": self.github_webhook_secret,
            "STAGING_LINEAR_WEBHOOK_SECRET": self.linear_webhook_secret,
            "STAGING_DASHBOARD_URL": f"http://127.0.0.1:{self.dashboard_port}/staging",
        }

    def save(self) -> None:
        (self.path / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))


def load(directory: str | Path) -> Sandbox | None:
    state = Path(directory) / STATE_FILE
    if not state.exists():
        return None
    raw = json.loads(state.read_text())
    raw["hosts"] = [SandboxHost(**h) for h in raw["hosts"]]
    return Sandbox(**raw)


@dataclass(frozen=True)
class Ports:
    """Where a sandbox listens. Tests shift everything so they never meet a running demo."""

    base: int = 22200
    slot_offset: int = 0

    def ssh(self, index: int) -> int:
        return self.base + index

    def http(self, index: int) -> int:
        return self.base + 20 + index

    def https(self, index: int) -> int:
        return self.base + 40 + index

    @property
    def postgres(self) -> int:
        return self.base + 60

    @property
    def dashboard(self) -> int:
        return self.base + 80


def up(
    directory: str | Path = ".sandbox",
    hosts: int = 1,
    slots: int = 10,
    ports: Ports | None = None,
    dashboard: bool = False,
) -> Sandbox:
    """Build and start a sandbox in `directory`, first stopping and deleting a stale one
    there (a directory that is neither a sandbox nor empty is refused, untouched, and nothing
    is deleted until the ports are known to be free); with `dashboard`, also the Staging API
    + Dashboard on 127.0.0.1:`ports.dashboard`."""
    if not 1 <= hosts <= 20:
        raise BadInput(f"--hosts must be between 1 and 20, not {hosts}")
    if not 1 <= slots <= 500:
        raise BadInput(f"--slots must be between 1 and 500, not {slots}")
    ports = ports or Ports()
    path = Path(directory).resolve()
    _check_replaceable(path)
    down(path)
    sandbox = Sandbox(
        dir=str(path),
        pg_port=ports.postgres,
        slot_port_offset=ports.slot_offset,
        slots=slots,
        hosts=[
            SandboxHost(
                f"h{i}", ports.ssh(i), ports.http(i), ports.https(i), str(path / "hosts" / f"h{i}")
            )
            for i in range(1, hosts + 1)
        ],
        dashboard_port=ports.dashboard if dashboard else None,
        api_jwt_secret=secrets.token_urlsafe(32) if dashboard else "",
        github_webhook_secret=secrets.token_hex(32) if dashboard else "",
        linear_webhook_secret=secrets.token_hex(32) if dashboard else "",
    )
    _check_ports_free(sandbox)  # before deleting anything: a failed `up` leaves all as it was
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    sandbox.save()  # early, so `down` can clean up after a failure half-way
    try:
        _make_keys(sandbox)
        _make_certificate(sandbox)
        _start_postgres(sandbox)
        for host in sandbox.hosts:
            _make_host_root(sandbox, host)
            _start_nginx(sandbox, host)
            _start_sshd(sandbox, host)
        from devtools.sample_repo import build_sample_repo

        build_sample_repo(sandbox.repo_path)
        _write_inventory(sandbox)
        _write_env(sandbox)
        _wait_listening(sandbox)
        if sandbox.dashboard_port:
            _start_dashboard(sandbox, sandbox.dashboard_port)
    except BaseException:
        sandbox.save()
        down(path)
        raise
    sandbox.save()
    return sandbox


def down(directory: str | Path = ".sandbox") -> list[str]:
    """Stop every process the sandbox started (by recorded PID; the dashboard with its worker
    processes) and wait until they are gone. Returns what was stopped."""
    sandbox = load(directory)
    if sandbox is None:
        return []
    pids = dict(sandbox.pids)
    for host in sandbox.hosts:
        pids.update({f"{host.name}:{unit}": pid for unit, pid in _unit_pids(host).items()})
    stopped = stopping.stop(_stop_target(name, pid, sandbox) for name, pid in pids.items())
    sandbox.pids = {}
    sandbox.save()
    return stopped


def _stop_target(name: str, pid: int, sandbox: Sandbox) -> stopping.Target:
    if name == "postgres":
        # PostgreSQL's SIGTERM is a smart shutdown: it waits for every client to leave. SIGINT
        # is its fast shutdown: clients are disconnected, the cluster shut down cleanly.
        return stopping.Target(name, lambda: _ours([pid], sandbox), signal.SIGINT)
    if name == "dashboard":
        from staging_ops.web.server import WORKERS_KILL_TIMEOUT

        # The server leads a process group of its own (start_new_session) with its granian
        # workers in it: each is stopped too, even one its parent left behind, and the server
        # gets the time it gives its workers itself before it kills them.
        return stopping.Target(
            name,
            lambda: _ours([pid, *stopping.process_group(pid)], sandbox),
            timeout=WORKERS_KILL_TIMEOUT + stopping.STOP_TIMEOUT,
        )
    return stopping.Target(name, lambda: _ours([pid], sandbox))


def _ours(pids: list[int], sandbox: Sandbox) -> list[int]:
    return [pid for pid in dict.fromkeys(pids) if _alive(pid, sandbox)]


def status(directory: str | Path = ".sandbox") -> dict[str, object]:
    sandbox = load(directory)
    if sandbox is None:
        return {"dir": str(Path(directory).resolve()), "up": False, "processes": {}}
    processes = {name: _alive(pid, sandbox) for name, pid in sandbox.pids.items()}
    return {
        "dir": sandbox.dir,
        "up": bool(processes) and all(processes.values()),
        "processes": processes,
        "postgres": f"127.0.0.1:{sandbox.pg_port}",
        "hosts": [
            {
                "name": h.name,
                "ssh": f"127.0.0.1:{h.ssh_port}",
                "http": h.http_port,
                "https": h.https_port,
                "units": sorted(_unit_pids(h)),
            }
            for h in sandbox.hosts
        ],
        "inventory": str(sandbox.inventory_path),
        "env": str(sandbox.env_path),
    }


# --- building blocks -------------------------------------------------------------------------


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise StagingError(f"sandbox: {shlex.join(args[:3])} failed: {' | '.join(detail)}")
    return result


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _check_replaceable(path: Path) -> None:
    """`up` deletes `path` and starts afresh there: allowed only for a directory that holds a
    sandbox (its state.json) or nothing at all. Anything else (a checkout, a home directory)
    is refused before it is touched."""
    if path == Path("/") or path == Path.home():
        raise BadInput(f"refusing to use {path} as a sandbox directory")
    if not path.exists():
        return
    if not path.is_dir():
        raise BadInput(f"refusing to use {path} as a sandbox directory: it is not a directory")
    if (path / STATE_FILE).is_file():
        try:
            load(path)
        except (OSError, ValueError, TypeError, KeyError):
            raise BadInput(
                f"refusing to use {path} as a sandbox directory: its {STATE_FILE} is not "
                "a sandbox's (remove the directory yourself if it is one)"
            ) from None
        return
    try:
        empty = next(path.iterdir(), None) is None
    except OSError as exc:
        raise BadInput(f"refusing to use {path} as a sandbox directory: {exc.strerror}") from None
    if not empty:
        raise BadInput(
            f"refusing to use {path} as a sandbox directory: it is not empty and holds no "
            f"sandbox ({STATE_FILE}); choose an empty or new directory"
        )


def _check_ports_free(sandbox: Sandbox) -> None:
    wanted = [sandbox.pg_port] + ([sandbox.dashboard_port] if sandbox.dashboard_port else [])
    for h in sandbox.hosts:
        wanted += [h.ssh_port, h.http_port, h.https_port]
    for port in wanted:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                raise BadInput(
                    f"sandbox: port 127.0.0.1:{port} is in use "
                    "(another sandbox? choose other ports)"
                ) from None


def _make_keys(sandbox: Sandbox) -> None:
    keys = sandbox.path / "keys"
    # Readable directory (the private keys are 0600 themselves): sshd reads authorized_keys as
    # the user logging in, and sandbox hosts may log in as a non-root sudoer too.
    keys.mkdir(mode=0o755)
    for name in ("id_ed25519", "ssh_host_ed25519_key"):
        _run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"staging-sandbox-{name}",
                "-f",
                str(keys / name),
            ]
        )
    (keys / "authorized_keys").write_text((keys / "id_ed25519.pub").read_text())
    (keys / "authorized_keys").chmod(0o644)


def _make_certificate(sandbox: Sandbox) -> None:
    tls = sandbox.path / "tls"
    tls.mkdir()
    _run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=*.justapply.net",
            "-addext",
            "subjectAltName=DNS:*.justapply.net,DNS:justapply.net",
            "-keyout",
            str(tls / "justapply.net.key"),
            "-out",
            str(sandbox.ca_path),
        ]
    )


def _pg_bin() -> Path:
    """The newest installed PostgreSQL server's bin directory (Debian layout)."""
    versions = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not versions:
        raise StagingError(
            "sandbox: no PostgreSQL server found in /usr/lib/postgresql (run scripts/setup.sh)"
        )
    return max(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def _start_postgres(sandbox: Sandbox) -> None:
    def record(pid: int) -> None:
        sandbox.pids["postgres"] = pid
        sandbox.save()

    start_postgres(sandbox.path / "pg", sandbox.pg_port, on_started=record)


def start_postgres(pg: Path, port: int, on_started: Callable[[int], None] | None = None) -> int:
    """A PostgreSQL cluster in `pg` (data/, run/ for its socket, postgres.log) on
    127.0.0.1:`port`, with the registry database; returns the postmaster's PID, which
    `on_started` also gets as soon as it runs (so a caller can record it before the database
    is created, and stop it if that fails). Run as the `postgres` OS user when we are root.
    Also used by devtools.droplet for its registry."""
    pg_bin = _pg_bin()
    data, run = pg / "data", pg / "run"
    run.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(pg, "postgres", "postgres")
        shutil.chown(run, "postgres", "postgres")
        _ensure_traversable(pg)
    _run(
        _as_postgres(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        )
    )
    # The superuser is trusted on loopback (the sandbox's stand-in for the droplet's admin
    # access); every slot role must present its password, as on the real droplet.
    hba = data / "pg_hba.conf"
    hba.write_text(
        "local all all trust\n"
        "host all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    options = (
        f"-k {run} -p {port} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200"
    )
    _run(
        _as_postgres(
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(pg / "postgres.log"),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ]
        )
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    if on_started:
        on_started(pid)
    _run(
        [
            "psql",
            "-h",
            str(run),
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            f"CREATE DATABASE {REGISTRY_DB}",
        ]
    )
    return pid


def _ensure_traversable(path: Path) -> None:
    """The postgres user must be able to reach its data directory through our parents."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise StagingError(
                f"sandbox: {parent} is not traversable by the postgres user "
                "(chmod o+x it or choose another --dir)"
            )


def _make_host_root(sandbox: Sandbox, host: SandboxHost) -> None:
    root = host.root
    for sub in (
        "etc/nginx/sites-available",
        "etc/nginx/sites-enabled",
        "etc/systemd/system",
        "srv/staging",
        "var/log/nginx",
        "var/lib/nginx/tmp",
        "run",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    hdir = Path(host.dir)
    (hdir / "home").mkdir()
    tmp = root / "var/lib/nginx/tmp"
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    host.nginx_conf.write_text(f"""# sandbox nginx for {host.name}
worker_processes 1;
pid {root}/run/nginx.pid;
error_log {root}/var/log/nginx/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {root}/var/log/nginx/access.log;
{temp_paths}
    include /etc/nginx/mime.types;
    server_names_hash_bucket_size 128;
    include {root}/etc/nginx/sites-enabled/*.conf;
}}
""")
    bin_dir = hdir / "bin"
    bin_dir.mkdir()
    for name, extra in (("systemctl", ""), ("journalctl", "--journalctl ")):
        wrapper = bin_dir / name
        wrapper.write_text(
            # By path: the dev tooling is not installed, and the session's cwd is its HOME.
            f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(SYSTEMCTL))} "
            f'{extra}--root={shlex.quote(str(root))} "$@"\n'
        )
        wrapper.chmod(0o755)
    # Only a redirect-free, default-server-only nginx until provision-all writes the vhosts.
    (root / "etc/nginx/sites-enabled/.keep").write_text("")


def _start_nginx(sandbox: Sandbox, host: SandboxHost) -> None:
    _run(host.nginx_args())
    pid_file = host.root / "run/nginx.pid"
    sandbox.pids[f"{host.name}:nginx"] = int(_wait_for_file(pid_file).read_text().strip())
    sandbox.save()


def _start_sshd(sandbox: Sandbox, host: SandboxHost) -> None:
    keys = sandbox.path / "keys"
    hdir = Path(host.dir)
    config = hdir / "sshd_config"
    session_path = f"{hdir / 'bin'}:{SANDBOX_PATH}"
    config.write_text(f"""Port {host.ssh_port}
ListenAddress 127.0.0.1
HostKey {keys / "ssh_host_ed25519_key"}
AuthorizedKeysFile {keys / "authorized_keys"}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile {hdir / "sshd.pid"}
Subsystem sftp internal-sftp
SetEnv PATH={session_path} HOME={hdir / "home"} STAGING_SANDBOX_HOST={host.name}
MaxSessions 50
MaxStartups 100:30:200
UseDNS no
""")
    Path("/run/sshd").mkdir(exist_ok=True)
    _run(["/usr/sbin/sshd", "-f", str(config), "-E", str(hdir / "sshd.log")])
    sandbox.pids[f"{host.name}:sshd"] = int(_wait_for_file(hdir / "sshd.pid").read_text())
    sandbox.save()


def _wait_for_file(path: Path, timeout: float = 5.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path
        time.sleep(0.01)
    raise StagingError(f"sandbox: {path} did not appear within {timeout:.0f}s")


def _wait_listening(sandbox: Sandbox, timeout: float = 5.0) -> None:
    targets = [sandbox.pg_port] + [h.ssh_port for h in sandbox.hosts]
    deadline = time.monotonic() + timeout
    for port in targets:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise StagingError(f"sandbox: nothing listens on 127.0.0.1:{port}") from None
                time.sleep(0.02)


def _start_dashboard(sandbox: Sandbox, port: int, timeout: float = 15.0) -> None:
    """The Staging API and Dashboard on 127.0.0.1:`port`, a background process on the sandbox's
    registry and inventory; its PID is recorded so `down` stops it."""
    log = sandbox.path / "dashboard.log"
    command = [sys.executable, "-m", "staging_ops.web", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=PROJECT,  # so `-m` finds staging_ops from any directory
            env={**os.environ, **sandbox.env()},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `invoke sandbox.up`, like the other services
        )
    sandbox.pids["dashboard"] = process.pid
    sandbox.save()
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                raise StagingError(
                    f"sandbox: the dashboard did not start on :{port}: {tail}"
                ) from None
            time.sleep(0.05)


def _write_inventory(sandbox: Sandbox) -> None:
    host_blocks = []
    for h in sandbox.hosts:
        root = h.root
        nginx = " ".join(shlex.quote(a) for a in h.nginx_args())
        host_blocks.append(f"""[hosts.{h.name}]
address = "127.0.0.1"
port = {h.ssh_port}
user = "root"
key_file = "{sandbox.key_path}"
connect_timeout = 10
base_dir = "{root}/srv/staging"
nginx_dir = "{root}/etc/nginx"
systemd_dir = "{root}/etc/systemd/system"
service_user = "{SERVICE_USER}"
tls_certificate = "{sandbox.ca_path}"
tls_certificate_key = "{sandbox.path / "tls" / "justapply.net.key"}"
tls_ca = "{sandbox.ca_path}"
http_port = {h.http_port}
https_port = {h.https_port}
public_port = {h.https_port}
listen_address = "127.0.0.1"
packages = ["nginx", "git", "python3-venv"]
boot_services = []
postgres_port = {sandbox.pg_port}
nginx_test_command = {json.dumps(nginx + " -t -q")}
nginx_reload_command = {json.dumps(nginx + " -s reload")}
""")
    slot_blocks = []
    per_host = -(-sandbox.slots // len(sandbox.hosts))
    for n in range(1, sandbox.slots + 1):
        host = sandbox.hosts[(n - 1) // per_host]
        off = sandbox.slot_port_offset
        role = "staging" if n == 10 else "qa"
        slot_blocks.append(f"""[[slots]]
id = {n}
identifier = "staging-{n}"
subdomain = "staging-{n}.justapply.net"
ui_port = {5000 + n + off}
airflow_port = {8080 + n + off}
database = "job_search_staging_{n}"
role = "{role}"
host = "{host.name}"
""")
    sandbox.inventory_path.write_text(f"""# Generated by `invoke sandbox.up`
[app]
name = "job-search"
repo_url = "{sandbox.repo_path}"
requirements = ["requirements.txt"]
python = "/usr/bin/python3"
ui_command = "{{current}}/.venv/bin/python {{current}}/app.py ui"
airflow_webserver_command = "{{current}}/.venv/bin/python {{current}}/app.py airflow-webserver"
airflow_scheduler_command = "{{current}}/.venv/bin/python {{current}}/app.py airflow-scheduler"
migrate_command = "{{release}}/.venv/bin/python {{release}}/app.py migrate"
verify_timeout = 30
linear_url = "https://linear.app/justapply/issue"
github_repository = "justapply/job-search"

{chr(10).join(host_blocks)}
# Stands in for production: protected, never connected to.
[hosts.production]
address = "167.99.0.168"
protected = true

{chr(10).join(slot_blocks)}""")


def _write_env(sandbox: Sandbox) -> None:
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sandbox.env().items()]
    sandbox.env_path.write_text(
        "# source me: the sandbox's settings for invoke tasks\n" + "\n".join(lines) + "\n"
    )


def _unit_pids(host: SandboxHost) -> dict[str, int]:
    """PIDs of the services the systemctl stand-in started on this host, from the status files
    it keeps (`run/<unit>.status` with `MainPID=`)."""
    found: dict[str, int] = {}
    for status_file in host.root.glob("run/*.service.status"):
        for line in status_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "MainPID" and value.strip().isdigit():
                found[status_file.name.removesuffix(".service.status")] = int(value)
    return found


def _alive(pid: int, sandbox: Sandbox) -> bool:
    """True when `pid` runs and is still ours. PIDs are reused (after a crash, a reboot, or
    just a wrapped PID counter), and `down` re-reads them from state.json and the units' status
    files, so a PID counts only if the process names the sandbox:
    - its command line names a path inside the sandbox directory (postgres -D, nginx -p,
      sshd -f, the slot units' ExecStart under srv/staging); or, for those whose does not,
    - the dashboard (`python -m staging_ops.web`): its environment's STAGING_INVENTORY is the
      sandbox's inventory;
    - a unit the systemctl stand-in started: its environment's PATH has a sandbox host's bin
      directory (the sandbox sshd sets it for the session; the stand-in and its services
      inherit it). An operator's shell that sourced DIR/env matches neither."""
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    # (NULs separate the arguments; nginx and sshd rewrite their titles into one spaced string.)
    if _names_path_inside(sandbox.dir).search(cmdline):
        return True
    try:
        raw = (proc / "environ").read_bytes().decode(errors="replace")
    except OSError:
        return False
    environ = dict(entry.partition("=")[::2] for entry in raw.split("\0") if "=" in entry)
    if "staging_ops.web" in cmdline.split():
        return environ.get("STAGING_INVENTORY") == str(sandbox.inventory_path)
    host_bins = {str(Path(h.dir) / "bin") for h in sandbox.hosts}
    return not host_bins.isdisjoint(environ.get("PATH", "").split(":"))


def _names_path_inside(directory: str) -> re.Pattern[str]:
    """Finds a path inside `directory` in a command line: as a word of its own or an option's
    value (`--root=DIR/...`). With a path boundary on both sides: /tmp/sbx/x is inside
    /tmp/sbx; /tmp/sbx3/x and /a/tmp/sbx/x are not."""
    return re.compile(r"(?:^|[\s=:'\"])" + re.escape(directory.rstrip("/") + "/"))
