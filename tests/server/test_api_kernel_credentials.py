"""The 2FA API as the notebook panel's kernel calls it: HTTP Basic (the password), the read-only status token,
``"reveal": "link"`` with its one-time picture, and the environment the extension hands its kernels.

A kernel has no browser session: it is a client that sends only what the user typed (the password) or what its
server gave it (the status token). These tests check that both open exactly the 2FA API handlers that accept
them, that every password check is counted like a login, and that the secret reaches the user's browser (the
one-time picture) but never the kernel. Nothing inside jupyter_2fa is patched.
"""

from __future__ import annotations

import base64
import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from jupyter_2fa.core.audit import Action, AuditEvent
from jupyter_2fa.endpoints import API_URL_ENV, STATUS_TOKEN_ENV, STATUS_TOKEN_HEADER
from jupyter_2fa.messages import INVALID, RELINK_CANCEL_NEEDS_CODE
from jupyter_2fa.server import TOTPIdentityProvider

from helpers.core import password_failures
from helpers.gate import (
    API,
    CONFIRM,
    ENROLLMENT,
    OPTIONAL,
    PASSWORD,
    RECOVERY_CODES,
    RELINK,
    SERVER_TOKEN,
    STATUS,
    WRONG_PASSWORD,
    Browser,
    EnrolledAccount,
    body_text,
    json_body,
    totp_for,
)

QR = "2fa/qr/"

HELP_TEXT = "Call the research desk on 555-0100, quoting your username."
UNREACHABLE_DB = "postgresql+psycopg://nobody:x@127.0.0.1:1/none"
SECRET_FIELDS = {"otpauth_uri", "secret", "manual_key", "qr_svg"}
SVG = "{http://www.w3.org/2000/svg}"

# (method, path, a well-formed body) of every call of the 2FA API
CALLS: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", STATUS, None),
    ("POST", ENROLLMENT, {"password": PASSWORD}),
    ("DELETE", ENROLLMENT, None),
    ("POST", CONFIRM, {"code": "123456"}),
    ("POST", RELINK, {"password": PASSWORD, "otp": "123456"}),
    ("POST", RECOVERY_CODES, {"password": PASSWORD, "otp": "123456"}),
]


def call_id(method: str, path: str) -> str:
    return f"{method}-{path.removeprefix(API)}"


def basic(password: str, user: str = "kernel") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def kernel(new_browser: Callable[[], Browser], **headers: str) -> Browser:
    """A client without a session that sends ``headers`` on every request, as the panel's kernel does."""
    client = new_browser()
    client.extra_headers.update(headers)
    return client


async def send(client: Browser, method: str, path: str, body: object = None) -> HTTPResponse:
    """One JSON call without an X-XSRFToken header (per-request credentials need none)."""
    if method in {"GET", "DELETE"}:
        return await client.request(path, method=method)
    headers = {"Content-Type": "application/json"}
    return await client.request(path, method=method, body=json.dumps(body or {}), headers=headers)


def account_of(gate: TOTPIdentityProvider) -> Any:
    return gate.enrollment.store.get(gate.username)


def pending_secret(gate: TOTPIdentityProvider) -> str:
    """The pending secret, read from the store as an admin could (the kernel is never told it)."""
    account = account_of(gate)
    return str(gate.enrollment.store.keyring.decrypt(account.pending_secret))


def assert_no_login_cookie(client: Browser) -> None:
    assert client.login_set_cookie() is None, "per-request credentials must never become a session"
    assert client.login_cookie() is None


def card_key(svg: str) -> str:
    """The key typed out in a one-time picture (its monospace text lines), spaces removed."""
    root = ET.fromstring(svg)  # noqa: S314 - the server's own output
    lines = [el.text or "" for el in root.iter(f"{SVG}text") if el.get("font-family") == "monospace"]
    return "".join(lines).replace(" ", "")


async def link_picture(client: Browser, base_url: str) -> str:
    """Start an enrollment with ``"reveal": "link"``; the picture's path relative to the base URL."""
    started = await send(client, "POST", ENROLLMENT, {"password": PASSWORD, "reveal": "link"})
    assert started.code == 201, body_text(started)
    return str(json_body(started)["qr_url"]).removeprefix(base_url)


