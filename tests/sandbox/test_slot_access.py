"""`access = "password"` against a real sandbox droplet (its real nginx, sshd, PostgreSQL and
units): only the users of STAGING_SLOT_CREDENTIALS reach a slot, the ACME path and robots.txt
stay open, every answer says noindex, the toolkit's own checks log in, a new password is an
nginx reload and nothing else, and no password or hash is ever printed.

One sandbox of its own (2 slots), so that the session sandbox the other tests share never
asks for a password. The tests run in file order: the first two leave the host locked."""

from __future__ import annotations

import grp
import json
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import sandbox as sandbox_mod
from devtools.probe import Probe
from staging_ops import slot_access
from staging_ops.health import check_slots, slot_session
from staging_ops.inventory import load_inventory
from tests.conftest import run_invoke, sandbox_ports

SLOT = 1
OPS, TESTER, NEW_TESTER = "ops-Pa55word", "tester-0ld-pw", "tester-N3w-pw"
CREDENTIALS = f"ops:{OPS},tester:{TESTER}"
ROBOTS = "User-agent: *\nDisallow: /\n"
NOINDEX = "noindex, nofollow"


class Box:
    """The sandbox, its inventory with `access = "password"`, and how to reach its slots."""

    def __init__(self, sandbox: sandbox_mod.Sandbox, inventory: Path):
        self.sandbox = sandbox
        self.inventory = inventory
        self.host = sandbox.hosts[0]
        self.htpasswd = self.host.root / "etc/nginx" / slot_access.HTPASSWD_NAME

    def env(self, credentials: str | None = CREDENTIALS) -> dict[str, str]:
        env = {**self.sandbox.env(), "STAGING_INVENTORY": str(self.inventory)}
        env[slot_access.ENV] = credentials or ""  # "": unset, as the loader reads it
        return env

    def invoke(self, *args: str, credentials: str | None = CREDENTIALS):
        return run_invoke(*args, env=self.env(credentials), timeout=180)

    def get(self, path: str, auth=None, slot: int = SLOT, https: bool = True):
        """GET through nginx as a browser would reach the slot (no login of our own)."""
        port = self.host.https_port if https else self.host.http_port
        # The slot's name as SNI too (slot_session), the sandbox's CA trusted.
        with slot_session(load_inventory(self.inventory).slots[slot]) as session:
            return session.get(
                f"{'https' if https else 'http'}://127.0.0.1:{port}{path}",
                headers={"Host": f"staging-{slot}.justapply.net"},
                auth=auth,
                verify=str(self.sandbox.ca_path),
                allow_redirects=False,
                timeout=10,
            )

    def managed(self) -> dict[str, int]:
        """mtime of every vhost and unit file: what a refused run must not touch."""
        root = self.host.root
        paths = [*root.glob("etc/nginx/sites-available/*"), *root.glob("etc/systemd/system/*")]
        return {str(p): p.lstat().st_mtime_ns for p in paths if p.is_file()}

    def workers(self) -> set[str]:
        master = self.sandbox.pids["h1:nginx"]
        return set(Path(f"/proc/{master}/task/{master}/children").read_text().split())

    def provision(self, *args: str, credentials: str | None = CREDENTIALS):
        """provision-all, then wait for nginx's reload to finish: `nginx -s reload` (as
        `systemctl reload nginx`) only signals the master, and until the old workers have
        gone, a new connection may still land on one with the old configuration."""
        before = self.workers()
        result = self.invoke("provision-all", *args, credentials=credentials)
        deadline = time.monotonic() + 10
        reloaded = "reload" in result.stdout
        while reloaded and before & self.workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        return result

    def logs(self) -> str:
        """Every log of the host: nginx's, sshd's, the units' journal."""
        files = [Path(self.host.dir) / "sshd.log", *(self.host.root / "var/log").rglob("*")]
        return "".join(p.read_text(errors="replace") for p in files if p.is_file())


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-access-"))
    directory.chmod(0o755)  # nginx's workers (nobody) read the basic-auth file under it
    try:
        sandbox = sandbox_mod.up(directory, hosts=1, slots=2, ports=sandbox_ports(600))
        text = sandbox.inventory_path.read_text()
        assert 'listen_address = "127.0.0.1"\n' in text
        locked = directory / "locked.toml"
        locked.write_text(
            text.replace(
                'listen_address = "127.0.0.1"\n',
                'listen_address = "127.0.0.1"\naccess = "password"\n',
            )
        )
        yield Box(sandbox, locked)
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def _one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_public_host_turned_password_without_credentials_is_refused_untouched(box) -> None:
    """The first provision of a password host needs the credentials: without them, exit 2
    before anything is written (the vhosts stay public, no file appears)."""
    public = run_invoke("provision-all", env=box.sandbox.env())
    assert public.returncode == 0, public.stdout + public.stderr
    deployed = run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", "main", "--task", "JA-1", env=box.sandbox.env()
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert box.get("/api/version").status_code == 200
    before = box.managed()
    refused = box.invoke("provision-all", credentials=None)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "STAGING_SLOT_CREDENTIALS is not set" in refused.stdout
    assert "nothing was changed" in refused.stdout
    assert box.managed() == before
    assert not box.htpasswd.exists()
    assert box.get("/api/version").status_code == 200
    # Malformed: one line, before any host is asked, the value never echoed.
    for value in ("hunter2-is-my-password", "ops:x,hunter2-is-my-password"):
        bad = box.invoke("provision-all", credentials=value)
        assert bad.returncode == 2
        line = _one_line(bad)
        assert line.startswith("error: STAGING_SLOT_CREDENTIALS: entry")
        assert "hunter2" not in bad.stdout + bad.stderr
    assert box.managed() == before


