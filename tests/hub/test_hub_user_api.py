"""The user's JSON API on the hub (``/hub/2fa/api/``): the gate's paths and bodies, authenticated by the user's
own credentials (HTTP Basic or the hub login cookie), never by an API token."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
import requests
import yaml

from jupyter_2fa.server.paths import OPENAPI

from helpers.hub import Hub, HubFactory, new_user_token, user_api

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


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        pytest.param(None, 403, id="nothing"),
        pytest.param(("carol", "wrong password"), 403, id="wrong-password"),
    ],
)
def test_status_needs_credentials(hub: Hub, auth: Any, status: int) -> None:
    response = user_api(hub, "GET", "status", auth=auth)
    assert response.status_code == status, response.text
    assert "enrolled" not in response.text


def test_a_service_token_has_no_account(hub: Hub) -> None:
    response = user_api(hub, "GET", "status", token=hub.admin_token)
    assert response.status_code == 403, response.text
    assert "enrolled" not in response.text


def test_a_users_token_reads_their_status_and_changes_nothing(hub: Hub) -> None:
    """What a kernel's JUPYTERHUB_API_TOKEN may do: read its user's state, never start or change a link."""
    token = new_user_token(hub, "erin")
    status = user_api(hub, "GET", "status", token=token)
    assert status.status_code == 200, status.text
    assert status.json()["username"] == "erin"
    documented = yaml.safe_load(OPENAPI.read_text())["components"]["schemas"]["Status"]["required"]
    assert set(status.json()) == set(documented), "the hub's status has the gate's shape"
    for method, path, body in [
        ("POST", "enrollment", {"password": PASSWORD}),
        ("DELETE", "enrollment", None),
        ("POST", "enrollment/confirm", {"code": "123456"}),
        ("POST", "relink", {"password": PASSWORD, "otp": "123456"}),
        ("POST", "recovery-codes", {"password": PASSWORD, "otp": "123456"}),
    ]:
        response = user_api(hub, method, path, body, token=token)
        assert response.status_code == 403, (path, response.text)
        assert "not an API token" in response.json()["message"]


def test_enroll_confirm_and_log_in_through_the_api(hub: Hub) -> None:
    auth = ("dave", PASSWORD)
    status = user_api(hub, "GET", "status", auth=auth)
    assert status.status_code == 200, status.text
    assert status.json()["username"] == "dave" and status.json()["enrolled"] is False

    assert user_api(hub, "POST", "enrollment", {"password": "wrong"}, auth=auth).status_code == 403
    started = user_api(hub, "POST", "enrollment", {"password": PASSWORD}, auth=auth)
    assert started.status_code == 201, started.text
    assert started.headers["Cache-Control"] == "no-store"
    totp = pyotp.parse_uri(started.json()["otpauth_uri"])
    assert started.json()["qr_svg"].lstrip().startswith(("<svg", "<?xml"))

    assert user_api(hub, "POST", "enrollment/confirm", {"code": 123}, auth=auth).status_code == 400
    deep = requests.post(
        f"{hub.url}/hub/2fa/api/enrollment/confirm", data=b"[" * 30_000 + b"]" * 30_000, auth=auth, timeout=30
    )
    assert deep.status_code == 400, deep.text
    confirmed = user_api(hub, "POST", "enrollment/confirm", {"code": totp.now()}, auth=auth)
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    assert user_api(hub, "GET", "status", auth=auth).json()["enrolled"] is True

    browser = hub.new_browser()
    assert browser.login("dave", PASSWORD, otp=totp.at(time.time() + 30)).status_code == 302
    cookie_status = browser.get("/hub/2fa/api/status")
    assert cookie_status.status_code == 200, cookie_status.text
    assert cookie_status.json()["username"] == "dave"