async def password_session(browser: Browser) -> None:
    """Log the browser in with the password alone (the ``optional`` policy, no device yet)."""
    response = await browser.login(PASSWORD)
    assert response.code == 302, body_text(response)


# -- HTTP Basic: the password, on the 2FA API only ----------------------------------------------------------------


@pytest.mark.parametrize("user", ["", "kernel", "someone-else"], ids=["no-user", "any-user", "other-name"])
async def test_basic_reads_the_status_without_a_session(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, enrolled: EnrolledAccount, user: str
) -> None:
    """A single server has one account: the user part is ignored, and there is no session to describe."""
    client = kernel(new_browser, Authorization=basic(PASSWORD, user))
    response = await send(client, "GET", STATUS)
    assert response.code == 200, body_text(response)
    status = json_body(response)
    assert (status["username"], status["enrolled"], status["pending"]) == (gate.username, True, False)
    assert (status["session_factor"], status["session_expires_at"]) == (None, None)
    assert response.headers["Cache-Control"] == "no-store"
    assert_no_login_cookie(client)


@pytest.mark.parametrize(("method", "path", "body"), [pytest.param(*c, id=call_id(*c[:2])) for c in CALLS])
async def test_a_wrong_basic_password_is_refused_and_counted_once(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    audit_events: list[AuditEvent],
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    """Each call is one password guess for the throttle: counted exactly once, worded like a wrong login."""
    client = kernel(new_browser, Authorization=basic(WRONG_PASSWORD))
    response = await send(client, method, path, body)
    assert response.code == 403, body_text(response)
    assert json_body(response)["message"] == INVALID
    assert "Retry-After" not in response.headers
    assert (account_of(gate).failures, password_failures(gate.enrollment.store, gate.username)) == (0, 1)
    assert [(e.action, e.outcome, e.reason, e.username) for e in audit_events] == [
        (Action.PASSWORD_CHECK, "failure", "wrong-password", gate.username)
    ]
    assert account_of(gate).pending_secret is None
    assert_no_login_cookie(client)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic !!!not-base64!!!", id="not-base64"),
        pytest.param("Basic " + base64.b64encode(b"kernel:\xff\xfe").decode(), id="not-utf8"),
        pytest.param("Basic " + base64.b64encode(b"kernel:a\x00b").decode(), id="nul"),
    ],
)
async def test_malformed_basic_credentials_are_bad_input_and_not_counted(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    audit_events: list[AuditEvent],
    header: str,
) -> None:
    response = await send(kernel(new_browser, Authorization=header), "GET", STATUS)
    assert response.code == 400, body_text(response)
    assert "enrolled" not in body_text(response)
    assert (account_of(gate).failures, audit_events) == (0, [])


