"""Passkeys and security keys on a real JupyterHub (behind configurable-http-proxy): the hub's 2FA page links a key,
the login form takes a key's signature, admins may be made to use one, and an admin's reset removes every key.
The browser's WebAuthn API is played by ``helpers.webauthn.SoftKey`` over plain HTTP (the real-browser test
is ``tests/browser/test_passkeys_in_chromium.py``); the hub sees ``http://localhost:PORT``, as a browser on the
machine would.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from helpers.hub import (
    Hub,
    HubBrowser,
    enroll_on_page,
    login_error,
    module_hub,
    page_message,
    recovery_codes,
    twofa_api,
    twofa_log_lines,
)
from helpers.webauthn import SoftKey

PASSWORD = "correct horse battery staple"
ADMIN_PASSWORD = "an admin's own password, at least 32 characters long"
CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"chief"}}
c.SharedPasswordAuthenticator.admin_password = {ADMIN_PASSWORD!r}
c.JupyterHub.load_groups = {{"security-team": {{"users": ["boss"]}}}}
c.TwoFactorConfig.webauthn_required_for = "admins"
c.TwoFactorConfig.webauthn_required_groups = ["security-team"]
c.TwoFactorConfig.backoff_free_attempts = 10
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, CONFIG) as started:
        yield started


def origin_of(hub: Hub) -> str:
    return hub.url.replace("127.0.0.1", "localhost")


def key_browser(hub: Hub) -> HubBrowser:
    """A browser that opens the hub as ``http://localhost:PORT`` (WebAuthn needs a host name)."""
    return HubBrowser(origin_of(hub))


def challenge_of(response: requests.Response) -> bytes:
    assert response.status_code == 200, response.text
    text = response.json()["options"]["challenge"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def post_json(browser: HubBrowser, path: str, body: dict[str, Any]) -> requests.Response:
    return browser.request("POST", path, json=body, headers={"X-XSRFToken": browser.ensure_xsrf()})


def register_key(
    hub: Hub, browser: HubBrowser, user: str, key: SoftKey, otp: str = "", password: str = PASSWORD
) -> requests.Response:
    """The hub's 2FA page: "add a key" with the username and password (and a code), as its script does."""
    body = {"username": user, "password": password, "otp": otp}
    options = post_json(browser, "/hub/2fa/api/webauthn/registration-options", body)
    credential = key.register("localhost", origin_of(hub), challenge_of(options))
    fields = {"action": "add-key", "username": user, "credential": credential, "key_name": "YubiKey"}
    return browser.post("/hub/2fa/enroll", fields)


def log_in_with_key(
    hub: Hub, browser: HubBrowser, user: str, key: SoftKey, origin: str | None = None, password: str = PASSWORD
) -> Any:
    options = post_json(browser, "/hub/2fa/api/webauthn/login-options", {"username": user, "password": password})
    key.counter += 1
    assertion = key.sign("localhost", origin or origin_of(hub), challenge_of(options))
    return browser.post("/hub/login", {"username": user, "password": password, "otp": "", "webauthn": assertion})


def test_link_a_key_and_log_in_with_it(hub: Hub) -> None:
    key = SoftKey(b"kim's key", counter=1)
    added = register_key(hub, key_browser(hub), "kim", key)
    assert added.status_code == 200, page_message(added) or added.text[-2000:]
    assert len(recovery_codes(added)) == 10
    browser = key_browser(hub)
    assert browser.login("kim", PASSWORD, "123456").status_code == 403  # a key-only account has no code
    logged_in = log_in_with_key(hub, browser, "kim", key)
    assert logged_in.status_code == 302, login_error(logged_in)
    assert browser.logged_in()
    assert any(line.endswith(": webauthn") for line in twofa_log_lines(hub, "kim"))
    listed = browser.get("/hub/2fa/api/webauthn/credentials")
    assert [k["name"] for k in listed.json()["credentials"]] == ["YubiKey"]


def test_a_phishing_origin_cannot_use_the_key(hub: Hub) -> None:
    key = SoftKey(b"lee's key", counter=1)
    added = register_key(hub, key_browser(hub), "lee", key)
    assert added.status_code == 200, page_message(added) or added.text[-2000:]
    browser = key_browser(hub)
    phished = log_in_with_key(hub, browser, "lee", key, origin="http://hub.evil.localhost:8000")
    assert phished.status_code == 403 and not browser.logged_in()


@pytest.mark.parametrize(
    ("user", "password"),
    [pytest.param("chief", ADMIN_PASSWORD, id="hub-admin"), pytest.param("boss", PASSWORD, id="group-member")],
)
def test_admins_and_a_group_must_use_a_key(hub: Hub, user: str, password: str) -> None:
    linked = enroll_on_page(HubBrowser(hub.url), user, password)
    assert linked.device is not None and len(linked.recovery_codes) == 10, page_message(linked.start)
    browser = key_browser(hub)
    refused = browser.login(user, password, linked.device.next_code())
    assert refused.status_code == 403
    assert "passkey or security key" in (login_error(refused) or "")
    # nor does JupyterHub's token API take a code in place of the key (a relayed code would buy a token); the
    # recovery codes spare the test a wait for the app's next time step
    auth = {"username": user, "password": password, "otp": linked.recovery_codes[0]}
    token = requests.post(f"{hub.url}/hub/api/users/{user}/tokens", json={"auth": auth}, timeout=30)
    assert token.status_code == 403, token.text
    key = SoftKey(f"{user}'s key".encode(), counter=1)
    added = register_key(hub, browser, user, key, otp=linked.recovery_codes[1], password=password)
    assert added.status_code == 200, page_message(added)
    assert log_in_with_key(hub, browser, user, key, password=password).status_code == 302


def test_an_admin_reset_removes_every_key(hub: Hub) -> None:
    key = SoftKey(b"max's key", counter=1)
    assert register_key(hub, key_browser(hub), "max", key).status_code == 200
    assert twofa_api(hub, "DELETE", "max").status_code in (200, 204)
    browser = key_browser(hub)
    options = post_json(browser, "/hub/2fa/api/webauthn/login-options", {"username": "max", "password": PASSWORD})
    assert options.status_code == 409
    status = twofa_api(hub, "GET", "max").json()
    assert status.get("webauthn_keys", 0) == 0
    assert json.dumps(status).count("YubiKey") == 0
