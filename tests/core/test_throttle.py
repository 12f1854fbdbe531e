"""Failure throttling: the policy's arithmetic, and the lock/back-off as the Verifier applies it on a real store."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from jupyter_2fa.core import Action, CodeRejected, Outcome, Settings, ThrottlePolicy, Verdict
from jupyter_2fa.core.network import parse_networks
from jupyter_2fa.core.store import guesses
from jupyter_2fa.core.throttle import GuessPolicy

from helpers.core import PERIOD, T0, USER, App, Enrolled, Harness, HarnessFactory, wrong_code

# -- the policy ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (ThrottlePolicy(free_attempts=3, base_delay=1), [0, 0, 1, 2, 4, 8, 16, 32, 64, 128]),
        (ThrottlePolicy(free_attempts=1, base_delay=5, max_delay=30), [5, 10, 20, 30, 30]),
        (ThrottlePolicy(free_attempts=5, base_delay=0), [0, 0, 0, 0, 0, 0, 0]),
        (ThrottlePolicy(free_attempts=0, base_delay=1, max_delay=300), [2, 4, 8, 16]),
        (ThrottlePolicy(), [0, 0, 1, 2, 4, 8, 16, 32, 64, 128]),
    ],
    ids=["free-3", "capped", "no-delay", "no-free-attempts", "defaults"],
)
def test_delay_after(policy: ThrottlePolicy, delays: list[float]) -> None:
    assert [policy.delay_after(n) for n in range(1, len(delays) + 1)] == delays


def test_delay_never_overflows() -> None:
    policy = ThrottlePolicy(base_delay=1e300, max_delay=600)
    assert policy.delay_after(10**9) == 600.0


@pytest.mark.parametrize(
    ("threshold", "failures", "locked"),
    [(10, 9, False), (10, 10, True), (10, 11, True), (1, 0, False), (1, 1, True)],
    ids=["below", "at", "above", "one-below", "one-at"],
)
def test_is_locked(threshold: int, failures: int, locked: bool) -> None:
    assert ThrottlePolicy(lockout_threshold=threshold).is_locked(failures) is locked


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lockout_threshold": 0},
        {"lockout_threshold": 101},
        {"lockout_threshold": -1},
        {"free_attempts": -1},
        {"base_delay": -0.5},
        {"max_delay": -1},
    ],
    ids=["threshold-0", "threshold-101", "threshold-negative", "free-negative", "base-negative", "max-negative"],
)
def test_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ThrottlePolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("threshold", [1, 100], ids=["one", "hundred"])
def test_policy_threshold_limits_allowed(threshold: int) -> None:
    assert ThrottlePolicy(lockout_threshold=threshold).lockout_threshold == threshold


# -- through the verifier --------------------------------------------------------------------------------------------


def settings(guessing: GuessPolicy | None = None, **policy: float) -> Settings:
    return Settings(
        recovery_code_count=1,
        throttle=ThrottlePolicy(**policy),  # type: ignore[arg-type]
        guessing=guessing or GuessPolicy(),
    )


def failures(harness: Harness, username: str = USER) -> int:
    account = harness.store.get(username)
    assert account is not None
    return account.failures


def fail(harness: Harness, enrolled: Enrolled, now: float) -> Verdict:
    return harness.verifier.verify(enrolled.username, wrong_code(enrolled.secret, now), now)


@pytest.mark.parametrize("threshold", [1, 3, 6], ids=["limit-1", "limit-3", "limit-6"])
def test_locks_exactly_at_the_limit(make_harness: HarnessFactory, threshold: int) -> None:
    harness = make_harness(settings(lockout_threshold=threshold, free_attempts=threshold))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    for n in range(1, threshold + 1):
        assert fail(harness, enrolled, now) == Verdict(Outcome.INVALID, "wrong-code"), n
        assert failures(harness) == n
    locks = [e for e in harness.events if e.action is Action.LOCK]
    assert [(e.outcome, e.reason) for e in locks] == [("failure", "too-many-failures")]
    # Locked: a correct code gets exactly the verdict a wrong one gets, now and much later.
    for later in (now, now + 86400):
        wrong = fail(harness, enrolled, later)
        right = harness.verifier.verify(USER, enrolled.app.code(later), later)
        recovery = harness.verifier.verify(USER, enrolled.recovery_codes[0], later)
        assert wrong == right == recovery == Verdict(Outcome.LOCKED, "locked")
    assert failures(harness) == threshold  # refused attempts are not counted further
    assert len([e for e in harness.events if e.action is Action.LOCK]) == 1


def test_back_off_then_allowed_after_the_wait(make_harness: HarnessFactory) -> None:
    harness = make_harness(settings(lockout_threshold=6, free_attempts=2, base_delay=10, max_delay=25))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    # (seconds to wait before this attempt, verdict for a wrong code)
    script = [
        (0, Verdict(Outcome.INVALID, "wrong-code")),
        (0, Verdict(Outcome.INVALID, "wrong-code")),  # second failure: the next attempt waits 10 s
        (0, Verdict(Outcome.THROTTLED, "throttled", retry_after=10.0)),
        (9.5, Verdict(Outcome.THROTTLED, "throttled", retry_after=0.5)),
        (0.5, Verdict(Outcome.INVALID, "wrong-code")),  # waited exactly 10 s: evaluated; now 20 s
        (19, Verdict(Outcome.THROTTLED, "throttled", retry_after=1.0)),
        (1, Verdict(Outcome.INVALID, "wrong-code")),  # next wait capped at 25 s
        (0, Verdict(Outcome.THROTTLED, "throttled", retry_after=25.0)),
    ]
    for n, (wait, expected) in enumerate(script):
        now += wait
        assert fail(harness, enrolled, now) == expected, n
        if expected.outcome is Outcome.THROTTLED:
            # While waiting, the right code gets the very same answer as a wrong one.
            right = harness.verifier.verify(USER, enrolled.app.code(now), now)
            assert right == expected, n
    assert failures(harness) == 4
    # After the wait, the right code is accepted and clears everything.
    now += 25
    assert harness.verifier.verify(USER, enrolled.app.code(now), now).ok
    account = harness.store.get(USER)
    assert account is not None
    assert (account.failures, account.next_attempt_at) == (0, None)


def test_success_resets_the_count(make_harness: HarnessFactory) -> None:
    harness = make_harness(settings(lockout_threshold=3, free_attempts=3))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    for _ in range(5):  # 2 failures + 1 success, five times: never 3 failures in a row
        now += PERIOD
        assert fail(harness, enrolled, now).outcome is Outcome.INVALID
        assert fail(harness, enrolled, now).outcome is Outcome.INVALID
        assert failures(harness) == 2
        assert harness.verifier.verify(USER, enrolled.app.code(now), now).ok
        assert failures(harness) == 0
    assert not [e for e in harness.events if e.action is Action.LOCK]


@pytest.mark.parametrize("via", ["enrollment", "store"], ids=["Enrollment.unlock", "Store.unlock"])
def test_unlock_resets(make_harness: HarnessFactory, via: str) -> None:
    harness = make_harness(settings(lockout_threshold=2, free_attempts=1, base_delay=60))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    fail(harness, enrolled, now)
    fail(harness, enrolled, now + 60)
    assert harness.verifier.verify(USER, enrolled.app.code(now), now + 60).outcome is Outcome.LOCKED
    if via == "enrollment":
        assert harness.enrollment.unlock(USER, now + 60) is True
        assert harness.events[-1].action is Action.UNLOCK
    else:
        assert harness.store.unlock(USER) is True
    account = harness.store.get(USER)
    assert account is not None
    assert (account.failures, account.next_attempt_at) == (0, None)
    assert harness.verifier.verify(USER, enrolled.app.code(now + 60), now + 60).ok
    # It clears the name's wrong passwords too.
    for _ in range(3):
        wrong_password(harness, now + 60)
    assert "account:ada" in guess_rows(harness)
    assert harness.store.unlock(USER)
    assert "account:ada" not in guess_rows(harness)
    # Unlocking someone who does not exist changes nothing and says so.
    assert harness.enrollment.unlock("nobody", now) is False
    assert harness.store.unlock("nobody") is False


def test_unenrolled_with_pending_enrollment_is_not_throttled(make_harness: HarnessFactory) -> None:
    harness = make_harness(settings(lockout_threshold=2, free_attempts=2))
    harness.enrollment.begin(USER, T0)
    for _ in range(5):
        assert harness.verifier.verify(USER, "123456", T0).outcome is Outcome.NOT_ENROLLED
    assert failures(harness) == 0


def test_confirm_is_throttled_too(make_harness: HarnessFactory) -> None:
    harness = make_harness(settings(lockout_threshold=2, free_attempts=2))
    harness.enrollment.begin(USER, T0)
    app = App(harness.enrollment.reveal(USER, T0).uri)
    for reason in ("wrong-code", "wrong-code", "locked"):
        with pytest.raises(CodeRejected) as caught:
            harness.enrollment.confirm(USER, wrong_code(app.secret, T0), T0)
        assert caught.value.reason == reason
    with pytest.raises(CodeRejected) as caught:
        harness.enrollment.confirm(USER, app.code(T0), T0)
    assert caught.value.verdict == Verdict(Outcome.LOCKED, "locked")


CAMPUS = tuple(parse_networks(["192.0.2.0/24"]))

# -- wrong passwords: slowed down, never a lock ------------------------------------------------------------------


def wrong_password(harness: Harness, now: float, username: str = USER, source: str | None = "192.0.2.1") -> Verdict:
    return harness.verifier.verify(username, "000000", now, first_factor_ok=False, remote_addr=source)


def guess_rows(harness: Harness) -> dict[str, int]:
    with harness.store.engine.connect() as conn:
        return {key: failures for key, failures in conn.execute(sa.select(guesses.c.key, guesses.c.failures))}


def test_wrong_passwords_slow_the_name_but_never_lock_it(make_harness: HarnessFactory) -> None:
    """A stranger's wrong passwords, from ever new addresses, cost the owner at most max_delay."""
    policy = GuessPolicy(free_attempts=2, base_delay=1, max_delay=4)
    harness = make_harness(settings(policy, lockout_threshold=3))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    # (seconds waited before this wrong password, its verdict)
    script = [
        (0, Verdict(Outcome.INVALID, "wrong-password")),
        (0, Verdict(Outcome.INVALID, "wrong-password")),  # second failure: the next try waits 1 s
        (0, Verdict(Outcome.THROTTLED, "throttled", retry_after=1.0)),
        (1, Verdict(Outcome.INVALID, "wrong-password")),  # now 2 s
        (2, Verdict(Outcome.INVALID, "wrong-password")),  # now 4 s, the cap
        (4, Verdict(Outcome.INVALID, "wrong-password")),
        (1, Verdict(Outcome.THROTTLED, "throttled", retry_after=3.0)),
    ]
    for n, (wait, expected) in enumerate(script):
        now += wait
        assert wrong_password(harness, now, source=f"198.51.100.{n}") == expected, n
        if expected.outcome is Outcome.THROTTLED:
            # While the name waits, the right password and code get the very same answer.
            right = harness.verifier.verify(USER, enrolled.app.code(now), now, remote_addr="203.0.113.9")
            assert right == expected, n
    for _ in range(50):  # far past lockout_threshold: still only the capped wait
        now += 4
        assert wrong_password(harness, now).outcome is Outcome.INVALID
    assert failures(harness) == 0
    now += 4
    assert harness.verifier.verify(USER, enrolled.app.code(now), now, remote_addr="203.0.113.9").ok
    assert "account:ada" not in guess_rows(harness)  # the right password cleared the name's count


