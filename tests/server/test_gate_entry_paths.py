"""Every way into the server needs both factors: pages, REST API, files, terminals, kernels' websockets.

Each credential a client might try without a second factor (nothing, a password-only attempt, the server's
API token in the URL, in a header or typed into the login form) is tried on every entry path; then a real
2FA login opens all of them. ``allow_token_access`` turns token access back on, with a warning.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.serverapp import ServerApp
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError

from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import PASSWORD, Browser, EnrolledAccount, login_message, merge_config

WITH_JUPYTERLAB = {"ServerApp": {"jpserver_extensions": {"jupyterlab": True}}}


@pytest.fixture
def gate_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """JupyterLab on (so ``/lab`` exists), plus what a test parametrizes."""
    return merge_config(WITH_JUPYTERLAB, getattr(request, "param", None) or {})


@pytest.fixture(autouse=True)
def ipython_dir() -> Path:
    """Create the IPYTHONDIR the isolation points to, or IPython warns (an error here) when a kernel starts."""
    path = Path(os.environ["IPYTHONDIR"]) if os.environ.get("IPYTHONDIR") else Path.home() / ".ipython"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def files(jp_root_dir: Path) -> Path:
    (jp_root_dir / "x.txt").write_text("secret notes\n")
    return jp_root_dir


@dataclass(frozen=True)
class EntryPath:
    """A path, what it answers when refused (API 403, page 302 to login, or 404), and when logged in."""

    path: str
    refused: frozenset[int]
    logged_in: int


API_REFUSED = frozenset({403})
PAGE_REFUSED = frozenset({302})

ENTRY_PATHS = [
    EntryPath("api/contents", API_REFUSED, 200),
    EntryPath("api/contents/x.txt", API_REFUSED, 200),
    EntryPath("api/kernels", API_REFUSED, 200),
    EntryPath("api/kernelspecs", API_REFUSED, 200),
    EntryPath("api/sessions", API_REFUSED, 200),
    EntryPath("api/terminals", API_REFUSED, 200),
    EntryPath("api/me", API_REFUSED, 200),
    EntryPath("api/config/notebook", API_REFUSED, 200),
    EntryPath("2fa/api/status", API_REFUSED, 200),
    EntryPath("files/x.txt", PAGE_REFUSED, 200),
    EntryPath("view/x.txt", PAGE_REFUSED, 200),
    EntryPath("lab", PAGE_REFUSED, 200),
    EntryPath("lab/tree/x.txt", PAGE_REFUSED, 200),
    # No Notebook 7 in the test environment: /tree does not exist either way, and must not leak.
    EntryPath("tree", frozenset({302, 403, 404}), 404),
]
ENTRY_IDS = [entry.path for entry in ENTRY_PATHS]


@dataclass
class Attempt:
    """How a client without the second factor tries to get in; ``prepare`` runs once per client."""

    prepare: Callable[[Browser, TOTPIdentityProvider, EnrolledAccount], Awaitable[None]]
    params: Callable[[TOTPIdentityProvider], dict[str, str]] = lambda gate: {}
    headers: Callable[[TOTPIdentityProvider], dict[str, str]] = lambda gate: {}


async def _nothing(browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount) -> None:
    await browser.ensure_xsrf()


async def _password_only(browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount) -> None:
    response = await browser.login(PASSWORD, "")
    assert response.code == 401, login_message(response)


async def _token_as_password(browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount) -> None:
    response = await browser.login(gate.token, "")
    assert response.code == 401, login_message(response)


async def _token_as_password_with_code(browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount) -> None:
    response = await browser.login(gate.token, enrolled.code_at(0))
    assert response.code == 401, login_message(response)


ATTEMPTS = {
    "no-credentials": Attempt(_nothing),
    "password-only-attempt": Attempt(_password_only),
    "token-in-url": Attempt(_nothing, params=lambda gate: {"token": gate.token}),
    "token-header": Attempt(_nothing, headers=lambda gate: {"Authorization": f"token {gate.token}"}),
    "bearer-header": Attempt(_nothing, headers=lambda gate: {"Authorization": f"Bearer {gate.token}"}),
    "token-as-password": Attempt(_token_as_password),
    "token-as-password-with-code": Attempt(_token_as_password_with_code),
}


def _refused(entry: EntryPath, code: int, location: str | None, base_url: str) -> bool:
    """Whether the answer is the expected refusal (a redirect only to the login page)."""
    if code == 200 or code not in entry.refused:
        return False
    return code != 302 or (location or "").startswith(f"{base_url}login")


@pytest.mark.parametrize("attempt", list(ATTEMPTS.values()), ids=list(ATTEMPTS))
async def test_no_entry_path_opens_without_both_factors(
    browser: Browser,
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    files: Path,
    jp_base_url: str,
    attempt: Attempt,
) -> None:
    assert gate.token, "the test server has an API token to try"
    await attempt.prepare(browser, gate, enrolled)
    browser.extra_headers.update(attempt.headers(gate))

    answers: dict[str, tuple[int, str | None]] = {}
    for entry in ENTRY_PATHS:
        response = await browser.get(entry.path, params=attempt.params(gate))
        answers[entry.path] = (response.code, response.headers.get("Location"))
    let_in = {path: answer for path, answer in answers.items() if answer[0] == 200}
    assert not let_in, f"opened without the second factor: {let_in}"
    wrong = {
        entry.path: answers[entry.path]
        for entry in ENTRY_PATHS
        if not _refused(entry, *answers[entry.path], jp_base_url)
    }
    assert not wrong, f"unexpected refusals (expected API 403 / page 302 to login): {wrong}"
    assert browser.login_cookie() is None


@pytest.mark.parametrize("entry", ENTRY_PATHS, ids=ENTRY_IDS)
async def test_a_2fa_login_opens_every_entry_path(
    browser: Browser, enrolled: EnrolledAccount, files: Path, entry: EntryPath
) -> None:
    assert (await browser.login(PASSWORD, enrolled.fresh_code())).code == 302
    response = await browser.get(entry.path)
    assert response.code == entry.logged_in


# -- websockets: kernels, terminals, the event stream --------------------------------------------------------

WebSocketFetch = Callable[..., Awaitable[WebSocketClientConnection]]


async def _kernel(serverapp: ServerApp) -> tuple[str, ...]:
    """A kernel started by the server's kernel manager directly (the API would refuse an anonymous client)."""
    kernel_id = await serverapp.kernel_manager.start_kernel()
    return ("api", "kernels", str(kernel_id), "channels")


