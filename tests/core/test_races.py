"""Two OS processes, each with its own Store on the same database, racing to use the same code: one wins.

This is the deployment that matters: several Jupyter servers (or hub replicas) on one SQLite file or one
PostgreSQL database. The processes are started with the ``spawn`` method, so nothing (no engine, no pooled
connection) is inherited; they receive the URL, the raw keys and one job per round, and start each round
together at a barrier.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql

from jupyter_2fa.core import Keyring, Outcome, Settings, Store, Verifier, recovery
from jupyter_2fa.core import store as store_module
from jupyter_2fa.core.throttle import GuessPolicy, name_key

from helpers.core import FAST_SETTINGS, LENIENT_THROTTLE, PERIOD, T0, USER, Harness, HarnessFactory, hotp, step_of

pytestmark = pytest.mark.slow

ROUNDS = 50
RACERS = 2
TIMEOUT = 60


@dataclass(frozen=True)
class Job:
    round: int
    code: str
    now: float


def _racer(url: str, keys: list[bytes], inbox: Any, outbox: Any, barrier: Any) -> None:
    """Child process: open a Store, then for each job wait for the other racer and verify the code."""
    store = Store(url, Keyring(keys, "race keys"))
    try:
        verifier = Verifier(store, FAST_SETTINGS)
        outbox.put(("ready", None, None))
        while (job := inbox.get(timeout=TIMEOUT)) is not None:
            barrier.wait(timeout=TIMEOUT)
            verdict = verifier.verify(USER, job.code, job.now)
            outbox.put((job.round, verdict.outcome.value, verdict.reason))
    finally:
        store.close()


@contextmanager
def racers(url: str, keys: list[bytes]) -> Iterator[Callable[[Job], list[tuple[str, str]]]]:
    """Start RACERS processes; yield ``race(job)``, which runs one round and returns every (outcome, reason)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(RACERS)
    outbox = ctx.Queue()
    inboxes = [ctx.Queue() for _ in range(RACERS)]
    processes = [ctx.Process(target=_racer, args=(url, keys, inbox, outbox, barrier), daemon=True) for inbox in inboxes]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            assert outbox.get(timeout=TIMEOUT)[0] == "ready"

        def race(job: Job) -> list[tuple[str, str]]:
            for inbox in inboxes:
                inbox.put(job)
            answers = [outbox.get(timeout=TIMEOUT) for _ in processes]
            assert {answer[0] for answer in answers} == {job.round}
            return sorted((outcome, reason) for _, outcome, reason in answers)

        yield race
        for inbox in inboxes:
            inbox.put(None)
        for process in processes:
            process.join(timeout=TIMEOUT)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
        for channel in (outbox, *inboxes):
            channel.close()
            channel.join_thread()


def winners(results: dict[int, list[tuple[str, str]]]) -> dict[int, int]:
    return {r: [outcome for outcome, _ in answers].count(Outcome.ACCEPTED.value) for r, answers in results.items()}


def test_same_totp_code_from_two_processes(make_harness: HarnessFactory, store_url: str) -> None:
    harness: Harness = make_harness()
    enrolled = harness.enroll()
    results: dict[int, list[tuple[str, str]]] = {}
    with racers(store_url, harness.store.keyring.keys) as race:
        for r in range(ROUNDS):
            now = T0 + (r + 1) * PERIOD + 5  # a new time step every round
            results[r] = race(Job(r, hotp(enrolled.secret, step_of(now)), now))
    assert winners(results) == dict.fromkeys(range(ROUNDS), 1)
    losers = {reason for answers in results.values() for outcome, reason in answers if outcome != "accepted"}
    assert losers == {"replayed-code"}
    account = harness.store.get(USER)
    assert account is not None
    assert account.last_step == step_of(T0 + ROUNDS * PERIOD + 5)


def test_same_recovery_code_from_two_processes(make_harness: HarnessFactory, store_url: str) -> None:
    harness: Harness = make_harness()
    harness.enroll()
    results: dict[int, list[tuple[str, str]]] = {}
    with racers(store_url, harness.store.keyring.keys) as race:
        for r in range(ROUNDS):
            (code,) = recovery.new_codes(1)
            harness.store.replace_recovery_codes(USER, [recovery.hash_code(code)])
            results[r] = race(Job(r, code, T0 + PERIOD + r))
            account = harness.store.get(USER)
            assert account is not None and account.recovery_codes_left == 0, r
    assert winners(results) == dict.fromkeys(range(ROUNDS), 1)
    losers = {(outcome, reason) for answers in results.values() for outcome, reason in answers}
    losers.discard(("accepted", "recovery-code"))
    # The loser either lost the UPDATE ("replayed-code") or only saw the code after it was spent.
    assert losers <= {("invalid", "replayed-code"), ("invalid", "wrong-code")}


def test_checks_that_share_rows_never_deadlock(
    make_harness: HarnessFactory, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many checks at once through two stores, sharing sources and a name bucket, while rows are forgotten and
    pruned under them (an hour of churn pressed into seconds): every check gets an answer, none a deadlock
    (which PostgreSQL breaks by failing one side: a 503 for a real login)."""
    monkeypatch.setattr(store_module, "GUESS_PRUNE_INTERVAL_SECONDS", 0.0)  # prune on every counted wrong password
    policy = GuessPolicy(free_attempts=1000, source_free_attempts=1000, base_delay=0.001, max_delay=1, forget_after=1)
    settings = Settings(recovery_code_count=1, throttle=LENIENT_THROTTLE, guessing=policy)
    verifiers = [make_harness(settings).verifier for _ in range(2)]
    verifiers[0].store.ensure_account("ada")
    verifiers[0].store.ensure_account("bob")
    buckets: dict[str, list[str]] = {}
    for n in range(2000):  # names without a row that share one bucket
        buckets.setdefault(name_key(f"u{n}", has_account=False), []).append(f"u{n}")
    strangers = max(buckets.values(), key=len)[:3]
    start = time.monotonic()

    def checks(worker: int) -> Counter[str]:
        rnd = random.Random(worker)  # noqa: S311  # a repeatable mix of requests, not a secret
        verifier = verifiers[worker % 2]
        seen: Counter[str] = Counter()
        for _ in range(150):
            now = T0 + (time.monotonic() - start) * 3 + rnd.random()  # rows go stale within a second or so
            verdict = verifier.login(
                rnd.choice(["ada", "bob", *strangers]),
                "123456",
                now,
                first_factor_ok=rnd.random() < 0.3,
                remote_addr=rnd.choice(["198.51.100.1", "198.51.100.2", "203.0.113.7"]),
                password_alone_allowed=True,
            )
            seen[verdict.outcome.value] += 1
        return seen

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sum(pool.map(checks, range(6)), Counter())
    assert outcomes[Outcome.UNAVAILABLE.value] == 0, outcomes
    assert sum(outcomes.values()) == 900


def test_shared_rows_are_locked_in_key_order() -> None:
    """What keeps the checks above out of a deadlock on PostgreSQL: every check locks the wrong-password rows
    it shares with others (a source, a name bucket) in one order, by key, whatever order their scan finds them
    in (``FOR UPDATE`` locks rows as the sorted result is read)."""
    sql = str(store_module._LOCKED_ACCOUNT_AND_GUESSES.compile(dialect=postgresql.dialect()))
    guess_cte = sql[sql.index("guess AS") :]
    assert "ORDER BY jupyter_2fa_guesses.key FOR UPDATE" in " ".join(guess_cte.split())
