"""The JSON API under ``2fa/api/``: status, enrollment, re-link, recovery codes; strict input; fail closed.

Requests go through HTTP with a cookie-keeping browser that sends ``X-XSRFToken`` like JupyterLab does; the state
is read back from the store. Nothing inside jupyter_2fa is patched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from tornado.httpclient import HTTPResponse

from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import (
    API,
    CONFIRM,
    ENROLLMENT,
    OPTIONAL,
    PASSWORD,
    RECOVERY_CODES,
    RELINK,
    STATUS,
    WRONG_PASSWORD,
    Browser,
    EnrolledAccount,
    body_text,
    json_body,
    totp_for,
    wrong_code,
)

CONTENTS = "api/contents"

STATUS_FIELDS = {
    "username",
    "enrolled",
    "pending",
    "recovery_codes_left",
    "locked",
    "policy",
    "optional_until",
    "session_factor",
    "session_expires_at",
    "webauthn_keys",
    "webauthn_enabled",
}
PROVISIONING_FIELDS = {"otpauth_uri", "secret", "manual_key", "qr_svg", "expires_at"}
HELP_TEXT = "Call the research desk on 555-0100, quoting your username."
UNREACHABLE_DB = "postgresql+psycopg://nobody:x@127.0.0.1:1/none"
API_TOKEN = "jupyter-2fa-test-api-token"

# (method, path, a well-formed body) of every call that changes something
WRITES: list[tuple[str, str, dict[str, str] | None]] = [
    ("POST", ENROLLMENT, {"password": PASSWORD}),
    ("DELETE", ENROLLMENT, None),
    ("POST", CONFIRM, {"code": "123456"}),
    ("POST", RELINK, {"password": PASSWORD, "otp": "123456"}),
    ("POST", RECOVERY_CODES, {"password": PASSWORD, "otp": "123456"}),
]
# the JSON fields each POST reads
POST_FIELDS = {
    ENROLLMENT: ("password",),
    CONFIRM: ("code",),
    RELINK: ("password", "otp"),
    RECOVERY_CODES: ("password", "otp"),
}


def call_id(method: str, path: str) -> str:
    return f"{method}-{path.removeprefix(API)}"


# -- helpers --------------------------------------------------------------------------------------------------


def current_step(totp: pyotp.TOTP) -> int:
    return int(time.time()) // totp.interval


def code_of_step(totp: pyotp.TOTP, step: int) -> str:
    return str(totp.at(step * totp.interval))


def account_of(gate: TOTPIdentityProvider) -> Any:
    return gate.enrollment.store.get(gate.username)


async def call(browser: Browser, method: str, path: str, body: object = None, xsrf: bool = True) -> HTTPResponse:
    """One API call the way the JupyterLab extension makes it (JSON, X-XSRFToken)."""
    if method == "GET":
        return await browser.get(path)
    if method == "DELETE":
        return await browser.delete(path, xsrf=xsrf)
    return await browser.post_json(path, body if body is not None else {}, xsrf=xsrf, method=method)


async def password_session(browser: Browser) -> None:
    """Log in with the password alone (the ``optional`` policy, no device yet)."""
    response = await browser.login(PASSWORD)
    assert response.code == 302, body_text(response)


async def totp_session(browser: Browser, otp: str) -> None:
    response = await browser.login(PASSWORD, otp)
    assert response.code == 302, body_text(response)


async def status_of(browser: Browser) -> dict[str, Any]:
    response = await browser.get(STATUS)
    assert response.code == 200, body_text(response)
    payload: dict[str, Any] = json_body(response)
    return payload


def assert_provisioning(response: HTTPResponse, gate: TOTPIdentityProvider) -> dict[str, Any]:
    assert response.code == 201, body_text(response)
    assert response.headers.get("Cache-Control") == "no-store"
    payload: dict[str, Any] = json_body(response)
    assert set(payload) == PROVISIONING_FIELDS
    parsed = pyotp.parse_uri(payload["otpauth_uri"])
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == payload["secret"]
    assert parsed.name == gate.username and parsed.issuer == gate.issuer
    assert payload["manual_key"].replace(" ", "") == payload["secret"]
    assert payload["qr_svg"].lstrip().startswith(("<svg", "<?xml"))
    assert time.time() < payload["expires_at"] <= time.time() + gate.enrollment_lifetime + 1
    return payload


# -- authentication of the API itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [pytest.param(m, p, id=call_id(m, p)) for m, p in [("GET", STATUS), *((m, p) for m, p, _ in WRITES)]],
)
async def test_no_session_is_refused(browser: Browser, gate: TOTPIdentityProvider, method: str, path: str) -> None:
    body = next((b for m, p, b in WRITES if (m, p) == (method, path)), None)
    response = await call(browser, method, path, body)
    assert response.code == 403, body_text(response)
    assert account_of(gate) is None or account_of(gate).pending_secret is None


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True)
@pytest.mark.parametrize(("method", "path", "body"), [pytest.param(m, p, b, id=call_id(m, p)) for m, p, b in WRITES])
async def test_cookie_session_needs_the_xsrf_header(
    browser: Browser, gate: TOTPIdentityProvider, method: str, path: str, body: dict[str, str] | None
) -> None:
    await password_session(browser)
    assert (await call(browser, "POST", ENROLLMENT, {"password": PASSWORD})).code == 201
    before = account_of(gate)

    response = await call(browser, method, path, body, xsrf=False)
    assert response.code == 403, body_text(response)
    after = account_of(gate)
    assert (after.pending_secret, after.secret, after.failures) == (before.pending_secret, before.secret, 0)


# -- status -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gate_config", "expected"),
    [
        pytest.param(
            {},
            {"enrolled": True, "recovery_codes_left": 10, "policy": "required", "optional_until": None},
            id="enrolled-required",
        ),
        pytest.param(
            {"TwoFactorConfig": {"enrollment_policy": "optional", "optional_until": "2999-01-01"}},
            {"enrolled": True, "recovery_codes_left": 10, "policy": "optional", "optional_until": "2999-01-01"},
            id="enrolled-optional-until",
        ),
    ],
    indirect=["gate_config"],
)
async def test_status_of_an_enrolled_account(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount, expected: dict[str, Any]
) -> None:
    before = time.time()
    await totp_session(browser, enrolled.fresh_code())
    status = await status_of(browser)
    assert set(status) == STATUS_FIELDS
    assert {key: status[key] for key in expected} == expected
    assert status["username"] == gate.username
    assert (status["pending"], status["locked"], status["session_factor"]) == (False, False, "totp")
    assert before + gate.session_max_age <= status["session_expires_at"] <= time.time() + gate.session_max_age


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True)
async def test_status_of_a_password_only_session(browser: Browser, gate: TOTPIdentityProvider) -> None:
    await password_session(browser)
    status = await status_of(browser)
    assert set(status) == STATUS_FIELDS
    assert status["enrolled"] is False and status["pending"] is False
    assert status["recovery_codes_left"] == 0
    assert status["policy"] == "optional" and status["optional_until"] is None
    assert status["session_factor"] == "optional-policy"


# -- enrollment ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True)
async def test_enrollment_from_a_password_only_session(
    browser: Browser, gate: TOTPIdentityProvider, new_browser: Callable[[], Browser]
) -> None:
    await password_session(browser)
    first = assert_provisioning(await call(browser, "POST", ENROLLMENT, {"password": PASSWORD}), gate)
    assert (await status_of(browser))["pending"] is True
    second = assert_provisioning(await call(browser, "POST", ENROLLMENT, {"password": PASSWORD}), gate)
    assert second["secret"] != first["secret"]

    voided = await call(browser, "POST", CONFIRM, {"code": totp_for(gate, first["secret"]).now()})
    assert voided.code == 403, body_text(voided)
    assert not account_of(gate).enrolled

    totp = totp_for(gate, second["secret"])
    step = current_step(totp)
    confirmed = await call(browser, "POST", CONFIRM, {"code": code_of_step(totp, step)})
    assert confirmed.code == 200, body_text(confirmed)
    codes = json_body(confirmed)["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert account_of(gate).enrolled

    # the session's cookie was re-issued on the new factor and keeps working
    status = await status_of(browser)
    assert (status["enrolled"], status["pending"], status["session_factor"]) == (True, False, "totp")
    assert status["recovery_codes_left"] == 10

    again = await call(browser, "POST", CONFIRM, {"code": code_of_step(totp, step + 1)})
    assert again.code == 409, body_text(again)
    assert (await call(browser, "DELETE", ENROLLMENT)).code == 404
    assert (await call(browser, "POST", ENROLLMENT, {"password": PASSWORD})).code == 409

    # the password alone no longer logs in; the device does
    other = new_browser()
    assert (await other.login(PASSWORD)).code == 401
    await totp_session(other, code_of_step(totp, step + 1))


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True)
async def test_cancel_enrollment(browser: Browser, gate: TOTPIdentityProvider) -> None:
    await password_session(browser)
    assert (await call(browser, "DELETE", ENROLLMENT)).code == 404
    secret = assert_provisioning(await call(browser, "POST", ENROLLMENT, {"password": PASSWORD}), gate)["secret"]

    cancelled = await call(browser, "DELETE", ENROLLMENT)
    assert cancelled.code == 204 and not cancelled.body
    assert account_of(gate).pending_secret is None
    assert (await call(browser, "DELETE", ENROLLMENT)).code == 404
    late = await call(browser, "POST", CONFIRM, {"code": totp_for(gate, secret).now()})
    assert late.code == 409
    assert not account_of(gate).enrolled


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True)
async def test_enrollment_needs_the_password(browser: Browser, gate: TOTPIdentityProvider) -> None:
    await password_session(browser)
    refused = await call(browser, "POST", ENROLLMENT, {"password": WRONG_PASSWORD})
    assert refused.code == 403, body_text(refused)
    assert "secret" not in json_body(refused)
    assert account_of(gate).pending_secret is None


@pytest.mark.parametrize("gate_config", [{"TwoFactorConfig": {"enrollment_policy": "cli-only"}}], indirect=True)
@pytest.mark.parametrize(
    ("path", "fields"),
    [pytest.param(ENROLLMENT, {"password": PASSWORD}, id="enrollment"), pytest.param(RELINK, None, id="relink")],
)
async def test_cli_only_policy_refuses_linking_through_the_api(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount, path: str, fields: dict[str, str] | None
) -> None:
    """Under ``cli-only`` devices are linked in a terminal; the page refuses both enrolling and re-linking."""
    await totp_session(browser, enrolled.recovery_codes[0])
    body = fields or {"password": PASSWORD, "otp": enrolled.fresh_code()}
    response = await call(browser, "POST", path, body)
    assert response.code == 403, (response.code, sorted(json_body(response)))
    assert "jupyter 2fa enroll" in json_body(response)["message"]
    assert "secret" not in json_body(response)
    assert account_of(gate).pending_secret is None


# -- re-link and recovery codes -------------------------------------------------------------------------------------


async def test_relink_replaces_the_factor_and_signs_out_other_sessions(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    this, other = new_browser(), new_browser()
    await totp_session(this, enrolled.recovery_codes[0])
    await totp_session(other, enrolled.recovery_codes[1])
    assert (await other.get(CONTENTS)).code == 200

    provisioning = assert_provisioning(
        await call(this, "POST", RELINK, {"password": PASSWORD, "otp": enrolled.fresh_code()}), gate
    )
    assert provisioning["secret"] != enrolled.secret
    assert (await other.get(CONTENTS)).code == 200, "the old device works until the new one is confirmed"

    totp = totp_for(gate, provisioning["secret"])
    step = current_step(totp)
    confirmed = await call(this, "POST", CONFIRM, {"code": code_of_step(totp, step)})
    assert confirmed.code == 200, body_text(confirmed)
    assert len(json_body(confirmed)["recovery_codes"]) == 10

    assert (await this.get(CONTENTS)).code == 200
    assert (await status_of(this))["session_factor"] == "totp"
    assert (await other.get(CONTENTS)).code == 403
    assert (await other.get(STATUS)).code == 403

    old_device = new_browser()
    assert (await old_device.login(PASSWORD, enrolled.fresh_code())).code == 401
    assert (await old_device.login(PASSWORD, enrolled.recovery_codes[2])).code == 401
    await totp_session(new_browser(), code_of_step(totp, step + 1))


@pytest.mark.parametrize(
    ("password", "otp"),
    [
        pytest.param(WRONG_PASSWORD, "fresh", id="wrong-password"),
        pytest.param(PASSWORD, "wrong", id="wrong-code"),
        pytest.param(PASSWORD, "", id="no-code"),
    ],
)
async def test_relink_needs_password_and_current_code(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount, password: str, otp: str
) -> None:
    await totp_session(browser, enrolled.recovery_codes[0])
    code = {"fresh": enrolled.code_at(1), "wrong": wrong_code(enrolled.totp)}.get(otp, otp)
    response = await call(browser, "POST", RELINK, {"password": password, "otp": code})
    assert response.code == 403, body_text(response)
    assert account_of(gate).pending_secret is None


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True)
async def test_relink_without_a_device_is_a_conflict(browser: Browser, gate: TOTPIdentityProvider) -> None:
    await password_session(browser)
    response = await call(browser, "POST", RELINK, {"password": PASSWORD, "otp": "123456"})
    assert response.code == 409
    assert account_of(gate).pending_secret is None


async def test_regenerate_recovery_codes(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    browser = new_browser()
    await totp_session(browser, enrolled.fresh_code())

    wrong_password = await call(
        browser, "POST", RECOVERY_CODES, {"password": WRONG_PASSWORD, "otp": enrolled.code_at(1)}
    )
    bad_code = await call(browser, "POST", RECOVERY_CODES, {"password": PASSWORD, "otp": wrong_code(enrolled.totp)})
    assert (wrong_password.code, bad_code.code) == (403, 403)
    assert json_body(wrong_password) == json_body(bad_code), "a wrong password and a wrong code must read alike"
    assert account_of(gate).recovery_codes_left == 10

    response = await call(browser, "POST", RECOVERY_CODES, {"password": PASSWORD, "otp": enrolled.fresh_code()})
    assert response.code == 200, body_text(response)
    codes = json_body(response)["recovery_codes"]
    assert len(codes) == 10 and not set(codes) & set(enrolled.recovery_codes)
    assert (await status_of(browser))["recovery_codes_left"] == 10

    assert (await new_browser().login(PASSWORD, enrolled.recovery_codes[0])).code == 401
    await totp_session(new_browser(), codes[0])


# -- strict input -----------------------------------------------------------------------------------------------


def _fields(path: str, value: object) -> bytes:
    return json.dumps({name: value for name in POST_FIELDS[path]}).encode()


BAD_BODIES: list[Any] = [
    pytest.param(lambda path: b"password=x&code=1", 400, id="form-encoded"),
    pytest.param(lambda path: b"{not json", 400, id="broken-json"),
    pytest.param(lambda path: b'{"code": "\xff\xfe"}', 400, id="invalid-utf8"),
    pytest.param(lambda path: json.dumps([dict.fromkeys(POST_FIELDS[path], "1")]).encode(), 400, id="json-array"),
    pytest.param(lambda path: b'"123456"', 400, id="json-string"),
    pytest.param(lambda path: b"null", 400, id="json-null"),
    pytest.param(lambda path: _fields(path, 123), 400, id="number"),
    pytest.param(lambda path: _fields(path, None), 400, id="null-field"),
    pytest.param(lambda path: _fields(path, ["1"]), 400, id="list-field"),
    pytest.param(lambda path: _fields(path, {"a": "b"}), 400, id="object-field"),
    pytest.param(lambda path: _fields(path, True), 400, id="bool-field"),
    pytest.param(lambda path: _fields(path, PASSWORD + "\x00"), 400, id="nul-in-string"),
    pytest.param(lambda path: _fields(path, "1" * 2000), 400, id="2000-chars"),
    pytest.param(lambda path: _fields(path, "1" * 1_000_000), 413, id="1MB-body"),
    pytest.param(lambda path: _fields(path, "\ud800"), 400, id="lone-surrogate"),
    pytest.param(lambda path: b"[" * 30_000 + b"]" * 30_000, 400, id="deeply-nested-body"),
    pytest.param(lambda path: _fields(path, "@").replace(b'"@"', b"[" * 15_000 + b"]" * 15_000), 400, id="deep-field"),
    pytest.param(lambda path: b'{"%s": "1", "%s": "2"}' % ((POST_FIELDS[path][0].encode(),) * 2), 400, id="repeated"),
]


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True)
@pytest.mark.parametrize(("make_body", "status"), BAD_BODIES)
async def test_bad_input_is_refused_and_loses_nothing(
    browser: Browser, gate: TOTPIdentityProvider, make_body: Callable[[str], bytes], status: int
) -> None:
    await password_session(browser)
    secret = assert_provisioning(await call(browser, "POST", ENROLLMENT, {"password": PASSWORD}), gate)["secret"]
    before = account_of(gate)
    xsrf = await browser.ensure_xsrf()

    answers: dict[str, int] = {}
    for path in POST_FIELDS:
        response = await browser.post_raw(
            path, make_body(path), headers={"X-XSRFToken": xsrf}, content_type="application/json"
        )
        answers[path] = response.code
        if response.code < 500:
            assert "message" in json_body(response)
    after = account_of(gate)
    confirmed = await call(browser, "POST", CONFIRM, {"code": totp_for(gate, secret).now()})

    assert (answers, after.pending_secret, after.failures, confirmed.code) == (
        dict.fromkeys(POST_FIELDS, status),
        before.pending_secret,
        0,
        200,
    ), body_text(confirmed)


# -- throttle and lock ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gate_config",
    [{"TwoFactorConfig": {"lockout_threshold": 2, "help_text": HELP_TEXT}}],
    indirect=True,
)
async def test_locked_account_is_refused_with_the_help_text(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    await totp_session(browser, enrolled.fresh_code())
    for _ in range(2):
        refused = await call(browser, "POST", RECOVERY_CODES, {"password": PASSWORD, "otp": wrong_code(enrolled.totp)})
        assert refused.code == 403
        assert HELP_TEXT not in json_body(refused)["message"]
    locked = await call(browser, "POST", RECOVERY_CODES, {"password": PASSWORD, "otp": enrolled.fresh_code()})
    assert locked.code == 403, body_text(locked)
    assert "locked" in json_body(locked)["message"] and HELP_TEXT in json_body(locked)["message"]
    assert (await status_of(browser))["locked"] is True
    relink = await call(browser, "POST", RELINK, {"password": PASSWORD, "otp": enrolled.recovery_codes[0]})
    assert relink.code == 403 and HELP_TEXT in json_body(relink)["message"]
    assert account_of(gate).recovery_codes_left == 10


@pytest.mark.parametrize(
    "gate_config",
    [{"TwoFactorConfig": {"backoff_free_attempts": 2, "backoff_base_seconds": 60}}],
    indirect=True,
)
async def test_throttled_account_gets_retry_after(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    await totp_session(browser, enrolled.fresh_code())
    for _ in range(2):
        refused = await call(browser, "POST", RECOVERY_CODES, {"password": PASSWORD, "otp": wrong_code(enrolled.totp)})
        assert refused.code == 403
    throttled = await call(browser, "POST", RECOVERY_CODES, {"password": PASSWORD, "otp": enrolled.fresh_code()})
    assert throttled.code == 429, body_text(throttled)
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"{retry_after} s" in json_body(throttled)["message"]
    assert account_of(gate).recovery_codes_left == 10


# -- the store is down: fail closed ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gate_config",
    [
        {
            "TwoFactorConfig": {"db_url": UNREACHABLE_DB, "help_text": HELP_TEXT},
            # an explicit token: pytest-jupyter's default one is not applied to this provider
            "TOTPIdentityProvider": {"allow_token_access": True, "token": API_TOKEN},
        }
    ],
    indirect=True,
)
async def test_unreachable_store_fails_closed(browser: Browser, new_browser: Callable[[], Browser]) -> None:
    login = await browser.login(PASSWORD, "123456")
    assert login.code == 503, body_text(login)
    assert "unavailable" in body_text(login) and HELP_TEXT in body_text(login)
    assert browser.login_cookie() is None
    assert (await browser.get(CONTENTS)).code == 403

    page = await browser.get("2fa/enroll")  # the form reads nothing from the store; posting it fails closed
    assert page.code == 200 and "<svg" not in body_text(page)
    started = await browser.post_form("2fa/enroll", {"action": "start", "password": PASSWORD})
    assert started.code == 503 and "<svg" not in body_text(started)
    assert browser.login_cookie() is None

    # the API needs a session, which nobody can get now; the (opt-in) server token reaches it
    script = new_browser()
    script.extra_headers["Authorization"] = f"token {API_TOKEN}"
    for method, path, body in [("GET", STATUS, None), *WRITES]:
        response = await call(script, method, path, body, xsrf=False)  # token requests need no XSRF header
        assert response.code == 503, (method, path, body_text(response))
        assert "unavailable" in json_body(response)["message"]
