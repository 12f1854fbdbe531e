"""Hub sessions that logged in with the password alone hold only where and while their rule does; no token is
minted on the password alone; a reset or re-link ends every session and every token the user minted.

The browser tells the hub where it is with ``X-Forwarded-For``: the hub lists configurable-http-proxy's address
(127.0.0.1) in ``trusted_proxies``, and the proxy appends that address, so the hub takes the browser's word (as it
would a real front proxy's). Campus is 10.0.0.0/8, the trusted network; home is anywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from helpers.hub import (
    Hub,
    HubBrowser,
    HubFactory,
    enroll_on_page,
    hub_cli,
    hub_store_url,
    login_error,
    module_hub,
    new_user_token,
    twofa_api,
    twofa_log_lines,
    user_api,
)
from helpers.totp import Device

PASSWORD = "correct horse battery staple"
CAMPUS = "10.1.2.3"
HOME = "192.0.2.7"
LIFETIME = 600  # c.TOTPAuthenticator.password_only_token_lifetime of these hubs
SESSION_COOKIE = "jupyterhub-session-id"
GRANT_COOKIE = "jupyter-2fa-grant"
MINTED = "jupyter-2fa-minted:"
RESET_SECONDS = 30  # a reset made with `jupyter 2fa` is seen within the hub's epoch poll (5 s)

CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.TwoFactorConfig.trusted_proxies = ["127.0.0.1/32"]
c.TOTPAuthenticator.password_only_token_lifetime = {LIFETIME}
"""
TRUSTED = CONFIG + 'c.TwoFactorConfig.trusted_networks = ["10.0.0.0/8"]\n'


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, TRUSTED) as started:
        yield started


# -- helpers -------------------------------------------------------------------------------------------------------


def at(browser: HubBrowser, address: str) -> HubBrowser:
    """Put ``browser`` at ``address`` (see the module docstring) for its next requests."""
    browser.session.headers["X-Forwarded-For"] = address
    return browser


def tokens(hub: Hub, name: str) -> list[dict[str, Any]]:
    """Every token of user ``name`` (none when the hub has no such user yet)."""
    listed = hub.api("GET", f"users/{name}/tokens")
    if listed.status_code == 404:
        return []
    assert listed.status_code == 200, listed.text
    return list(listed.json()["api_tokens"])


def session_tokens(hub: Hub, name: str, browser: HubBrowser) -> list[dict[str, Any]]:
    """The tokens bound to ``browser``'s hub session: its logins to servers (OAuth)."""
    session = browser.cookie(SESSION_COOKIE)
    assert session
    return [token for token in tokens(hub, name) if token["session_id"] == session]


def moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def mint_with_cookie(browser: HubBrowser, name: str) -> requests.Response:
    """What the hub's token page does: POST with the login cookie and the _xsrf token."""
    headers = {"X-XSRFToken": browser.ensure_xsrf()}
    return browser.request("POST", f"/hub/api/users/{name}/tokens", json={"note": "a script"}, headers=headers)


def mint_with_credentials(hub: Hub, name: str, otp: str | None = None, address: str = HOME) -> requests.Response:
    """JupyterHub's token request with credentials in the body, no cookie (``auth``: what a script sends)."""
    auth = {"username": name, "password": PASSWORD} | ({"otp": otp} if otp is not None else {})
    return requests.post(
        f"{hub.url}/hub/api/users/{name}/tokens",
        json={"auth": auth},
        headers={"X-Forwarded-For": address},
        timeout=30,
        allow_redirects=False,
    )


def token_works(hub: Hub, token: str) -> bool:
    return hub.api("GET", "user", token=token).status_code == 200


def linked(hub: Hub, name: str) -> tuple[Device, list[str]]:
    page = enroll_on_page(hub.new_browser(), name, PASSWORD)
    assert page.device is not None and page.confirm is not None and page.confirm.status_code == 200
    return page.device, page.recovery_codes


def ended_lines(hub: Hub, name: str) -> list[str]:
    return [line for line in twofa_log_lines(hub, name) if "2FA logout success" in line]


# -- a trusted network's session -----------------------------------------------------------------------------------


