"""provision-all on the shared sandbox, as an operator runs it (its text, or its --json)."""

from __future__ import annotations

import json

from tests.conftest import run_invoke


def provision(sandbox, *args: str, env: dict[str, str] | None = None):
    return run_invoke("provision-all", *args, env={**sandbox.env(), **(env or {})})


def provision_json(sandbox, *args: str, env: dict[str, str] | None = None) -> dict:
    result = provision(sandbox, "--json", *args, env=env)
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)
