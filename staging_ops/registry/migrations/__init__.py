"""The registry's schema migrations, applied in order by `registry.migrate`.

Each migration is a module `vNNNN_<name>.py` with an `SQL` string. They are Python modules
rather than .sql files so they ship inside the package with no package-data configuration.
Never edit an applied migration: `migrate` compares checksums and refuses a changed one; add a
new module instead.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """Every `vNNNN_name` module of this package, ordered by version."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("v") or "_" not in info.name:
            continue
        number, _, name = info.name[1:].partition("_")
        if not number.isdigit():
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(int(number), name, module.SQL))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate registry migration versions: {versions}")
    return found