def test_a_trusted_network_session_ends_when_used_from_elsewhere(hub: Hub) -> None:
    laptop = at(hub.new_browser(), CAMPUS)
    response = laptop.login("tina", PASSWORD)
    assert response.status_code == 302, login_error(response)
    assert laptop.logged_in()
    hub.start_server("tina")
    assert laptop.open_server("tina").status_code == 200

    # The server's login of this session lasts at most the lifetime: the server never says where the browser is.
    logins = session_tokens(hub, "tina", laptop)
    assert logins, tokens(hub, "tina")
    for token in logins:
        assert moment(token["expires_at"]) <= moment(token["created"]) + timedelta(seconds=LIFETIME)

    # At once (no refresh interval to wait for), from home: the session and its server login end ...
    at(laptop, HOME)
    assert not laptop.logged_in()
    assert session_tokens(hub, "tina", laptop) == []
    assert any(line.endswith(f"from {HOME}: left-trusted-network") for line in ended_lines(hub, "tina"))
    # ... for good: back on campus, the password is asked for again.
    at(laptop, CAMPUS)
    assert not laptop.logged_in()
    assert laptop.get("/hub/login").status_code == 200  # where the browser was sent: a new _xsrf cookie
    assert laptop.login("tina", PASSWORD).status_code == 302
    assert laptop.logged_in()


def drop_cookie(browser: HubBrowser, name: str, value: str | None = None) -> None:
    """Remove the browser's cookie ``name``, or give it ``value`` in its place."""
    for cookie in [c for c in browser.session.cookies if c.name == name]:
        browser.session.cookies.clear(cookie.domain, cookie.path, cookie.name)
        if value is not None:
            browser.session.cookies.set(name, value, domain=cookie.domain, path=cookie.path)


SESSION_DAMAGE: dict[str, Callable[[HubBrowser], None]] = {
    # What a session from before this check has: JupyterHub's cookies without a grant.
    "grant-cookie-gone": lambda browser: drop_cookie(browser, GRANT_COOKIE),
    # The grant belongs to one browser session: beside another session id, it counts for nothing.
    "other-session-id": lambda browser: drop_cookie(browser, SESSION_COOKIE, "0" * 32),
}


@pytest.mark.parametrize("damage", list(SESSION_DAMAGE))
def test_a_session_is_only_what_its_grant_says(hub: Hub, damage: str) -> None:
    name = f"gina-{damage}"
    device, _ = linked(hub, name)
    browser = hub.new_browser()
    assert browser.login(name, PASSWORD, device.next_code()).status_code == 302
    assert browser.cookie(GRANT_COOKIE, "/hub/")
    assert browser.logged_in()
    SESSION_DAMAGE[damage](browser)
    assert not browser.logged_in()


# -- minting tokens ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "minted"),
    [
        pytest.param("campus-cookie", False, id="password-only-session"),
        pytest.param("campus-credentials", False, id="password-only-credentials"),
        pytest.param("campus-credentials-wrong-code", False, id="credentials-wrong-code"),
        pytest.param("code-cookie", True, id="two-factor-session"),
        pytest.param("code-credentials", True, id="two-factor-credentials"),
    ],
)
def test_a_token_needs_both_factors(hub: Hub, how: str, minted: bool) -> None:
    name = f"milo-{how}"
    device, _ = linked(hub, name)
    assert hub.api("POST", f"users/{name}").status_code == 201  # JupyterHub mints tokens for its users only
    if how == "campus-cookie":
        browser = at(hub.new_browser(), CAMPUS)
        assert browser.login(name, PASSWORD).status_code == 302
        response = mint_with_cookie(browser, name)
    elif how == "code-cookie":
        browser = hub.new_browser()
        assert browser.login(name, PASSWORD, device.next_code()).status_code == 302
        response = mint_with_cookie(browser, name)
    elif how == "campus-credentials":
        response = mint_with_credentials(hub, name, address=CAMPUS)
    elif how == "campus-credentials-wrong-code":
        response = mint_with_credentials(hub, name, device.wrong_code(), address=CAMPUS)
    else:
        response = mint_with_credentials(hub, name, device.next_code())

    if not minted:
        assert response.status_code == 403, response.text
        assert [token for token in tokens(hub, name) if token["note"] in ("a script", "Requested via api")] == []
        return
    assert response.status_code == 201, response.text
    assert response.json()["session_id"].startswith(MINTED), "marked: a reset ends it"
    assert token_works(hub, response.json()["token"])


# -- the optional rollout policy -----------------------------------------------------------------------------------


def test_an_optional_policy_session_ends_at_optional_until(hub_factory: HubFactory) -> None:
    deadline = time.time() + 45  # the hub starts, olga logs in and opens her server before it
    until = datetime.fromtimestamp(deadline, timezone.utc).isoformat(timespec="seconds")
    optional = hub_factory(
        CONFIG + f'c.TwoFactorConfig.enrollment_policy = "optional"\nc.TwoFactorConfig.optional_until = "{until}"\n'
    )
    browser = optional.new_browser()
    response = browser.login("olga", PASSWORD)
    assert response.status_code == 302, login_error(response)
    assert mint_with_cookie(browser, "olga").status_code == 403
    assert mint_with_credentials(optional, "olga").status_code == 403
    optional.start_server("olga")
    assert browser.open_server("olga").status_code == 200
    logins = session_tokens(optional, "olga", browser)
    assert logins
    assert all(moment(token["expires_at"]) <= moment(until) for token in logins)
    assert time.time() < deadline, "too slow to test the session before the deadline"
    assert browser.logged_in()

    time.sleep(deadline - time.time() + 1)
    assert not browser.logged_in()
    assert session_tokens(optional, "olga", browser) == []
    assert any(line.endswith(": optional-policy-over") for line in ended_lines(optional, "olga"))
    refused = optional.new_browser().login("olga", PASSWORD)
    assert refused.status_code == 403
    assert "/hub/2fa/enroll" in (login_error(refused) or "")


