"""Route audit: every verb the 2FA extension serves needs a login, except the few that must not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_server.base.handlers import APIHandler
from jupyter_server.serverapp import ServerApp
from tornado import web
from tornado.routing import PathMatches, Router

from jupyter_2fa.server import TOTPIdentityProvider
from jupyter_2fa.server.handlers import handlers

from helpers.gate import Browser, example_path, json_body

# The only verbs served to a visitor without a session: logging in, enrolling (the password is checked there),
# and the logout page (which ends whatever session the request carries).
ALLOWED_UNAUTHENTICATED = {
    ("login", "GET"),
    ("login", "POST"),
    ("logout", "GET"),
    ("2fa/enroll", "GET"),
    ("2fa/enroll", "POST"),
    # A key's login and a first key's registration start before any session; both check the password first.
    ("2fa/api/webauthn/login-options", "POST"),
    ("2fa/api/webauthn/registration-options", "POST"),
    (r"2fa/webauthn\.js", "GET"),  # the pages' script: holds no secret
}
# jupyter_server's APIHandler answers CORS preflight requests without a session; it reads and changes nothing.
INHERITED_PREFLIGHT = "OPTIONS"

_AUTHENTICATED_WRAPPER = web.authenticated(lambda self: None).__code__  # type: ignore[arg-type, return-value]


def is_authenticated(method: Any) -> bool:
    """Whether ``method`` is wrapped by tornado's ``web.authenticated`` (all wrappers share one code object)."""
    return getattr(method, "__code__", None) is _AUTHENTICATED_WRAPPER


def allows_unauthenticated(method: Any) -> bool:
    """What jupyter_server's ``allow_unauthenticated`` decorator sets."""
    return bool(getattr(method, "__allow_unauthenticated", False))


def served_verbs(handler: type[web.RequestHandler]) -> Iterator[tuple[str, Any, type]]:
    """(verb, method, class defining it) for every verb the handler implements (not tornado's 405)."""
    for verb in handler.SUPPORTED_METHODS:
        method = getattr(handler, verb.lower())
        if method is getattr(web.RequestHandler, verb.lower()):
            continue
        owner = next(cls for cls in handler.__mro__ if verb.lower() in vars(cls))
        yield verb, method, owner


def extension_routes(gate: TOTPIdentityProvider) -> dict[str, type[web.RequestHandler]]:
    """The routes jupyter_2fa provides: its handlers plus the login and logout pages of the provider."""
    routes = {path.lstrip("/"): handler for path, handler in handlers()}
    routes["login"] = gate.login_handler_class
    routes["logout"] = gate.logout_handler_class
    return routes


def _rules(router: Router) -> Iterator[tuple[str, Any]]:
    for rule in getattr(router, "rules", []):
        if isinstance(rule.target, Router):
            yield from _rules(rule.target)
        elif isinstance(rule.matcher, PathMatches):
            yield rule.matcher.regex.pattern, rule.target


def registered_2fa_handlers(app: ServerApp) -> dict[str, type]:
    """Every route of the running server whose handler comes from jupyter_2fa (pattern -> class)."""
    found = {}
    for pattern, target in _rules(app.web_app.default_router):
        if isinstance(target, type) and target.__module__.startswith("jupyter_2fa"):
            found[pattern] = target
    return found


def test_the_server_registers_exactly_the_known_routes(jp_serverapp: ServerApp, gate: TOTPIdentityProvider) -> None:
    registered = registered_2fa_handlers(jp_serverapp)
    base = jp_serverapp.base_url
    expected = extension_routes(gate)
    for route, handler in expected.items():
        matching = [pattern for pattern, target in registered.items() if target is handler and route in pattern]
        assert matching, f"{route} ({handler.__name__}) is not served under {base}"
    unknown = {pattern for pattern, target in registered.items() if target not in expected.values()}
    assert not unknown, f"routes nobody audited: {unknown}"


def test_every_verb_needs_a_login_or_is_on_the_short_list(gate: TOTPIdentityProvider) -> None:
    problems = []
    for route, handler in extension_routes(gate).items():
        for verb, method, owner in served_verbs(handler):
            allowed = allows_unauthenticated(method)
            authenticated = is_authenticated(method)
            if allowed and authenticated:
                problems.append(f"{verb} {route}: both authenticated and allow_unauthenticated")
            elif allowed:
                inherited_preflight = verb == INHERITED_PREFLIGHT and owner.__module__.startswith("jupyter_server.")
                if (route, verb) not in ALLOWED_UNAUTHENTICATED and not inherited_preflight:
                    problems.append(f"{verb} {route} ({owner.__name__}) is open to anyone")
            elif not authenticated:
                problems.append(f"{verb} {route} ({owner.__name__}) is neither @web.authenticated nor allowed")
    assert not problems, "\n".join(problems)
    # The short list is not longer than what exists.
    served = {
        (route, verb) for route, handler in extension_routes(gate).items() for verb, _, _ in served_verbs(handler)
    }
    assert served >= ALLOWED_UNAUTHENTICATED


def _authenticated_calls() -> list[Any]:
    calls = []
    for route, handler in handlers():
        for verb, method, _ in served_verbs(handler):
            if is_authenticated(method):
                path = example_path(route)
                calls.append(pytest.param(path, verb, issubclass(handler, APIHandler), id=f"{verb}-{path}"))
    return calls


@pytest.mark.parametrize(("path", "verb", "api"), _authenticated_calls())
async def test_authenticated_routes_refuse_a_visitor_without_a_session(
    browser: Browser, path: str, verb: str, api: bool
) -> None:
    # With a valid XSRF token, so that the refusal is the missing login, not the missing token.
    headers = {"X-XSRFToken": await browser.ensure_xsrf(), "Content-Type": "application/json"}
    body = "{}" if verb in {"POST", "PUT", "PATCH"} else None

    response = await browser.request(path, method=verb, body=body, headers=headers)

    if not api:  # a page: sent to the login page
        assert response.code == 302
        assert "/login?next=" in response.headers["Location"]
        return
    assert response.code == 403
    assert "xsrf" not in str(json_body(response).get("message", "")).lower()