async def _terminal(serverapp: ServerApp) -> tuple[str, ...]:
    model = serverapp.web_app.settings["terminal_manager"].create()
    return ("terminals", "websocket", str(model["name"]))


async def _event_stream(serverapp: ServerApp) -> tuple[str, ...]:
    return ("api", "events", "subscribe")


WEBSOCKETS: dict[str, Callable[[ServerApp], Awaitable[tuple[str, ...]]]] = {
    "kernel-channels": _kernel,
    "terminal": _terminal,
    "event-stream": _event_stream,
}
WS_ATTEMPTS = ["no-credentials", "password-only-attempt", "token-in-url", "token-header", "token-as-password"]


async def _ws_outcome(connect: Awaitable[WebSocketClientConnection]) -> str:
    """ "refused: ..." when the handshake fails or the server closes at once, else "open"."""
    try:
        connection = await connect
    except HTTPClientError as err:
        return f"refused: HTTP {err.code}"
    except WebSocketClosedError:
        return "refused: closed"
    try:
        message = await asyncio.wait_for(connection.read_message(), timeout=1.0)
    except asyncio.TimeoutError:
        return "open"
    finally:
        connection.close()
    return "refused: closed" if message is None else "open"


@pytest.mark.parametrize("target", list(WEBSOCKETS.values()), ids=list(WEBSOCKETS))
async def test_websockets_refuse_every_attempt_without_both_factors(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    jp_ws_fetch: WebSocketFetch,
    jp_serverapp: ServerApp,
    jp_http_port: int,
    target: Callable[[ServerApp], Awaitable[tuple[str, ...]]],
) -> None:
    parts = await target(jp_serverapp)
    outcomes = {}
    for name in WS_ATTEMPTS:
        attempt = ATTEMPTS[name]
        browser = new_browser()
        await attempt.prepare(browser, gate, enrolled)
        # jp_ws_fetch connects to "localhost"; cookies are named after the host the browser used.
        headers = {**attempt.headers(gate), **browser.cookie_header(), "Host": f"127.0.0.1:{jp_http_port}"}
        outcomes[name] = await _ws_outcome(jp_ws_fetch(*parts, headers=headers, params=attempt.params(gate)))
    opened = {name: outcome for name, outcome in outcomes.items() if not outcome.startswith("refused")}
    assert not opened, f"websocket opened without the second factor: {opened}"


