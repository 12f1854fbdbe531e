"""The no-JavaScript enrollment page ``2fa/enroll``: password -> QR code and key (once) -> code -> recovery codes.

Everything is driven through HTTP with a cookie-keeping browser (``helpers.gate.Browser``); the state is read back
from the store. Nothing inside jupyter_2fa is patched.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlparse

import pyotp
import pytest
from tornado.httpclient import HTTPResponse

from jupyter_2fa.core.audit import AuditEvent
from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import (
    PASSWORD,
    WRONG_PASSWORD,
    Browser,
    EnrolledAccount,
    HtmlForm,
    body_text,
    parse_form,
    totp_for,
    without_xsrf,
    wrong_code,
)

ENROLL = "2fa/enroll"
CONTENTS = "api/contents"

MANUAL_KEY = re.compile(r'<p class="key" id="manual_key">\s*([^<]*?)\s*</p>')
GROUPED_BASE32 = re.compile(r"^[A-Z2-7]{4}(?: [A-Z2-7]{4})*(?: [A-Z2-7]{1,3})?$")
RECOVERY_LIST = re.compile(r'<ul class="codes" id="recovery_codes">(.*?)</ul>', re.DOTALL)
LIST_ITEM = re.compile(r"<li>\s*([^<]*?)\s*</li>")
RECOVERY_CODE = re.compile(r"^[0-9a-z]{5}-[0-9a-z]{5}$")
MESSAGE = re.compile(r'<p[^>]*id="enroll_message"[^>]*>(.*?)</p>', re.DOTALL)
CONTINUE_LINK = re.compile(r'<a href="([^"]*)" id="enroll_continue">')

CLI_ONLY = {"TwoFactorConfig": {"enrollment_policy": "cli-only"}}


# -- reading pages --------------------------------------------------------------------------------------------


def manual_key(response: HTTPResponse) -> str | None:
    match = MANUAL_KEY.search(body_text(response))
    return html.unescape(match.group(1)) if match else None


def secret_of(response: HTTPResponse) -> str:
    key = manual_key(response)
    assert key is not None, f"no manual key on the page:\n{body_text(response)}"
    return key.replace(" ", "")


def recovery_codes(response: HTTPResponse) -> list[str]:
    match = RECOVERY_LIST.search(body_text(response))
    return [html.unescape(item) for item in LIST_ITEM.findall(match.group(1))] if match else []


def message(response: HTTPResponse) -> str:
    match = MESSAGE.search(body_text(response))
    return html.unescape(match.group(1)).strip() if match else ""


def qr_count(response: HTTPResponse) -> int:
    return body_text(response).count("<svg")


def shows_no_secret(response: HTTPResponse) -> bool:
    return qr_count(response) == 0 and manual_key(response) is None and 'id="manual_key"' not in body_text(response)


def login_of(browser: Browser) -> bool:
    """Whether the browser holds a login cookie."""
    return browser.login_cookie() is not None


# -- driving the page -----------------------------------------------------------------------------------------


class EnrollPage:
    """The page as a user sees it; asserts ``Cache-Control: no-store`` on every answer and keeps them all."""

    def __init__(self, browser: Browser, next_url: str | None = None) -> None:
        self.browser = browser
        self.params = {"next": next_url} if next_url is not None else None
        self.responses: list[HTTPResponse] = []

    def _seen(self, response: HTTPResponse) -> HTTPResponse:
        assert response.headers.get("Cache-Control") == "no-store", (response.code, dict(response.headers))
        self.responses.append(response)
        return response

    async def get(self) -> HTTPResponse:
        return self._seen(await self.browser.get(ENROLL, params=self.params))

    async def post(self, fields: dict[str, str], xsrf: bool = True) -> HTTPResponse:
        return self._seen(await self.browser.post_form(ENROLL, fields, xsrf=xsrf, params=self.params))

    async def start(self, password: str = PASSWORD, otp: str | None = None) -> HTTPResponse:
        fields = {"action": "start", "password": password}
        if otp is not None:
            fields["otp"] = otp
        return await self.post(fields)

    async def confirm(self, code: str) -> HTTPResponse:
        return await self.post({"action": "confirm", "code": code})

    async def cancel(self) -> HTTPResponse:
        return await self.post({"action": "cancel"})


@pytest.fixture
def page(browser: Browser) -> EnrollPage:
    return EnrollPage(browser)


async def contents_status(browser: Browser) -> int:
    return (await browser.get(CONTENTS)).code


def pending_token(gate: TOTPIdentityProvider) -> str | None:
    account = gate.enrollment.store.get(gate.username)
    return account.pending_secret if account else None


def is_enrolled(gate: TOTPIdentityProvider) -> bool:
    account = gate.enrollment.store.get(gate.username)
    return bool(account and account.enrolled)


# -- the happy path -------------------------------------------------------------------------------------------


async def test_get_shows_the_password_form(page: EnrollPage) -> None:
    response = await page.get()
    text = body_text(response)
    assert response.code == 200
    assert 'id="enroll_start_form"' in text
    assert 'name="password"' in text
    # only for replacing a device (see test_the_code_field_shows_only_to_relink)
    assert "otp" not in start_form(response).inputs
    assert shows_no_secret(response)


# -- the start form: the current code only to re-link, and why the password is asked again -------------------

WHY_PHRASES = ("password is asked for again", "right before a device is linked", "only once", "app open")


def start_form(response: HTTPResponse) -> HtmlForm:
    return parse_form(body_text(response), "enroll_start_form")


async def _anonymous(page: EnrollPage, enrolled: EnrolledAccount | None) -> HTTPResponse:
    return await page.get()


async def _asked_to_relink(page: EnrollPage, enrolled: EnrolledAccount | None) -> HTTPResponse:
    return await page.browser.get(ENROLL, params={"relink": "1"})


async def _logged_in(page: EnrollPage, enrolled: EnrolledAccount | None) -> HTTPResponse:
    otp = enrolled.fresh_code() if enrolled is not None else ""  # no device: the optional policy lets the password in
    assert (await page.browser.login(PASSWORD, otp)).code == 302
    return await page.get()


async def _wrong_relink_code(page: EnrollPage, enrolled: EnrolledAccount | None) -> HTTPResponse:
    assert enrolled is not None
    return await page.start(PASSWORD, wrong_code(enrolled.totp))


async def _password_alone_to_linked_account(page: EnrollPage, enrolled: EnrolledAccount | None) -> HTTPResponse:
    return await page.start(PASSWORD)


OPTIONAL = {"TwoFactorConfig": {"enrollment_policy": "optional"}}
# (gate config, a device linked?, how the visitor reaches the form, status, code field shown?, re-link link offered?)
START_FORMS = {
    "first-link": ({}, False, _anonymous, 200, False, True),
    # an anonymous visitor is never told whether the account has a device: the first-time form, with the link
    "anonymous-visitor-of-a-linked-account": ({}, True, _anonymous, 200, False, True),
    "asked-to-relink": ({}, False, _asked_to_relink, 200, True, False),
    "logged-in-with-a-device": ({}, True, _logged_in, 200, True, False),
    "logged-in-without-a-device": (OPTIONAL, False, _logged_in, 200, False, False),
    "wrong-code-keeps-the-field": ({}, True, _wrong_relink_code, 401, True, False),
    "password-alone-refused": ({}, True, _password_alone_to_linked_account, 401, False, True),
}


@pytest.mark.parametrize(
    ("gate_config", "device", "reach", "status", "code_field", "relink_link"),
    list(START_FORMS.values()),
    ids=list(START_FORMS),
    indirect=["gate_config"],
)
async def test_the_code_field_shows_only_to_relink(
    page: EnrollPage,
    gate: TOTPIdentityProvider,
    device: bool,
    reach: Callable[[EnrollPage, EnrolledAccount | None], Awaitable[HTTPResponse]],
    status: int,
    code_field: bool,
    relink_link: bool,
    request: pytest.FixtureRequest,
) -> None:
    enrolled = request.getfixturevalue("enrolled") if device else None
    response = await reach(page, enrolled)
    text = body_text(response)
    assert response.code == status, message(response)
    form = start_form(response)
    assert {"action", "password"} <= set(form.inputs)
    assert ("otp" in form.inputs) is code_field
    assert ('id="relink_link"' in text) is relink_link
    why = re.search(r'<p id="enroll_why">(.*?)</p>', text, re.DOTALL)
    assert why is not None, text
    why_text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", why.group(1))).split())
    assert all(phrase in why_text for phrase in WHY_PHRASES), why_text


async def test_the_relink_link_leads_to_a_form_that_relinks(page: EnrollPage, enrolled: EnrolledAccount) -> None:
    """Without JavaScript: the offered link, then its form (the code field, ``relink`` kept in the action)."""
    offered = re.search(r'<a href="([^"]*)" id="relink_link">', body_text(await page.get()))
    assert offered is not None
    relink_form = await page.browser.submit(HtmlForm(html.unescape(offered.group(1)), "get"), {})
    form = start_form(relink_form)
    assert "otp" in form.inputs and "relink=1" in form.action
    started = await page.browser.submit(form, {"password": PASSWORD, "otp": enrolled.fresh_code()})
    assert started.code == 200, message(started)
    assert qr_count(started) == 1


async def test_the_form_tells_a_visitor_nothing_about_the_account(page: EnrollPage, gate: TOTPIdentityProvider) -> None:
    """Linked or not, an anonymous visitor gets the same page, without the account name."""
    before = without_xsrf(body_text(await page.get()))
    gate.enrollment.begin(gate.username, time.time())
    totp = pyotp.parse_uri(gate.enrollment.reveal(gate.username, time.time()).uri)
    gate.enrollment.confirm(gate.username, totp.now(), time.time())
    after = without_xsrf(body_text(await page.get()))
    assert before == after
    assert gate.username not in after


async def test_enroll_shows_key_once_then_codes_once_and_logs_in(
    page: EnrollPage, gate: TOTPIdentityProvider, new_browser: Callable[[], Browser]
) -> None:
    await page.get()
    started = await page.start()
    assert started.code == 200
    assert qr_count(started) == 1
    assert re.search(r'<div class="qr" id="enroll_qr">\s*(<\?xml[^>]*>\s*)?<svg', body_text(started))
    key = manual_key(started)
    assert key is not None and GROUPED_BASE32.fullmatch(key), key
    secret = key.replace(" ", "")
    assert len(secret) * 5 >= 160
    assert body_text(started).count(key) == 1
    assert not is_enrolled(gate)

    totp = totp_for(gate, secret)
    confirm_step = int(time.time()) // totp.interval
    done = await page.confirm(totp.at(confirm_step * totp.interval))
    assert done.code == 200, message(done)
    codes = recovery_codes(done)
    assert len(codes) == gate.enrollment.settings.recovery_code_count == 10
    assert all(RECOVERY_CODE.fullmatch(code) for code in codes), codes
    assert len(set(codes)) == len(codes)
    assert shows_no_secret(done)
    assert is_enrolled(gate)
    assert pending_token(gate) is None

    assert login_of(page.browser)
    assert await contents_status(page.browser) == 200

    # shown once: coming back shows the re-link form, neither the key nor the codes
    again = await page.get()
    assert again.code == 200
    assert shows_no_secret(again) and recovery_codes(again) == []
    assert 'name="otp"' in body_text(again)

    # the linked device now opens the server from another browser
    other = new_browser()
    assert (await other.login(PASSWORD, totp.at((confirm_step + 1) * totp.interval))).code == 302
    assert await contents_status(other) == 200


async def test_reload_and_second_tab_never_show_the_first_secret(page: EnrollPage, gate: TOTPIdentityProvider) -> None:
    """Pick-one behaviour: the pending secret is shown exactly once, and starting again voids it.

    A reload (GET) only offers the password form again; a second tab (or a re-submitted form) that posts the
    password again gets a NEW secret, and codes from the first one no longer confirm. So a secret can never be
    shown twice, whichever tab asks.
    """
    first = await page.start()
    first_secret = secret_of(first)

    reload = await page.get()
    assert reload.code == 200
    assert shows_no_secret(reload)
    assert first_secret not in body_text(reload)

    second_tab = EnrollPage(page.browser)
    second = await second_tab.start()
    second_secret = secret_of(second)
    assert second_secret != first_secret
    assert qr_count(second) == 1

    stale = await page.confirm(totp_for(gate, first_secret).now())
    assert stale.code == 400, message(stale)
    assert not is_enrolled(gate)
    assert shows_no_secret(stale)

    done = await second_tab.confirm(totp_for(gate, second_secret).now())
    assert done.code == 200, message(done)
    assert is_enrolled(gate)


async def test_pending_secret_does_not_open_the_server_before_confirmation(
    page: EnrollPage, gate: TOTPIdentityProvider, new_browser: Callable[[], Browser]
) -> None:
    secret = secret_of(await page.start())
    account = gate.enrollment.store.get(gate.username)
    assert account is not None and not account.enrolled and account.pending_secret is not None

    intruder = new_browser()
    response = await intruder.login(PASSWORD, totp_for(gate, secret).now())
    # no device is linked yet: the password only leads (back) to the enrollment page
    assert response.code == 303 and "2fa/enroll" in response.headers.get("Location", "")
    assert not login_of(intruder)
    assert await contents_status(intruder) == 403
    assert not login_of(page.browser)
    assert await contents_status(page.browser) == 403
    assert not is_enrolled(gate)


@pytest.mark.parametrize(
    "bad_code",
    [
        pytest.param(None, id="wrong-digits"),
        pytest.param("12345", id="too-short"),
        pytest.param("abcdef", id="letters"),
        pytest.param("12\x003456", id="nul"),
        pytest.param("1" * 2000, id="2000-chars"),
    ],
)
async def test_wrong_confirm_code_keeps_the_enrollment_pending(
    page: EnrollPage, gate: TOTPIdentityProvider, bad_code: str | None
) -> None:
    secret = secret_of(await page.start())
    totp = totp_for(gate, secret)
    token = pending_token(gate)

    refused = await page.confirm(wrong_code(totp) if bad_code is None else bad_code)
    assert refused.code == 400, message(refused)
    assert message(refused)
    assert shows_no_secret(refused)
    assert secret not in body_text(refused)
    assert not is_enrolled(gate)
    assert pending_token(gate) == token
    assert not login_of(page.browser)

    done = await page.confirm(totp.now())
    assert done.code == 200, message(done)
    assert len(recovery_codes(done)) == 10
    assert is_enrolled(gate)


@pytest.mark.parametrize(
    ("password", "status"),
    [
        pytest.param(WRONG_PASSWORD, 401, id="wrong"),
        pytest.param("", 401, id="empty"),
        pytest.param(PASSWORD + "\x00", 400, id="nul"),
        pytest.param(PASSWORD.upper(), 401, id="case"),
        pytest.param("x" * 2000, 400, id="2000-chars"),
    ],
)
async def test_wrong_password_starts_nothing(
    page: EnrollPage, gate: TOTPIdentityProvider, password: str, status: int
) -> None:
    response = await page.start(password)
    assert response.code == status, message(response)
    assert message(response)
    assert shows_no_secret(response)
    assert pending_token(gate) is None
    assert 'id="enroll_start_form"' in body_text(response)


@pytest.mark.parametrize(
    "gate_config",
    [{"TwoFactorConfig": {"lockout_threshold": 2, "password_backoff_free_attempts": 2, "backoff_base_seconds": 60}}],
    indirect=True,
)
async def test_wrong_passwords_slow_enrollment_down_never_lock(page: EnrollPage, gate: TOTPIdentityProvider) -> None:
    for _ in range(2):
        assert (await page.start(WRONG_PASSWORD)).code == 401
    throttled = await page.start(PASSWORD)  # the right password waits too: the answer must not tell
    assert throttled.code == 429
    assert "Wait 60 s" in message(throttled)
    assert shows_no_secret(throttled)
    assert pending_token(gate) is None
    account = gate.enrollment.store.get(gate.username)
    assert account is not None and account.failures == 0


async def test_post_without_xsrf_is_refused(page: EnrollPage, gate: TOTPIdentityProvider) -> None:
    await page.browser.ensure_xsrf()
    response = await page.post({"action": "start", "password": PASSWORD}, xsrf=False)
    assert response.code == 403
    assert shows_no_secret(response)
    assert pending_token(gate) is None


@pytest.mark.parametrize("gate_config", [{"TwoFactorConfig": {"enrollment_lifetime": 30}}], indirect=True)
async def test_expired_pending_enrollment_says_so(page: EnrollPage, gate: TOTPIdentityProvider) -> None:
    started_at = time.time() - 100  # lifetime 30 s: expired 70 s ago
    gate.enrollment.begin(gate.username, started_at)
    secret = gate.enrollment.reveal(gate.username, started_at).secret

    response = await page.confirm(totp_for(gate, secret).now())
    assert response.code == 409, message(response)
    assert "expired" in message(response)
    assert "nothing was linked" in message(response)
    assert shows_no_secret(response)
    assert not is_enrolled(gate)
    assert not login_of(page.browser)


async def test_only_the_browser_that_started_may_confirm(
    page: EnrollPage, gate: TOTPIdentityProvider, new_browser: Callable[[], Browser]
) -> None:
    """Whoever sees the QR code or key (a shoulder, a shared screen) and submits its code first from another
    browser links nothing and gets no session; the browser that typed the password still can."""
    secret = secret_of(await page.start())
    code = totp_for(gate, secret).now()
    onlooker = EnrollPage(new_browser())

    stolen = await onlooker.confirm(code)
    assert stolen.code == 409, message(stolen)
    assert "started elsewhere" in message(stolen)
    assert not is_enrolled(gate)
    assert not login_of(onlooker.browser)
    assert pending_token(gate) is not None  # the owner's enrollment is untouched, and not counted as a failure
    assert gate.enrollment.store.get(gate.username).failures == 0

    mine = await page.confirm(code)
    assert mine.code == 200, message(mine)
    assert is_enrolled(gate)


async def test_cancel_forgets_the_pending_secret(page: EnrollPage, gate: TOTPIdentityProvider) -> None:
    secret = secret_of(await page.start())
    cancelled = await page.cancel()
    assert cancelled.code == 200
    assert "Nothing was linked" in message(cancelled)
    assert shows_no_secret(cancelled)
    assert pending_token(gate) is None

    late = await page.confirm(totp_for(gate, secret).now())
    assert late.code == 409
    assert not is_enrolled(gate)
    assert not login_of(page.browser)


async def test_relink_replaces_the_device_and_signs_out_other_sessions(
    page: EnrollPage, gate: TOTPIdentityProvider, enrolled: EnrolledAccount, new_browser: Callable[[], Browser]
) -> None:
    this, other = page.browser, new_browser()
    assert (await this.login(PASSWORD, enrolled.recovery_codes[0])).code == 302
    assert (await other.login(PASSWORD, enrolled.recovery_codes[1])).code == 302
    assert await contents_status(other) == 200

    form = await page.get()
    assert form.code == 200
    assert 'name="otp"' in body_text(form) and 'name="password"' in body_text(form)
    assert shows_no_secret(form)

    started = await page.start(PASSWORD, enrolled.fresh_code())
    assert started.code == 200, message(started)
    new_secret = secret_of(started)
    assert new_secret != enrolled.secret
    assert qr_count(started) == 1

    new_totp = totp_for(gate, new_secret)
    confirm_step = int(time.time()) // new_totp.interval
    done = await page.confirm(new_totp.at(confirm_step * new_totp.interval))
    assert done.code == 200, message(done)
    new_codes = recovery_codes(done)
    assert len(new_codes) == 10 and not set(new_codes) & set(enrolled.recovery_codes)

    assert await contents_status(this) == 200
    assert await contents_status(other) == 403

    old_device = new_browser()
    assert (await old_device.login(PASSWORD, enrolled.fresh_code())).code == 401
    assert (await old_device.login(PASSWORD, enrolled.recovery_codes[2])).code == 401
    assert not login_of(old_device)
    new_device = new_browser()
    assert (await new_device.login(PASSWORD, new_totp.at((confirm_step + 1) * new_totp.interval))).code == 302
    assert await contents_status(new_device) == 200


@pytest.mark.parametrize(
    "otp",
    [pytest.param("", id="no-code"), pytest.param("000000", id="wrong-code")],
)
async def test_relink_needs_the_current_code(
    page: EnrollPage, gate: TOTPIdentityProvider, enrolled: EnrolledAccount, otp: str
) -> None:
    before = gate.enrollment.store.get(gate.username)
    response = await page.start(PASSWORD, wrong_code(enrolled.totp) if otp == "000000" else otp)
    assert response.code == 401, message(response)
    assert shows_no_secret(response)
    after = gate.enrollment.store.get(gate.username)
    assert before is not None and after is not None
    assert after.pending_secret is None and after.secret == before.secret


@pytest.mark.parametrize("gate_config", [CLI_ONLY], indirect=True)
@pytest.mark.parametrize(
    "action",
    [
        pytest.param(None, id="get"),
        pytest.param("start", id="post-start"),
        pytest.param("confirm", id="post-confirm"),
        pytest.param("cancel", id="post-cancel"),
    ],
)
async def test_cli_only_policy_refuses_the_page(
    page: EnrollPage, gate: TOTPIdentityProvider, action: str | None
) -> None:
    if action is None:
        response = await page.get()
    else:
        response = await page.post({"action": action, "password": PASSWORD, "code": "123456"})
    assert response.code == 403
    assert "jupyter 2fa enroll" in body_text(response)
    assert shows_no_secret(response)
    assert pending_token(gate) is None
    assert 'name="password"' not in body_text(response)


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        pytest.param("{base}lab/tree/a.ipynb", "{base}lab/tree/a.ipynb", id="on-this-server"),
        pytest.param("https://evil.example/", "{base}", id="absolute"),
        pytest.param("//evil.example/", "{base}", id="scheme-relative"),
        pytest.param("javascript:alert(document.cookie)", "{base}", id="javascript"),
        pytest.param("/\\evil.example/", "{base}", id="backslash"),
        pytest.param("https:///evil.example/", "{base}", id="triple-slash"),
        pytest.param("/elsewhere/", "{base}", id="outside-base-url"),
    ],
)
async def test_continue_link_stays_on_this_server(
    browser: Browser, gate: TOTPIdentityProvider, jp_base_url: str, next_url: str, expected: str
) -> None:
    """``?next=`` comes from the address bar: the page must not turn it into a link off the server."""
    page = EnrollPage(browser, next_url=next_url.format(base=jp_base_url))
    secret = secret_of(await page.start())
    done = await page.confirm(totp_for(gate, secret).now())
    assert done.code == 200
    match = CONTINUE_LINK.search(body_text(done))
    assert match is not None
    href = html.unescape(match.group(1))
    assert href == expected.format(base=jp_base_url)
    assert not urlparse(href).scheme and not urlparse(href).netloc


# -- secrets stay in the page body ----------------------------------------------------------------------------


async def test_secret_and_codes_never_reach_a_url_or_the_log(
    browser: Browser,
    gate: TOTPIdentityProvider,
    new_browser: Callable[[], Browser],
    caplog: pytest.LogCaptureFixture,
    audit_events: list[AuditEvent],
) -> None:
    caplog.set_level(logging.DEBUG)  # the server's log propagates to the root logger; keep every level
    # the way a user arrives: the login form sends a password-only login to the enrollment page
    redirected = await browser.login(PASSWORD, "", next_url="/lab")
    assert redirected.code == 303
    location = redirected.headers.get("Location", "")
    assert "2fa/enroll" in location
    page = EnrollPage(browser, next_url="/lab")
    await page.get()
    started = await page.start()
    secret = secret_of(started)
    totp = totp_for(gate, secret)
    await page.confirm(wrong_code(totp))
    done = await page.confirm(totp.now())
    codes = recovery_codes(done)
    assert len(codes) == 10
    other = new_browser()
    assert (await other.login(PASSWORD, codes[0])).code == 302

    responses = [redirected, *page.responses]
    log = caplog.text
    assert "2FA enrollment-confirmed success" in log, "the log capture is not working"
    secrets = [secret, secret.lower(), manual_key(started) or secret, *codes, *(c.replace("-", "") for c in codes)]
    for response in responses:
        urls = [response.effective_url, response.headers.get("Location", "")]
        for value in secrets:
            assert all(value not in url for url in urls), (value, urls)
    leaked = [value for value in secrets if value in log]
    assert not leaked, f"secrets in the server log:\n{log}"
    assert {event.action.value for event in audit_events} >= {"enrollment-shown", "enrollment-confirmed"}
    audit = "\n".join(repr(event.as_dict()) for event in audit_events)
    assert not [value for value in secrets if value in audit], audit
