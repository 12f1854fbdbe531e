"""Schemathesis against the shipped OpenAPI document (jupyter_2fa/server/openapi.yaml), on a live gate: generated
requests for every operation, well-formed (positive) and not (negative), as a kernel with Basic credentials would
send them. No answer may be a 500, and every answer must be one the document describes (status, content type,
body schema)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis

import jupyter_2fa.server
from jupyter_2fa.server import TOTPIdentityProvider

from helpers.fuzz import fuzz
from helpers.gate import PASSWORD, Browser, EnrolledAccount

SPEC = Path(jupyter_2fa.server.__file__).parent / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(SPEC)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Wrong generated passwords and codes must be answered, not make the account wait: the fuzzer checks shapes.
LENIENT = {
    "TwoFactorConfig": {
        "lockout_threshold": 100,
        "backoff_free_attempts": 100,
        "password_backoff_free_attempts": 10_000,
        "trusted_networks": [],
    }
}


@pytest.mark.parametrize("gate_config", [LENIENT], indirect=True, ids=["lenient"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda mode: mode.value)
async def test_the_gate_answers_every_generated_request_as_documented(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    jp_http_port: int,
    jp_base_url: str,
    operation: Any,
    mode: schemathesis.GenerationMode,
) -> None:
    basic = "Basic " + base64.b64encode(f"kernel:{PASSWORD}".encode()).decode()
    base_url = f"http://127.0.0.1:{jp_http_port}{jp_base_url.rstrip('/')}"
    # The server runs on this test's event loop: the synchronous fuzzer runs beside it, in a thread.
    await asyncio.to_thread(fuzz, operation, mode, base_url, {"Authorization": basic})
