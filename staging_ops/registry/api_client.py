"""SlotRegistry over the Staging API (requests + an admin JWT), for operators without direct
database access. Same methods, same results, same errors as registry.PostgresRegistry:

  HTTP 400/404 → BadInput, 401/403 → BadInput (the token), 409 → Conflict (the server's message,
  which names the holder), anything else or no answer → StagingError naming host:port; the
  body's `code` picks the subclass (UnknownSlot, HoldsAnotherSlot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.jsondoc import JSONObject
from staging_ops.slots.model import (
    ClaimResult,
    DeployRecord,
    HoldsAnotherSlot,
    ReleaseResult,
    ReleaseTerms,
    SlotEvent,
    SlotRegistry,
    SlotState,
    UnknownSlot,
)

API_PREFIX = "/api/staging"
TIMEOUT = 15.0


class ApiRegistry(SlotRegistry):
    """SlotRegistry client. `base_url` is the server root (`https://justapply.net`); a URL
    that already ends in /api/staging is accepted too."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"STAGING_API_URL {base_url!r} is not an http(s) URL")
        root = base_url.strip().rstrip("/")
        self.base = root if root.endswith(API_PREFIX) else root + API_PREFIX
        self.target = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "staging-ops",
            }
        )

    def acting_via(self, channel: str) -> ApiRegistry:
        # The server records the channel itself (from the token's subject).
        return self

    def close(self) -> None:
        self.session.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> JSONObject:
        try:
            response = self.session.request(
                method, self.base + path, timeout=self.timeout, **kwargs
            )
        except requests.Timeout:
            raise StagingError(
                f"Staging API at {self.target} did not answer in {self.timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            if isinstance(exc, requests.ConnectionError):
                reason = "connection refused or host unreachable"
            raise StagingError(f"cannot reach Staging API at {self.target}: {reason}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise StagingError(
                f"Staging API at {self.target} answered {response.status_code} "
                "without a JSON object"
            )
        if response.status_code < 400:
            return body
        message = str(body.get("error") or f"HTTP {response.status_code}")
        raise self._error(response.status_code, message, body.get("code"))

    def _error(self, status: int, message: str, code: object = None) -> StagingError:
        if status == 409:
            return HoldsAnotherSlot(message) if code == HoldsAnotherSlot.code else Conflict(message)
        if status == 404:
            return UnknownSlot(message)
        if status == 400:
            return BadInput(message)
        if status in (401, 403):
            return BadInput(f"Staging API at {self.target} refused STAGING_API_TOKEN: {message}")
        return StagingError(f"Staging API at {self.target} failed ({status}): {message}")

    def status(self) -> Sequence[SlotState]:
        return [SlotState.from_dict(s) for s in self._call("GET", "/slots")["slots"]]

    def get(self, slot_id: int) -> SlotState:
        return SlotState.from_dict(self._call("GET", f"/slots/{int(slot_id)}")["slot"])

    def claim(
        self, slot_id: int | None, task: str, owner: str, ttl: timedelta, note: str | None = None
    ) -> ClaimResult:
        body = {
            "action": "claim",
            "slot_id": "auto" if slot_id is None else slot_id,
            "task": task,
            "owner": owner,
            "ttl": int(ttl.total_seconds()),
            "note": note,
        }
        return ClaimResult.from_dict(self._call("PUT", "/slots", json=body))

    def apply_release(self, slot_id: int, by: str, terms: ReleaseTerms) -> ReleaseResult:
        body = {"by": by, **asdict(terms)}
        data = self._call("POST", f"/slots/{int(slot_id)}/release", json=body)
        return ReleaseResult.from_dict(data)

    def apply_deploy(self, deploy: DeployRecord) -> SlotState:
        body: JSONObject = {"action": "deploy", **asdict(deploy)}
        if not deploy.serving:
            del body["serving"]  # only when set: an ordinary deploy sends the body it always did
        return SlotState.from_dict(self._call("PUT", "/slots", json=body)["slot"])

    def record_failed_deploy(
        self, slot_id: int, branch: str, commit: str, by: str, step: str, serving: str
    ) -> None:
        body = {"branch": branch, "commit": commit, "by": by, "step": step, "serving": serving}
        self._call("POST", f"/slots/{slot_id}/deploy-failures", json=body)

    def history(self, slot_id: int | None = None, limit: int = 50) -> list[SlotEvent]:
        params: dict[str, int] = {"limit": limit}
        if slot_id is not None:
            params["slot_id"] = slot_id
        data = self._call("GET", "/history", params=params)
        return [SlotEvent.from_dict(e) for e in data["events"]]
