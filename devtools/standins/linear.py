"""Linear's GraphQL API for the two mutations staging-ops sends, on the schema Linear
publishes (devtools/contracts/linear.graphql, trimmed from linear/linear).

Every request is checked as Linear would: the API key in `Authorization` (else an
AUTHENTICATION_ERROR), a document that parses (GRAPHQL_PARSE_FAILED) and validates against
the schema (GRAPHQL_VALIDATION_FAILED), and variables that fit the operation's definitions
(BAD_USER_INPUT); then it is executed by graphql-core on that schema, so the answer has the
schema's shape. attachmentLinkURL keeps one attachment per URL and issue (sent again, it
updates the title), as Linear's does."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLError,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from devtools.standins.base import Answer, StandIn

CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "linear.graphql"
ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9]*-[0-9]+$")


@dataclass
class Issue:
    identifier: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    attachments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by URL
    comments: list[dict[str, Any]] = field(default_factory=list)


class LinearStandIn(StandIn):
    name = "Linear stand-in"
    path = "/graphql"

    def __init__(self, api_key: str, port: int = 0, contract: Path = CONTRACT) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.schema = build_schema(contract.read_text())
        self.issues: dict[str, Issue] = {}

    @property
    def endpoint(self) -> str:
        return self.url + self.path

    # -- what tests read

    def operations(self) -> list[tuple[str, dict[str, Any]]]:
        """(field, variables) of each accepted mutation, in order."""
        with self.lock:
            out = []
            for r in self.requests:
                if r.problem or not isinstance(r.answer, dict) or r.answer.get("errors"):
                    continue
                out.extend((name, r.body.get("variables") or {}) for name in r.answer["data"])
            return out

    def issue(self, key: str) -> Issue:
        return self.issues[key]

    # -- serving

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[Answer, str | None]:
        if method != "POST" or path.split("?", 1)[0] != self.path:
            return Answer(404, {"errors": [{"message": "Not found"}]}), f"{method} {path}"
        if headers.get("authorization") not in (self.api_key, f"Bearer {self.api_key}"):
            return _errors(
                400, "Authentication required, not authenticated", "AUTHENTICATION_ERROR"
            ), "Authorization is not the API key"
        try:
            request = json.loads(raw)
            query, variables = request["query"], request.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return _errors(400, "Must provide query string.", "BAD_REQUEST"), "no query"
        try:
            document = parse(query)
        except GraphQLError as exc:
            return _errors(400, exc.message, "GRAPHQL_PARSE_FAILED"), exc.message
        problems = validate(self.schema, document)
        if problems:
            text = "; ".join(p.message for p in problems)
            return _errors(400, problems[0].message, "GRAPHQL_VALIDATION_FAILED"), text
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        coerced = get_variable_values(
            self.schema, operations[0].variable_definitions or (), variables
        )
        if isinstance(coerced, list):
            text = "; ".join(p.message for p in coerced)
            return _errors(400, coerced[0].message, "BAD_USER_INPUT"), text
        result = execute(self.schema, document, root_value=self._root(), variable_values=variables)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [
                {"message": e.message, "extensions": {"code": "INVALID_INPUT"}}
                for e in result.errors
            ]
            return Answer(200, body), None  # an answer Linear gives; not the client's fault
        return Answer(200, body), None

    # -- the mutations

    def _root(self) -> dict[str, Any]:
        return {
            "attachmentLinkURL": self._attachment_link_url,
            "commentCreate": self._comment_create,
            "issue": lambda info, id: self._issue_json(self._find(id)),
        }

    def _find(self, key: str) -> Issue:
        if not ISSUE_KEY.match(key):
            raise GraphQLError("Entity not found: Issue")
        return self.issues.setdefault(key, Issue(key))

    def _issue_json(self, issue: Issue) -> dict[str, Any]:
        return {
            "id": issue.id,
            "identifier": issue.identifier,
            "title": f"Task {issue.identifier}",
            "url": f"https://linear.app/example/issue/{issue.identifier}",
        }

    def _attachment_link_url(self, info: Any, issueId: str, url: str, **args: Any) -> Any:
        issue = self._find(issueId)
        now = _now()
        attachment = issue.attachments.get(url)
        if attachment is None:
            attachment = {"id": str(uuid.uuid4()), "url": url, "createdAt": now, "subtitle": None}
            issue.attachments[url] = attachment
        attachment.update(title=args.get("title") or url, updatedAt=now)
        return {
            "success": True,
            "lastSyncId": float(len(self.requests) + 1),
            "attachment": {**attachment, "issue": self._issue_json(issue)},
        }

    def _comment_create(self, info: Any, input: dict[str, Any]) -> Any:
        if not input.get("issueId"):
            raise GraphQLError("Argument Validation Error: issueId is required here")
        issue = self._find(input["issueId"])
        comment = {
            "id": str(uuid.uuid4()),
            "body": input.get("body") or "",
            "createdAt": _now(),
            "url": f"https://linear.app/example/issue/{issue.identifier}#comment",
        }
        issue.comments.append(comment)
        return {
            "success": True,
            "lastSyncId": float(len(self.requests) + 1),
            "comment": {**comment, "issue": self._issue_json(issue)},
        }


def _errors(status: int, message: str, code: str) -> Answer:
    return Answer(status, {"errors": [{"message": message, "extensions": {"code": code}}]})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
