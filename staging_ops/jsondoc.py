"""The one name for a JSON document at the edge: a body as parsed from GitHub, Linear or an
API request before it is validated, an OpenAPI document, what an `as_json()` returns. A record
that crosses a module is a dataclass, never one of these."""

from __future__ import annotations

from typing import Any

JSONObject = dict[str, Any]
