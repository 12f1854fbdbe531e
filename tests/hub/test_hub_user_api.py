"""The user's JSON API on the hub (``/hub/2fa/api/``): the gate's paths and bodies, authenticated by the user's
own credentials (HTTP Basic or the hub login cookie), never by an API token."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
import requests
from hub_support import Hub, HubFactory

PASSWORD = "a shared password for the hub tests"
CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    factory = HubFactory(lambda: tmp_path_factory.mktemp("hub"))
    try:
        yield factory(CONFIG)
    finally:
        factory.close()


def api(hub: Hub, method: str, path: str, body: Any = None, *, auth: Any = None, token: str = "") -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.request(method, f"{hub.url}/hub/2fa/api/{path}", json=body, auth=auth, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("auth", "token", "status"),
    [
        pytest.param(None, "", 403, id="nothing"),
        pytest.param(("carol", "wrong password"), "", 403, id="wrong-password"),
        pytest.param(None, "admin", 403, id="admin-token"),
    ],
)
def test_status_needs_the_users_own_credentials(hub: Hub, auth: Any, token: str, status: int) -> None:
    response = api(hub, "GET", "status", auth=auth, token=hub.admin_token if token else "")
    assert response.status_code == status, response.text
    assert "enrolled" not in response.text


def test_enroll_confirm_and_log_in_through_the_api(hub: Hub) -> None:
    auth = ("dave", PASSWORD)
    status = api(hub, "GET", "status", auth=auth)
    assert status.status_code == 200, status.text
    assert status.json()["username"] == "dave" and status.json()["enrolled"] is False

    assert api(hub, "POST", "enrollment", {"password": "wrong"}, auth=auth).status_code == 403
    started = api(hub, "POST", "enrollment", {"password": PASSWORD}, auth=auth)
    assert started.status_code == 201, started.text
    assert started.headers["Cache-Control"] == "no-store"
    totp = pyotp.parse_uri(started.json()["otpauth_uri"])
    assert started.json()["qr_svg"].lstrip().startswith(("<svg", "<?xml"))

    assert api(hub, "POST", "enrollment/confirm", {"code": 123}, auth=auth).status_code == 400
    confirmed = api(hub, "POST", "enrollment/confirm", {"code": totp.now()}, auth=auth)
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    assert api(hub, "GET", "status", auth=auth).json()["enrolled"] is True

    browser = hub.new_browser()
    assert browser.login("dave", PASSWORD, otp=totp.at(time.time() + 30)).status_code == 302
    cookie_status = browser.get("/hub/2fa/api/status")
    assert cookie_status.status_code == 200, cookie_status.text
    assert cookie_status.json()["username"] == "dave"