@pytest.mark.parametrize(
    "gate_config",
    [{"TwoFactorConfig": {"lockout_threshold": 2, "password_backoff_free_attempts": 10, "help_text": HELP_TEXT}}],
    indirect=True,
    ids=["lock-after-2"],
)
async def test_basic_password_guesses_never_lock_the_account(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    """Wrong passwords through the API are counted against the name, not toward the account's lock: a
    stranger without the password cannot lock the owner out."""
    for attempt in range(5):
        refused = await send(kernel(new_browser, Authorization=basic(WRONG_PASSWORD)), "GET", STATUS)
        assert (refused.code, json_body(refused)["message"]) == (403, INVALID), attempt
    assert (account_of(gate).failures, password_failures(gate.enrollment.store, gate.username)) == (0, 5)
    assert (await send(kernel(new_browser, Authorization=basic(PASSWORD)), "GET", STATUS)).code == 200
    browser = new_browser()
    login = await browser.login(PASSWORD, enrolled.fresh_code())
    assert login.code == 302 and browser.login_cookie() is not None


@pytest.mark.parametrize(
    "gate_config",
    [{"TwoFactorConfig": {"password_backoff_free_attempts": 2, "backoff_base_seconds": 60}}],
    indirect=True,
    ids=["back-off-after-2"],
)
async def test_basic_guesses_are_throttled_with_retry_after(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    for _ in range(2):
        assert (await send(kernel(new_browser, Authorization=basic(WRONG_PASSWORD)), "GET", STATUS)).code == 403
    throttled = await send(kernel(new_browser, Authorization=basic(PASSWORD)), "GET", STATUS)
    assert throttled.code == 429, body_text(throttled)
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"{retry_after} s" in json_body(throttled)["message"]


@pytest.mark.parametrize(
    "gate_config", [{"TwoFactorConfig": {"db_url": UNREACHABLE_DB, "help_text": HELP_TEXT}}], indirect=True
)
@pytest.mark.parametrize("password", [PASSWORD, WRONG_PASSWORD], ids=["right-password", "wrong-password"])
async def test_basic_fails_closed_when_the_store_is_down(new_browser: Callable[[], Browser], password: str) -> None:
    response = await send(kernel(new_browser, Authorization=basic(password)), "GET", STATUS)
    assert response.code == 503, body_text(response)
    assert "unavailable" in json_body(response)["message"] and HELP_TEXT in json_body(response)["message"]


async def test_basic_needs_no_xsrf_header_to_write(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider
) -> None:
    """XSRF protects cookies, which a browser attaches by itself; Basic credentials it never adds unasked."""
    client = kernel(new_browser, Authorization=basic(PASSWORD))
    started = await send(client, "POST", ENROLLMENT, {"password": PASSWORD})
    assert started.code == 201, body_text(started)
    assert set(json_body(started)) >= SECRET_FIELDS, "inline, the default, still answers with the secret"
    assert account_of(gate).pending_secret is not None

    cancelled = await send(client, "DELETE", ENROLLMENT)
    assert cancelled.code == 204, body_text(cancelled)
    assert account_of(gate).pending_secret is None
    assert_no_login_cookie(client)


@pytest.mark.parametrize(
    ("method", "path", "refused"),
    [
        pytest.param("GET", "api/contents", 403, id="GET-contents"),
        pytest.param("POST", "api/contents", 403, id="POST-contents"),
        pytest.param("GET", "api/kernels", 403, id="GET-kernels"),
        pytest.param("POST", "api/kernels", 403, id="POST-kernels"),
        pytest.param("GET", "api/sessions", 403, id="GET-sessions"),
        pytest.param("GET", "api/me", 403, id="GET-me"),
        pytest.param("GET", "api/terminals", 403, id="GET-terminals"),
        pytest.param("GET", QR + "a-ticket", 302, id="GET-qr"),
    ],
)
async def test_basic_opens_nothing_but_the_2fa_api(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    audit_events: list[AuditEvent],
    method: str,
    path: str,
    refused: int,
) -> None:
    """The password alone is one factor: outside the 2FA API it must not even be looked at."""
    response = await send(kernel(new_browser, Authorization=basic(PASSWORD)), method, path, {})
    assert response.code == refused, body_text(response)
    if refused == 302:
        assert "/login?next=" in response.headers["Location"]
    assert audit_events == [], "the password was checked where it is not accepted"


# -- the status token: GET status, nothing else ---------------------------------------------------------------------


async def test_the_status_token_reads_the_status(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    client = kernel(new_browser, **{STATUS_TOKEN_HEADER: gate.status_token})
    response = await send(client, "GET", STATUS)
    assert response.code == 200, body_text(response)
    status = json_body(response)
    assert (status["username"], status["enrolled"]) == (gate.username, True)
    assert (status["session_factor"], status["session_expires_at"]) == (None, None)
    assert_no_login_cookie(client)


@pytest.mark.parametrize(
    ("method", "path", "token", "refused"),
    [
        pytest.param("GET", STATUS, "wrong", 403, id="GET-status-wrong-token"),
        pytest.param("GET", STATUS, "", 403, id="GET-status-empty-token"),
        *(pytest.param(m, p, "right", 403, id=f"{call_id(m, p)}-right-token") for m, p, _ in CALLS[1:]),
        pytest.param("GET", "api/contents", "right", 403, id="GET-contents-right-token"),
        pytest.param("GET", "api/me", "right", 403, id="GET-me-right-token"),
        pytest.param("GET", QR + "a-ticket", "right", 302, id="GET-qr-right-token"),
    ],
)
async def test_the_status_token_opens_nothing_else(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    method: str,
    path: str,
    token: str,
    refused: int,
) -> None:
    value = gate.status_token if token == "right" else token
    body = next((b for m, p, b in CALLS if (m, p) == (method, path)), None)
    response = await send(kernel(new_browser, **{STATUS_TOKEN_HEADER: value}), method, path, body)
    assert response.code == refused, body_text(response)
    assert "enrolled" not in body_text(response) and "recovery_codes" not in body_text(response)
    assert (account_of(gate).pending_secret, account_of(gate).recovery_codes_left) == (None, 10)


# -- reveal: link -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linking:
    """How a test gets a browser session and which call starts a link (a first device, or a re-link)."""

    path: str
    needs_device: bool


LINKINGS = [
    pytest.param(OPTIONAL, Linking(ENROLLMENT, needs_device=False), id="enrollment"),
    pytest.param({}, Linking(RELINK, needs_device=True), id="relink"),
]


async def start_link(
    request: pytest.FixtureRequest, browser: Browser, client: Browser, linking: Linking
) -> tuple[HTTPResponse, EnrolledAccount | None]:
    """Log ``browser`` in, then have the kernel ``client`` start a link with ``"reveal": "link"``."""
    device: EnrolledAccount | None = None
    if linking.needs_device:
        device = request.getfixturevalue("enrolled")
        assert (await browser.login(PASSWORD, device.fresh_code())).code == 302
        body = {"password": PASSWORD, "otp": device.recovery_codes[0], "reveal": "link"}
    else:
        await password_session(browser)
        body = {"password": PASSWORD, "reveal": "link"}
    return await send(client, "POST", linking.path, body), device


@pytest.mark.parametrize(("gate_config", "linking"), LINKINGS, indirect=["gate_config"])
async def test_reveal_link_shows_the_secret_to_the_browser_once_and_never_to_the_kernel(
    request: pytest.FixtureRequest,
    browser: Browser,
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    jp_base_url: str,
    linking: Linking,
) -> None:
    client = kernel(new_browser, Authorization=basic(PASSWORD))
    before = time.time()
    started, device = await start_link(request, browser, client, linking)

    assert started.code == 201, body_text(started)
    assert started.headers["Cache-Control"] == "no-store"
    answer = json_body(started)
    assert set(answer) == {"qr_url", "expires_at"}
    assert answer["qr_url"].startswith(jp_base_url + QR)
    assert before < answer["expires_at"] <= time.time() + gate.enrollment_lifetime + 1
    secret = pending_secret(gate)
    assert secret not in body_text(started)

    picture = await browser.get(answer["qr_url"].removeprefix(jp_base_url))
    assert picture.code == 200, body_text(picture)
    assert picture.headers["Content-Type"] == "image/svg+xml"
    assert picture.headers["Cache-Control"] == "no-store"
    assert picture.headers["X-Content-Type-Options"] == "nosniff"
    assert picture.headers["Content-Security-Policy"].startswith("default-src 'none'")
    key = card_key(body_text(picture))
    assert key == secret
    assert (await browser.get(answer["qr_url"].removeprefix(jp_base_url))).code == 404, "shown twice"
    assert (await browser.get(QR + "no-such-ticket")).code == 404

    # the user types the code of the app that scanned the picture into the panel; the kernel confirms
    totp = totp_for(gate, key)
    confirmed = await send(client, "POST", CONFIRM, {"code": totp.now()})
    assert confirmed.code == 200, body_text(confirmed)
    assert len(json_body(confirmed)["recovery_codes"]) == 10
    assert_no_login_cookie(client)
    account = account_of(gate)
    assert account.enrolled and account.pending_secret is None
    assert (await browser.get(STATUS)).code == 403, "a session granted before the new device outlived it"
    if device is not None:
        assert (await new_browser().login(PASSWORD, device.fresh_code())).code == 401, "the old device still works"
    assert (await new_browser().login(PASSWORD, totp.at(time.time() + totp.interval))).code == 302


@pytest.mark.parametrize(
    "gate_config",
    [{**OPTIONAL, "TOTPIdentityProvider": {"allow_token_access": True, "token": SERVER_TOKEN}}],
    indirect=True,
    ids=["optional+token-access"],
)
@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        pytest.param({}, 302, id="no-session"),
        pytest.param({"Authorization": basic(PASSWORD)}, 302, id="basic"),
        pytest.param({"Authorization": f"token {SERVER_TOKEN}"}, 404, id="server-token"),
        pytest.param({STATUS_TOKEN_HEADER: "status"}, 302, id="status-token"),
    ],
)
async def test_the_picture_is_for_the_browser_session_only(
    browser: Browser,
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    jp_base_url: str,
    headers: dict[str, str],
    refused: int,
) -> None:
    """Whatever a kernel holds (the password, its server's token, the status token) does not fetch the
    picture, and a refused fetch does not use it up: the browser still gets it."""
    await password_session(browser)
    path = await link_picture(kernel(new_browser, Authorization=basic(PASSWORD)), jp_base_url)
    if STATUS_TOKEN_HEADER in headers:  # the real one (it is made when the server starts)
        headers = {STATUS_TOKEN_HEADER: gate.status_token}

    response = await kernel(new_browser, **headers).get(path)
    assert response.code == refused, body_text(response)
    assert "<svg" not in body_text(response)
    if refused == 302:
        assert "/login?next=" in response.headers["Location"]
    assert (await browser.get(path)).code == 200


@pytest.mark.parametrize("gate_config", [OPTIONAL], indirect=True)
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("DELETE", ENROLLMENT, 204, id="cancelled"),
        pytest.param("POST", CONFIRM, 200, id="confirmed"),
        pytest.param("POST", ENROLLMENT, 201, id="started-again"),
    ],
)
async def test_an_ended_enrollments_picture_is_dead(
    browser: Browser,
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    jp_base_url: str,
    method: str,
    path: str,
    status: int,
) -> None:
    """A ticket not fetched yet dies with its enrollment, so a later fetch cannot show a stale secret."""
    await password_session(browser)
    client = kernel(new_browser, Authorization=basic(PASSWORD))
    picture = await link_picture(client, jp_base_url)
    totp = totp_for(gate, pending_secret(gate))
    bodies = {CONFIRM: {"code": totp.now()}, ENROLLMENT: {"password": PASSWORD, "reveal": "link"}}

    ended = await send(client, method, path, bodies.get(path))
    assert ended.code == status, body_text(ended)

    if path == CONFIRM:  # which ended the browser's session (granted before the device): log in with the device
        assert (await browser.login(PASSWORD, totp.at(time.time() + totp.interval))).code == 302
    assert (await browser.get(picture)).code == 404
    assert len(gate.one_shot_images) == (1 if status == 201 else 0)


