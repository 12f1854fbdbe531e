"""Failure throttling: the policy's arithmetic, and the lock/back-off as the Verifier applies it on a real store."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from jupyter_2fa.core import Action, CodeRejected, Outcome, Settings, ThrottlePolicy, Verdict

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


def test_delay_table_is_delay_after_the_next_failure() -> None:
    policy = ThrottlePolicy(lockout_threshold=6, free_attempts=2, base_delay=10, max_delay=25)
    assert policy.delay_table() == {1: 10.0, 2: 20.0, 3: 25.0, 4: 25.0, 5: 25.0}
    assert ThrottlePolicy(lockout_threshold=3, free_attempts=5).delay_table() == {}


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


def settings(**policy: float) -> Settings:
    return Settings(recovery_code_count=1, throttle=ThrottlePolicy(**policy))  # type: ignore[arg-type]


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


def test_wrong_password_counts_and_locks_like_a_wrong_code(make_harness: HarnessFactory) -> None:
    harness = make_harness(settings(lockout_threshold=3, free_attempts=3))
    enrolled = harness.enroll()
    now = T0 + PERIOD
    for _ in range(3):
        code = enrolled.app.code(now)
        verdict = harness.verifier.verify(USER, code, now, first_factor_ok=False)
        assert verdict == Verdict(Outcome.INVALID, "wrong-password")
    assert harness.verifier.verify(USER, enrolled.app.code(now), now).outcome is Outcome.LOCKED


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
