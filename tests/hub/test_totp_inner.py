"""The inner password authenticators under TOTPAuthenticator: PAM with a real Unix account, NativeAuthenticator
with its own sign-up page, the inner class's allow rules (shared-password with ``allowed_users``), and inner
classes that answer with the name as typed (DummyAuthenticator, like LDAPAuthenticator)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from jupyter_2fa.core import Enrollment, Settings, Verifier

from helpers.hub import (
    Hub,
    HubFactory,
    enroll_on_page,
    enrolled_device,
    hub_store,
    login_error,
    module_hub,
    page_message,
    twofa_api,
)
from helpers.totp import Device

TOTP = 'c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"\n'
SHARED_PASSWORD = "correct horse battery staple"
NATIVE_PASSWORD = "a long native password 4 tests"


def enroll_in_store(hub: Hub, username: str) -> Device:
    """Link a device for ``username`` directly in the hub's store (as ``jupyter 2fa enroll`` would)."""
    with hub_store(hub) as store:
        enrollment = Enrollment(Verifier(store, Settings()))
        enrollment.begin(username, time.time())
        device = Device(enrollment.reveal(username, time.time()).secret)
        assert len(enrollment.confirm(username, device.current_code(), time.time())) == 10
    return device


def test_pam_checks_the_unix_password_on_the_enrollment_page_and_at_login(
    hub_factory: HubFactory, unix_user: tuple[str, str]
) -> None:
    name, password = unix_user
    hub = hub_factory(
        TOTP
        + f"""
c.TOTPAuthenticator.inner_authenticator_class = "pam"
c.Authenticator.allowed_users = {{{name!r}}}
"""
    )
    wrong = enroll_on_page(hub.new_browser(), name, password + "x")
    assert wrong.device is None, "a wrong Unix password must not show a secret"
    assert wrong.start.status_code in {401, 403}
    assert page_message(wrong.start) == "Invalid username, password or code"

    device = enrolled_device(hub.new_browser(), name, password)
    browser = hub.new_browser()
    refused = browser.login(name, password)  # PAM's password alone is one factor
    assert refused.status_code == 403
    response = browser.login(name, password, device.next_code())
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()
    assert hub.api("GET", f"users/{name}").status_code == 200


def test_the_inner_authenticators_allow_rules_still_apply(hub_factory: HubFactory) -> None:
    hub = hub_factory(
        TOTP
        + f"""
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {SHARED_PASSWORD!r}
c.Authenticator.allowed_users = {{"alice"}}
"""
    )
    alice = enrolled_device(hub.new_browser(), "alice", SHARED_PASSWORD)
    bob = enroll_in_store(hub, "bob")
    assert twofa_api(hub, "GET", "bob").json()["enrolled"] is True

    # bob has the right password and a valid code, but is not in allowed_users.
    browser = hub.new_browser()
    refused = browser.login("bob", SHARED_PASSWORD, bob.next_code())
    assert refused.status_code == 403
    assert login_error(refused) == "Invalid username or password"
    assert not browser.logged_in()
    assert hub.api("GET", "users/bob").status_code == 404  # no hub user was created

    response = browser.login("alice", SHARED_PASSWORD, alice.next_code())
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()


NATIVE = (
    TOTP
    + """
c.TOTPAuthenticator.inner_authenticator_class = "native"
c.NativeAuthenticator.open_signup = True
c.Authenticator.allow_all = True
"""
)


def sign_up(hub: Hub, username: str, password: str) -> None:
    browser = hub.new_browser()
    page = browser.get("/hub/signup")
    assert page.status_code == 200, page.text[-2000:]
    assert 'name="signup_password"' in page.text
    response = browser.post(
        "/hub/signup",
        {"username": username, "signup_password": password, "signup_password_confirmation": password},
    )
    assert response.status_code == 200, response.text[-2000:]
    assert "alert-success" in response.text, response.text[-3000:]


@pytest.fixture(scope="module")
def native_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, NATIVE) as started:
        yield started


def test_native_authenticator_signup_then_enrollment_on_the_page(native_hub: Hub) -> None:
    sign_up(native_hub, "nina", NATIVE_PASSWORD)
    wrong = enroll_on_page(native_hub.new_browser(), "nina", "not her password")
    assert wrong.device is None, "a wrong NativeAuthenticator password must not show a secret"
    assert page_message(wrong.start) == "Invalid username, password or code"
    enrolled_device(native_hub.new_browser(), "nina", NATIVE_PASSWORD)
    assert twofa_api(native_hub, "GET", "nina").json()["enrolled"] is True
    # No such native user: the page refuses like a wrong password.
    assert enroll_on_page(native_hub.new_browser(), "nobody", NATIVE_PASSWORD).device is None


def test_native_authenticator_login_needs_the_code(native_hub: Hub) -> None:
    sign_up(native_hub, "nora", NATIVE_PASSWORD)
    device = enrolled_device(native_hub.new_browser(), "nora", NATIVE_PASSWORD)

    browser = native_hub.new_browser()
    alone = browser.login("nora", NATIVE_PASSWORD)
    assert alone.status_code == 403, (alone.status_code, alone.headers.get("Location"))
    wrong = browser.login("nora", NATIVE_PASSWORD, device.wrong_code())
    assert wrong.status_code == 403, (wrong.status_code, wrong.headers.get("Location"))
    assert not browser.logged_in()
    response = browser.login("nora", NATIVE_PASSWORD, device.next_code())
    assert response.status_code == 302, login_error(response) or response.text[-2000:]
    assert browser.logged_in()


def test_native_authenticators_login_page_asks_for_the_code(native_hub: Hub) -> None:
    """The inner class brings its own login page (native-login.html); the code field must still be on it."""
    page = native_hub.new_browser().get("/hub/login")
    assert page.status_code == 200
    assert 'name="password"' in page.text
    assert 'name="otp"' in page.text, "the hub's login form (NativeAuthenticator's) has no field for the code"


DUMMY = (
    TOTP
    + f"""
c.TOTPAuthenticator.inner_authenticator_class = "dummy"
c.DummyAuthenticator.password = {SHARED_PASSWORD!r}
c.Authenticator.allow_all = True
"""
)


def test_a_username_typed_in_other_case_is_the_same_account(hub_factory: HubFactory) -> None:
    """JupyterHub lower-cases login names; an inner class that answers with the name as typed (DummyAuthenticator,
    LDAPAuthenticator) must not make "Alice" a stranger to alice's device."""
    hub = hub_factory(DUMMY)
    device = enrolled_device(hub.new_browser(), "alice", SHARED_PASSWORD)
    browser = hub.new_browser()
    response = browser.login("Alice", SHARED_PASSWORD, device.next_code())
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()
    assert hub.api("GET", "users/alice").status_code == 200


def test_a_username_typed_in_other_case_does_not_skip_the_code_under_the_optional_policy(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(DUMMY + 'c.TwoFactorConfig.enrollment_policy = "optional"\n')
    enrolled_device(hub.new_browser(), "alice", SHARED_PASSWORD)
    assert hub.new_browser().login("alice", SHARED_PASSWORD).status_code == 403  # alice has a device
    browser = hub.new_browser()
    response = browser.login("ALICE", SHARED_PASSWORD)
    assert response.status_code == 403, f"logged in as alice with the password alone: {response.headers}"
    assert not browser.logged_in()
