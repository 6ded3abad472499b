"""A sandbox host's OpenSSH server and the keys it and the operator use."""

from __future__ import annotations

from pathlib import Path

from devtools import envfile
from devtools.sandbox.processes import run, sandbox_command, wait_for_file
from devtools.sandbox.state import Sandbox, SandboxHost

SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def make_keys(sandbox: Sandbox) -> None:
    keys = sandbox.path / "keys"
    # Readable directory (the private keys are 0600 themselves): sshd reads authorized_keys as
    # the user logging in, and sandbox hosts may log in as a non-root sudoer too.
    keys.mkdir(mode=0o755)
    for name in ("id_ed25519", "ssh_host_ed25519_key"):
        envfile.ssh_keygen(keys / name, f"staging-sandbox-{name}", "sandbox")
    (keys / "authorized_keys").write_text((keys / "id_ed25519.pub").read_text())
    (keys / "authorized_keys").chmod(0o644)


def start_sshd(sandbox: Sandbox, host: SandboxHost) -> None:
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
    run(
        sandbox_command(
            sandbox, ["/usr/sbin/sshd", "-f", str(config), "-E", str(hdir / "sshd.log")]
        )
    )
    sandbox.pids[f"{host.name}:sshd"] = int(wait_for_file(hdir / "sshd.pid").read_text())
    sandbox.save()
