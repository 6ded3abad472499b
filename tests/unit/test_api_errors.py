"""The Staging API client tells errors apart by the body's `code`, never by the message's
text; the server's codes are the error classes' own."""

from __future__ import annotations

import pytest

from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.registry.api_client import ApiRegistry
from staging_ops.slots.model import HoldsAnotherSlot, UnknownSlot
from staging_ops.web.openapi_schemas import component_schemas
from staging_ops.web.server_deploys import UnknownBranch


@pytest.mark.parametrize(
    ("status", "message", "code", "kind"),
    [
        (409, "task JA-7 already holds slot 2 (staging-2)", "holds_another_slot", HoldsAnotherSlot),
        # The words alone do not make it one: only the code does.
        (409, "task JA-7 already holds slot 2 (staging-2)", "conflict", Conflict),
        (409, "held by task JA-5", None, Conflict),
        (404, "no slot 42", "unknown_slot", UnknownSlot),
        (400, "invalid task key", "bad_input", BadInput),
        (401, "token expired", None, BadInput),
        (503, "registry unavailable", None, StagingError),
    ],
)
def test_the_client_picks_the_error_by_its_code(status, message, code, kind):
    error = ApiRegistry("http://127.0.0.1:9", "token")._error(status, message, code)
    assert type(error) is kind
    assert message in str(error)


def test_the_documented_codes_are_the_error_classes_codes():
    kinds = (BadInput, UnknownSlot, UnknownBranch, Conflict, HoldsAnotherSlot)
    documented = component_schemas()["Error"]["properties"]["code"]["enum"]
    assert documented == [k.code for k in kinds]
