"""Passkeys and security keys in a real browser: Chromium's virtual authenticators (DevTools protocol
``WebAuthn.addVirtualAuthenticator``, CTAP2, internal and USB transports) against a real gate and a real hub.

On the gate: link a platform passkey as the first factor on the 2FA page, log in with it, add a USB security key
from the session the passkey opened, log in with that one alone; then the attacks, each refused: an assertion
replayed, a clone whose signature counter went back, a key that did not verify its user, and a phishing page
on another origin relaying the server's options. On the hub: link a key, log in with it, an admin's reset
removes it. Pages pass axe-core's WCAG 2 A/AA rules and leave screenshots for the docs.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import CDPSession, Page, expect

from helpers.browser import PASSWORD, Client, LabServer, assert_accessible, log_in
from helpers.hub import HubFactory, twofa_api
from helpers.ports import free_port

pytestmark = pytest.mark.slow

HUB_LOGIN_CHROME = (".auth-form-header > h1", "#login_submit")  # JupyterHub's own, see test_hub_login.py


class Authenticators:
    """Chromium's virtual authenticators of one page (the DevTools protocol's WebAuthn domain)."""

    def __init__(self, page: Page) -> None:
        self.cdp: CDPSession = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})

    def add(self, transport: str, *, resident: bool = True) -> str:
        options = {
            "protocol": "ctap2",
            "transport": transport,
            "hasResidentKey": resident,
            "hasUserVerification": True,
            "isUserVerified": True,
            "automaticPresenceSimulation": True,
        }
        return str(self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"])

    def remove(self, authenticator: str) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})

    def credentials(self, authenticator: str) -> list[dict[str, Any]]:
        return list(self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"])

    def replace(self, authenticator: str, credential: dict[str, Any]) -> None:
        self.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator})
        self.cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator, "credential": credential})

    def user_verified(self, authenticator: str, verified: bool) -> None:
        self.cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": verified})


@contextlib.contextmanager
def screenshot_on_failure(page: Page, path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=path, full_page=True)
        raise


def log_in_with_key(page: Page, url: str, username: str | None = None) -> None:
    page.goto(f"{url}/login")
    if username is not None:
        page.fill("#username_input", username)
    page.fill("#password_input", PASSWORD)
    page.click("#key_login")


def test_passkeys_on_the_gate(page: Page, lab_server: LabServer, screenshot_dir: Path) -> None:
    url = lab_server.url.replace("127.0.0.1", "localhost")  # WebAuthn needs a host name
    with screenshot_on_failure(page, screenshot_dir / "passkeys-failure.png"):
        _gate(page, url, lab_server, screenshot_dir)


def _gate(page: Page, url: str, server: LabServer, shots: Path) -> None:
    keys = Authenticators(page)
    passkey = keys.add("internal")

    # 1. On an IP address the login page explains why it offers no key button.
    page.goto(f"{server.url}/login")
    expect(page.locator("#key_status")).to_contain_text("host name such as localhost")
    expect(page.locator("#key_login")).to_be_hidden()

    # 2. A passkey as the first factor, on the 2FA page: the recovery codes are shown once.
    page.goto(f"{url}/login")
    expect(page.locator("#key_login")).to_be_visible()
    assert_accessible(page, "the login page with the key button")
    page.screenshot(path=shots / "passkey-login.png", full_page=True)
    page.goto(f"{url}/2fa/enroll")
    expect(page.locator("#key_add")).to_be_visible()
    page.fill("#key_password_input", PASSWORD)
    page.fill("#key_name_input", "Laptop passkey")
    assert_accessible(page, "the 2FA page's key section")
    page.screenshot(path=shots / "passkey-add.png", full_page=True)
    page.click("#key_add")
    expect(page.locator("#key_added")).to_contain_text("Laptop passkey")
    expect(page.locator("#recovery_codes li")).to_have_count(10)
    assert_accessible(page, "the 2FA page after a key was added")
    page.screenshot(path=shots / "passkey-added.png", full_page=True)

    # 3. Log out, then in with the passkey: password, then the key button, and Lab opens.
    page.goto(f"{url}/logout")
    log_in_with_key(page, url)
    expect(page).to_have_url(re.compile(r"/lab"), timeout=60_000)

    # 4. A USB security key, added from the session the passkey opened (no code needed); then, the laptop's
    #    passkey gone, the USB key alone logs in.
    keys.remove(passkey)
    usb = keys.add("usb", resident=False)
    page.goto(f"{url}/2fa/enroll")
    page.fill("#key_password_input", PASSWORD)
    page.fill("#key_name_input", "YubiKey")
    page.click("#key_add")
    expect(page.locator("#key_added")).to_contain_text("YubiKey")
    expect(page.locator("#recovery_codes")).to_have_count(0)  # not the first factor
    page.goto(f"{url}/logout")
    log_in_with_key(page, url)
    expect(page).to_have_url(re.compile(r"/lab"), timeout=60_000)
    listed = page.evaluate("fetch('/2fa/api/webauthn/credentials').then(r => r.json())")  # the Lab panel's call
    assert [key["name"] for key in listed["credentials"]] == ["Laptop passkey", "YubiKey"]

    # 5. A replayed assertion: the login form's body, sent again, is refused.
    page.goto(f"{url}/logout")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.post_data or "") if request.method == "POST" else None)
    log_in_with_key(page, url)
    expect(page).to_have_url(re.compile(r"/lab"), timeout=60_000)
    body = next(data for data in sent if "webauthn=" in data)
    replayed = page.context.request.post(
        f"{url}/login", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, max_redirects=0
    )
    assert replayed.status == 401, replayed.status

    # 6. A clone: the same key with its signature counter set back is refused (and audited).
    (credential,) = keys.credentials(usb)
    assert credential["signCount"] >= 2
    keys.replace(usb, {**credential, "signCount": 0})
    page.goto(f"{url}/logout")
    log_in_with_key(page, url)
    expect(page.locator("#login_message")).to_contain_text("Invalid credentials")
    assert "2FA webauthn-cloned failure" in server.log.read_text()

    # 7. A key that did not verify its user (no PIN, no biometric): the browser cannot satisfy "required".
    keys.replace(usb, {**credential, "signCount": credential["signCount"] + 10})
    keys.user_verified(usb, False)
    log_in_with_key(page, url)
    expect(page.locator("#key_status")).to_contain_text("not used")
    keys.user_verified(usb, True)

    # 8. A phishing page on another origin (same host name, another port) relays the server's options: the
    #    browser signs for it (the key is scoped to the host name), but the signature names the phishing
    #    origin, so the real server refuses it.
    relay = requests.Session()
    relay.get(f"{url}/login", timeout=20)
    options = relay.post(
        f"{url}/2fa/api/webauthn/login-options",
        json={"password": PASSWORD},
        headers={"X-XSRFToken": relay.cookies.get("_xsrf", "")},
        timeout=20,
    )
    assert options.status_code == 200, options.text
    phishing = f"http://localhost:{free_port()}"
    page.route(f"{phishing}/**", lambda route: route.fulfill(content_type="text/html", body="<title>Log in</title>"))
    page.goto(f"{phishing}/login")
    assertion = page.evaluate(
        """async (options) => {
            const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
            const credential = await navigator.credentials.get({ publicKey });
            return JSON.stringify(credential.toJSON());
        }""",
        options.json()["options"],
    )
    phished = relay.post(
        f"{url}/login",
        data={"password": PASSWORD, "otp": "", "webauthn": assertion, "_xsrf": relay.cookies.get("_xsrf", "")},
        allow_redirects=False,
        timeout=20,
    )
    assert phished.status_code == 401, phished.status_code
    assert json.loads(assertion)["id"]


HUB_USER = "alice"
HUB_CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.JupyterHub.default_url = "/hub/home"
"""


