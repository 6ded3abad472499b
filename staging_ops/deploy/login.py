"""`invoke airflow-login`: how an operator signs in to a slot's Airflow: its URL, the slot's
admin and the password provision-all keeps in the slot's env file on the droplet (never in the
repository; derived from the slot's database password, render.airflow_admin_password)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from staging_ops import remote
from staging_ops.errors import StagingError
from staging_ops.inventory import Inventory, Slot
from staging_ops.jsondoc import JSONObject
from staging_ops.remote.scripts import home, script_command
from staging_ops.render import public_url
from staging_ops.slot_layout import SlotPaths

NOT_PROVISIONED = 3  # slot-airflow-login.sh: the env file names no admin


@dataclass(frozen=True)
class AirflowLogin:
    url: str
    user: str
    password: str

    def as_json(self) -> JSONObject:
        return asdict(self)


@home("slot-airflow-login.sh")
def login_command(env_file: str) -> str:
    """The slot's Airflow admin from its env file (parse_login reads the answer)."""
    return script_command("slot-airflow-login.sh", env_file)


def airflow_login(inventory: Inventory, slot: Slot) -> AirflowLogin:
    """The slot's Airflow URL and admin, read from the droplet in one command."""
    host = inventory.host_of(slot)
    session = remote.connect(host)
    try:
        command = login_command(SlotPaths(host, slot).env_file)
        code, out, _ = session.run(command, check=False)
    finally:
        session.close()
    if code == NOT_PROVISIONED:
        raise StagingError(
            f"{slot.identifier}: no Airflow admin on {host.name} yet: run `invoke provision-all`"
        )
    if code != 0:
        raise StagingError(f"{slot.identifier}: could not read its env file on {host.name}")
    return parse_login(out, f"{public_url(host, slot)}/airflow/")


def parse_login(out: str, url: str) -> AirflowLogin:
    """slot-airflow-login.sh's JSON line ({"user", "password"}) -> the login at `url`;
    StagingError if it is not that (never showing the answer: it holds a password)."""
    try:
        found = json.loads(out)
        user, password = found["user"], found["password"]
    except (ValueError, TypeError, KeyError):
        raise StagingError("slot-airflow-login.sh: unreadable answer") from None
    if not (isinstance(user, str) and isinstance(password, str)):
        raise StagingError("slot-airflow-login.sh: unreadable answer")
    return AirflowLogin(url, user, password)
