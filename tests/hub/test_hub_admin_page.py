"""The hub's 2FA admin page: linked from the nav bar for admins, lists accounts, resets and unlocks."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
import requests

from helpers.hub import Hub, HubBrowser, HubFactory

PASSWORD = "a shared password for the hub tests"
CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "dummy"  # shared-password wants a second password for admins
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"boss"}}
# lead may administer the members of one group only (JupyterHub's filtered scopes)
c.JupyterHub.load_groups = {{"staff": {{"users": ["frank"]}}}}
c.JupyterHub.load_roles.append({{"name": "staff-lead", "scopes": ["admin:users!group=staff"], "users": ["lead"]}})
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    factory = HubFactory(lambda: tmp_path_factory.mktemp("hub"))
    try:
        yield factory(CONFIG)
    finally:
        factory.close()


def enroll(hub: Hub, name: str) -> pyotp.TOTP:
    """Link a device through the user API (Basic credentials) and return the app's TOTP."""
    started = requests.post(
        f"{hub.url}/hub/2fa/api/enrollment", json={"password": PASSWORD}, auth=(name, PASSWORD), timeout=30
    )
    assert started.status_code == 201, started.text
    totp = pyotp.parse_uri(started.json()["otpauth_uri"])
    confirmed = requests.post(
        f"{hub.url}/hub/2fa/api/enrollment/confirm", json={"code": totp.now()}, auth=(name, PASSWORD), timeout=30
    )
    assert confirmed.status_code == 200, confirmed.text
    return totp


def logged_in(hub: Hub, name: str, totp: pyotp.TOTP, later: int = 30) -> HubBrowser:
    browser = hub.new_browser()
    assert browser.login(name, PASSWORD, otp=totp.at(time.time() + later)).status_code == 302
    return browser


def test_admins_see_the_link_list_accounts_and_reset(hub: Hub) -> None:
    boss, erin = enroll(hub, "boss"), enroll(hub, "erin")
    admin = logged_in(hub, "boss", boss)
    home = admin.get("/hub/home")
    assert home.status_code == 200 and 'href="/hub/2fa/admin"' in home.text
    page = admin.get("/hub/2fa/admin")
    assert page.status_code == 200, page.text
    assert "erin" in page.text and "boss" in page.text
    assert page.headers.get("Content-Type", "").startswith("text/html")

    user = logged_in(hub, "erin", erin)
    assert user.get("/hub/home").status_code == 200
    assert 'href="/hub/2fa/admin"' not in user.get("/hub/home").text
    assert user.get("/hub/2fa/admin").status_code == 403

    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf is not None
    reset = admin.post("/hub/2fa/admin", {"action": "reset", "name": "erin"})
    assert reset.status_code == 200, reset.text
    assert "Reset erin" in reset.text
    assert user.get("/hub/home").status_code == 302  # her session ended
    status = requests.get(f"{hub.url}/hub/2fa/api/status", auth=("erin", PASSWORD), timeout=30)
    assert status.json()["enrolled"] is False


def test_an_admin_of_some_users_cannot_use_the_page(hub: Hub) -> None:
    """The page lists and acts on everyone: a scope filtered to a group is not enough to see or post it."""
    lead = enroll(hub, "lead")
    enroll(hub, "grace")
    browser = logged_in(hub, "lead", lead)
    assert browser.get("/hub/2fa/admin").status_code == 403
    assert browser.post("/hub/2fa/admin", {"action": "reset", "name": "grace"}).status_code == 403
    status = requests.get(f"{hub.url}/hub/2fa/api/status", auth=("grace", PASSWORD), timeout=30)
    assert status.json()["enrolled"] is True