def test_passkeys_on_the_hub(page: Page, hub_factory: HubFactory, screenshot_dir: Path) -> None:
    hub = hub_factory(HUB_CONFIG)
    url = hub.url.replace("127.0.0.1", "localhost")
    with screenshot_on_failure(page, screenshot_dir / "hub-passkeys-failure.png"):
        keys = Authenticators(page)
        keys.add("usb", resident=False)

        # The hub's 2FA page, before any login: username and password, then the browser creates the key.
        page.goto(f"{url}/hub/2fa/enroll")
        page.fill("#key_username_input", HUB_USER)
        page.fill("#key_password_input", PASSWORD)
        page.fill("#key_name_input", "YubiKey")
        page.click("#key_add")
        expect(page.locator("#key_added")).to_contain_text("YubiKey")
        expect(page.locator("#recovery_codes li")).to_have_count(10)
        assert_accessible(page, "the hub's 2FA page after a key was added")

        # JupyterHub's login form with the key button: password, then the key.
        page.goto(f"{url}/hub/login")
        expect(page.locator("#key_login")).to_be_visible()
        assert_accessible(page, "the hub's login page with the key button", exclude=HUB_LOGIN_CHROME)
        page.screenshot(path=screenshot_dir / "hub-passkey-login.png", full_page=True)
        page.fill("#username_input", HUB_USER)
        page.fill("#password_input", PASSWORD)
        page.click("#key_login")
        expect(page).to_have_url(re.compile(r"/hub/home"), timeout=60_000)

        # An admin's reset removes every key: the key button now says there is none.
        assert twofa_api(hub, "DELETE", HUB_USER).status_code in (200, 204)
        page.context.clear_cookies()
        page.goto(f"{url}/hub/login")
        page.fill("#username_input", HUB_USER)
        page.fill("#password_input", PASSWORD)
        page.click("#key_login")
        expect(page.locator("#key_status")).to_contain_text("No passkey or security key is registered")


