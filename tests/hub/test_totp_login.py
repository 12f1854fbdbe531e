"""TOTPAuthenticator on a real JupyterHub: the login form asks for the code, and only password + code get in.

One hub (shared-password inner authenticator, lock-out after 3 failures) serves the module; every test uses its
own user names, so their failure counts and spent time steps never meet.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import requests
from traitlets.config import Config

from jupyter_2fa.hub.authenticator import TOTPAuthenticator

from helpers.hub import Hub, HubFactory, enroll_on_page, enrolled_device, login_error, module_hub, twofa_log_lines

PASSWORD = "correct horse battery staple"
HELP_TEXT = "Write to hpc-help@example.org with your username and project code."
OTP_PROMPT = "Code from your authenticator app (or a recovery code):"
INVALID = "Invalid username or password"
LOGIN_COOKIE = "jupyterhub-hub-login"

CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.TwoFactorConfig.lockout_threshold = 3
c.TwoFactorConfig.backoff_free_attempts = 10
c.TwoFactorConfig.help_text = {HELP_TEXT!r}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, CONFIG) as started:
        yield started


def assert_refused(response: requests.Response, expected: str | None = INVALID) -> str:
    """A refused login: the login page again (403), its message, no hub cookie."""
    assert response.status_code == 403, (response.status_code, response.headers.get("Location"))
    message = login_error(response)
    assert message is not None, response.text[-2000:]
    if expected is not None:
        assert message == expected
    assert LOGIN_COOKIE not in response.cookies
    return message


def test_the_login_page_asks_for_the_code(hub: Hub) -> None:
    page = hub.new_browser().get("/hub/login")
    assert page.status_code == 200
    assert 'name="otp"' in page.text
    assert OTP_PROMPT in page.text
    # The username and password fields stay where JupyterHub puts them.
    assert 'name="username"' in page.text
    assert 'name="password"' in page.text


def test_password_and_code_log_in_and_the_server_answers_through_the_proxy(hub: Hub) -> None:
    device = enrolled_device(hub.new_browser(), "alice", PASSWORD)
    browser = hub.new_browser()
    response = browser.login("alice", PASSWORD, device.next_code())
    assert response.status_code == 302, login_error(response)
    assert urlsplit(response.headers["Location"]).path.startswith("/hub/")
    assert browser.cookie(LOGIN_COOKIE, "/hub/")
    assert browser.logged_in()
    assert any("2FA login success" in line and line.endswith(": totp") for line in twofa_log_lines(hub, "alice"))

    server = hub.start_server("alice")
    assert server["url"] == "/user/alice/"
    page = browser.open_server("alice")
    assert page.status_code == 200, page.text[-2000:]
    assert urlsplit(page.url).path == "/user/alice/lab"
    status = browser.get("/user/alice/api/status")
    assert status.status_code == 200, status.text
    assert "started" in status.json()


def test_the_password_alone_or_with_an_empty_code_is_refused(hub: Hub) -> None:
    enrolled_device(hub.new_browser(), "amy", PASSWORD)
    browser = hub.new_browser()
    assert_refused(browser.login("amy", PASSWORD))
    assert_refused(browser.login("amy", PASSWORD, ""))
    assert not browser.logged_in()


def test_wrong_password_wrong_code_and_replayed_code_get_the_same_answer(hub: Hub) -> None:
    device = enrolled_device(hub.new_browser(), "bob", PASSWORD)
    good = device.next_code()
    first = hub.new_browser()
    assert first.login("bob", PASSWORD, good).status_code == 302

    browser = hub.new_browser()
    wrong_password = browser.login("bob", PASSWORD + "!", device.wrong_code())
    wrong_code = browser.login("bob", PASSWORD, device.wrong_code())
    replayed = browser.login("bob", PASSWORD, good)  # the step is spent: accepted once only
    answers = [(r.status_code, assert_refused(r)) for r in (wrong_password, wrong_code, replayed)]
    assert answers == [(403, INVALID)] * 3
    assert not browser.logged_in()
    reasons = [line.rsplit(": ", 1)[-1] for line in twofa_log_lines(hub, "bob") if "2FA login failure" in line]
    assert reasons == ["wrong-password", "wrong-code", "replayed-code"]


def test_lock_out_refuses_even_the_right_code_with_the_help_text(hub: Hub) -> None:
    device = enrolled_device(hub.new_browser(), "carol", PASSWORD)
    browser = hub.new_browser()
    for _ in range(3):  # lockout_threshold: the third failure still gets the ordinary answer
        assert_refused(browser.login("carol", PASSWORD, device.wrong_code()))

    right = browser.login("carol", PASSWORD, device.next_code())
    locked_message = assert_refused(right, expected=None)
    assert locked_message != INVALID
    assert "locked" in locked_message
    assert HELP_TEXT in locked_message
    wrong = browser.login("carol", PASSWORD, device.wrong_code())
    assert (wrong.status_code, assert_refused(wrong, expected=None)) == (right.status_code, locked_message)
    # Without the password nobody learns that the account is locked (nor can they lock it).
    wrong_password = browser.login("carol", "not the password", device.wrong_code())
    assert (wrong_password.status_code, assert_refused(wrong_password, expected=None)) == (403, INVALID)
    assert not browser.logged_in()


def test_a_strangers_guesses_at_other_names_slow_no_one_else(hub: Hub) -> None:
    """Every login reaches the hub from its proxy here (no trusted_proxies): counting wrong passwords per
    source would put every user behind one stranger's back-off, so only names are counted."""
    device = enrolled_device(hub.new_browser(), "hank", PASSWORD)
    for n in range(15):
        assert_refused(hub.new_browser().login(f"guessed-{n}", "not the password", "000000"))
    response = hub.new_browser().login("hank", PASSWORD, device.next_code())
    assert response.status_code == 302, login_error(response)


