"""Helpers of the server-gate tests: a cookie-keeping browser over ``jp_fetch``, and an enrolled account.

Only the HTTP boundary is driven here: the browser sends what a real browser would (cookies, the ``_xsrf``
form field, the ``X-XSRFToken`` header) and reads what the server answers. Nothing inside jupyter_2fa is
patched.
"""

from __future__ import annotations

import copy
import html
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pyotp
from tornado.httpclient import HTTPResponse

from jupyter_2fa.server import TOTPIdentityProvider

PASSWORD = "correct horse battery"
SERVER_TOKEN = "0123456789abcdef-server-api-token"  # jupyter_server's API token: set, but no way in
WRONG_PASSWORD = "incorrect horse battery"
XSRF_COOKIE = "_xsrf"

Fetch = Callable[..., Awaitable[HTTPResponse]]
FormFields = Mapping[str, str] | Sequence[tuple[str, str]]

_HIDDEN_XSRF = re.compile(r'<input type="hidden" name="_xsrf" value="[^"]*"\s*/?>')
_LOGIN_MESSAGE = re.compile(r'<p[^>]*id="login_message"[^>]*>(.*?)</p>', re.DOTALL)


def merge_config(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` merged into ``base`` section by section (nested dicts merge, other values replace); no aliasing."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# The JSON API's paths, relative to the base URL, and the rollout policy that lets the password alone in.
API = "2fa/api/"
STATUS = API + "status"
ENROLLMENT = API + "enrollment"
CONFIRM = API + "enrollment/confirm"
RELINK = API + "relink"
RECOVERY_CODES = API + "recovery-codes"
OPTIONAL = {"TwoFactorConfig": {"enrollment_policy": "optional"}}


def example_path(route: str) -> str:
    """A path a route pattern matches (its groups filled in), relative to the base URL."""
    return re.sub(r"\([^)]*\)", "a-ticket", route).replace("\\", "").lstrip("/")


def body_text(response: HTTPResponse) -> str:
    return response.body.decode("utf-8", errors="replace") if response.body else ""


def without_xsrf(text: str) -> str:
    """A rendered page with its per-response ``_xsrf`` hidden input removed, for comparing two pages."""
    return _HIDDEN_XSRF.sub("", text)


def login_message(response: HTTPResponse) -> str | None:
    """The text of the login page's ``#login_message`` (unescaped), or None when there is none."""
    match = _LOGIN_MESSAGE.search(body_text(response))
    return html.unescape(match.group(1)).strip() if match else None


def json_body(response: HTTPResponse) -> Any:
    return json.loads(response.body or b"null")


@dataclass
class HtmlForm:
    """A ``<form>`` as a browser without JavaScript sees it: where it goes and what it sends."""

    action: str
    method: str
    hidden: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # name -> type, for every named input


class _FormParser(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.form: HtmlForm | None = None
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form" and attributes.get("id") == self.form_id:
            self.form = HtmlForm(attributes.get("action", ""), attributes.get("method", "get").lower())
            self._inside = True
        elif tag == "input" and self._inside and self.form is not None and attributes.get("name"):
            kind = attributes.get("type", "text").lower()
            self.form.inputs[attributes["name"]] = kind
            if kind == "hidden":
                self.form.hidden[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def parse_form(page: str, form_id: str) -> HtmlForm:
    parser = _FormParser(form_id)
    parser.feed(page)
    assert parser.form is not None, f"no <form id={form_id!r}> in the page"
    return parser.form


@dataclass
class SetCookie:
    """One ``Set-Cookie`` header as the browser saw it."""

    name: str
    value: str
    attributes: dict[str, str]
    flags: set[str]

    @property
    def deleted(self) -> bool:
        if self.attributes.get("max-age", "").strip() in {"0", "-1"}:
            return True
        expires = self.attributes.get("expires")
        if expires:
            try:
                return parsedate_to_datetime(expires).timestamp() < time.time()
            except (TypeError, ValueError):
                return False
        return False


def parse_set_cookie(header: str) -> SetCookie | None:
    """Parse one ``Set-Cookie`` header value, keeping the flags SimpleCookie does not report (HttpOnly)."""
    parts = [part.strip() for part in header.split(";")]
    if not parts or "=" not in parts[0]:
        return None
    name, _, value = parts[0].partition("=")
    try:
        jar: SimpleCookie = SimpleCookie()
        jar.load(parts[0])
        morsel = jar.get(name.strip())
        if morsel is not None:
            value = morsel.value
    except CookieError:
        pass
    attributes: dict[str, str] = {}
    flags: set[str] = set()
    for part in parts[1:]:
        if not part:
            continue
        if "=" in part:
            key, _, val = part.partition("=")
            attributes[key.strip().lower()] = val.strip()
        else:
            flags.add(part.lower())
    return SetCookie(name.strip(), value, attributes, flags)


def totp_for(gate: TOTPIdentityProvider, secret: str) -> pyotp.TOTP:
    totp = gate.enrollment.settings.totp
    return pyotp.TOTP(secret, digits=totp.digits, interval=totp.period, digest=totp.algorithm)


def wrong_code(totp: pyotp.TOTP) -> str:
    """A well-formed code that matches none of the steps the server accepts around now."""
    now = time.time()
    taken = {totp.at(now + k * totp.interval) for k in range(-2, 3)}
    return next(code for n in range(10) if (code := f"{n}" * totp.digits) not in taken)


REQUEST_TIMEOUT_SECONDS = 120.0


@dataclass
class Browser:
    """A cookie-keeping client over ``jp_fetch``: what a browser with JavaScript off (or a script) does.

    ``fetch`` is pytest-jupyter's ``jp_fetch`` with ``jp_auth_header`` overridden to ``{}``, so only
    what this object sends authenticates it. Every request is sent with ``follow_redirects=False`` and
    ``raise_error=False``; the response is returned as is.
    """

    fetch: Fetch
    base_url: str = "/"
    referer: str | None = None  # sent like a browser does (jupyter_server blocks /files/ without one)
    cookies: dict[str, str] = field(default_factory=dict)
    set_cookies: list[SetCookie] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)

    # -- plumbing -------------------------------------------------------------------------------------------

    def cookie_header(self) -> dict[str, str]:
        """The ``Cookie`` header this browser sends (e.g. to open a websocket with its session)."""
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}

    def _remember(self, response: HTTPResponse) -> None:
        for header in response.headers.get_list("Set-Cookie"):
            cookie = parse_set_cookie(header)
            if cookie is None:
                continue
            self.set_cookies.append(cookie)
            if cookie.deleted:
                self.cookies.pop(cookie.name, None)
            else:
                self.cookies[cookie.name] = cookie.value

    async def request(
        self,
        path: str,
        *,
        method: str = "GET",
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        send_cookies: bool = True,
    ) -> HTTPResponse:
        """Send one request to ``path`` (relative to the server's base URL) and remember its cookies."""
        all_headers = {
            **({"Referer": self.referer} if self.referer else {}),
            **self.extra_headers,
            **(self.cookie_header() if send_cookies else {}),
            **(headers or {}),
        }
        # Tests that send hundreds of requests at once queue them in the client, ten at a time; on a busy CI
        # machine the queue outlasts tornado's 20 s default and fails the test for time, which it does not test.
        kwargs: dict[str, Any] = {"connect_timeout": REQUEST_TIMEOUT_SECONDS}
        kwargs["request_timeout"] = REQUEST_TIMEOUT_SECONDS
        if body is not None or method in {"POST", "PUT", "PATCH"}:
            kwargs["body"] = body if body is not None else b""
        if method == "DELETE" and body is not None:
            kwargs["allow_nonstandard_methods"] = True
        response = await self.fetch(
            path,
            method=method,
            headers=all_headers,
            params=dict(params or {}),
            follow_redirects=False,
            raise_error=False,
            **kwargs,
        )
        self._remember(response)
        return response

    # -- what a user does ----------------------------------------------------------------------------------

    @property
    def xsrf(self) -> str | None:
        return self.cookies.get(XSRF_COOKIE)

    def login_cookie(self) -> tuple[str, str] | None:
        """The server's login cookie (``username-...``), if the browser holds one."""
        for name, value in self.cookies.items():
            if name.startswith("username-"):
                return name, value
        return None

    def login_set_cookie(self) -> SetCookie | None:
        """The last ``Set-Cookie`` that set (not deleted) the login cookie."""
        for cookie in reversed(self.set_cookies):
            if cookie.name.startswith("username-") and not cookie.deleted:
                return cookie
        return None

    async def get(self, path: str, params: Mapping[str, str] | None = None, **kwargs: Any) -> HTTPResponse:
        return await self.request(path, params=params, **kwargs)

    async def ensure_xsrf(self) -> str:
        """Receive the ``_xsrf`` cookie the way a browser does: by loading the login page."""
        if self.xsrf is None:
            await self.get("login")
        assert self.xsrf is not None, "the login page did not set an _xsrf cookie"
        return self.xsrf

    async def post_form(
        self,
        path: str,
        fields: FormFields,
        xsrf: bool = True,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTTPResponse:
        """POST an ``application/x-www-form-urlencoded`` form, with the ``_xsrf`` field unless told not to."""
        pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        if xsrf:
            pairs.append(("_xsrf", await self.ensure_xsrf()))
        return await self.post_raw(path, urlencode(pairs).encode(), params=params, headers=headers)

    async def post_raw(
        self,
        path: str,
        body: bytes,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> HTTPResponse:
        """POST exactly ``body`` (already encoded; include ``_xsrf`` yourself)."""
        all_headers = {"Content-Type": content_type, **(headers or {})}
        return await self.request(path, method="POST", body=body, headers=all_headers, params=params)

    async def post_json(self, path: str, obj: object, xsrf: bool = True, method: str = "POST") -> HTTPResponse:
        """Send ``obj`` as JSON with the ``X-XSRFToken`` header (the way JupyterLab calls the API)."""
        headers = {"Content-Type": "application/json"}
        if xsrf:
            headers["X-XSRFToken"] = await self.ensure_xsrf()
        return await self.request(path, method=method, body=json.dumps(obj), headers=headers)

    async def delete(self, path: str, xsrf: bool = True) -> HTTPResponse:
        headers = {"X-XSRFToken": await self.ensure_xsrf()} if xsrf else {}
        return await self.request(path, method="DELETE", headers=headers)

    async def login(
        self,
        password: str,
        otp: str = "",
        next_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTTPResponse:
        """Fill in and submit the login form (password and code), as a browser without JavaScript does."""
        params = {"next": next_url} if next_url is not None else None
        return await self.post_form("login", {"password": password, "otp": otp}, params=params, headers=headers)

    async def submit(self, form: HtmlForm, typed: Mapping[str, str]) -> HTTPResponse:
        """Submit ``form`` as a browser without JavaScript would: its action, its hidden fields, what was typed."""
        parts = urlsplit(form.action)
        assert parts.path.startswith(self.base_url), f"form posts off the server: {form.action!r}"
        path = parts.path[len(self.base_url) :]
        fields = {**form.hidden, **typed}
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if form.method == "post":
            return await self.post_raw(path, urlencode(fields).encode(), params=params)
        return await self.get(path, params={**params, **fields})

    async def logout(self) -> HTTPResponse:
        return await self.get("logout")


@dataclass
class EnrolledAccount:
    """An account linked through the core: its authenticator (pyotp) and recovery codes.

    Enrollment confirmed the code of the step *before* the current one, so the current and the next step
    are still unused: :meth:`fresh_code` hands them out in order (codes are accepted once, and only newer
    steps than the last accepted one).
    """

    username: str
    totp: pyotp.TOTP
    recovery_codes: list[str]
    secret: str
    last_step: int
    period: int = 30

    def code_at(self, k: int = 0) -> str:
        """The code ``k`` steps from now (``totp.at(time.time() + 30 * k)``)."""
        return str(self.totp.at(time.time() + self.period * k))

    def step_now(self) -> int:
        return int(time.time()) // self.period

    def fresh_code(self) -> str:
        """A code for a step newer than any used so far and within the window (±1) of now."""
        step = max(self.last_step + 1, self.step_now() - 1)
        if step > self.step_now() + 1:
            raise RuntimeError("no fresh TOTP step left in the window; use a recovery code")
        self.last_step = step
        return str(self.totp.at(step * self.period))

    def code_of_step(self, step: int) -> str:
        return str(self.totp.at(step * self.period))