def test_passkeys_in_the_lab_panel(page: Page, lab_server: LabServer, screenshot_dir: Path) -> None:
    """The JupyterLab extension's panel lists, adds and removes keys with the browser's WebAuthn API."""
    url = lab_server.url.replace("127.0.0.1", "localhost")
    device, codes = Client(url).enroll()
    keys = Authenticators(page)
    keys.add("usb", resident=False)
    panel = page.locator(".jp-2fa-panel")
    with screenshot_on_failure(page, screenshot_dir / "lab-passkeys-failure.png"):
        log_in(page, url, "/lab", device.next_code())
        expect(page.locator(".jp-Launcher")).to_be_visible(timeout=60_000)
        page.keyboard.press("Control+Shift+C")
        page.locator("#modal-command-palette input").fill("Two-Factor")
        page.keyboard.press("Enter")
        expect(panel.locator(".jp-2fa-keys")).to_contain_text("No passkeys or security keys yet.")

        # Add: a name, the password and a recovery code, then the browser's prompt (the virtual key answers).
        panel.locator("[data-action=key-add]").click()
        panel.locator("input[name=name]").fill("Lab key")
        panel.locator("input[name=password]").fill(PASSWORD)
        panel.locator("input[name=otp]").fill(codes[0])
        panel.locator("button[type=submit]").click()
        row = panel.locator(".jp-2fa-keys-table tbody tr")
        expect(row).to_have_count(1)
        expect(row.first.locator("th")).to_have_text("Lab key")
        page.screenshot(path=screenshot_dir / "lab-passkeys.png")

        # Remove: the password and another recovery code (a session opened with a code, not a key).
        row.first.locator("[data-action=key-remove]").click()
        panel.locator("input[name=password]").fill(PASSWORD)
        panel.locator("input[name=otp]").fill(codes[1])
        panel.locator("button[type=submit]").click()
        expect(panel.locator(".jp-2fa-keys")).to_contain_text("No passkeys or security keys yet.")