def test_a_browser_the_owner_logged_in_with_is_never_slowed_by_strangers(make_harness: HarnessFactory) -> None:
    """The review's attack: a stranger keeps the name's back-off running forever. A device the owner used
    before (its id from the signed device cookie) is judged on its own count, not the name's or the source's."""
    policy = GuessPolicy(free_attempts=2, base_delay=60, source_lockout_threshold=3)
    harness = make_harness(settings(policy))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    for n in range(6):  # the name waits, and the stranger's address is blocked
        wrong_password(harness, now, source="192.0.2.1" if n % 2 else f"198.51.100.{n}")
    assert harness.verifier.verify(USER, enrolled.app.code(now), now, remote_addr="203.0.113.5").outcome is (
        Outcome.THROTTLED
    )
    owner = harness.verifier.verify(USER, enrolled.app.code(now), now, remote_addr="192.0.2.1", device="laptop")
    assert owner.ok
    # The device's own wrong passwords are counted, on its own key.
    verdicts = [
        harness.verifier.verify(USER, "", now, first_factor_ok=False, remote_addr="192.0.2.1", device="laptop").outcome
        for _ in range(3)
    ]
    assert verdicts == [Outcome.INVALID, Outcome.INVALID, Outcome.THROTTLED]
    assert guess_rows(harness)["device:laptop"] == 2


