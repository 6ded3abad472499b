"""GitHub's REST API for Deployments and their statuses, as devtools/contracts/
github-deployments.json (GitHub's own OpenAPI description, trimmed) describes it.

Every request is checked as GitHub would: an operation for its method and path template (404
otherwise), `Authorization: Bearer <token>` (401 "Bad credentials"), a JSON body (400
"Problems parsing JSON") valid against the operation's requestBody schema (422 "Invalid
request" with the schema's complaints), and a deployment id that exists (404). The answers are
checked against the operation's 201 response schema before they are sent, so the toolkit is
tested against GitHub's shapes, not ours."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs

from devtools.standins.base import Answer, StandIn

CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "github-deployments.json"
DOCS = "https://docs.github.com/rest"


def nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema's `"type": [T, "null"]`."""
    if isinstance(node, list):
        return [nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: nullable_to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def load_contract(path: Path = CONTRACT) -> dict[str, Any]:
    return json.loads(path.read_text())


class GitHubStandIn(StandIn):
    name = "GitHub stand-in"

    def __init__(self, token: str, port: int = 0, contract: Path = CONTRACT) -> None:
        super().__init__(port)
        self.token = token
        self.contract = load_contract(contract)
        self.components = nullable_to_json_schema(self.contract["components"])
        self.routes = [
            (method.upper(), _template(path), path, operation)
            for path, item in self.contract["paths"].items()
            for method, operation in item.items()
        ]
        self.deployments: dict[int, dict[str, Any]] = {}
        self.statuses: dict[int, list[dict[str, Any]]] = {}
        self._next_id = 1000

    # -- what tests read

    def posts(self, kind: str) -> list[Any]:
        """Bodies of the accepted creates of `kind` ("deployments" or "statuses"), in order."""
        with self.lock:
            return [
                r.body
                for r in self.requests
                if r.status == 201 and r.path.rstrip("/").endswith(f"/{kind}")
            ]

    def states(self, deployment_id: int) -> list[str]:
        with self.lock:
            return [s["state"] for s in self.statuses.get(deployment_id, [])]

    # -- serving

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[Answer, str | None]:
        route = path.split("?", 1)[0]
        for verb, pattern, template, operation in self.routes:
            found = pattern.fullmatch(route)
            if found and verb == method:
                return self._operation(operation, template, found.groupdict(), headers, raw)
        return _error(404, "Not Found"), f"no operation {method} {route} in the contract"

    def _operation(
        self,
        operation: dict[str, Any],
        template: str,
        params: dict[str, str],
        headers: dict[str, str],
        raw: bytes,
    ) -> tuple[Answer, str | None]:
        auth = headers.get("authorization", "")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return _error(401, "Bad credentials"), "Authorization is not the token"
        if not headers.get("content-type", "").startswith("application/json"):
            return _error(415, "Unsupported Media Type"), "Content-Type is not application/json"
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "Problems parsing JSON"), "the body is not JSON"
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        complaints = self._complaints(schema, body)
        if complaints:
            message = "Invalid request.\n\n" + "\n".join(complaints)
            return _error(422, message), message
        if "deployment_id" in params:
            if not params["deployment_id"].isdigit():
                return _error(404, "Not Found"), "deployment_id is not an integer"
            ident = int(params["deployment_id"])
            if ident not in self.deployments:
                return _error(404, "Not Found"), f"no deployment {ident}"
            answer = self._create_status(params, ident, body)
        else:
            answer = self._create_deployment(params, body)
        response = operation["responses"]["201"]["content"]["application/json"]["schema"]
        # GitHub answers "" for an unset URL field its description calls a "uri": shapes and
        # types are checked here, not formats.
        wrong = self._complaints(response, answer, formats=False)
        if wrong:
            return _error(
                500, "stand-in"
            ), f"the stand-in's own answer breaks the contract: {wrong}"
        return Answer(201, answer), None

    def _complaints(self, schema: dict[str, Any], value: Any, formats: bool = True) -> list[str]:
        root = {**nullable_to_json_schema(schema), "components": self.components}
        validator = jsonschema_rs.Draft4Validator(root, validate_formats=formats)
        return [error.message for error in validator.iter_errors(value)]

    def _create_deployment(self, params: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        repo_url = f"{self.url}/repos/{params['owner']}/{params['repo']}"
        now = _now()
        environment = body.get("environment", "production")
        deployment = {
            "url": f"{repo_url}/deployments/{ident}",
            "id": ident,
            "node_id": f"DE_{ident}",
            "sha": body["ref"],
            "ref": body["ref"],
            "task": body.get("task", "deploy"),
            "payload": body.get("payload", {}) or {},
            "original_environment": environment,
            "environment": environment,
            "description": body.get("description", ""),
            "creator": _user(),
            "created_at": now,
            "updated_at": now,
            "statuses_url": f"{repo_url}/deployments/{ident}/statuses",
            "repository_url": repo_url,
            "transient_environment": bool(body.get("transient_environment", False)),
            "production_environment": bool(
                body.get("production_environment", environment == "production")
            ),
        }
        self.deployments[ident] = deployment
        self.statuses[ident] = []
        return deployment

    def _create_status(
        self, params: dict[str, str], ident: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        deployment = self.deployments[ident]
        number = sum(len(s) for s in self.statuses.values()) + 1
        log_url = body.get("log_url") or body.get("target_url") or ""
        status = {
            "url": f"{deployment['url']}/statuses/{number}",
            "id": number,
            "node_id": f"DES_{number}",
            "state": body["state"],
            "creator": _user(),
            "description": body.get("description", ""),
            "environment": body.get("environment", deployment["environment"]),
            "target_url": log_url,
            "created_at": _now(),
            "updated_at": _now(),
            "deployment_url": deployment["url"],
            "repository_url": deployment["repository_url"],
            "environment_url": body.get("environment_url", ""),
            "log_url": log_url,
        }
        self.statuses[ident].append(status)
        return status


def _template(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"message": message, "documentation_url": DOCS, "status": str(status)})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user() -> dict[str, Any]:
    return {"login": "staging-bot", "id": 1, "node_id": "U_1", "type": "Bot", "site_admin": False}
