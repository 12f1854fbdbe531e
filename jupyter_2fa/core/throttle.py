"""Failure policies: what a wrong second factor costs an account, and what a wrong password costs anyone.

The two are kept apart on purpose. Only someone who knows the password can fail a second factor, so those
failures lead to a hard lock. Anyone can type a wrong password, so those only slow the name and the source
down: a stranger can delay an account but never lock its owner out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .network import Network

MAX_LOCKOUT_THRESHOLD = 100  # NIST SP 800-63B, 5.2.2: at most 100 consecutive failures before a lock


def backoff(failures: int, free_attempts: int, base_delay: float, max_delay: float) -> float:
    """Seconds to wait after the ``failures``-th consecutive failure: 0 for the free ones, then doubling, capped.

    >>> [backoff(n, 3, 1.0, 10.0) for n in range(1, 8)]
    [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 10.0]
    """
    if failures < free_attempts:
        return 0.0
    exponent = min(failures - free_attempts, 32)
    return float(min(base_delay * 2**exponent, max_delay))


def _check_non_negative(**values: float) -> None:
    negative = [name for name, value in values.items() if value < 0]
    if negative:
        raise ValueError(f"{', '.join(negative)} must not be negative")


@dataclass(frozen=True)
class ThrottlePolicy:
    """Second-factor failures (the password was right): a few free attempts, back-off, then a hard lock.

    After ``free_attempts`` consecutive failures each further attempt waits ``base_delay * 2**k`` seconds
    (capped at ``max_delay``); at ``lockout_threshold`` failures the account is locked until an admin unlocks
    it. Only a right second factor resets the count.

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
        _check_non_negative(free_attempts=self.free_attempts, base_delay=self.base_delay, max_delay=self.max_delay)

    def delay_after(self, failures: int) -> float:
        """Seconds an account must wait after its ``failures``-th consecutive failure."""
        return backoff(failures, self.free_attempts, self.base_delay, self.max_delay)

    def is_locked(self, failures: int) -> bool:
        return failures >= self.lockout_threshold


@dataclass(frozen=True)
class GuessPolicy:
    """Wrong passwords: a capped back-off per account name and per source address, and no account lock.

    After ``free_attempts`` wrong passwords for one name (``source_free_attempts`` from one source, for
    every name together) each further try waits ``base_delay * 2**k`` seconds, capped at ``max_delay``. A
    source with ``source_lockout_threshold`` wrong passwords is refused outright. Counts are forgotten
    ``forget_after`` seconds after their last failure; a right password clears its name's count (never a
    source's, so a guesser cannot clear it with an account of their own). Sources in ``exempt_sources`` (the
    site's trusted networks, often one NAT address for a whole campus) are not counted as sources, and none
    are when ``count_sources`` is off (a host that sees its proxy's address for every client).

    >>> policy = GuessPolicy(free_attempts=2, base_delay=1, max_delay=4)
    >>> [policy.account_delay(n) for n in range(1, 7)]
    [0.0, 1.0, 2.0, 4.0, 4.0, 4.0]
    """

    free_attempts: int = 5
    source_free_attempts: int = 10
    base_delay: float = 1.0
    max_delay: float = 60.0
    source_lockout_threshold: int = MAX_LOCKOUT_THRESHOLD
    forget_after: float = 3600.0
    exempt_sources: tuple[Network, ...] = ()
    count_sources: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.source_lockout_threshold <= MAX_LOCKOUT_THRESHOLD:
            raise ValueError(
                f"source_lockout_threshold must be between 1 and {MAX_LOCKOUT_THRESHOLD}, "
                f"not {self.source_lockout_threshold!r}"
            )
        _check_non_negative(
            free_attempts=self.free_attempts,
            source_free_attempts=self.source_free_attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
        )
        if self.forget_after < self.max_delay:
            raise ValueError("forget_after must not be shorter than max_delay")

    def account_delay(self, failures: int) -> float:
        return backoff(failures, self.free_attempts, self.base_delay, self.max_delay)

    def source_delay(self, failures: int) -> float:
        return backoff(failures, self.source_free_attempts, self.base_delay, self.max_delay)

    def source_blocked(self, failures: int) -> bool:
        return failures >= self.source_lockout_threshold


def name_key(username: str, has_account: bool) -> str:
    """The throttle key of an account name: the name itself once it has an account row, else one of 65 536
    buckets, so names typed by a guesser cannot grow the store without bound.

    >>> name_key("ada", True), name_key("ada", False)
    ('account:ada', 'name:fdee')
    """
    if has_account:
        return f"account:{username}"
    digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).digest()
    return f"name:{digest[:2].hex()}"