def test_throttled_attempts_write_nothing(make_harness: HarnessFactory) -> None:
    """Refused attempts must not grow the table: only an attempt that is counted may add a row."""
    harness = make_harness(settings(GuessPolicy(free_attempts=1, base_delay=60)))
    harness.enroll()
    wrong_password(harness, T0)
    before = guess_rows(harness)
    for n in range(200):
        assert wrong_password(harness, T0 + 1, source=f"2001:db8:{n:x}::1").outcome is Outcome.THROTTLED
    assert guess_rows(harness) == before


def test_a_source_is_blocked_at_its_limit_and_forgiven_later(make_harness: HarnessFactory) -> None:
    policy = GuessPolicy(free_attempts=100, source_free_attempts=100, source_lockout_threshold=5, forget_after=600)
    harness = make_harness(settings(policy))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    for n in range(5):  # five names, one source
        assert wrong_password(harness, now, username=f"user{n}").outcome is Outcome.INVALID
    blocked = Verdict(Outcome.THROTTLED, "throttled", retry_after=600.0)
    assert wrong_password(harness, now, username="user9") == blocked
    # Blocked means blocked: the right password and code from that source get the same answer...
    assert harness.verifier.verify(USER, enrolled.app.code(now), now, remote_addr="192.0.2.1") == blocked
    # ...while the owner elsewhere is not affected, and logging in there does not unblock the source.
    assert harness.verifier.verify(USER, enrolled.app.code(now), now, remote_addr="203.0.113.9").ok
    assert wrong_password(harness, now + 599, username="user9").outcome is Outcome.THROTTLED
    assert wrong_password(harness, now + 600, username="user9").outcome is Outcome.INVALID


