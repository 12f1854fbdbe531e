"""The login form through a real jupyter_server: success, one answer for every wrong factor, bad input, the page."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from tornado.httpclient import HTTPResponse

from jupyter_2fa.core.audit import Action, AuditEvent
from jupyter_2fa.server import identity

from helpers.gate import (
    PASSWORD,
    SERVER_TOKEN,
    WRONG_PASSWORD,
    Browser,
    EnrolledAccount,
    body_text,
    json_body,
    login_message,
    parse_form,
    without_xsrf,
)

# Enough free attempts that a handful of deliberate failures is answered 401, not 429.
RELAXED_THROTTLE = {"TwoFactorConfig": {"backoff_free_attempts": 20, "lockout_threshold": 50}}


async def test_password_and_code_log_in_with_a_strict_cookie(
    browser: Browser, enrolled: EnrolledAccount, jp_base_url: str
) -> None:
    assert (await browser.get("api/contents")).code == 403

    next_url = f"{jp_base_url}tree/x"
    response = await browser.login(PASSWORD, enrolled.fresh_code(), next_url=next_url)

    assert response.code == 302
    assert response.headers["Location"] == next_url
    cookie = browser.login_set_cookie()
    assert cookie is not None, "no login cookie was set"
    assert "httponly" in cookie.flags
    assert cookie.attributes.get("samesite", "").lower() == "lax"
    assert cookie.attributes.get("path") == jp_base_url
    contents = await browser.get("api/contents")
    assert contents.code == 200
    assert json_body(contents)["type"] == "directory"


async def test_the_password_hash_is_checked_off_the_event_loop(
    browser: Browser, enrolled: EnrolledAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jupyter_server's Argon2 password check (about 50 ms of a core) runs in the hashing threads: on the loop,
    200 logins at once held every request of the server for seconds (a CI run timed out on that)."""
    checked_in: list[str] = []

    def spy(hashed_password: str, password: str) -> bool:
        checked_in.append(threading.current_thread().name)
        return real_check(hashed_password, password)

    real_check = identity.passwd_check
    monkeypatch.setattr(identity, "passwd_check", spy)
    assert (await browser.login(PASSWORD, enrolled.fresh_code())).code == 302
    assert checked_in and all(name.startswith("jupyter-2fa-argon2") for name in checked_in), checked_in


def _wrong_code(enrolled: EnrolledAccount) -> str:
    """Six digits that no step in reach (now ± 3 steps) produces."""
    reachable = {enrolled.code_at(k) for k in range(-3, 4)}
    candidate = 0
    while f"{candidate:06d}" in reachable:
        candidate += 1
    return f"{candidate:06d}"


@pytest.mark.parametrize("gate_config", [RELAXED_THROTTLE], indirect=True, ids=["relaxed-throttle"])
async def test_every_wrong_factor_gets_the_same_answer(
    new_browser: Callable[[], Browser], enrolled: EnrolledAccount, audit_events: list[AuditEvent]
) -> None:
    older = enrolled.fresh_code()  # step S: never used
    newer = enrolled.fresh_code()  # step S+1
    assert (await new_browser().login(PASSWORD, newer)).code == 302

    attempts = {
        "wrong-password": (WRONG_PASSWORD, older),  # a good, unused code with the wrong password
        "wrong-code": (PASSWORD, _wrong_code(enrolled)),
        "replayed-same-step": (PASSWORD, newer),
        "older-step-after-newer": (PASSWORD, older),
    }
    responses = {}
    for name, (password, code) in attempts.items():
        client = new_browser()
        responses[name] = await client.login(password, code)
        assert client.login_cookie() is None, name

    for name, response in responses.items():
        assert response.code == 401, (name, body_text(response))
        assert "Retry-After" not in response.headers, name
    messages = {name: login_message(response) for name, response in responses.items()}
    assert len(set(messages.values())) == 1, messages
    assert next(iter(messages.values())), "the refusal shows no message"
    pages = {without_xsrf(body_text(response)) for response in responses.values()}
    assert len(pages) == 1, "the refusal pages differ beyond their _xsrf field"

    # The four cases really took four different paths (the audit log tells them apart; users must not).
    reasons = [event.reason for event in audit_events if event.action is Action.LOGIN and event.outcome == "failure"]
    assert reasons == ["wrong-password", "wrong-code", "replayed-code", "replayed-code"]


ARABIC_INDIC = {ord("0") + digit: 0x0660 + digit for digit in range(10)}  # ٠١٢٣٤٥٦٧٨٩
FULL_WIDTH = {ord("0") + digit: 0xFF10 + digit for digit in range(10)}  # the full-width digits


@dataclass(frozen=True)
class BadInput:
    """A login POST body built from the current good code and the _xsrf token; ``statuses`` it may get."""

    body: Callable[[str, str], bytes]
    statuses: frozenset[int]