@pytest.mark.parametrize(
    ("reveal", "status"),
    [
        pytest.param(None, 201, id="missing-is-inline"),
        pytest.param("", 201, id="empty-is-inline"),
        pytest.param("inline", 201, id="inline"),
        pytest.param("qr", 400, id="unknown-word"),
        pytest.param("LINK", 400, id="upper-case"),
        pytest.param(" link", 400, id="leading-space"),
        pytest.param(5, 400, id="number"),
        pytest.param(True, 400, id="bool"),
        pytest.param(["link"], 400, id="list"),
        pytest.param("null", 400, id="json-null"),
    ],
)
async def test_the_reveal_field_is_strict(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, reveal: Any, status: int
) -> None:
    body: dict[str, Any] = {"password": PASSWORD}
    if reveal == "null":
        body["reveal"] = None
    elif reveal is not None:
        body["reveal"] = reveal
    response = await send(kernel(new_browser, Authorization=basic(PASSWORD)), "POST", ENROLLMENT, body)
    assert response.code == status, body_text(response)
    assert len(gate.one_shot_images) == 0
    if status == 201:
        assert set(json_body(response)) >= SECRET_FIELDS
        return
    assert "reveal" in json_body(response)["message"]
    account = account_of(gate)
    assert account is None or account.pending_secret is None, "a refused request started an enrollment"


