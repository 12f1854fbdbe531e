"""XSRF: no form or JSON call that changes state is accepted without the ``_xsrf`` token, even with a session."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from tornado.httpclient import HTTPResponse

from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import PASSWORD, Browser, EnrolledAccount, json_body, login_message

# The XSRF token is missing, or it does not match the _xsrf cookie (a forged cross-site request).
XSRF_VARIANTS = {"missing": None, "mismatched": "2|deadbeef|0123456789abcdef0123456789abcdef|1700000000"}


@pytest.mark.parametrize("forged", list(XSRF_VARIANTS.values()), ids=list(XSRF_VARIANTS))
async def test_login_post_without_xsrf_is_403_and_uses_nothing(
    browser: Browser, enrolled: EnrolledAccount, forged: str | None
) -> None:
    code = enrolled.fresh_code()
    await browser.ensure_xsrf()
    fields = {"password": PASSWORD, "otp": code}
    if forged is not None:
        fields["_xsrf"] = forged

    response = await browser.post_form("login", fields, xsrf=False)

    assert response.code == 403
    assert browser.login_cookie() is None
    # Nothing was checked or counted: the same code still logs in, with the token.
    assert (await browser.login(PASSWORD, code)).code == 302


async def test_login_post_without_any_xsrf_cookie_is_403(browser: Browser, enrolled: EnrolledAccount) -> None:
    response = await browser.post_form("login", {"password": PASSWORD, "otp": enrolled.fresh_code()}, xsrf=False)
    assert response.code == 403
    assert browser.login_cookie() is None


@pytest.mark.parametrize("forged", list(XSRF_VARIANTS.values()), ids=list(XSRF_VARIANTS))
async def test_enroll_page_post_without_xsrf_is_403(
    browser: Browser, gate: TOTPIdentityProvider, forged: str | None
) -> None:
    await browser.ensure_xsrf()
    fields = {"action": "start", "password": PASSWORD}
    if forged is not None:
        fields["_xsrf"] = forged

    response = await browser.post_form("2fa/enroll", fields, xsrf=False)

    assert response.code == 403
    account = gate.enrollment.store.get(gate.username)
    assert account is None or account.pending_secret is None, "a pending enrollment was started"


# -- the JSON API --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCall:
    """One state-changing API route; ``state`` snapshots what it would change, to show nothing did."""

    method: str
    path: str
    body: Callable[[EnrolledAccount], dict[str, str]] | None
    prepare: Callable[[TOTPIdentityProvider], None] = lambda gate: None


def _start_pending(gate: TOTPIdentityProvider) -> None:
    """A pending re-link, so cancelling and confirming have something to act on."""
    gate.enrollment.store.set_pending(gate.username, pyotp.random_base32(32), time.time() + 600, relink=True)


API_CALLS = {
    "POST-enrollment": ApiCall("POST", "2fa/api/enrollment", lambda account: {"password": PASSWORD}),
    "DELETE-enrollment": ApiCall("DELETE", "2fa/api/enrollment", None, _start_pending),
    "POST-enrollment-confirm": ApiCall(
        "POST", "2fa/api/enrollment/confirm", lambda account: {"code": account.code_at(0)}, _start_pending
    ),
    "POST-relink": ApiCall("POST", "2fa/api/relink", lambda account: {"password": PASSWORD, "otp": account.code_at(0)}),
    "POST-recovery-codes": ApiCall(
        "POST", "2fa/api/recovery-codes", lambda account: {"password": PASSWORD, "otp": account.code_at(0)}
    ),
}


def _state(gate: TOTPIdentityProvider) -> dict[str, Any]:
    store = gate.enrollment.store
    account = store.get(gate.username)
    assert account is not None
    return {
        "secret": account.secret,
        "pending": account.pending_secret,
        "epoch": account.epoch,
        "failures": account.failures,
        "recovery": sorted(code_hash for _, code_hash in store.unused_recovery_hashes(gate.username)),
    }


def _send(browser: Browser, call: ApiCall, enrolled: EnrolledAccount, xsrf: str | None) -> Awaitable[HTTPResponse]:
    headers = {"Content-Type": "application/json"}
    if xsrf is not None:
        headers["X-XSRFToken"] = xsrf
    body = None if call.body is None else json.dumps(call.body(enrolled))
    return browser.request(call.path, method=call.method, body=body, headers=headers)


@pytest.mark.parametrize("forged", list(XSRF_VARIANTS.values()), ids=list(XSRF_VARIANTS))
@pytest.mark.parametrize("call", list(API_CALLS.values()), ids=list(API_CALLS))
async def test_api_call_with_session_but_without_xsrf_is_403_and_changes_nothing(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount, call: ApiCall, forged: str | None
) -> None:
    response = await browser.login(PASSWORD, enrolled.fresh_code())
    assert response.code == 302, login_message(response)
    call.prepare(gate)
    before = _state(gate)

    response = await _send(browser, call, enrolled, forged)

    assert response.code == 403
    assert "xsrf" in json_body(response)["message"].lower()
    assert _state(gate) == before
    # The session itself still works: the refusal was the forged request's, not a logout.
    assert (await browser.get("2fa/api/status")).code == 200


async def test_api_call_with_session_and_xsrf_passes_the_xsrf_check(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    """The control case: the same DELETE with X-XSRFToken reaches the handler and cancels the enrollment."""
    assert (await browser.login(PASSWORD, enrolled.fresh_code())).code == 302
    _start_pending(gate)

    response = await browser.delete("2fa/api/enrollment")

    assert response.code == 204
    account = gate.enrollment.store.get(gate.username)
    assert account is not None and account.pending_secret is None