@pytest.mark.parametrize("target", list(WEBSOCKETS.values()), ids=list(WEBSOCKETS))
async def test_websockets_connect_with_a_2fa_session(
    browser: Browser,
    enrolled: EnrolledAccount,
    jp_ws_fetch: WebSocketFetch,
    jp_serverapp: ServerApp,
    jp_http_port: int,
    target: Callable[[ServerApp], Awaitable[tuple[str, ...]]],
) -> None:
    parts = await target(jp_serverapp)
    assert (await browser.login(PASSWORD, enrolled.fresh_code())).code == 302
    headers = {**browser.cookie_header(), "Host": f"127.0.0.1:{jp_http_port}"}
    connection = await jp_ws_fetch(*parts, headers=headers)
    try:
        assert connection.protocol is not None
    finally:
        connection.close()


# -- allow_token_access -------------------------------------------------------------------------------------

TOKEN_ACCESS = {"TOTPIdentityProvider": {"allow_token_access": True}}


@pytest.mark.parametrize("gate_config", [TOKEN_ACCESS], indirect=True, ids=["allow-token-access"])
@pytest.mark.parametrize(
    "how",
    ["url", "header"],
)
async def test_allow_token_access_turns_the_token_back_on(
    browser: Browser, gate: TOTPIdentityProvider, files: Path, how: str
) -> None:
    params = {"token": gate.token} if how == "url" else {}
    headers = {"Authorization": f"token {gate.token}"} if how == "header" else {}
    for path in ("api/contents", "api/kernels", "api/me"):
        response = await browser.get(path, params=params, headers=headers)
        assert response.code == 200, path


@pytest.mark.parametrize("gate_config", [TOKEN_ACCESS], indirect=True, ids=["allow-token-access"])
async def test_allow_token_access_never_takes_the_token_as_password(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    response = await browser.login(gate.token, enrolled.code_at(0))
    assert response.code == 401
    assert browser.login_cookie() is None
    assert (await browser.get("api/contents")).code == 403


def _startup_stderr(capfd: pytest.CaptureFixture[str]) -> str:
    """What the server wrote to stderr while starting.

    pytest-jupyter reroutes the server's log handlers only after ``initialize()``; until then the
    ServerApp logger has no handler and Python's last-resort handler writes warnings (not INFO) to stderr.
    """
    return capfd.readouterr().err


@pytest.mark.parametrize("gate_config", [TOKEN_ACCESS], indirect=True, ids=["allow-token-access"])
async def test_allow_token_access_warns_at_start_up(
    capfd: pytest.CaptureFixture[str], gate: TOTPIdentityProvider
) -> None:
    warnings = [line for line in _startup_stderr(capfd).splitlines() if "allow_token_access is on" in line]
    assert warnings, "no start-up warning about allow_token_access"
    assert "without the second factor" in warnings[0]


async def test_no_token_warning_by_default(capfd: pytest.CaptureFixture[str], gate: TOTPIdentityProvider) -> None:
    assert "allow_token_access" not in _startup_stderr(capfd)