def test_a_recovery_code_works_once_in_the_code_field(hub: Hub) -> None:
    page = enroll_on_page(hub.new_browser(), "dave", PASSWORD)
    assert page.confirm is not None and page.confirm.status_code == 200
    recovery_code = page.recovery_codes[0]

    first = hub.new_browser()
    response = first.login("dave", PASSWORD, recovery_code)
    assert response.status_code == 302, login_error(response)
    assert first.logged_in()
    assert any(line.endswith(": recovery-code") for line in twofa_log_lines(hub, "dave"))

    second = hub.new_browser()
    assert_refused(second.login("dave", PASSWORD, recovery_code))
    # Case and the dash do not matter; another unused code still works.
    other = page.recovery_codes[1].replace("-", "").lower()
    assert second.login("dave", PASSWORD, other).status_code == 302


def test_an_unenrolled_user_gets_no_session_and_is_sent_to_the_enrollment_page(hub: Hub) -> None:
    browser = hub.new_browser()
    response = browser.login("erin", PASSWORD, "123456")
    message = assert_refused(response, expected=None)
    assert "/hub/2fa/enroll" in message
    assert browser.cookie(LOGIN_COOKIE) is None
    assert not browser.logged_in()
    # A wrong password for the same name gets the ordinary answer, not the hint.
    assert_refused(browser.login("erin", "wrong password", "123456"))


def test_under_the_optional_policy_the_password_alone_logs_an_unenrolled_user_in(hub_factory: HubFactory) -> None:
    optional = hub_factory(CONFIG + 'c.TwoFactorConfig.enrollment_policy = "optional"\n')
    browser = optional.new_browser()
    response = browser.login("frank", PASSWORD)
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()
    assert any(line.endswith(": optional-policy") for line in twofa_log_lines(optional, "frank"))
    assert_refused(optional.new_browser().login("frank", "wrong password"))

    # Once a device is linked, the optional policy no longer lets the password alone in.
    device = enrolled_device(optional.new_browser(), "frank", PASSWORD)
    assert_refused(optional.new_browser().login("frank", PASSWORD))
    assert optional.new_browser().login("frank", PASSWORD, device.next_code()).status_code == 302


# -- the way to the enrollment page ---------------------------------------------------------------------------

ENROLL_LINK = re.compile(r'<a href="([^"]*)"[^>]*>([^<]*)</a>')


def _login_page(hub: Hub) -> str:
    return hub.new_browser().get("/hub/login").text


def _no_device_refusal(hub: Hub) -> str:
    response = hub.new_browser().login("gina", PASSWORD, "")
    message = assert_refused(response, expected=None)
    assert message.startswith("No authenticator device is linked to this account yet."), message
    return message


# where the link is: (how to get there, the link's text)
ENROLL_LINKS = {
    "login-page-before-any-attempt": (_login_page, "Link your authenticator app"),
    "no-device-refusal": (_no_device_refusal, "Link one"),
}


@pytest.mark.parametrize(("reach", "text"), list(ENROLL_LINKS.values()), ids=list(ENROLL_LINKS))
def test_the_enrollment_page_is_a_link(hub: Hub, reach: Callable[[Hub], str], text: str) -> None:
    links = {label: html.unescape(href) for href, label in ENROLL_LINK.findall(reach(hub))}
    assert links.get(text) == "/hub/2fa/enroll", links


@pytest.mark.parametrize("base_url", ["/", "/jupyter/", "/a&b/"], ids=["default", "prefixed", "needs-escaping"])
def test_the_no_device_link_follows_the_hubs_base_url(base_url: str) -> None:
    authenticator = TOTPAuthenticator(config=Config({"TOTPAuthenticator": {"inner_authenticator_class": "dummy"}}))
    handler = SimpleNamespace(hub=SimpleNamespace(base_url=f"{base_url}hub/"))  # what the hub gives its handlers
    error = authenticator.not_enrolled(cast(Any, handler))
    assert error.status_code == 403
    assert f"{base_url}hub/2fa/enroll" in (error.log_message or "")  # logs and API clients get the address
    link = ENROLL_LINK.search(error.jupyterhub_html_message)  # type: ignore[attr-defined]
    assert link is not None
    assert link.group(1) == html.escape(f"{base_url}hub/2fa/enroll") and link.group(2) == "Link one"
