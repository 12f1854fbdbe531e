"""Schemathesis over a live gate or hub: the checks every generated request must pass, and the loop that runs them."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.checks import CheckFunction

# No 500s, and every answer one the document describes.
CHECKS: list[CheckFunction] = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)


def fuzz(
    operation: Any,
    mode: schemathesis.GenerationMode,
    base_url: str,
    headers: dict[str, str],
    auth: tuple[str, str] | None = None,
) -> None:
    """Send ``operation``'s generated requests (positive or negative ``mode``) to ``base_url``; fail on a check."""

    @EXAMPLES
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, auth=auth, timeout=30)
        case.validate_response(response, checks=CHECKS)

    run()
