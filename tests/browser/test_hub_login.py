"""End to end, in a real browser: JupyterHub with ``TOTPAuthenticator`` -> link a device -> log in with 2FA -> Lab.

One test walks what a hub user does: the hub's stock login form with its code field and a link to the
enrollment page, the password alone refused with that link again, the hub's enrollment page (username and
password, the QR code and key shown once, a code to confirm, the recovery codes), a wrong code refused with the
hub's login error, and the right password with the app's next code, after which the hub spawns the user's server
and JupyterLab's Launcher appears; then, logged in, the enrollment page's re-link form and (the user has the
admin:users scope) the hub's 2FA admin page. Every page the project renders or adds to passes axe-core's WCAG 2
A/AA rules on the way, and leaves a screenshot for the docs.

The hub comes from the ``hub_factory`` fixture that tests/hub uses too (tests/conftest.py, helpers/hub.py): a real
``jupyterhub`` behind configurable-http-proxy, spawning ``jupyterhub-singleuser`` as the test's own user.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from helpers.browser import assert_accessible
from helpers.hub import HubFactory

pytestmark = pytest.mark.slow

USERNAME = "alice"
PASSWORD = "correct horse battery staple"  # SharedPasswordAuthenticator wants at least 8 characters
OTP_PROMPT = "Code from your authenticator app (or a recovery code):"  # TOTPAuthenticator's otp_prompt default
LAB_LOAD_MS = 90_000
# JupyterHub's own login form chrome, which the project does not render: the orange "Sign in" header and button
# (white on #f37524, 2.84:1, below AA's 4.5:1: axe's color-contrast). A hub's theme is its admin's to choose.
HUB_LOGIN_CHROME = (".auth-form-header > h1", "#login_submit")

HUB_CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
# The 2FA admin page's scope (SharedPasswordAuthenticator lets admin_users in only with an admin password of their own)
c.JupyterHub.load_roles = [{{"name": "twofa-admins", "scopes": ["admin:users"], "users": [{USERNAME!r}]}}]
"""