@pytest.mark.parametrize(
    "policy",
    [
        GuessPolicy(free_attempts=1, base_delay=60, source_lockout_threshold=2, exempt_sources=CAMPUS),
        GuessPolicy(free_attempts=1, base_delay=60, source_lockout_threshold=2, count_sources=False),
    ],
    ids=["trusted-network", "host-sees-only-its-proxy"],
)
def test_sources_that_are_not_one_client_are_not_counted(make_harness: HarnessFactory, policy: GuessPolicy) -> None:
    """One campus NAT address, or a hub's proxy, must not get every user blocked; each name is still counted."""
    harness = make_harness(settings(policy))
    outcomes = [wrong_password(harness, T0, username=f"user{n}").outcome for n in range(10)]
    assert outcomes == [Outcome.INVALID] * 10
    assert wrong_password(harness, T0, username="user0").outcome is Outcome.THROTTLED
    assert not [key for key in guess_rows(harness) if key.startswith("source:")]


@pytest.mark.parametrize(
    ("sources", "blocked_with"),
    [
        (["2001:db8:1:2::1", "2001:db8:1:2::2"], "2001:db8:1:2:ffff::1"),  # one /64 is one source
        (["10.0.0.1", "::ffff:10.0.0.1"], "10.0.0.1"),  # IPv4-mapped is the same address
    ],
    ids=["ipv6-64", "ipv4-mapped"],
)
def test_addresses_of_one_source_share_its_count(
    make_harness: HarnessFactory, sources: list[str], blocked_with: str
) -> None:
    policy = GuessPolicy(free_attempts=100, source_free_attempts=100, source_lockout_threshold=2)
    harness = make_harness(settings(policy))
    for n, source in enumerate(sources):
        assert wrong_password(harness, T0, username=f"user{n}", source=source).outcome is Outcome.INVALID
    assert wrong_password(harness, T0, username="other", source=blocked_with).outcome is Outcome.THROTTLED


