"""Exceptions shared by the core modules; front-ends catch :class:`StoreError` to fail closed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .verdicts import Verdict


class TwoFactorError(Exception):
    """Base of every jupyter-2fa error; the message is written for the person who has to act on it."""


class StoreError(TwoFactorError):
    """The 2FA store cannot be used safely (unreachable, unsafe file, wrong key): logins must fail closed."""


class EnrollmentError(TwoFactorError):
    """Linking a factor cannot go on; ``reason`` is a stable word for front-ends and the audit log."""

    reason = "enrollment-error"


class CodeRejected(EnrollmentError):
    """The proof did not hold; ``verdict`` says whether it was wrong, throttled or locked."""

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.reason = verdict.reason