def _form(**fields: str) -> Callable[[str, str], bytes]:
    """A well-formed form; ``{code}`` in a value is replaced by the current good code."""

    def build(code: str, xsrf: str) -> bytes:
        values = {name: value.replace("{code}", code) for name, value in fields.items()}
        return urlencode({**values, "_xsrf": xsrf}).encode()

    return build


def _transformed(transform: Callable[[str], str], password: str = PASSWORD) -> Callable[[str, str], bytes]:
    def build(code: str, xsrf: str) -> bytes:
        return urlencode({"password": password, "otp": transform(code), "_xsrf": xsrf}).encode()

    return build


def _raw(template: bytes) -> Callable[[str, str], bytes]:
    """A body sent byte for byte (``{code}`` and ``{xsrf}`` filled in), e.g. with invalid UTF-8."""

    def build(code: str, xsrf: str) -> bytes:
        return template.replace(b"{code}", code.encode()).replace(b"{xsrf}", urlencode({"_xsrf": xsrf}).encode())

    return build


REFUSED = frozenset({401})
MALFORMED = frozenset({400})
REFUSED_OR_MALFORMED = REFUSED | MALFORMED  # e.g. NUL: refused as a wrong factor, or as malformed before checking
PASSWORD_FIELD = urlencode({"password": PASSWORD}).encode()

