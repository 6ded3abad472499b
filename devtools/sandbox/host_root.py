"""A sandbox host's root directory (what the droplet's /etc, /srv and /var would be), its nginx
(with a self-signed *.justapply.net certificate) and the systemctl/journalctl on its PATH."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from devtools.sandbox.processes import run, sandbox_command, wait_for_file
from devtools.sandbox.state import Sandbox, SandboxHost

SYSTEMCTL = Path(__file__).resolve().parent / "systemctl.py"


def make_certificate(sandbox: Sandbox) -> None:
    tls = sandbox.path / "tls"
    tls.mkdir()
    names = "DNS:*.justapply.net,DNS:justapply.net"
    self_signed(sandbox.ca_path, tls / "justapply.net.key", days=30, names=names)


def self_signed(cert: Path, key: Path, *, days: int, names: str) -> None:
    """A self-signed EC certificate for *.justapply.net; `names` is its subjectAltName."""
    run(
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
            str(days),
            "-subj",
            "/CN=*.justapply.net",
            "-addext",
            f"subjectAltName={names}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ]
    )


def make_host_root(sandbox: Sandbox, host: SandboxHost) -> None:
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
    # The stand-in has no `show --value` (it exits 1 on the option): its systemctl refuses it
    # without starting Python, as the stand-in would, in a millisecond instead of 50.
    no_value = 'for a; do [ "$a" != --value ] || exit 1; done\n'
    for name, extra, prelude in (
        ("systemctl", "", no_value),
        ("journalctl", "--journalctl ", ""),
    ):
        wrapper = bin_dir / name
        wrapper.write_text(
            # By path: the dev tooling is not installed, and the session's cwd is its HOME.
            # -S: no site (systemctl.py finds its one package itself), a third of each call.
            f"#!/bin/sh\n{prelude}"
            f"exec {shlex.quote(sys.executable)} -S {shlex.quote(str(SYSTEMCTL))} "
            f'{extra}--root={shlex.quote(str(root))} "$@"\n'
        )
        wrapper.chmod(0o755)
    # Only a redirect-free, default-server-only nginx until provision-all writes the vhosts.
    (root / "etc/nginx/sites-enabled/.keep").write_text("")


def start_nginx(sandbox: Sandbox, host: SandboxHost) -> None:
    run(sandbox_command(sandbox, host.nginx_args()))
    pid_file = host.root / "run/nginx.pid"
    sandbox.pids[f"{host.name}:nginx"] = int(wait_for_file(pid_file).read_text().strip())
    sandbox.save()