def test_provision_locks_every_slot_url(box) -> None:
    result = box.provision()
    assert result.returncode == 0, result.stdout + result.stderr
    st = box.htpasswd.stat()
    # root:nginx's group, 0640: nginx's workers read it, no one else.
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_uid, st.st_gid) == (0, grp.getgrnam("nogroup").gr_gid)
    users = slot_access.htpasswd_entries(box.htpasswd.read_text())
    assert list(users) == ["ops", "tester"]
    assert users["ops"].startswith("$6$") and slot_access.hash_matches(users["ops"], OPS)
    assert OPS not in box.htpasswd.read_text()

    for slot in (1, 2):  # deployed (200 behind the login) and not (502 behind it)
        anonymous = box.get("/api/version", slot=slot)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == f'Basic realm="staging-{slot}"'
        assert box.get("/api/version", ("ops", "wrong"), slot).status_code == 401
        assert box.get("/api/version", ("nobody", OPS), slot).status_code == 401
        assert box.get("/airflow/health", slot=slot).status_code == 401
    assert box.get("/api/version", ("ops", OPS)).status_code == 200
    assert box.get("/api/version", ("tester", TESTER)).json()["branch"] == "main"
    assert box.get("/api/version", ("ops", OPS), slot=2).status_code == 502  # not deployed

    # What stays open: robots.txt (on both ports) and the ACME challenge path.
    for https in (True, False):
        robots = box.get("/robots.txt", https=https)
        assert (robots.status_code, robots.text) == (200, ROBOTS)
        assert robots.headers["Content-Type"].startswith("text/plain")
        challenge = box.get("/.well-known/acme-challenge/token", https=https)
        assert challenge.status_code == 404  # open: no such token, and no login asked
    token = box.host.root / "srv/staging/acme/.well-known/acme-challenge/t0ken"
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text("t0ken.thumbprint")
    token.chmod(0o644)
    assert box.get("/.well-known/acme-challenge/t0ken", https=False).text == "t0ken.thumbprint"

    # Every answer says noindex: 200, 401, 404, 502, robots.txt, the HTTP redirect.
    answers = [
        box.get("/api/version", ("ops", OPS)),
        box.get("/api/version"),
        box.get("/api/version", ("ops", OPS), slot=2),
        box.get("/robots.txt"),
        box.get("/.well-known/acme-challenge/none", https=False),
        box.get("/api/version", https=False),
    ]
    assert [a.status_code for a in answers] == [200, 401, 502, 200, 404, 301]
    assert all(a.headers.get("X-Robots-Tag") == NOINDEX for a in answers)


