"""The throttle through HTTP: the hard lock (and an admin's unlock), and the back-off before it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import PASSWORD, WRONG_PASSWORD, Browser, EnrolledAccount, body_text, login_message, without_xsrf

HELP_TEXT = "Write to hpc-help@example.org with your username and project code."
LOCK_AFTER_THREE = {
    "TwoFactorConfig": {"lockout_threshold": 3, "backoff_free_attempts": 10, "help_text": HELP_TEXT},
}


@pytest.mark.parametrize("gate_config", [LOCK_AFTER_THREE], indirect=True, ids=["lock-after-3"])
async def test_lock_refuses_even_the_right_factors_until_unlocked(
    new_browser: Callable[[], Browser], enrolled: EnrolledAccount, gate: TOTPIdentityProvider
) -> None:
    for attempt in range(4):  # wrong passwords are not second-factor failures: they never lock
        response = await new_browser().login(WRONG_PASSWORD, enrolled.code_at(0))
        assert response.code == 401, attempt
    for attempt in range(3):
        response = await new_browser().login(PASSWORD, "000000")
        assert response.code == 401, attempt

    right = await new_browser().login(PASSWORD, enrolled.fresh_code())
    wrong = await new_browser().login(PASSWORD, "000000")

    for response in (right, wrong):
        assert response.code == 403
        message = login_message(response)
        assert message is not None
        assert "locked" in message
        assert HELP_TEXT in message
    assert without_xsrf(body_text(right)) == without_xsrf(body_text(wrong))

    assert gate.enrollment.unlock(gate.username, time.time())  # what `jupyter 2fa unlock` does
    client = new_browser()
    response = await client.login(PASSWORD, enrolled.fresh_code())
    assert response.code == 302, login_message(response)
    assert (await client.get("api/contents")).code == 200


async def test_back_off_after_the_free_attempts_says_when_to_retry(
    new_browser: Callable[[], Browser], enrolled: EnrolledAccount
) -> None:
    # Defaults: 3 free second-factor attempts, then 1 s, 2 s, ... between attempts.
    for attempt in range(3):
        response = await new_browser().login(PASSWORD, "000000")
        assert response.code == 401, attempt

    fourth = await new_browser().login(PASSWORD, enrolled.fresh_code())

    assert fourth.code == 429, login_message(fourth)
    retry_after = fourth.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1
    assert "Wait" in (login_message(fourth) or "")


async def test_back_off_passes_and_the_right_factors_then_work(
    new_browser: Callable[[], Browser], enrolled: EnrolledAccount
) -> None:
    for _ in range(3):
        assert (await new_browser().login(PASSWORD, "000000")).code == 401
    code = enrolled.fresh_code()
    throttled = await new_browser().login(PASSWORD, code)
    assert throttled.code == 429

    await asyncio.sleep(float(throttled.headers["Retry-After"]) + 0.2)
    client = new_browser()
    response = await client.login(PASSWORD, code)  # the throttled attempt did not use the code up
    assert response.code == 302, login_message(response)
    assert (await client.get("api/contents")).code == 200