BAD_INPUTS = {
    "arabic-indic-digits": BadInput(_transformed(lambda code: code.translate(ARABIC_INDIC)), REFUSED),
    "full-width-digits": BadInput(_transformed(lambda code: code.translate(FULL_WIDTH)), REFUSED),
    "plus-sign": BadInput(_form(password=PASSWORD, otp="+12345"), REFUSED),
    "plus-sign-before-good-code": BadInput(_transformed(lambda code: "+" + code), REFUSED),
    "underscore": BadInput(_form(password=PASSWORD, otp="12_345"), REFUSED),
    "underscore-in-good-code": BadInput(_transformed(lambda code: code[:3] + "_" + code[3:]), REFUSED),
    "five-digits": BadInput(_transformed(lambda code: code[:5]), REFUSED),
    "seven-digits": BadInput(_transformed(lambda code: code + "0"), REFUSED),
    "65-chars": BadInput(_form(password=PASSWORD, otp="1" * 65), REFUSED),
    "2000-chars": BadInput(_form(password=PASSWORD, otp="1" * 2000), MALFORMED),
    "nul-in-code": BadInput(_transformed(lambda code: code[:3] + "\x00" + code[3:]), REFUSED_OR_MALFORMED),
    "nul-in-password": BadInput(_form(password=PASSWORD + "\x00", otp="{code}"), REFUSED_OR_MALFORMED),
    "nul-then-junk-in-password": BadInput(_form(password=PASSWORD + "\x00junk", otp="{code}"), REFUSED_OR_MALFORMED),
    "invalid-utf8-raw-password": BadInput(_raw(b"password=\xff\xfe" + b"&otp={code}&{xsrf}"), MALFORMED),
    "invalid-utf8-escaped-code": BadInput(_raw(PASSWORD_FIELD + b"&otp=%C3%28&{xsrf}"), MALFORMED),
    "one-megabyte-body": BadInput(_form(password="p" * (1024 * 1024), otp="{code}"), frozenset({400, 413})),
    "otp-twice": BadInput(_raw(PASSWORD_FIELD + b"&otp={code}&otp={code}&{xsrf}"), MALFORMED),
    "password-twice": BadInput(_raw(PASSWORD_FIELD + b"&" + PASSWORD_FIELD + b"&otp={code}&{xsrf}"), MALFORMED),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
async def test_bad_input_is_a_4xx_and_loses_nothing(
    browser: Browser, enrolled: EnrolledAccount, case: BadInput
) -> None:
    code = enrolled.fresh_code()
    xsrf = await browser.ensure_xsrf()

    response = await browser.post_raw("login", case.body(code, xsrf))

    assert response.code in case.statuses, (response.code, login_message(response))
    assert browser.login_cookie() is None
    assert (await browser.get("api/contents")).code == 403
    # The refused attempt consumed nothing: the same code still logs in.
    after = await browser.login(PASSWORD, code)
    assert after.code == 302, login_message(after)
    assert (await browser.get("api/contents")).code == 200


LOGIN_PAGE_MARKUP = {
    "jupyter-header": 'id="header"',
    "jupyter-logo": "logo/logo.png",
    "page-title": "<title>Log in",
    "password-input": 'name="password"',
    "otp-input": 'name="otp"',
    "xsrf-field": 'name="_xsrf"',
    "one-time-code-hint": 'autocomplete="one-time-code"',
    "language": '<html lang="en">',  # jupyter_server's page.html has none (WCAG 3.1.1)
    "enrollment-link-before-any-attempt": 'id="enroll_link"',
}


@pytest.mark.parametrize("markup", list(LOGIN_PAGE_MARKUP.values()), ids=list(LOGIN_PAGE_MARKUP))
async def test_login_page_is_a_jupyter_page(browser: Browser, markup: str) -> None:
    response = await browser.get("login")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert markup in body_text(response)


ANONYMOUS_PAGES = {
    "login-page": ("GET", "login", None),
    "refused-login": ("POST", "login", {"password": WRONG_PASSWORD, "otp": "000000"}),
    "enroll-page": ("GET", "2fa/enroll", None),
    "not-found": ("GET", "no/such/page", None),
    "refused-api": ("GET", "api/contents", None),
}


async def visit(browser: Browser, method: str, path: str, form: dict[str, str] | None) -> HTTPResponse:
    """One of ANONYMOUS_PAGES, as a browser asks for it: a GET, or the form it posts."""
    if method == "POST":
        assert form is not None
        return await browser.post_form(path, form)
    return await browser.get(path)


@pytest.mark.parametrize(
    ("method", "path", "form"),
    [case for name, case in ANONYMOUS_PAGES.items() if name not in ("not-found", "refused-api")],
    ids=[name for name in ANONYMOUS_PAGES if name not in ("not-found", "refused-api")],
)
async def test_our_pages_say_their_language(
    browser: Browser, method: str, path: str, form: dict[str, str] | None
) -> None:
    response = await visit(browser, method, path, form)
    assert '<html lang="en">' in body_text(response)


async def test_the_enrollment_link_keeps_next(browser: Browser, jp_base_url: str) -> None:
    page = body_text(await browser.get("login", params={"next": f"{jp_base_url}lab"}))
    link = re.search(r'<a href="([^"]*)" id="enroll_link">', page)
    assert link is not None, page
    assert html.unescape(link.group(1)) == f"{jp_base_url}2fa/enroll?next={quote(f'{jp_base_url}lab')}"


@pytest.mark.parametrize(("method", "path", "form"), list(ANONYMOUS_PAGES.values()), ids=list(ANONYMOUS_PAGES))
async def test_no_page_hands_the_api_token_to_a_visitor(
    browser: Browser, method: str, path: str, form: dict[str, str] | None
) -> None:
    """jupyter_server's page.html embeds the API token for logged-in users; visitors must never get it."""
    response = await visit(browser, method, path, form)
    assert SERVER_TOKEN not in body_text(response)
    assert not any(SERVER_TOKEN in value for _, value in response.headers.get_all())


async def test_login_page_sends_no_cache_header(browser: Browser) -> None:
    response = await browser.get("login")
    assert "no-store" in response.headers.get("Cache-Control", "")


async def test_login_form_works_without_javascript_and_keeps_next(
    browser: Browser, enrolled: EnrolledAccount, jp_base_url: str
) -> None:
    next_url = f"{jp_base_url}tree/some dir/x.ipynb"
    page = await browser.get("login", params={"next": next_url})
    form = parse_form(body_text(page), "login_form")

    assert form.method == "post"
    assert {"password", "otp", "_xsrf"} <= set(form.inputs)
    assert form.inputs["password"] == "password"
    response = await browser.submit(form, {"password": PASSWORD, "otp": enrolled.fresh_code()})

    assert response.code == 302
    assert response.headers["Location"] == next_url
    assert (await browser.get("api/contents")).code == 200


async def test_refused_login_page_keeps_next(browser: Browser, enrolled: EnrolledAccount, jp_base_url: str) -> None:
    next_url = f"{jp_base_url}lab"
    response = await browser.login(PASSWORD, _wrong_code(enrolled), next_url)
    assert response.code == 401
    form = parse_form(body_text(response), "login_form")
    assert dict(parse_qsl(urlsplit(form.action).query)) == {"next": next_url}


# An address where no PostgreSQL listens: the store is down (the boundary, not a patched internal).
STORE_DOWN = {"TwoFactorConfig": {"db_url": "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none"}}


@pytest.mark.parametrize("gate_config", [STORE_DOWN], indirect=True, ids=["store-down"])
async def test_store_down_fails_closed(browser: Browser) -> None:
    response = await browser.login(PASSWORD, "123456")

    assert response.code == 503
    assert "unavailable" in (login_message(response) or "")
    assert browser.login_cookie() is None
    for path in ("api/contents", "2fa/api/status"):
        assert (await browser.get(path)).code == 403, path
    assert (await browser.post_form("2fa/enroll", {"action": "start", "password": PASSWORD})).code == 503