# -- resets and re-links -------------------------------------------------------------------------------------------


def reset_by_admin(hub: Hub, name: str, codes: list[str]) -> None:
    assert twofa_api(hub, "DELETE", name).status_code == 204


def reset_in_a_terminal(hub: Hub, name: str, codes: list[str]) -> None:
    """``jupyter 2fa reset`` with the hub's config: another process, which changes only the 2FA store."""
    done = hub_cli(hub, "reset", name)
    assert done.returncode == 0, done.stderr


def relink_from_a_kernel(hub: Hub, name: str, codes: list[str]) -> None:
    """What the notebook panel does: password and a recovery code, then the new device's code."""
    auth = (name, PASSWORD)
    started = user_api(hub, "POST", "relink", {"password": PASSWORD, "otp": codes[0], "reveal": "inline"}, auth=auth)
    assert started.status_code == 201, started.text
    new_device = Device(started.json()["secret"])
    confirmed = user_api(hub, "POST", "enrollment/confirm", {"code": new_device.current_code()}, auth=auth)
    assert confirmed.status_code == 200, confirmed.text


CHANGES: dict[str, Callable[[Hub, str, list[str]], None]] = {
    "admin-reset": reset_by_admin,
    "cli-reset": reset_in_a_terminal,
    "relink": relink_from_a_kernel,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_reset_or_relink_ends_sessions_and_minted_tokens_but_not_the_servers_own(hub: Hub, change: str) -> None:
    name = f"rita-{change}"
    device, codes = linked(hub, name)
    browser = hub.new_browser()
    assert browser.login(name, PASSWORD, device.next_code()).status_code == 302
    by_session = mint_with_cookie(browser, name)
    by_credentials = mint_with_credentials(hub, name, device.next_code())
    assert (by_session.status_code, by_credentials.status_code) == (201, 201), (by_session.text, by_credentials.text)
    minted = [by_session.json()["token"], by_credentials.json()["token"]]
    for_the_user = new_user_token(hub, name)  # an admin's, for the user: not theirs to lose
    hub.start_server(name)
    assert browser.open_server(name).status_code == 200
    server_tokens = {token["id"] for token in tokens(hub, name) if token["note"].startswith("Server at ")}
    assert server_tokens

    CHANGES[change](hub, name, codes)

    deadline = time.monotonic() + RESET_SECONDS
    while any(token_works(hub, token) for token in minted) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(token_works(hub, token) for token in minted)
    assert not browser.logged_in()
    assert session_tokens(hub, name, browser) == []
    assert token_works(hub, for_the_user)
    # The server keeps running, with its own token (its kernels' JUPYTERHUB_API_TOKEN).
    assert server_tokens <= {token["id"] for token in tokens(hub, name)}
    assert hub.api("GET", f"users/{name}").json()["servers"][""]["ready"] is True


@pytest.mark.parametrize("how", ["cookie", "credentials"])
def test_a_self_minted_token_is_marked_with_the_accounts_epoch(hub: Hub, how: str) -> None:
    """Marked with the account's current epoch, however the token was asked for: a token marked with an older
    one would be ended as stale at the hub's next start, a reset or re-link aside."""
    name = f"tom-{how}"
    device, _ = linked(hub, name)  # linking moved the epoch off 0
    browser = hub.new_browser()
    assert browser.login(name, PASSWORD, device.next_code()).status_code == 302  # the hub knows the user now
    if how == "cookie":
        minted = mint_with_cookie(browser, name)
    else:
        minted = mint_with_credentials(hub, name, device.next_code())
    assert minted.status_code == 201, minted.text
    engine = sa.create_engine(hub_store_url(hub))
    try:
        with engine.connect() as conn:
            epoch = conn.execute(
                sa.text("SELECT epoch FROM jupyter_2fa_accounts WHERE username = :name"), {"name": name}
            ).scalar_one()
    finally:
        engine.dispose()
    assert epoch > 0
    assert minted.json()["session_id"] == f"jupyter-2fa-minted:{epoch}"
