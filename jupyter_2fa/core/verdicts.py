"""The answer to one attempt, as every front-end reads it; light to import (no database, no crypto)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Account


# The reasons of an accepted verdict that showed the device (the others let the password alone in): what a
# session granted on them may do that a password-only one may not (cancel a re-link, mint a hub token).
SECOND_FACTOR_REASONS = frozenset({"totp", "recovery-code", "webauthn"})


class Outcome(str, Enum):
    ACCEPTED = "accepted"
    INVALID = "invalid"  # wrong password, wrong/malformed/replayed code: one answer for all of them
    THROTTLED = "throttled"
    LOCKED = "locked"
    NOT_ENROLLED = "not-enrolled"
    # The password was right, but this account must log in with a passkey or security key, not a code.
    KEY_REQUIRED = "key-required"
    UNAVAILABLE = "unavailable"  # the store failed: fail closed


@dataclass(frozen=True)
class Verdict:
    """The answer to one attempt. ``reason`` is for the audit log; users see only ``outcome``."""

    outcome: Outcome
    reason: str
    retry_after: float = 0.0
    recovery_codes_left: int | None = None
    # An acceptance's account session epoch, read under the check's lock: a session issued on this verdict
    # carries it, so a reset committed just after the check ends that session too.
    epoch: int | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


@dataclass(frozen=True)
class Attempt:
    """One attempt admitted (or refused) by the throttle; ``failures`` already counts it."""

    account: Account | None
    failures: int
    refusal: Verdict | None


class KeyChange(str, Enum):
    """What registering or removing a passkey or security key did."""

    ADDED = "added"
    FIRST_FACTOR = "first-factor"  # added as the account's first factor: recovery codes set, sessions ended
    DUPLICATE = "duplicate"  # that credential id is stored already (for this account or another)
    STALE = "stale"  # the account's factors changed since the registration's challenge was issued
    TOO_MANY = "too-many"  # the account has as many keys as it may
    REMOVED = "removed"
    UNKNOWN = "unknown"  # the account has no such credential
    LAST_FACTOR = "last-factor"  # not removed: it is the account's only factor
