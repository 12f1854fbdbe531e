"""What users are told, in one place: the same words on every host (gate, hub) and surface (page, API)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .core import Outcome, Verdict

INVALID = "Invalid credentials: check your password and the code from your app."
CLI_ONLY = "Devices are linked in a terminal here: run `jupyter 2fa enroll`."
ALREADY_LINKED = "A device is already linked; add its current code to re-link."
USE_RELINK = "A device is already linked; use relink with your current code."
USE_ENROLLMENT = "No device is linked yet; use enrollment instead."
NOTHING_PENDING = "There is no pending enrollment."
RELINK_CANCEL_NEEDS_CODE = (
    "A re-link replaces a working device: to cancel it, add a current code from that device (or a recovery code)."
)
NOTHING_TO_CANCEL = "There is no pending enrollment started in this browser to cancel."
STARTED_ELSEWHERE = (
    "This enrollment was started elsewhere (another browser, the notebook or Lab panel, or a terminal): "
    "finish it there, or start again here, which voids it."
)
CANCELLED = "The pending enrollment was cancelled. Nothing was linked."
WRONG_NEW_CODE = "That code does not match the new device. Enter the code your app shows now."
KEYS_IN_A_BROWSER = "Keys are registered in a browser: use the 2FA page or the JupyterLab panel."
KEY_REFUSED = "The key's answer was refused: it was not made for this site, this request or this account. Try again."
KEY_NOT_VERIFIED = "The key did not verify you (PIN, fingerprint or device unlock), which this site requires."
KEYS_ONLY = "This site uses passkeys and security keys only: add one on the 2FA page instead of an app."
WEBAUTHN_OFF = "Passkeys and security keys are not enabled on this server."
KEY_REQUIRED = "This account must log in with a passkey or security key: use the key button after your password."
PICTURE_GONE = "This picture was shown already, or has expired."
# A message, not a password (ruff's S105 goes by the name).
TOKEN_NEEDS_BOTH_FACTORS = "An API token needs both factors: log in with your password and code, then create it."  # noqa: S105


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    retry_after: float = 0.0


def refusal(verdict: Verdict, help_text: str, invalid: str = INVALID) -> Refusal:
    """The answer to a failed attempt: one message for every wrong factor, a clear one for the rest.

    >>> refusal(Verdict(Outcome.INVALID, "replayed-code"), "Call us.").status
    401
    """
    if verdict.outcome is Outcome.LOCKED:
        return Refusal(403, f"This account is locked after too many failed attempts. {help_text}")
    if verdict.outcome is Outcome.THROTTLED:
        wait = max(1, math.ceil(verdict.retry_after))  # never sooner than the wait: a client that obeys gets in
        return Refusal(429, f"Too many failed attempts. Wait {wait} s and try again.", wait)
    if verdict.outcome is Outcome.KEY_REQUIRED:
        return Refusal(403, KEY_REQUIRED)
    if verdict.outcome is Outcome.UNAVAILABLE:
        return Refusal(
            503,
            "Two-factor authentication is unavailable: its store cannot be reached. "
            f"Nobody can log in until it is back. {help_text}",
        )
    return Refusal(401, invalid)