def test_names_without_an_account_are_throttled_in_bounded_buckets(make_harness: HarnessFactory) -> None:
    """A name nobody has logged in as is throttled too, without a row per typed-in name."""
    policy = GuessPolicy(free_attempts=2, base_delay=60, forget_after=3600)
    harness = make_harness(settings(policy))
    now = T0
    verdicts = [wrong_password(harness, now, username="ghost", source=f"198.51.100.{n}").outcome for n in range(4)]
    assert verdicts == [Outcome.INVALID, Outcome.INVALID, Outcome.THROTTLED, Outcome.THROTTLED]
    assert harness.store.get("ghost") is None
    for n in range(300):
        wrong_password(harness, now, username=f"typed-{n}", source="192.0.2.1")
    names = [key for key in guess_rows(harness) if not key.startswith("source:")]
    assert all(key.startswith("name:") and len(key) == len("name:") + 4 for key in names)
    assert len(names) <= 301
    # An hour after their last failure, counts are forgotten and their rows pruned.
    wrong_password(harness, now + 3601, username="late")
    assert len(guess_rows(harness)) == 2


def test_password_guess_count_is_exact_under_concurrency(make_harness: HarnessFactory) -> None:
    harness = make_harness(settings(GuessPolicy(free_attempts=10, base_delay=100)))
    harness.enroll()
    start = threading.Barrier(50)

    def guess(n: int) -> Outcome:
        start.wait(timeout=60)
        return wrong_password(harness, T0 + PERIOD, source=f"198.51.100.{n}").outcome

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = Counter(pool.map(guess, range(50)))
    assert outcomes == {Outcome.INVALID: 10, Outcome.THROTTLED: 40}
    assert guess_rows(harness)["account:ada"] == 10


# Every way the password alone can succeed; none of them may touch the second factor's count.
PASSWORD_ALONE = {
    "api": lambda h, now: h.verifier.verify_password_only(USER, True, now, "api"),
    "trusted-network": lambda h, now: h.verifier.login(USER, "", now, first_factor_ok=True, trusted_network=True),
}


@pytest.mark.parametrize("success", PASSWORD_ALONE.values(), ids=PASSWORD_ALONE.keys())
def test_password_alone_never_clears_code_failures(make_harness: HarnessFactory, success: Any) -> None:
    harness = make_harness(settings(lockout_threshold=3, free_attempts=3))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    for n in range(1, 4):
        assert fail(harness, enrolled, now).outcome is Outcome.INVALID
        assert failures(harness) == n
        verdict = success(harness, now)
        assert verdict.ok or verdict == Verdict(Outcome.LOCKED, "locked")
    assert harness.verifier.verify(USER, enrolled.app.code(now), now).outcome is Outcome.LOCKED
    assert success(harness, now) == Verdict(Outcome.LOCKED, "locked")  # a lock holds for the password alone too


# -- concurrency -----------------------------------------------------------------------------------------------------


def test_counter_exact_after_200_concurrent_failures(make_harness: HarnessFactory) -> None:
    """Every attempt is counted before it is checked, so 200 parallel guesses cannot slip past the limit."""
    harness = make_harness(settings(lockout_threshold=100, free_attempts=100))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    code = wrong_code(enrolled.secret, now)
    start = threading.Barrier(200)

    def guess(_: int) -> Verdict:
        start.wait(timeout=60)
        return harness.verifier.verify(USER, code, now)

    with ThreadPoolExecutor(max_workers=200) as pool:
        verdicts = list(pool.map(guess, range(200)))

    assert Counter(verdicts) == {
        Verdict(Outcome.INVALID, "wrong-code"): 100,
        Verdict(Outcome.LOCKED, "locked"): 100,
    }
    assert failures(harness) == 100
    assert len([e for e in harness.events if e.action is Action.LOCK]) == 1
    assert harness.verifier.verify(USER, enrolled.app.code(now), now).outcome is Outcome.LOCKED
