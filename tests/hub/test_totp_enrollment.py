"""The hub's enrollment page ``/hub/2fa/enroll``, end to end: password, QR code and key once, a code, recovery codes."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import pytest
import requests

from helpers.hub import (
    Hub,
    enroll_on_page,
    enrolled_device,
    login_error,
    manual_key,
    module_hub,
    page_message,
    recovery_codes,
    twofa_api,
)
from helpers.totp import Device

PASSWORD = "correct horse battery staple"
ENROLL = "/hub/2fa/enroll"

CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.TwoFactorConfig.issuer = "Example HPC"
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, CONFIG) as started:
        yield started


def shows_no_secret(text: str) -> bool:
    return "<svg" not in text and 'id="manual_key"' not in text and "otpauth://" not in text


def test_the_page_links_a_device_and_the_next_code_logs_in(hub: Hub) -> None:
    browser = hub.new_browser()
    page = browser.get(ENROLL)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert shows_no_secret(page.text)

    # A wrong password: refused, and nothing secret is created or shown.
    wrong = browser.post(ENROLL, {"action": "start", "username": "alice", "password": "not the password"})
    assert wrong.status_code in {401, 403}, wrong.status_code
    assert page_message(wrong) == "Invalid username, password or code"
    assert shows_no_secret(wrong.text)
    assert twofa_api(hub, "GET", "alice").status_code == 404  # no row for a name whose password was wrong

    start = browser.post(ENROLL, {"action": "start", "username": "alice", "password": PASSWORD})
    assert start.status_code == 200, page_message(start)
    assert start.headers["Cache-Control"] == "no-store"
    assert '<div class="qr" id="enroll_qr"><svg' in start.text
    secret = manual_key(start)
    assert secret is not None and len(secret) >= 32
    assert "Example HPC" in start.text
    assert twofa_api(hub, "GET", "alice").json()["pending"] is True

    # Reloading the page shows nothing secret; the pending device still confirms.
    assert shows_no_secret(browser.get(ENROLL).text)

    device = Device(secret)
    mistyped = browser.post(ENROLL, {"action": "confirm", "username": "alice", "code": device.wrong_code()})
    assert mistyped.status_code == 400
    assert "does not match" in (page_message(mistyped) or "")
    assert shows_no_secret(mistyped.text)
    assert 'id="enroll_confirm_form"' in mistyped.text

    done = browser.post(ENROLL, {"action": "confirm", "username": "alice", "code": device.current_code()})
    assert done.status_code == 200, page_message(done)
    assert done.headers["Cache-Control"] == "no-store"
    codes = recovery_codes(done)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert shows_no_secret(done.text)
    assert not browser.logged_in()  # the page links a device; it does not log anybody in

    model = twofa_api(hub, "GET", "alice").json()
    assert model["enrolled"] is True and model["pending"] is False and model["recovery_codes_left"] == 10

    # Reload after linking: nothing secret; starting again (a re-link) without the current code is refused.
    assert shows_no_secret(browser.get(ENROLL).text)
    again = browser.post(ENROLL, {"action": "start", "username": "alice", "password": PASSWORD})
    assert again.status_code == 401
    assert page_message(again) == "Invalid username, password or code"
    assert shows_no_secret(again.text)

    login = hub.new_browser()
    response = login.login("alice", PASSWORD, device.next_code())
    assert response.status_code == 302, login_error(response)
    assert login.logged_in()


def test_starting_again_shows_a_new_secret_and_voids_the_first(hub: Hub) -> None:
    browser = hub.new_browser()
    first = enroll_on_page(browser, "bella", PASSWORD, confirm=False)
    second = enroll_on_page(browser, "bella", PASSWORD, confirm=False)
    assert first.device is not None and second.device is not None
    assert first.device.secret != second.device.secret

    stale = browser.post(ENROLL, {"action": "confirm", "username": "bella", "code": first.device.current_code()})
    assert stale.status_code == 400
    assert twofa_api(hub, "GET", "bella").json()["enrolled"] is False
    done = browser.post(ENROLL, {"action": "confirm", "username": "bella", "code": second.device.current_code()})
    assert done.status_code == 200, page_message(done)
    assert len(recovery_codes(done)) == 10


def test_confirming_without_a_pending_device_links_nothing(hub: Hub) -> None:
    browser = hub.new_browser()
    response = browser.post(ENROLL, {"action": "confirm", "username": "cleo", "code": "123456"})
    assert response.status_code == 409
    assert "nothing was linked" in (page_message(response) or "")
    assert twofa_api(hub, "GET", "cleo").status_code == 404


def test_the_page_needs_the_xsrf_token(hub: Hub) -> None:
    browser = hub.new_browser()
    response = browser.post(ENROLL, {"action": "start", "username": "dora", "password": PASSWORD}, xsrf=False)
    assert response.status_code == 403
    assert shows_no_secret(response.text)
    assert twofa_api(hub, "GET", "dora").status_code == 404


def test_only_the_browser_that_started_may_confirm(hub: Hub) -> None:
    """An onlooker who saw the QR code or key and posts its code from another browser links nothing."""
    owner = hub.new_browser()
    page = enroll_on_page(owner, "oscar", PASSWORD, confirm=False)
    assert page.device is not None, page_message(page.start)
    code = page.device.current_code()

    stolen = hub.new_browser().post("/hub/2fa/enroll", {"action": "confirm", "username": "oscar", "code": code})
    assert stolen.status_code == 409, page_message(stolen)
    assert "started elsewhere" in (page_message(stolen) or "")

    mine = owner.post("/hub/2fa/enroll", {"action": "confirm", "username": "oscar", "code": code})
    assert mine.status_code == 200, page_message(mine)


# -- the start form: the current code only to re-link, and why the password is asked again -------------------

WHY_PHRASES = ("password is asked for again", "right before a device is linked", "only once", "app open")


def _anonymous(hub: Hub, name: str) -> requests.Response:
    return hub.new_browser().get(ENROLL)


def _asked_to_relink(hub: Hub, name: str) -> requests.Response:
    return hub.new_browser().get(f"{ENROLL}?relink=1")


def _logged_in(hub: Hub, name: str) -> requests.Response:
    browser = hub.new_browser()
    device = enrolled_device(hub.new_browser(), name, PASSWORD)
    assert browser.login(name, PASSWORD, device.next_code()).status_code == 302
    return browser.get(ENROLL)


def _anonymous_after_linking(hub: Hub, name: str) -> requests.Response:
    enrolled_device(hub.new_browser(), name, PASSWORD)
    return hub.new_browser().get(ENROLL)


# (user, how the visitor reaches the form, code field shown?, re-link link offered?)
START_FORMS = {
    "first-link": ("fay", _anonymous, False, True),
    # an anonymous visitor is never told whether an account has a device: the first-time form, with the link
    "anonymous-visitor-after-a-link": ("gus", _anonymous_after_linking, False, True),
    "asked-to-relink": ("hal", _asked_to_relink, True, False),
    "logged-in-with-a-device": ("ida", _logged_in, True, False),
}


@pytest.mark.parametrize(
    ("name", "reach", "code_field", "relink_link"), list(START_FORMS.values()), ids=list(START_FORMS)
)
def test_the_code_field_shows_only_to_relink(
    hub: Hub, name: str, reach: Callable[[Hub, str], requests.Response], code_field: bool, relink_link: bool
) -> None:
    page = reach(hub, name)
    assert page.status_code == 200, page_message(page)
    form = re.search(r'<form [^>]*id="enroll_start_form".*?</form>', page.text, re.DOTALL)
    assert form is not None, page.text[-2000:]
    assert 'name="username"' in form.group(0) and 'name="password"' in form.group(0)
    assert ('name="otp"' in form.group(0)) is code_field
    assert ('id="relink_link"' in page.text) is relink_link
    why = re.search(r'<p id="enroll_why">(.*?)</p>', page.text, re.DOTALL)
    assert why is not None, page.text[-2000:]
    why_text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", why.group(1))).split())
    assert all(phrase in why_text for phrase in WHY_PHRASES), why_text
