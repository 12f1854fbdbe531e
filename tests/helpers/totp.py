"""The user's authenticator app, for the tests that log in to a real server (the gate, a hub) over HTTP or in a
browser: pyotp over the linked secret, on the real clock.

A server accepts each time step's code once, and only within one step of its clock, so a test that logs in more
than once asks :class:`Device` for codes, which never gives out a step twice.
"""

from __future__ import annotations

import time

import pyotp

TOTP_PERIOD = 30  # TwoFactorConfig.period's default, which every test server keeps
STEP_EDGE_SECONDS = 2


def totp_step(moment: float | None = None) -> int:
    """The time step of ``moment`` (default: now)."""
    return int((time.time() if moment is None else moment) // TOTP_PERIOD)


class Device:
    """A user's authenticator app (pyotp over the linked secret) that remembers the last time step it gave out.

    :meth:`next_code` gives the earliest step that is unused and still acceptable, waiting when earlier codes used
    them up: by default the current step first. With ``previous_step_first`` the first is the previous step, which
    leaves the current and the next one for a login and a change without waiting for the clock; it then also waits
    out the last seconds of a step, so that the code does not leave the window on its way to the server.
    """

    def __init__(self, secret: str, *, previous_step_first: bool = False) -> None:
        self.secret = secret
        self.totp = pyotp.TOTP(secret)
        self.previous_step_first = previous_step_first
        self.last_step: int | None = None

    def code_at(self, step: int) -> str:
        return str(self.totp.at(step * TOTP_PERIOD))

    def current_code(self) -> str:
        """The code of the current step (what confirming a new device uses); marks the step used."""
        step = totp_step()
        self.last_step = step
        return self.code_at(step)

    def next_code(self) -> str:
        if self.previous_step_first:
            left = TOTP_PERIOD - time.time() % TOTP_PERIOD
            if left < STEP_EDGE_SECONDS:  # the previous step's code would leave the window on its way
                time.sleep(left)
        earliest = totp_step() - (1 if self.previous_step_first else 0)
        step = earliest if self.last_step is None else max(earliest, self.last_step + 1)
        while step > totp_step() + 1:  # two steps ahead of the server's clock: not accepted yet
            time.sleep(0.5)
        self.last_step = step
        return self.code_at(step)

    def wrong_code(self) -> str:
        """A well-formed code the server accepts at no step near now."""
        now = totp_step()
        near = {self.code_at(step) for step in range(now - 3, now + 4)}
        return next(code for code in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if code not in near)
