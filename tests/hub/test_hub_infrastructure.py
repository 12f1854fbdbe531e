"""The JupyterHub fixtures work: a real hub behind configurable-http-proxy, real single-user servers, real PAM.

These use JupyterHub's stock authenticators (DummyAuthenticator, PAMAuthenticator); the 2FA authenticator's own
tests build on the same fixtures.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from helpers.hub import Hub, HubFactory, login_error

DUMMY_HUB = """
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "pw"
c.Authenticator.allow_all = True
"""


@pytest.fixture
def dummy_hub(hub_factory: HubFactory) -> Hub:
    return hub_factory(DUMMY_HUB)


def test_login_through_the_proxy_and_the_api_tokens(dummy_hub: Hub) -> None:
    """One hub for the cheap checks (a hub start costs about 3 s): the login form, its XSRF check, the tokens."""
    browser = dummy_hub.new_browser()
    refused = browser.login("alice", "not pw")
    assert refused.status_code == 403
    assert login_error(refused) == "Invalid username or password"
    assert not browser.logged_in()

    # The right password without the form's _xsrf token: refused before the authenticator is asked.
    no_xsrf = browser.post("/hub/login", {"username": "alice", "password": "pw"}, xsrf=False)
    assert no_xsrf.status_code == 403
    assert "_xsrf" in no_xsrf.text
    assert not browser.logged_in()

    response = browser.login("alice", "pw", next="/hub/token")
    assert response.status_code == 302, response.text
    assert urlsplit(response.headers["Location"]).path == "/hub/token"
    assert browser.cookie("jupyterhub-hub-login", "/hub/")
    assert browser.logged_in()

    listed = dummy_hub.api("GET", "users")
    assert listed.status_code == 200
    assert {user["name"] for user in listed.json()} == {"alice"}
    # The non-admin token is valid (it reads its own identity) but may not list users.
    whoami = dummy_hub.api("GET", "user", token=dummy_hub.user_token)
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["name"] == "test-user-service"
    assert dummy_hub.api("GET", "users", token=dummy_hub.user_token).status_code == 403
    assert dummy_hub.api("GET", "users", token="").status_code == 403


def test_a_single_user_server_starts_and_answers_through_the_proxy(dummy_hub: Hub) -> None:
    browser = dummy_hub.new_browser()
    assert browser.login("alice", "pw").status_code == 302

    started = time.monotonic()
    server = dummy_hub.start_server("alice")
    spawn_seconds = time.monotonic() - started
    assert server["url"] == "/user/alice/"

    # The single-user server has not met this browser: its API refuses (APIs never redirect to a login) ...
    assert browser.get("/user/alice/api/status").status_code == 403
    # ... until the browser opens a page, following the server's OAuth redirects through the hub.
    page = browser.open_server("alice")
    assert page.status_code == 200, page.text
    assert urlsplit(page.url).path == "/user/alice/lab"
    status = browser.get("/user/alice/api/status")
    assert status.status_code == 200, status.text
    assert "started" in status.json()
    print(f"spawn took {spawn_seconds:.1f}s")

    # A browser not logged in to the hub is sent to the hub's login page.
    stranger = dummy_hub.new_browser()
    landed = stranger.open_server("alice")
    assert urlsplit(landed.url).path == "/hub/login"
    assert stranger.get("/user/alice/api/status").status_code == 403


def test_pam_logs_a_real_unix_account_in_and_refuses_a_wrong_password(
    hub_factory: HubFactory, unix_user: tuple[str, str]
) -> None:
    name, password = unix_user
    hub = hub_factory(
        f"""
        c.JupyterHub.authenticator_class = "pam"
        c.Authenticator.allowed_users = {{{name!r}}}
        """
    )
    browser = hub.new_browser()
    refused = browser.login(name, password + "x")
    assert refused.status_code == 403
    assert login_error(refused) == "Invalid username or password"
    assert not browser.logged_in()

    response = browser.login(name, password)
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()
    assert hub.api("GET", f"users/{name}").status_code == 200
