"""Rendered configs, checked by the real tools: nginx -t, systemd-analyze verify, and real
requests through a real nginx with a Host header."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools.sandbox.host_root import self_signed
from staging_ops import render
from staging_ops.health import check_slots, slot_get
from staging_ops.inventory import Inventory, load_inventory
from tests.conftest import DEFAULT_INVENTORY, free_port, run_invoke


def _nginx_tree(inventory: Inventory, root: Path, cert: Path, key: Path) -> list[str]:
    """Write every rendered nginx file for all slots under `root`, as the droplet would have
    them, plus a main nginx.conf; returns the nginx command prefix for that tree."""
    host = inventory.target_hosts()[0]
    host = dataclasses.replace(
        host,
        nginx_dir=str(root / "etc/nginx"),
        tls_certificate=str(cert),
        tls_certificate_key=str(key),
    )
    files = render.render_host(inventory, host)
    enabled = root / "etc/nginx/sites-enabled"
    enabled.mkdir(parents=True)
    if host.acme:
        # nginx loads an ACME host's certificate through links provision-all keeps.
        for link, target in zip(render.served_tls_paths(host), (cert, key), strict=True):
            Path(link).parent.mkdir(parents=True, exist_ok=True)
            Path(link).symlink_to(target)
    for path, rendered in files.items():
        if rendered.kind != "nginx":
            continue
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(rendered.content)
        if path.startswith(host.sites_available):
            (enabled / Path(path).name).symlink_to(path)
    tmp = root / "tmp"
    tmp.mkdir()
    conf = root / "nginx.conf"
    conf.write_text(f"""pid {root}/nginx.pid;