async def test_a_bad_reveal_starts_no_relink(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    """The field is read before the code is checked, so a bad request does not spend the code either."""
    body = {"password": PASSWORD, "otp": enrolled.recovery_codes[0], "reveal": "qr"}
    response = await send(kernel(new_browser, Authorization=basic(PASSWORD)), "POST", RELINK, body)
    assert response.code == 400, body_text(response)
    assert (account_of(gate).pending_secret, account_of(gate).recovery_codes_left) == (None, 10)


# -- what the extension tells its kernels ----------------------------------------------------------------------------


async def test_the_extension_tells_its_kernels_where_the_api_is(
    browser: Browser,
    gate: TOTPIdentityProvider,
    jp_http_port: int,
    jp_base_url: str,
) -> None:
    """A kernel inherits the server's environment: the API's address and the status token, which answer."""
    await browser.get("login")  # the address is set once the event loop runs
    token = os.environ[STATUS_TOKEN_ENV]
    url = os.environ[API_URL_ENV]
    assert token == gate.status_token
    parts = urlsplit(url)
    assert (parts.scheme, parts.port, parts.path) == ("http", jp_http_port, f"{jp_base_url}2fa/api/")

    response = await AsyncHTTPClient().fetch(url + "status", headers={STATUS_TOKEN_HEADER: token}, raise_error=False)
    assert response.code == 200, body_text(response)
    assert json_body(response)["username"] == gate.username


# -- cancelling a re-link needs the device it would keep ---------------------------------------------------------


async def cancel_relink(client: Browser, body: dict[str, str] | None) -> HTTPResponse:
    if body is None:
        return await client.request(ENROLLMENT, method="DELETE")
    return await client.request(ENROLLMENT, method="DELETE", body=json.dumps(body))


@pytest.mark.parametrize(
    ("otp", "status", "message"),
    [
        pytest.param(None, 403, RELINK_CANCEL_NEEDS_CODE, id="no-body"),
        pytest.param("", 403, RELINK_CANCEL_NEEDS_CODE, id="empty-code"),
        pytest.param("wrong", 403, INVALID, id="wrong-code"),
        pytest.param("right", 204, None, id="current-code"),
        pytest.param("recovery", 204, None, id="recovery-code"),
    ],
)
async def test_a_relink_is_cancelled_only_with_the_current_factor(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    otp: str | None,
    status: int,
    message: str | None,
) -> None:
    """Whoever holds the password alone (a kernel's Basic credentials) cannot cancel a re-link started
    elsewhere: the owner's new device would silently not be linked."""
    client = kernel(new_browser, Authorization=basic(PASSWORD))
    started = await send(client, "POST", RELINK, {"password": PASSWORD, "otp": enrolled.fresh_code()})
    assert started.code == 201, body_text(started)
    codes = {"wrong": "000000", "right": enrolled.fresh_code(), "recovery": enrolled.recovery_codes[0]}
    response = await cancel_relink(client, None if otp is None else {"otp": codes.get(otp, otp)})
    assert response.code == status, body_text(response)
    if message is not None:
        assert json_body(response)["message"] == message
    assert (account_of(gate).pending_secret is None) is (status == 204)
    assert account_of(gate).enrolled


async def test_a_two_factor_session_cancels_its_relink_without_a_code(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    assert (await browser.login(PASSWORD, enrolled.fresh_code())).code == 302
    started = await browser.post_json(RELINK, {"password": PASSWORD, "otp": enrolled.recovery_codes[0]})
    assert started.code == 201, body_text(started)
    cancelled = await browser.delete(ENROLLMENT)
    assert cancelled.code == 204, body_text(cancelled)
    assert account_of(gate).pending_secret is None
