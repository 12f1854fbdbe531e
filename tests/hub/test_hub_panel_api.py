"""The hub's side of the notebook panel: ``"reveal": "link"`` and its one-time picture ``/hub/2fa/qr/<ticket>``,
the user's own API token reading the status, and confirming a new device ending the user's earlier hub sessions.

The panel's kernel holds the user's API token and sends the password as HTTP Basic credentials; the picture must
reach the user's browser (the hub login cookie) and never the kernel. One hub serves the module (shared-password
inner authenticator); every test uses its own user names, so their devices, time steps and failures never meet.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
import requests

from helpers.hub import Hub, HubBrowser, manual_key, module_hub, new_user_token, page_message, recovery_codes, user_api
from helpers.totp import Device

PASSWORD = "the panel's shared password"
LOGIN_COOKIE = "jupyterhub-hub-login"
QR_PATH = "/hub/2fa/qr/"
SVG = "{http://www.w3.org/2000/svg}"
SECRET_FIELDS = {"otpauth_uri", "secret", "manual_key", "qr_svg"}
CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.TwoFactorConfig.backoff_free_attempts = 2
c.TwoFactorConfig.password_backoff_free_attempts = 2
c.TwoFactorConfig.backoff_base_seconds = 60
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, CONFIG) as started:
        yield started


@dataclass
class Member:
    """A hub user with a device linked through the API, logged in to the hub in ``browser``."""

    hub: Hub
    name: str
    device: Device
    recovery_codes: list[str]
    browser: HubBrowser

    @property
    def auth(self) -> tuple[str, str]:
        return self.name, PASSWORD

    def cancel(self) -> requests.Response:
        """Cancel the pending link from the member's hub login, which was granted on both factors: a re-link
        needs no code then (with the password alone it would, see the test below)."""
        xsrf = {"X-XSRFToken": self.browser.ensure_xsrf()}
        return self.browser.request("DELETE", "/hub/2fa/api/enrollment", headers=xsrf)

    def relink(self, reveal: str, otp: str | None = None) -> requests.Response:
        """What the panel's kernel sends to replace the device (a recovery code stands in for the app's code)."""
        body = {"password": PASSWORD, "otp": otp or self.recovery_codes.pop(), "reveal": reveal}
        return user_api(self.hub, "POST", "relink", body, auth=self.auth)


def enroll(hub: Hub, name: str) -> tuple[Device, list[str]]:
    """Link a device to ``name`` through the API (inline reveal); the device and its recovery codes."""
    auth = (name, PASSWORD)
    started = user_api(hub, "POST", "enrollment", {"password": PASSWORD}, auth=auth)
    assert started.status_code == 201, started.text
    device = Device(pyotp.parse_uri(started.json()["otpauth_uri"]).secret)
    confirmed = user_api(hub, "POST", "enrollment/confirm", {"code": device.current_code()}, auth=auth)
    assert confirmed.status_code == 200, confirmed.text
    return device, list(confirmed.json()["recovery_codes"])


def logged_in_browser(hub: Hub, name: str, otp: str) -> HubBrowser:
    browser = hub.new_browser()
    response = browser.login(name, PASSWORD, otp=otp)
    assert response.status_code == 302, response.text[-2000:]
    assert browser.logged_in()
    return browser


def new_member(hub: Hub, name: str) -> Member:
    device, codes = enroll(hub, name)
    return Member(hub, name, device, codes, logged_in_browser(hub, name, device.next_code()))


@pytest.fixture(scope="module")
def hal(hub: Hub) -> Member:
    return new_member(hub, "hal")


@pytest.fixture(scope="module")
def gus(hub: Hub) -> Member:
    """Another user, logged in: their cookie must not fetch hal's picture, nor lose its session to hal's."""
    return new_member(hub, "gus")


def card_key(svg: str) -> str:
    """The key typed out in a one-time picture (its monospace text lines), spaces removed."""
    root = ET.fromstring(svg)  # noqa: S314 - the hub's own output
    lines = [el.text or "" for el in root.iter(f"{SVG}text") if el.get("font-family") == "monospace"]
    return "".join(lines).replace(" ", "")


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def fetch(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=30, allow_redirects=False, **kwargs)


# -- reveal: link ---------------------------------------------------------------------------------------------------


def test_reveal_link_shows_the_picture_once_to_the_owners_hub_login(hub: Hub) -> None:
    fay = new_member(hub, "fay")
    token = new_user_token(hub, "fay")  # what fay's kernel holds

    started = fay.relink("link")
    assert started.status_code == 201, started.text
    assert started.headers["Cache-Control"] == "no-store"
    assert set(started.json()) == {"qr_url", "expires_at"}
    qr_url = started.json()["qr_url"]
    assert qr_url.startswith(QR_PATH) and len(qr_url) > len(QR_PATH) + 40
    assert LOGIN_COOKIE not in started.cookies

    status = user_api(hub, "GET", "status", token=token)  # the panel polls with the kernel's token
    assert status.status_code == 200, status.text
    assert (status.json()["username"], status.json()["enrolled"], status.json()["pending"]) == ("fay", True, True)
    assert not SECRET_FIELDS & set(status.json())

    picture = fay.browser.get(qr_url)
    assert picture.status_code == 200, picture.text
    assert picture.headers["Content-Type"] == "image/svg+xml"
    assert picture.headers["Cache-Control"] == "no-store"
    assert picture.headers["X-Content-Type-Options"] == "nosniff"
    assert picture.headers["Content-Security-Policy"].startswith("default-src 'none'")
    new_device = Device(card_key(picture.text))
    assert fay.browser.get(qr_url).status_code == 404, "shown twice"

    confirmed = user_api(hub, "POST", "enrollment/confirm", {"code": new_device.current_code()}, auth=fay.auth)
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    assert LOGIN_COOKIE not in confirmed.cookies
    assert user_api(hub, "GET", "status", token=token).json()["pending"] is False

    assert logged_in_browser(hub, "fay", new_device.next_code())  # the picture's key is the new device's
    refused = hub.new_browser().login("fay", PASSWORD, otp=fay.recovery_codes[0])
    assert refused.status_code == 403, "the old recovery codes went with the old device"


@pytest.mark.parametrize(
    ("caller", "refused"),
    [
        pytest.param("nobody", 302, id="no-cookie"),
        pytest.param("basic", 302, id="basic-password"),
        # JupyterHub's pages take no API token at all (the handler would answer 404 if one got through)
        pytest.param("user-token", 302, id="owners-api-token"),
        pytest.param("user-token-in-url", 302, id="owners-api-token-in-url"),
        pytest.param("service-token", 302, id="admin-service-token"),
        pytest.param("other-user", 404, id="other-users-cookie"),
    ],
)
def test_the_picture_is_for_the_owners_hub_login_only(
    hub: Hub, hal: Member, gus: Member, caller: str, refused: int
) -> None:
    """Neither what the kernel holds (the password, the user's API token) nor anyone else fetches the picture;
    and a refused fetch does not use it up."""
    started = hal.relink("link")
    assert started.status_code == 201, started.text
    url = hub.url + started.json()["qr_url"]
    fetchers: dict[str, Callable[[], requests.Response]] = {
        "nobody": lambda: fetch(url),
        "basic": lambda: fetch(url, auth=hal.auth),
        "user-token": lambda: fetch(url, headers=token_header(new_user_token(hub, "hal"))),
        "user-token-in-url": lambda: fetch(url, params={"token": new_user_token(hub, "hal")}),
        "service-token": lambda: fetch(url, headers=token_header(hub.admin_token)),
        "other-user": lambda: gus.browser.get(url),
    }

    response = fetchers[caller]()
    assert response.status_code == refused, response.text[-2000:]
    assert "<svg" not in response.text
    if refused == 302:
        assert "/hub/login" in response.headers["Location"]

    assert hal.browser.get(url).status_code == 200
    assert hal.cancel().status_code == 204


def test_the_password_alone_does_not_cancel_a_relink(hub: Hub) -> None:
    """Whoever has only the password (a kernel's Basic credentials) cannot drop the owner's pending re-link."""
    ida = new_member(hub, "ida")
    assert ida.relink("link").status_code == 201
    refused = user_api(hub, "DELETE", "enrollment", auth=ida.auth)
    assert refused.status_code == 403, refused.text
    assert user_api(hub, "GET", "status", auth=ida.auth).json()["pending"] is True
    with_code = user_api(hub, "DELETE", "enrollment", {"otp": ida.recovery_codes.pop()}, auth=ida.auth)
    assert with_code.status_code == 204, with_code.text


def test_a_cancelled_links_picture_is_dead(hub: Hub, hal: Member) -> None:
    started = hal.relink("link")
    assert started.status_code == 201, started.text
    assert hal.cancel().status_code == 204
    assert hal.browser.get(started.json()["qr_url"]).status_code == 404


@pytest.mark.parametrize("reveal", ["qr", "LINK"])
def test_an_unknown_reveal_is_refused_and_starts_nothing(hub: Hub, hal: Member, reveal: str) -> None:
    """Refused before the code is looked at: the recovery code sent along stays unused."""
    code = hal.recovery_codes[-1]
    response = hal.relink(reveal, otp=code)
    assert response.status_code == 400, response.text
    assert "reveal" in response.json()["message"]
    assert user_api(hub, "GET", "status", auth=hal.auth).json()["pending"] is False
    assert hal.relink("inline", otp=code).status_code == 201, "the recovery code was spent"
    hal.recovery_codes.remove(code)
    assert hal.cancel().status_code == 204


# -- a new device ends the sessions granted before it ---------------------------------------------------------------


def confirm_through_the_api(hub: Hub, member: Member) -> list[str]:
    started = member.relink("inline")
    assert started.status_code == 201, started.text
    device = Device(started.json()["secret"])
    confirmed = user_api(hub, "POST", "enrollment/confirm", {"code": device.current_code()}, auth=member.auth)
    assert confirmed.status_code == 200, confirmed.text
    return list(confirmed.json()["recovery_codes"])


def confirm_on_the_page(hub: Hub, member: Member) -> list[str]:
    page = hub.new_browser()  # the enrollment page needs no login: username, password and current code
    fields = {"action": "start", "username": member.name, "password": PASSWORD, "otp": member.recovery_codes.pop()}
    start = page.post("/hub/2fa/enroll", fields)
    secret = manual_key(start)
    assert start.status_code == 200 and secret, page_message(start) or start.text[-2000:]
    code = Device(secret).current_code()
    done = page.post("/hub/2fa/enroll", {"action": "confirm", "username": member.name, "code": code})
    assert done.status_code == 200, page_message(done) or done.text[-2000:]
    return recovery_codes(done)


@pytest.mark.parametrize(
    ("name", "confirm"),
    [
        pytest.param("ivy", confirm_through_the_api, id="api"),
        pytest.param("jon", confirm_on_the_page, id="enroll-page"),
    ],
)
def test_confirming_a_new_device_ends_the_users_earlier_hub_sessions(
    hub: Hub, gus: Member, name: str, confirm: Callable[[Hub, Member], list[str]]
) -> None:
    """Whoever held the old device (or a stolen cookie) loses the session it gave, not just the device."""
    member = new_member(hub, name)
    second = logged_in_browser(hub, name, member.recovery_codes.pop())
    assert member.browser.get("/hub/api/user").status_code == 200

    assert len(confirm(hub, member)) == 10

    for browser in (member.browser, second):
        assert not browser.logged_in()
        assert browser.get("/hub/api/user").status_code == 403
    assert gus.browser.logged_in(), "another user's session ended too"


# -- the throttle answers a kernel too ------------------------------------------------------------------------------


def test_throttled_basic_credentials_get_retry_after(hub: Hub) -> None:
    auth = ("kim", PASSWORD)
    assert user_api(hub, "GET", "status", auth=auth).status_code == 200
    for _ in range(2):
        assert user_api(hub, "GET", "status", auth=("kim", "wrong")).status_code == 403
    throttled = user_api(hub, "GET", "status", auth=auth)
    assert throttled.status_code == 429, throttled.text
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"{retry_after} s" in throttled.json()["message"]
