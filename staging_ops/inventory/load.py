"""Load and validate the inventory TOML into Host, Slot and App dataclasses.

Every error names the file, the slot (or host) and the field, and raises BadInput (exit 2)
before anything is touched.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from staging_ops.errors import BadInput
from staging_ops.inventory import checks
from staging_ops.inventory.model import (
    App,
    Deploys,
    Host,
    Inventory,
    Slot,
    field_kinds,
    file_keys,
    table_class,
)

# The operator's inventory, relative to the project (tasks.py resolves it against its own
# directory); the inventory is configuration, not package data.
DEFAULT_INVENTORY = Path("inventory") / "staging.toml"
_LIVE = re.compile(r"^/etc/letsencrypt/live/([A-Za-z0-9][A-Za-z0-9._-]*)/[^/]+$")
# Production's address (README: never connected to): only a protected host may have it.
PRODUCTION_ADDRESS = "167.99.0.168"
# A host's SSH settings the ssh config fills when its table leaves them out (remote/route.py).
SSH_SETTINGS = ("user", "port", "key_file", "connect_timeout")


def is_production(address: str) -> bool:
    """Whether `address` (any spelling) is production's: the ssh config may map a staging
    host's name there, which connecting checks again after the ssh config is applied."""
    return _address_key(address) == PRODUCTION_ADDRESS


def inventory_path(config_value: str | None = None, default: Path = DEFAULT_INVENTORY) -> Path:
    """STAGING_INVENTORY wins, then Invoke config `staging.inventory`, then `default`."""
    chosen = os.environ.get("STAGING_INVENTORY") or config_value
    return Path(chosen) if chosen else default


def load_inventory(path: str | Path | None = None) -> Inventory:
    path = Path(path) if path else inventory_path()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: inventory file not found") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read inventory: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: malformed TOML: {exc}") from None
    return _Loader(path, raw).inventory()