def test_a_second_run_changes_nothing(box) -> None:
    result = box.invoke("provision-all", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["changed"] == 0, report
    assert report["hosts"][0]["commands"] == 1  # the facts probe alone
    # Without the credentials, the droplet's file is kept as it is: nothing changes either.
    kept = box.invoke("provision-all", "--json", credentials=None)
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["changed"] == 0


def test_deploy_status_verify_and_the_dashboards_checks_log_in(box, monkeypatch) -> None:
    deployed = box.invoke("deploy", "--slot", str(SLOT), "--branch", "feat-x", "--task", "JA-1")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    verified = box.invoke("verify", "--slot", str(SLOT))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    status = box.invoke("status", "--json")
    assert status.returncode == 0, status.stderr
    row = next(r for r in json.loads(status.stdout) if r["slot"] == SLOT)
    assert (row["ui"], row["airflow"], row["drift"]["state"]) == ("up", "up", "ok"), row
    # The dashboard's checks (claims.service -> health.check_slots), in this process.
    monkeypatch.setenv(slot_access.ENV, CREDENTIALS)
    inventory = load_inventory(box.inventory)
    health = check_slots(inventory, [inventory.slots[SLOT]])
    assert health[SLOT].ui == "up" and health[SLOT].served
    monkeypatch.setenv(slot_access.ENV, "")
    assert check_slots(inventory, [inventory.slots[SLOT]])[SLOT].ui == "down"  # a 401
    # Without credentials, what would only see 401s refuses at once, in one line.
    for args in (
        ("verify", "--slot", "1"),
        ("status",),
        ("deploy", "--slot", "1", "--branch", "main"),
    ):
        refused = box.invoke(*args, credentials=None)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert "set STAGING_SLOT_CREDENTIALS" in _one_line(refused)
    assert box.invoke("status", "--no-health", credentials=None).returncode == 0


def test_a_new_password_is_an_nginx_reload_and_drops_no_request(box, monkeypatch) -> None:
    monkeypatch.setenv(slot_access.ENV, CREDENTIALS)  # the probe logs in as ops
    inventory = load_inventory(box.inventory)
    master = box.sandbox.pids["h1:nginx"]
    workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    ops_hash = slot_access.htpasswd_entries(box.htpasswd.read_text())["ops"]
    with Probe(inventory.host_of(inventory.slots[SLOT]), inventory.slots[SLOT]) as probe:
        result = box.provision("--json", credentials=f"ops:{OPS},tester:{NEW_TESTER}")
        probe.stop(after=1)
    assert result.returncode == 0, result.stderr
    changes = [(c["step"], c["action"]) for c in json.loads(result.stdout)["hosts"][0]["changes"]]
    assert changes == [("nginx files", "update"), ("services", "reload")]  # no unit touched
    assert probe.answers and probe.failed == 0, probe.counts()
    assert Path(f"/proc/{master}/task/{master}/children").read_text().split() != workers
    assert slot_access.htpasswd_entries(box.htpasswd.read_text())["ops"] == ops_hash
    assert box.get("/api/version", ("tester", TESTER)).status_code == 401
    assert box.get("/api/version", ("tester", NEW_TESTER)).status_code == 200


def test_no_password_or_hash_is_ever_shown(box) -> None:
    """render, --check --diff, a real run's --diff and JSON, the host's logs (nginx, sshd,
    the units'): users show, never a password or a hash."""
    hashes = list(slot_access.htpasswd_entries(box.htpasswd.read_text()).values())
    secrets = [OPS, TESTER, NEW_TESTER, *hashes, *(h.rsplit("$", 1)[1] for h in hashes)]
    rotated = f"ops:{OPS},tester:another-pw-1"
    outputs = [
        box.invoke("render", credentials=rotated),
        box.invoke("provision-all", "--check", "--diff", credentials=rotated),
        box.invoke("provision-all", "--diff", credentials=rotated),
        box.invoke("provision-all", "--json", credentials=CREDENTIALS),
    ]
    assert all(o.returncode == 0 for o in outputs), [o.stderr for o in outputs]
    rendered = outputs[0].stdout
    assert "ops:********\ntester:********" in rendered
    assert "auth_basic_user_file" in rendered and "X-Robots-Tag" in rendered
    assert "staging-slots.htpasswd" in outputs[1].stdout  # the change is named...
    shown = "".join(o.stdout + o.stderr for o in outputs) + box.logs()
    now = list(slot_access.htpasswd_entries(box.htpasswd.read_text()).values())
    for secret in [*secrets, "another-pw-1", *now]:
        assert secret not in shown  # ...its content never is


def test_an_unknown_access_value_is_one_line(box, tmp_path) -> None:
    bad = tmp_path / "inventory.toml"
    bad.write_text(box.inventory.read_text().replace('access = "password"', 'access = "vpn"'))
    result = run_invoke("provision-all", env={**box.env(), "STAGING_INVENTORY": str(bad)})
    assert result.returncode == 2
    assert _one_line(result).endswith("field 'access': 'vpn' is not one of public, password")


def test_a_missing_nginx_group_is_refused_untouched(box, tmp_path) -> None:
    bad = tmp_path / "inventory.toml"
    bad.write_text(
        box.inventory.read_text().replace('nginx_group = "nogroup"', 'nginx_group = "no-such-grp"')
    )
    before, content = box.managed(), box.htpasswd.read_bytes()
    result = run_invoke(
        "provision-all", "--slots", "1", env={**box.env(), "STAGING_INVENTORY": str(bad)}
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "nginx_group 'no-such-grp'" in result.stdout and "nothing was changed" in result.stdout
    assert box.managed() == before and box.htpasswd.read_bytes() == content


def test_a_host_made_public_again_opens_its_slots_and_drops_the_file(box) -> None:
    result = run_invoke("provision-all", "--json", env=box.sandbox.env())
    assert result.returncode == 0, result.stderr
    changes = {(c["target"], c["action"]) for c in json.loads(result.stdout)["hosts"][0]["changes"]}
    assert (str(box.htpasswd), "remove") in changes
    assert not box.htpasswd.exists()
    deadline = time.monotonic() + 10  # the reload's old workers may still answer a moment
    while box.get("/api/version").status_code == 401 and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = box.get("/api/version")
    assert answer.status_code == 200 and answer.headers["X-Robots-Tag"] == NOINDEX
    assert box.get("/robots.txt").text == ROBOTS
