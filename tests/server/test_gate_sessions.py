"""Sessions: logout and an admin reset end them everywhere; age and idle limits end them in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pyotp
import pytest

from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import PASSWORD, Browser, EnrolledAccount, json_body, login_message


async def _logged_in(browser: Browser, code: str) -> Browser:
    response = await browser.login(PASSWORD, code)
    assert response.code == 302, login_message(response)
    assert (await browser.get("api/contents")).code == 200
    return browser


async def test_logout_in_one_browser_ends_the_session_in_every_browser(
    new_browser: Callable[[], Browser], enrolled: EnrolledAccount
) -> None:
    first = await _logged_in(new_browser(), enrolled.fresh_code())
    second = await _logged_in(new_browser(), enrolled.fresh_code())
    first_cookie = first.login_cookie()
    assert first_cookie is not None and first_cookie != second.login_cookie()

    assert (await first.logout()).code == 200

    assert first.login_cookie() is None, "logout did not clear the cookie"
    assert (await second.get("api/contents")).code == 403
    replay = new_browser()
    replay.cookies[first_cookie[0]] = first_cookie[1]  # the cookie as it was before logout, sent again
    assert (await replay.get("api/contents")).code == 403
    # Logging out locks nobody out: a new login (here with a recovery code) works.
    await _logged_in(first, enrolled.recovery_codes[0])


async def test_a_tampered_cookie_is_refused(browser: Browser, enrolled: EnrolledAccount) -> None:
    await _logged_in(browser, enrolled.fresh_code())
    cookie = browser.login_cookie()
    assert cookie is not None
    name, value = cookie
    position = len(value) // 2
    browser.cookies[name] = value[:position] + ("A" if value[position] != "A" else "B") + value[position + 1 :]
    assert (await browser.get("api/contents")).code == 403


async def _refused_within(browser: Browser, seconds: float) -> float:
    """Poll until the session is refused; return how long that took (fails after ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if (await browser.get("api/contents")).code == 403:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"the session still works {seconds} s later")


FAST_EPOCHS = {"TOTPIdentityProvider": {"epoch_refresh_interval": 0.1}}


@pytest.mark.parametrize("gate_config", [FAST_EPOCHS], indirect=True, ids=["epoch-refresh-0.1s"])
async def test_admin_reset_ends_sessions_within_the_refresh_interval(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    await _logged_in(browser, enrolled.fresh_code())

    assert gate.enrollment.reset(gate.username, time.time())  # what `jupyter 2fa reset` does, from outside
    await asyncio.sleep(0.3)

    await _refused_within(browser, 3.0)


SHORT_MAX_AGE = {"TOTPIdentityProvider": {"session_max_age": 2.0}}


@pytest.mark.parametrize("gate_config", [SHORT_MAX_AGE], indirect=True, ids=["max-age-2s"])
async def test_session_max_age_ends_even_an_active_session(browser: Browser, enrolled: EnrolledAccount) -> None:
    await _logged_in(browser, enrolled.fresh_code())
    started = time.monotonic()
    while time.monotonic() - started < 1.5:  # busy all along
        assert (await browser.get("api/contents")).code == 200
        await asyncio.sleep(0.3)

    await asyncio.sleep(max(0.0, 2.5 - (time.monotonic() - started)))

    assert (await browser.get("api/contents")).code == 403


SHORT_IDLE = {"TOTPIdentityProvider": {"session_idle_timeout": 1.5}}


@pytest.mark.parametrize("gate_config", [SHORT_IDLE], indirect=True, ids=["idle-1.5s"])
async def test_idle_session_expires(browser: Browser, enrolled: EnrolledAccount) -> None:
    await _logged_in(browser, enrolled.fresh_code())
    await asyncio.sleep(2.0)
    assert (await browser.get("api/contents")).code == 403


IDLE_2S = {"TOTPIdentityProvider": {"session_idle_timeout": 2.0}}


@pytest.mark.parametrize("gate_config", [IDLE_2S], indirect=True, ids=["idle-2s"])
async def test_activity_keeps_a_session_alive_past_the_idle_timeout(
    browser: Browser, enrolled: EnrolledAccount
) -> None:
    """ "Seconds without a request after which a login expires": requests every 0.4 s must keep it alive."""
    await _logged_in(browser, enrolled.fresh_code())
    started = time.monotonic()
    while time.monotonic() - started < 3.0:
        response = await browser.get("api/contents")
        assert response.code == 200, f"logged out {time.monotonic() - started:.1f} s in, despite a request every 0.4 s"
        await asyncio.sleep(0.4)


async def test_a_request_sent_before_a_relink_does_not_delete_the_new_cookie(
    browser: Browser, gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    """A Lab tab keeps requests in flight: one that left with the old cookie, answered after the re-link was
    confirmed, is refused, but must not clear the login cookie, or the browser drops the new one too."""
    await _logged_in(browser, enrolled.fresh_code())
    old_cookie = browser.login_cookie()
    relink = await browser.post_json("2fa/api/relink", {"password": PASSWORD, "otp": enrolled.recovery_codes[0]})
    assert relink.code == 201
    new_device = pyotp.TOTP(json_body(relink)["secret"], digits=enrolled.totp.digits)
    assert (await browser.post_json("2fa/api/enrollment/confirm", {"code": new_device.now()})).code == 200
    new_cookie = browser.login_cookie()
    assert new_cookie is not None and new_cookie != old_cookie

    assert old_cookie is not None
    late = await browser.get("api/contents", headers={"Cookie": f"{old_cookie[0]}={old_cookie[1]}"})

    assert late.code == 403
    assert not any(c.startswith("username-") for c in late.headers.get_list("Set-Cookie")), "cookie cleared"
    assert (await browser.get("api/contents")).code == 200