def quiet_lab(config_dir: Path) -> None:
    """Keep the single-user JupyterLab off the (closed) network and its news question off the screenshot.

    The same settings as helpers.browser.write_server_config, without its 2FA identity provider: behind the hub,
    the single-user server trusts the hub's login. The servers find this folder through ``JUPYTER_CONFIG_DIR``
    (tests/conftest.py isolates it per test; helpers.hub's ``Spawner.env_keep`` passes it on).
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        "c.LabApp.news_url = None\n"
        'c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"\n'
    )
    notification = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def wrong_code(key: str, now: float) -> str:
    """A 6-digit code that no time step near ``now`` accepts (the verifier's window is a step or two)."""
    totp = pyotp.TOTP(key)
    near = {totp.at(now + offset) for offset in range(-150, 151, 30)}
    return next(code for code in (f"{n:06d}" for n in range(123456, 10**6)) if code not in near)


def test_enroll_then_log_in_to_the_hub(page: Page, hub_factory: HubFactory, screenshot_dir: Path) -> None:
    quiet_lab(Path(os.environ["JUPYTER_CONFIG_DIR"]))
    hub = hub_factory(HUB_CONFIG)
    try:
        _walk_through(page, hub.url, screenshot_dir)
    except BaseException:
        with contextlib.suppress(Exception):  # never hide the real failure behind a broken browser
            page.screenshot(path=screenshot_dir / "hub-failure.png", full_page=True)
        raise


def _walk_through(page: Page, url: str, shots: Path) -> None:
    # 1. The hub's stock login form asks for the code too (TOTPAuthenticator turns request_otp on), and offers
    #    the enrollment page before any attempt.
    page.goto(f"{url}/hub/login")
    expect(page.locator("label[for=otp_input]")).to_have_text(OTP_PROMPT)
    expect(page.locator("#otp_input")).to_be_visible()
    expect(page.locator("#enroll_link")).to_have_attribute("href", "/hub/2fa/enroll")
    assert_accessible(page, "the hub's login page", exclude=HUB_LOGIN_CHROME)
    page.screenshot(path=shots / "hub-login.png", full_page=True)

    # 2. The password alone, with no device linked: refused, with the enrollment page as a link.
    page.fill("#username_input", USERNAME)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    expect(page.locator(".login_error")).to_contain_text("No authenticator device is linked")
    expect(page.locator(".login_error a")).to_have_attribute("href", "/hub/2fa/enroll")
    assert_accessible(page, "the hub's login page saying no device is linked", exclude=HUB_LOGIN_CHROME)
    page.screenshot(path=shots / "hub-login-no-device.png", full_page=True)

    # 3. The hub's enrollment page: why the password again, username and password, then the QR code, once.
    page.locator(".login_error a").click()
    expect(page).to_have_url(re.compile(r"/hub/2fa/enroll$"))
    expect(page.locator("#enroll_why")).to_contain_text("password is asked for again")
    expect(page.locator("#otp_input")).to_have_count(0)
    assert_accessible(page, "the hub's enrollment page's first step")
    page.screenshot(path=shots / "hub-enroll-start.png", full_page=True)
    page.fill("#username_input", USERNAME)
    page.fill("#password_input", PASSWORD)
    page.click("#enroll_start")
    expect(page.locator("#enroll_qr svg"), "no QR code after the enrollment page's Continue").to_be_visible()
    key = page.locator("#manual_key").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", key), key
    assert_accessible(page, "the hub's enrollment page's QR code")
    page.screenshot(path=shots / "hub-enroll-qr.png", full_page=True)

    page.fill("#code_input", pyotp.TOTP(key).now())
    page.click("#enroll_confirm")
    expect(page.locator("#enroll_done")).to_be_visible()
    codes = page.locator("#recovery_codes li")
    expect(codes).to_have_count(10)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}", code) for code in codes.all_inner_texts())
    assert_accessible(page, "the hub's enrollment page's recovery codes")
    page.screenshot(path=shots / "hub-recovery-codes.png", full_page=True)

    # 4. The right password with a wrong code: the hub's login error, on the login form again.
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", USERNAME)
    page.fill("#password_input", PASSWORD)
    page.fill("#otp_input", wrong_code(key, time.time()))
    page.click("#login_submit")
    expect(page.locator(".login_error")).to_have_text("Invalid username or password")
    expect(page).to_have_url(re.compile(r"/hub/login"))
    assert_accessible(page, "the hub's login page with a refusal", exclude=HUB_LOGIN_CHROME)
    page.screenshot(path=shots / "hub-login-error.png", full_page=True)

    # 5. Password and the app's next code (confirming spent the current step): the hub spawns alice's server.
    page.fill("#username_input", USERNAME)
    page.fill("#password_input", PASSWORD)
    page.fill("#otp_input", pyotp.TOTP(key).at(time.time() + 30))
    page.click("#login_submit")
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=LAB_LOAD_MS)
    expect(page).to_have_url(re.compile(rf"/user/{USERNAME}/lab"))
    page.screenshot(path=shots / "hub-lab.png")

    # 6. Logged in with a device: the hub's enrollment page is the re-link form, which asks for a current code.
    page.goto(f"{url}/hub/2fa/enroll")
    expect(page.locator("#otp_input")).to_be_visible()
    assert_accessible(page, "the hub's enrollment page's re-link form")
    page.screenshot(path=shots / "hub-enroll-relink.png", full_page=True)

    # 7. alice may manage users (admin:users): the hub's 2FA admin page lists her account.
    page.goto(f"{url}/hub/2fa/admin")
    expect(page.locator("#accounts")).to_contain_text(USERNAME)
    assert_accessible(page, "the hub's 2FA admin page")
    page.screenshot(path=shots / "hub-admin.png", full_page=True)
