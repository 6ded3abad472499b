"""Every fact a run needs, read in ONE remote command: the probe (probe.py, standard library
only) runs on the droplet with the request as its argument and prints one JSON document."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from staging_ops.errors import StagingError
from staging_ops.remote.connection import RemoteHost

_FACTS_SCRIPT = (Path(__file__).resolve().parent / "probe.py").read_text()


def gather_facts(remote: RemoteHost, request: dict[str, Any]) -> dict[str, Any]:
    """Every fact a run needs (stats, contents, packages, user, unit states): one command."""
    command = f"python3 -c {shlex.quote(_FACTS_SCRIPT)} {shlex.quote(json.dumps(request))}"
    _, out, _ = remote.run(command)
    try:
        return json.loads(out)
    except ValueError:
        raise StagingError(f"{remote.host.name}: facts: unreadable answer: {out[:200]!r}") from None
