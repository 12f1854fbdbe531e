"""Per-account failure policy: a few free attempts, then exponential back-off, then a hard lock."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LOCKOUT_THRESHOLD = 100


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many consecutive failures an account may have, and how long it waits between them.

    After ``free_attempts`` consecutive failures each further attempt waits ``base_delay * 2**k`` seconds
    (capped at ``max_delay``); at ``lockout_threshold`` failures the account is locked until an admin unlocks
    it. A success resets the count.

    >>> [ThrottlePolicy(free_attempts=3, base_delay=1).delay_after(n) for n in range(1, 7)]
    [0.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    """

    lockout_threshold: int = 10
    free_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if not 1 <= self.lockout_threshold <= MAX_LOCKOUT_THRESHOLD:
            raise ValueError(
                f"lockout_threshold must be between 1 and {MAX_LOCKOUT_THRESHOLD}, not {self.lockout_threshold!r}"
            )
        if self.free_attempts < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("free_attempts, base_delay and max_delay must not be negative")

    def delay_after(self, failures: int) -> float:
        """Seconds an account must wait after its ``failures``-th consecutive failure."""
        if failures < self.free_attempts:
            return 0.0
        exponent = min(failures - self.free_attempts, 32)
        return float(min(self.base_delay * 2**exponent, self.max_delay))

    def is_locked(self, failures: int) -> bool:
        return failures >= self.lockout_threshold

    def delay_table(self) -> dict[int, float]:
        """``{failures before an attempt: delay to set if it fails}`` for every count that has a delay.

        The store turns this into one SQL CASE expression so reserving an attempt stays a single atomic
        UPDATE on every database.
        """
        return {
            failures: self.delay_after(failures + 1)
            for failures in range(self.lockout_threshold)
            if self.delay_after(failures + 1) > 0
        }