error_log {root}/error.log;
events {{}}
http {{
  access_log {root}/access.log;
  client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;
  uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
  server_names_hash_bucket_size 128;
  include {enabled}/*.conf;
}}
""")
    return ["nginx", "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")]


@pytest.fixture(scope="module")
def certificate() -> Iterator[tuple[Path, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="render-cert-"))
    cert, key = directory / "c.pem", directory / "k.pem"
    self_signed(cert, key, days=2, names="DNS:*.justapply.net")
    yield cert, key
    shutil.rmtree(directory)


def test_whole_nginx_tree_for_all_slots_passes_nginx_t(tmp_path, certificate):
    inventory = load_inventory(DEFAULT_INVENTORY)
    nginx = _nginx_tree(inventory, tmp_path, *certificate)
    assert len(list((tmp_path / "etc/nginx/sites-enabled").iterdir())) == 11
    result = subprocess.run([*nginx, "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_broken_vhost_fails_nginx_t(tmp_path, certificate):
    inventory = load_inventory(DEFAULT_INVENTORY)
    nginx = _nginx_tree(inventory, tmp_path, *certificate)
    vhost = tmp_path / "etc/nginx/sites-available/staging-4.justapply.net.conf"
    vhost.write_text(vhost.read_text().replace("proxy_pass", "proxy_pas", 1))
    result = subprocess.run([*nginx, "-t"], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "proxy_pas" in result.stderr


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    inventory = load_inventory(DEFAULT_INVENTORY)
    host = dataclasses.replace(
        inventory.target_hosts()[0],
        base_dir=str(tmp_path / "srv"),
        systemd_dir=str(tmp_path / "units"),
        service_user="root",
    )
    slot = inventory.slots[4]
    # A real release layout, so that verify can check the commands are executable.
    for directory in ("current", "candidate"):
        bin_dir = tmp_path / "srv" / slot.identifier / directory / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        for tool in ("gunicorn", "airflow"):
            (bin_dir / tool).write_text("#!/bin/sh\n")
            (bin_dir / tool).chmod(0o755)
    (tmp_path / "srv" / slot.identifier / "shared").mkdir()
    (tmp_path / "srv" / slot.identifier / "shared" / "env").write_text("A=1\n")
    (tmp_path / "srv" / slot.identifier / "shared" / "candidate.env").write_text("A=2\n")
    units = render.render_units(inventory.app, host)
    assert len(units) == 6  # three slot templates, two candidates, the worker template
    (tmp_path / "units").mkdir()
    for unit in units:
        Path(unit.path).write_text(unit.content)
        candidate = "-candidate@" in unit.path
        directory = "candidate" if candidate else "current"
        assert "User=root" in unit.content
        assert ("Restart=no" if candidate else "Restart=on-failure") in unit.content
        # The command and the environment are the release's: bin/run-process reads both.
        runner = f"ExecStart=/bin/sh {host.base_dir}/bin/run-process {host.base_dir} %i"
        assert runner in unit.content and unit.content.count("ExecStart=") == 1
        assert f" {directory}\n" in unit.content.split(runner, 1)[1]
        assert "EnvironmentFile" not in unit.content
        assert ("WantedBy=" in unit.content) is not candidate
        # The shipped inventory's memory_max_mb, candidates included.
        assert "\nMemoryHigh=1382M\nMemoryMax=1536M\n" in unit.content
    for name in [
        *render.slot_units(inventory.app, slot),
        *render.candidate_units(inventory.app, slot),
        # The worker template's instances are `<slot>:<type>` (as systemd's own
        # systemd-backlight@backlight:acpi_video0); systemd-analyze's file argument cannot
        # carry the colon, the template's content is the same for any instance.
        render.process_unit(inventory.app, slot, "dag-processor").replace(":", "-"),
    ]:
        result = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / "units" / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "" and result.stdout.strip() == ""


def test_memory_limit_follows_the_inventory():
    """[app] memory_max_mb limits every process unit (MemoryMax=, MemoryHigh= at 90 %); without
    it the units carry no limit (systemd-analyze verify above checks the lines are valid)."""
    inventory = load_inventory(DEFAULT_INVENTORY)
    host = inventory.target_hosts()[0]
    for max_mb, lines in ((1000, ["MemoryHigh=900M", "MemoryMax=1000M"]), (None, [])):
        app = dataclasses.replace(inventory.app, memory_max_mb=max_mb)
        units = render.render_units(app, host)
        assert len(units) == 6
        for unit in units:
            found = [line for line in unit.content.splitlines() if line.startswith("Memory")]
            assert found == lines, unit.path


def test_units_run_as_non_root_service_user_with_inventory_commands():
    inventory = load_inventory(DEFAULT_INVENTORY)
    host = inventory.target_hosts()[0]
    files = render.render_host(inventory, host, [inventory.slots[4]])
    ui = files["/etc/systemd/system/job-search-ui@.service"]
    assert "User=staging\n" in ui.content
    assert (
        "ExecStart=/bin/sh /srv/staging/bin/run-process /srv/staging %i:web current" in ui.content
    )
    worker = files["/etc/systemd/system/job-search-worker@.service"]
    assert (
        "ExecStart=/bin/sh /srv/staging/bin/run-process /srv/staging %i current" in worker.content
    )
    # A release without a Procfile runs the inventory's commands, from the host's table.
    table = files["/srv/staging/bin/app.processes"].content
    assert "web\t${RELEASE_DIR}/.venv/bin/gunicorn --bind 127.0.0.1:${UI_PORT} --workers 2" in table
    assert files["/srv/staging/bin/run-process"].mode == 0o755


def test_env_file_is_secret_and_redacted_without_password():
    inventory = load_inventory(DEFAULT_INVENTORY)
    host, slot = inventory.target_hosts()[0], inventory.slots[4]
    env = render.render_slot_env(host, slot, None)
    assert env.mode == 0o600 and env.secret and env.owner == "staging"
    assert (
        "DATABASE_URL=postgresql://job_search_staging_4:********@127.0.0.1:5432/"
        "job_search_staging_4" in env.content
    )
    assert "AIRFLOW__WEBSERVER__BASE_URL=https://staging-4.justapply.net/airflow" in env.content
    with_pw = render.render_slot_env(host, slot, "p@ss/word")
    assert "job_search_staging_4:p%40ss%2Fword@" in with_pw.content


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{self.server.server_port} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _free_with_candidate(offset: int) -> int:
    """A free port whose candidate port (+ offset) is free as well."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        return port


def test_real_nginx_routes_by_host_header(tmp_path, certificate):
    http_port, https_port = free_port(), free_port()
    inventory = load_inventory(DEFAULT_INVENTORY)
    # Slot 4's listeners get free ports, so that this test never meets a sandbox (or anything
    # else) using the real or shifted ones; the other slots only appear in nginx's config.
    slots = dict(inventory.slots)
    # nginx falls through to each port's candidate (+ the offset): slot 5's must be free too,
    # or a sandbox of another test run (whose slot ports sit 1000 apart) answers for it.
    host = inventory.target_hosts()[0]
    offset = host.candidate_port_offset
    slots[4] = dataclasses.replace(slots[4], ui_port=free_port(), airflow_port=free_port())
    slots[5] = dataclasses.replace(
        slots[5], ui_port=_free_with_candidate(offset), airflow_port=_free_with_candidate(offset)
    )
    # Routing alone: the shipped inventory's basic auth is tests/sandbox/test_slot_access.py's.
    host = dataclasses.replace(host, http_port=http_port, https_port=https_port, access="public")
    inventory = dataclasses.replace(inventory, slots=slots, hosts={host.name: host})
    nginx = _nginx_tree(inventory, tmp_path, *certificate)
    servers = [
        http.server.ThreadingHTTPServer(("127.0.0.1", port), _Echo)
        for port in (slots[4].ui_port, slots[4].airflow_port)
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    subprocess.run(nginx, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        # Through nginx as a browser would: SNI and Host are the slot's name, TLS verified.
        pinned = dataclasses.replace(host, address="127.0.0.1", tls_ca=str(certificate[0]))
        ui = slot_get(pinned, slots[4], "/api/version")
        assert ui.text == f"{slots[4].ui_port} /api/version"
        # A public slot is no more for search engines than a password one: noindex on every
        # answer (the app's, nginx's own 502) and a robots.txt that disallows all.
        robots = slot_get(pinned, slots[4], "/robots.txt")
        assert robots.text == "User-agent: *\nDisallow: /\n"
        for answer in (ui, robots, slot_get(pinned, slots[5], "/")):
            assert answer.headers["X-Robots-Tag"] == "noindex, nofollow"
        airflow = slot_get(pinned, slots[4], "/airflow/health")
        assert airflow.text == f"{slots[4].airflow_port} /airflow/health"
        checks = check_slots(inventory_for(pinned, slots), [slots[4], slots[5]])
        assert {
            n: {"ui": c.ui, "served": c.served, "airflow": c.airflow} for n, c in checks.items()
        } == {
            4: {"ui": "up", "served": None, "airflow": "up"},  # the echo is no version JSON
            5: {"ui": "down", "served": None, "airflow": "down"},
        }
        # The certificate nginx serves for each slot is checked too: this one lives 2 days.
        assert checks[4].certificate.problem == "certificate expires in 2d"
        headers = {"Host": "staging-4.justapply.net"}
        # HTTP redirects to HTTPS, except ACME challenges.
        plain = requests.get(
            f"http://127.0.0.1:{http_port}/x?y=1", headers=headers, allow_redirects=False, timeout=5
        )
        assert plain.status_code == 301
        assert plain.headers["X-Robots-Tag"] == "noindex, nofollow"
        assert plain.headers["Location"] == f"https://staging-4.justapply.net:{https_port}/x?y=1"
        acme = requests.get(
            f"http://127.0.0.1:{http_port}/.well-known/acme-challenge/t",
            headers=headers,
            allow_redirects=False,
            timeout=5,
        )
        assert acme.status_code == 404
        # An unknown Host is refused on both ports.
        with pytest.raises(requests.ConnectionError):
            requests.get(
                f"http://127.0.0.1:{http_port}/", headers={"Host": "evil.example"}, timeout=5
            )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", https_port), timeout=5) as raw,
            pytest.raises(ssl.SSLError),
        ):
            context.wrap_socket(raw, server_hostname="evil.example")
    finally:
        subprocess.run([*nginx, "-s", "stop"], check=False, capture_output=True)
        for server in servers:
            server.shutdown()


def _free_pair(offset_from: int = 0) -> tuple[int, int, int]:
    """Two free ports a fixed offset apart for each of UI and Airflow: (ui, airflow, offset)."""
    while True:
        ui, candidate, airflow = free_port(), free_port(), free_port()
        offset = candidate - ui
        if offset > 0 and 0 < airflow + offset <= 65535 and len({ui, candidate, airflow}) == 3:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", airflow + offset))
                except OSError:
                    continue
            return ui, airflow, offset


def test_real_nginx_falls_through_to_the_candidate_while_the_main_instance_is_down(
    tmp_path, certificate
):
    """The hand-over's premise: with the main instance down, every request is answered by the
    candidate (nginx's backup), without a reload; with it up again, by the main instance."""
    ui, airflow, offset = _free_pair()
    inventory = load_inventory(DEFAULT_INVENTORY)
    slots = dict(inventory.slots)
    slots[4] = dataclasses.replace(slots[4], ui_port=ui, airflow_port=airflow)
    host = dataclasses.replace(
        inventory.target_hosts()[0],
        http_port=free_port(),
        https_port=free_port(),
        candidate_port_offset=offset,
        access="public",  # the hand-over alone; basic auth: tests/sandbox/test_slot_access.py
    )
    inventory = dataclasses.replace(inventory, slots={4: slots[4]}, hosts={host.name: host})
    nginx = _nginx_tree(inventory, tmp_path, *certificate)
    candidates = [
        http.server.ThreadingHTTPServer(("127.0.0.1", port), _Echo)
        for port in slots[4].candidate_ports(host)
    ]
    for server in candidates:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    subprocess.run(nginx, check=True, capture_output=True)
    main = None
    try:
        pinned = dataclasses.replace(host, address="127.0.0.1", tls_ca=str(certificate[0]))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", host.https_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        for _ in range(20):
            assert slot_get(pinned, slots[4], "/api/version").text == f"{ui + offset} /api/version"
        assert slot_get(pinned, slots[4], "/airflow/x").text == f"{airflow + offset} /airflow/x"
        main = http.server.ThreadingHTTPServer(("127.0.0.1", ui), _Echo)
        threading.Thread(target=main.serve_forever, daemon=True).start()
        # max_fails=0: the main instance is asked first again at once, not after fail_timeout.
        for _ in range(20):
            assert slot_get(pinned, slots[4], "/api/version").text == f"{ui} /api/version"
    finally:
        subprocess.run([*nginx, "-s", "stop"], check=False, capture_output=True)
        for server in [*candidates, *([main] if main else [])]:
            server.shutdown()


def inventory_for(host, slots):
    return Inventory(
        DEFAULT_INVENTORY, load_inventory(DEFAULT_INVENTORY).app, {host.name: host}, slots
    )


def test_invoke_render_writes_files(tmp_path):
    result = run_invoke(
        "render",
        "--slot",
        "4",
        "--out",
        str(tmp_path),
        env={"STAGING_INVENTORY": str(DEFAULT_INVENTORY)},
    )
    assert result.returncode == 0, result.stderr
    vhost = tmp_path / "etc/nginx/sites-available/staging-4.justapply.net.conf"
    text = vhost.read_text()
    assert "proxy_pass http://staging_4_ui;" in text
    assert "server 127.0.0.1:5004 max_fails=0;" in text
    assert "server 127.0.0.1:6004 backup max_fails=0;" in text
    assert (tmp_path / "srv/staging/staging-4/shared/candidate.env").read_text().count("6004") == 2
    env = tmp_path / "srv/staging/staging-4/shared/env"
    assert env.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "srv/staging/staging-5").exists()


def _listen_lines(inventory: Inventory, host) -> list[str]:
    files = render.render_host(inventory, host)
    return [
        line.strip()
        for rendered in files.values()
        if rendered.kind == "nginx"
        for line in rendered.content.splitlines()
        if line.strip().startswith("listen ")
    ]


def test_default_inventory_listens_on_all_addresses():
    """A real droplet serves the internet: no address in `listen` unless the inventory names
    one."""
    inventory = load_inventory(DEFAULT_INVENTORY)
    lines = _listen_lines(inventory, inventory.target_hosts()[0])
    assert len(lines) == 2 + 2 * len(inventory.slots)
    assert set(lines) == {
        "listen 80 default_server;",
        "listen 443 ssl default_server;",
        "listen 80;",
        "listen 443 ssl http2;",
    }


@pytest.mark.parametrize(("address", "spelled"), [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")])
def test_listen_address_goes_into_every_listen(tmp_path, certificate, address, spelled):
    inventory = load_inventory(DEFAULT_INVENTORY)
    host = dataclasses.replace(inventory.target_hosts()[0], listen_address=address)
    lines = _listen_lines(inventory, host)
    assert len(lines) == 2 + 2 * len(inventory.slots)
    assert all(line.startswith(f"listen {spelled}:") for line in lines), lines
    inventory = dataclasses.replace(inventory, hosts={host.name: host})
    nginx = _nginx_tree(inventory, tmp_path, *certificate)
    result = subprocess.run([*nginx, "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_only_a_password_host_asks_for_a_login_and_keeps_it_from_the_app():
    """The shipped inventory's droplet asks for a login on every slot URL; a public host's
    vhosts have no login and no basic-auth file."""
    inventory = load_inventory(DEFAULT_INVENTORY)
    host = inventory.target_hosts()[0]
    assert host.access == "password"
    public_host = dataclasses.replace(host, access="public")
    slot = inventory.slots[4]
    locked = render.render_vhost(inventory, host, slot).content
    public = render.render_vhost(inventory, public_host, slot).content
    assert "auth_basic_user_file /etc/nginx/staging-slots.htpasswd;" in locked
    assert 'proxy_set_header Authorization "";' in locked  # the app never sees the password
    assert "auth_basic_user_file" not in public and "Authorization" not in public
    for text in (locked, public):
        assert text.count('add_header X-Robots-Tag "noindex, nofollow" always;') == 2
        assert text.count("location = /robots.txt") == 2
        assert text.count("}\n\nserver {\n") == 2  # each server block on its own
    htpasswd = render.render_host(inventory, host)["/etc/nginx/staging-slots.htpasswd"]
    assert (htpasswd.mode, htpasswd.owner, htpasswd.group) == (0o640, None, "www-data")
    assert htpasswd.secret and htpasswd.kind == "nginx"
    assert "/etc/nginx/staging-slots.htpasswd" not in render.render_host(inventory, public_host)
