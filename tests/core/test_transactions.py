"""What a login check costs the store: one transaction, so one durable commit, whatever its outcome.

Counted with SQLAlchemy's engine events on SQLite and PostgreSQL, so the count is the database's, not a
guess at the code path. A recovery code is the one exception, on purpose: its Argon2id comparison runs after
the attempt's transaction has committed (the lock is not held for a quarter of a second) and a match is spent
in a second one. How long a check takes beside a bare commit is measured by ``python -m benchmarks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from jupyter_2fa.core import Outcome, Settings, Verdict
from jupyter_2fa.core.throttle import ThrottlePolicy

from helpers.core import PERIOD, T0, USER, Enrolled, Harness, HarnessFactory, wrong_code

NOW = T0 + PERIOD
SOURCE = "192.0.2.1"


@dataclass
class Transactions:
    begun: int = 0
    committed: int = 0
    statements: int = 0


@contextmanager
def counting(engine: sa.Engine) -> Iterator[Transactions]:
    seen = Transactions()

    def begun(*_: object) -> None:
        seen.begun += 1

    def committed(*_: object) -> None:
        seen.committed += 1

    def executed(*_: object) -> None:
        seen.statements += 1

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("begin", begun),
        ("commit", committed),
        ("before_cursor_execute", executed),
    ]
    for name, hook in hooks:
        sa.event.listen(engine, name, hook)
    try:
        yield seen
    finally:
        for name, hook in hooks:
            sa.event.remove(engine, name, hook)


Check = Callable[[Harness, Enrolled], Verdict]

CHECKS: list[tuple[str, Check, Outcome, int]] = [
    # (name, the check, its outcome, transactions it may take)
    ("right code", lambda h, e: h.verifier.verify(USER, e.app.code(NOW), NOW, remote_addr=SOURCE), Outcome.ACCEPTED, 1),
    (
        "replayed code",
        lambda h, e: h.verifier.verify(USER, e.app.code(T0), NOW, remote_addr=SOURCE),
        Outcome.INVALID,
        1,
    ),
    (
        "wrong code",
        lambda h, e: h.verifier.verify(USER, wrong_code(e.secret, NOW), NOW, remote_addr=SOURCE),
        Outcome.INVALID,
        1,
    ),
    (
        "wrong password",
        lambda h, e: h.verifier.verify(USER, e.app.code(NOW), NOW, first_factor_ok=False, remote_addr=SOURCE),
        Outcome.INVALID,
        1,
    ),
    (
        "wrong password, unknown name",
        lambda h, e: h.verifier.verify("nobody", "123456", NOW, first_factor_ok=False, remote_addr=SOURCE),
        Outcome.INVALID,
        1,
    ),
    (
        "malformed code",
        lambda h, e: h.verifier.verify(USER, "12x", NOW, remote_addr=SOURCE),
        Outcome.INVALID,
        1,
    ),
    (
        "trusted network",
        lambda h, e: h.verifier.login(USER, "", NOW, first_factor_ok=True, trusted_network=True, remote_addr=SOURCE),
        Outcome.ACCEPTED,
        1,
    ),
    (
        "optional policy, no device",
        lambda h, e: h.verifier.login(
            "newcomer", "", NOW, first_factor_ok=True, password_alone_allowed=True, remote_addr=SOURCE
        ),
        Outcome.ACCEPTED,
        1,
    ),
    (
        "recovery code",
        lambda h, e: h.verifier.verify(USER, e.recovery_codes[0], NOW, remote_addr=SOURCE),
        Outcome.ACCEPTED,
        2,
    ),
    (
        "wrong recovery code",
        lambda h, e: h.verifier.verify(USER, "aaaaa-bbbbb", NOW, remote_addr=SOURCE),
        Outcome.INVALID,
        1,
    ),
]


@pytest.mark.parametrize(("check", "outcome", "transactions"), [c[1:] for c in CHECKS], ids=[c[0] for c in CHECKS])
def test_a_login_check_is_one_transaction(
    make_harness: HarnessFactory, check: Check, outcome: Outcome, transactions: int
) -> None:
    harness = make_harness()
    enrolled = harness.enroll()
    with counting(harness.store.engine) as seen:
        verdict = check(harness, enrolled)
    assert verdict.outcome is outcome
    assert (seen.begun, seen.committed) == (transactions, transactions)


def test_a_right_code_reads_once_and_writes_once(make_harness: HarnessFactory) -> None:
    """The success path: one statement reads the account and its wrong-password rows, one marks the step."""
    harness = make_harness()
    enrolled = harness.enroll()
    with counting(harness.store.engine) as seen:
        assert harness.verifier.verify(USER, enrolled.app.code(NOW), NOW, remote_addr=SOURCE).ok
    begin_statement = 1 if harness.store.url.get_backend_name() == "sqlite" else 0  # SQLite's BEGIN IMMEDIATE
    assert seen.statements == 2 + begin_statement


def test_a_locked_account_is_answered_in_one_transaction(make_harness: HarnessFactory) -> None:
    harness = make_harness(Settings(recovery_code_count=2, throttle=ThrottlePolicy(lockout_threshold=1)))
    enrolled = harness.enroll()
    assert harness.verifier.verify(USER, wrong_code(enrolled.secret, NOW), NOW).outcome is Outcome.INVALID
    with counting(harness.store.engine) as seen:
        assert harness.verifier.verify(USER, enrolled.app.code(NOW), NOW).outcome is Outcome.LOCKED
    assert (seen.begun, seen.committed) == (1, 1)