class _Loader:
    def __init__(self, path: Path, raw: dict[str, Any]):
        self.path = path
        self.raw = raw

    def fail(self, where: str, field_name: str, problem: str) -> BadInput:
        return BadInput(f"{self.path}: {where}: field '{field_name}': {problem}")

    def inventory(self) -> Inventory:
        self.check_keys()
        app = self.app(self._table(self.raw, "app", "[app]"))
        hosts_raw = self._table(self.raw, "hosts", "[hosts]")
        hosts = {
            name: self.host(name, self._table(hosts_raw, name, f"host '{name}'"))
            for name in hosts_raw
        }
        if not hosts:
            raise self.fail("[hosts]", "hosts", "at least one host is required")
        self.check_protected_addresses(hosts)
        slots_raw = self.raw.get("slots")
        if not isinstance(slots_raw, list) or not slots_raw:
            raise self.fail("[[slots]]", "slots", "at least one slot is required")
        slots = [self.slot(i, entry, hosts) for i, entry in enumerate(slots_raw, start=1)]
        self.check_unique(slots)
        self.check_ports(slots, hosts)
        deploys = self.deploys(self.raw.get("deploys", {}))
        return Inventory(
            self.path, app, hosts, {s.id: s for s in sorted(slots, key=_by_id)}, deploys
        )

    def deploys(self, raw: object) -> Deploys:
        if not isinstance(raw, dict):
            raise self.fail("[deploys]", "deploys", "must be a table")
        return Deploys(**self.fields(Deploys, raw, "[deploys]"))

    def check_keys(self) -> None:
        """Refuse any key the model does not know (model.file_keys), in every table, before
        anything else is judged: a misspelt key would otherwise be ignored and its default
        used (`verify_timout = 90` a 60 s timeout). Parts of the wrong type are left to the
        checks that follow, which say so."""
        self.known_keys(Inventory, self.raw, "top level")
        hosts = self.raw.get("hosts")
        for name, table in hosts.items() if isinstance(hosts, dict) else ():
            if isinstance(table, dict):
                self.known_keys(Host, table, f"[hosts.{name}]")
        slots = self.raw.get("slots")
        for index, entry in enumerate(slots if isinstance(slots, list) else (), start=1):
            if isinstance(entry, dict):
                sid = entry.get("id")
                shown = f" (id {sid})" if isinstance(sid, int) and not isinstance(sid, bool) else ""
                self.known_keys(Slot, entry, f"[[slots]] #{index}{shown}")

    def known_keys(self, cls: type, raw: dict[str, Any], where: str) -> None:
        """Every key of `raw` must be one of `cls`'s (else BadInput naming the nearest one);
        a key whose value is a table (or an array of tables) of another dataclass has its
        keys checked in turn."""
        known = file_keys(cls)
        for key, value in raw.items():
            if key not in known:
                near = difflib.get_close_matches(key, list(known), n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                raise BadInput(f"{self.path}: {where}: unknown key '{key}'{hint}")
            sub = table_class(known[key])
            if sub is None:
                continue
            name = (where.strip("[]") + "." if where.startswith("[") else "") + key
            if isinstance(value, dict):
                self.known_keys(sub, value, f"[{name}]")
            elif isinstance(value, list):  # an array of tables: [[app.NAME]]
                for index, entry in enumerate(value, start=1):
                    if isinstance(entry, dict):
                        self.known_keys(sub, entry, f"[[{name}]] #{index}")

    def _table(self, raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.fail(where, key, "missing or not a table")
        return value

    def check(self, check: Any, raw: dict, key: str, where: str, default: object = None) -> Any:
        """`check` (from checks.py) on raw[key], or on `default` when the key is absent."""
        try:
            return check(raw.get(key, default))
        except checks.Invalid as exc:
            raise self.fail(where, key, exc.problem) from None

    def fields(self, cls: type, raw: dict, where: str, done: tuple[str, ...] = ()) -> dict:
        """Every field of `cls` that has a Kind, checked by its kind, except those in `done`.
        An absent field keeps the model's default; one without a default is required (its
        check says so)."""
        values = {}
        for key in field_kinds(cls):
            if key not in done and (key in raw or key not in _defaults(cls)):
                values[key] = self.field(cls, raw, key, where)
        return values

    def field(self, cls: type, raw: dict, key: str, where: str) -> Any:
        """raw[key] checked by the Kind of `cls`'s field `key` (absent: the model's default)."""
        default = _defaults(cls).get(key)
        return self.check(checks.CHECKS[field_kinds(cls)[key]], raw, key, where, default)

    def app(self, raw: dict[str, Any]) -> App:
        values = self.fields(App, raw, "[app]")
        return App(**values, env=self.env_table(raw.get("env", {})))

    def env_table(self, raw: Any) -> tuple[tuple[str, str], ...]:
        """[app.env]: NAME = "value" pairs, in file order."""
        if not isinstance(raw, dict):
            raise self.fail("[app]", "env", 'must be a table of NAME = "value"')
        pairs = []
        for name in raw:
            if not checks.ENV_NAME.match(name):
                raise self.fail("[app.env]", name, "not an environment variable name")
            if name in checks.RESERVED_ENV:
                raise self.fail("[app.env]", name, "is set by staging-ops itself")
            pairs.append((name, self.check(checks.env_value, raw, name, "[app.env]")))
        return tuple(pairs)

    def host(self, name: str, raw: dict[str, Any]) -> Host:
        w = f"host '{name}'"
        if not re.match(r"^[A-Za-z0-9_-]+$", name):
            raise self.fail(w, "name", "host names are letters, digits, '-' and '_'")
        # A protected host (production) is only refused as a target: nothing else of it is
        # read, so nothing else of it can be wrong.
        protected = self.field(Host, raw, "protected", w)
        address = self.field(Host, raw, "address", w)
        if protected:
            return Host(name=name, address=address, protected=True)
        kwargs = self.fields(Host, raw, w, done=("protected", "address"))
        if kwargs.get("acme"):
            self.check_acme_lineage(w, kwargs)
        if "postgres_host" in raw:
            kwargs["postgres_host"] = self._hostname(raw, "postgres_host", w)
        if "listen_address" in raw:
            # Written into `listen ADDR:PORT;`: only a plain IP address may go there.
            value = raw["listen_address"]
            if value != "":
                if not isinstance(value, str) or not checks.is_ip(value) or "%" in value:
                    raise self.fail(w, "listen_address", f"{value!r} is not an IP address")
                kwargs["listen_address"] = str(ipaddress.ip_address(value))
        kwargs["set_in_inventory"] = frozenset(k for k in SSH_SETTINGS if k in raw)
        return Host(name=name, address=address, **kwargs)

    def _hostname(self, raw: dict, key: str, where: str) -> str:
        """A host name or IP address: it is written into DATABASE_URL in the env files, where
        '@', '/', ':' or spaces would change what the URL means."""
        value = self.check(checks.text, raw, key, where)
        if checks.is_ip(value):
            return value
        labels = value.rstrip(".").split(".")
        if len(value) > 253 or not all(checks.HOST_LABEL.match(label) for label in labels):
            raise self.fail(where, key, f"{value!r} is not a host name or IP address")
        return value

    def slot(self, index: int, raw: Any, hosts: dict[str, Host]) -> Slot:
        if not isinstance(raw, dict):
            raise self.fail(f"slot #{index}", "slots", "each [[slots]] entry must be a table")
        sid = raw.get("id")
        w = (
            f"slot {sid}"
            if isinstance(sid, int) and not isinstance(sid, bool)
            else f"slot #{index}"
        )
        values = self.fields(Slot, raw, w)
        host = self.check(checks.text, raw, "host", w, default=next(iter(hosts)))
        if host not in hosts:
            raise self.fail(w, "host", f"unknown host {host!r}")
        if hosts[host].protected:
            raise self.fail(w, "host", f"host {host!r} is protected: no slot may be placed on it")
        return Slot(host=host, **values)

    def check_acme_lineage(self, where: str, kwargs: dict[str, Any]) -> None:
        """certbot keeps a certificate in /etc/letsencrypt/live/NAME/: with ACME, the
        certificate and key paths must be that lineage's fullchain.pem and privkey.pem."""
        crt = kwargs.get("tls_certificate", Host.tls_certificate)
        key = kwargs.get("tls_certificate_key", Host.tls_certificate_key)
        match = _LIVE.match(crt)
        if not match or not crt.endswith("/fullchain.pem"):
            raise self.fail(
                where,
                "tls_certificate",
                f"{crt!r}: with acme = true it must be /etc/letsencrypt/live/NAME/fullchain.pem",
            )
        if key != f"/etc/letsencrypt/live/{match.group(1)}/privkey.pem":
            raise self.fail(
                where,
                "tls_certificate_key",
                f"{key!r}: with acme = true it must be /etc/letsencrypt/live/"
                f"{match.group(1)}/privkey.pem",
            )

    def check_protected_addresses(self, hosts: dict[str, Host]) -> None:
        """Production must not be reachable through a second, unprotected name."""
        protected = {_address_key(h.address): h.name for h in hosts.values() if h.protected}
        for host in hosts.values():
            if host.protected:
                continue
            other = protected.get(_address_key(host.address))
            if other is not None:
                raise self.fail(
                    f"host '{host.name}'",
                    "address",
                    f"{host.address!r} is the address of protected host '{other}': "
                    "mark it protected or use the staging droplet's address",
                )
            if is_production(host.address):
                raise self.fail(
                    f"host '{host.name}'",
                    "address",
                    f"{host.address!r} is production's address: only a protected host may have it",
                )

    def check_unique(self, slots: list[Slot]) -> None:
        seen: dict[tuple[str, object], int] = {}
        for _index, slot in enumerate(slots):
            keys = [
                ("id", slot.id),
                ("identifier", slot.identifier),
                ("subdomain", slot.subdomain),
                ("database", slot.database),
            ]
            for name, value in keys:
                other = seen.get((name, value))
                if other is not None:
                    raise self.fail(
                        f"slot {slot.id}", name, f"{value!r} is already used by slot {other}"
                    )
                seen[(name, value)] = slot.id

    def check_ports(self, slots: list[Slot], hosts: dict[str, Host]) -> None:
        """No two of all the slots' services and candidates share a port (checks.port_clash)."""
        ports = [
            (s.id, (s.ui_port, s.airflow_port, *s.candidate_ports(hosts[s.host]))) for s in slots
        ]
        clash = checks.port_clash(ports)
        if clash:
            raise self.fail(f"slot {clash[0]}", clash[1], clash[2])


@functools.cache
def _defaults(cls: type) -> dict[str, object]:
    """The model's default of each field that has one."""
    return {
        f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def _by_id(slot: Slot) -> int:
    return slot.id


def _address_key(address: str) -> str:
    """One spelling per address: DNS names are case-insensitive (a trailing dot is the same
    name), and an IP address has several spellings (::ffff:167.99.0.168, 0:0::1)."""
    text = address.strip().rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)
