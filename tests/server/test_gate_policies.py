"""Enrollment policies: what a user without a linked device may do (required, optional, cli-only)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from jupyter_2fa.core.audit import Action, AuditEvent
from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import PASSWORD, WRONG_PASSWORD, Browser, EnrolledAccount, body_text, login_message


def _policy(name: str, **extra: Any) -> dict[str, Any]:
    return {"TwoFactorConfig": {"enrollment_policy": name, **extra}}


REQUIRED_LIKE = {
    "required-by-default": {},
    "required": _policy("required"),
    "optional-past-deadline": _policy("optional", optional_until="2001-01-01"),
}


@pytest.mark.parametrize("gate_config", list(REQUIRED_LIKE.values()), indirect=True, ids=list(REQUIRED_LIKE))
async def test_password_without_device_leads_only_to_enrollment(
    browser: Browser, gate: TOTPIdentityProvider, jp_base_url: str
) -> None:
    next_url = f"{jp_base_url}lab"
    response = await browser.login(PASSWORD, "", next_url=next_url)

    assert response.code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == f"{jp_base_url}2fa/enroll"
    assert dict(parse_qsl(location.query)) == {"next": next_url}
    assert browser.login_cookie() is None
    for path in ("api/contents", "2fa/api/status"):
        assert (await browser.get(path)).code == 403, path
    assert (await browser.get("2fa/enroll")).code == 200


@pytest.mark.parametrize("gate_config", list(REQUIRED_LIKE.values()), indirect=True, ids=list(REQUIRED_LIKE))
async def test_wrong_password_without_device_is_a_plain_refusal(browser: Browser) -> None:
    """No hint that the account has no device until the password is right."""
    response = await browser.login(WRONG_PASSWORD, "")
    assert response.code == 401
    assert "Location" not in response.headers


OPTIONAL = _policy("optional")
OPTIONAL_FUTURE_DEADLINE = _policy("optional", optional_until="2999-01-01T00:00:00+00:00")


@pytest.mark.parametrize(
    "gate_config", [OPTIONAL, OPTIONAL_FUTURE_DEADLINE], indirect=True, ids=["optional", "optional-until-2999"]
)
async def test_optional_policy_lets_the_password_alone_in(browser: Browser, audit_events: list[AuditEvent]) -> None:
    response = await browser.login(PASSWORD, "")

    assert response.code == 302, login_message(response)
    assert (await browser.get("api/contents")).code == 200
    logins = [event for event in audit_events if event.action is Action.LOGIN]
    assert [(event.outcome, event.reason) for event in logins] == [("success", "optional-policy")]
    assert logins[0].remote_addr == "127.0.0.1"


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True, ids=["optional"])
async def test_optional_policy_still_needs_the_code_once_a_device_is_linked(
    browser: Browser, enrolled: EnrolledAccount
) -> None:
    assert (await browser.login(PASSWORD, "")).code == 401
    assert (await browser.login(PASSWORD, enrolled.fresh_code())).code == 302


OPTIONAL_UNTIL_SOON = "optional-until-soon"  # a gate_config param: the deadline is computed at set-up


@pytest.fixture
def soon() -> float:
    """A deadline three to four seconds ahead (whole seconds): after the server starts and the login."""
    return float(int(time.time()) + 4)


@pytest.fixture
def gate_config(request: pytest.FixtureRequest, soon: float) -> dict[str, Any]:
    """As in conftest, plus ``OPTIONAL_UNTIL_SOON``: the optional policy with a deadline a few seconds away."""
    param = getattr(request, "param", None) or {}
    if param == OPTIONAL_UNTIL_SOON:
        return _policy("optional", optional_until=datetime.fromtimestamp(soon, tz=timezone.utc).isoformat())
    return dict(param)


@pytest.mark.parametrize("gate_config", [OPTIONAL_UNTIL_SOON], indirect=True, ids=["optional-until-soon"])
async def test_optional_policy_session_ends_at_the_deadline(browser: Browser, soon: float) -> None:
    assert (await browser.login(PASSWORD, "")).code == 302
    assert (await browser.get("api/contents")).code == 200
    await asyncio.sleep(max(0.0, soon - time.time()) + 0.3)

    assert (await browser.get("api/contents")).code == 403
    assert (await browser.login(PASSWORD, "")).code == 303


CLI_ONLY = _policy("cli-only")


@pytest.mark.parametrize("gate_config", [CLI_ONLY], indirect=True, ids=["cli-only"])
async def test_cli_only_refuses_web_enrollment_and_says_how(browser: Browser, gate: TOTPIdentityProvider) -> None:
    response = await browser.login(PASSWORD, "")

    assert response.code == 403
    assert "jupyter 2fa enroll" in (login_message(response) or "")
    assert browser.login_cookie() is None
    page = await browser.get("2fa/enroll")
    assert page.code == 403
    assert "jupyter 2fa enroll" in body_text(page)
    start = await browser.post_form("2fa/enroll", {"action": "start", "password": PASSWORD})
    assert start.code == 403
    account = gate.enrollment.store.get(gate.username)
    assert account is None or account.pending_secret is None
    assert (await browser.get("api/contents")).code == 403


@pytest.mark.parametrize("gate_config", [CLI_ONLY], indirect=True, ids=["cli-only"])
async def test_cli_only_logs_in_a_device_linked_in_the_terminal(browser: Browser, enrolled: EnrolledAccount) -> None:
    response = await browser.login(PASSWORD, enrolled.fresh_code())
    assert response.code == 302, login_message(response)
    assert (await browser.get("api/contents")).code == 200
