"""The Verifier on a real store (SQLite and PostgreSQL): codes, replays, recovery codes, and refusing bad input."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jupyter_2fa.core import Outcome, Settings, TOTPParameters, Verdict

from helpers.core import (
    BAD_CODE_IDS,
    BAD_CODES,
    FAST_SETTINGS,
    PERIOD,
    T0,
    USER,
    Harness,
    HarnessFactory,
    hotp,
    step_of,
    wrong_code,
)

LATER = T0 + 10 * PERIOD  # well after the confirmation step, so every code around it is still unused


def test_correct_code_accepted_once(harness: Harness) -> None:
    enrolled = harness.enroll()
    code = enrolled.app.code(LATER)
    assert harness.verifier.verify(USER, code, LATER) == Verdict(Outcome.ACCEPTED, "totp")
    again = harness.verifier.verify(USER, code, LATER)
    assert again == Verdict(Outcome.INVALID, "replayed-code")
    # Still refused later in the window, and from "another server" a second later.
    assert harness.verifier.verify(USER, code, LATER + 1).reason == "replayed-code"
    assert harness.verifier.verify(USER, code, LATER + PERIOD).reason == "replayed-code"


def test_older_step_refused_after_a_newer_one(harness: Harness) -> None:
    enrolled = harness.enroll()
    newer = hotp(enrolled.secret, step_of(LATER) + 1)
    older = hotp(enrolled.secret, step_of(LATER) - 1)
    assert harness.verifier.verify(USER, newer, LATER).ok
    verdict = harness.verifier.verify(USER, older, LATER)
    assert verdict == Verdict(Outcome.INVALID, "replayed-code")


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False)],
    ids=["t-2", "t-1", "t", "t+1", "t+2"],
)
def test_window_edges(harness: Harness, offset: int, accepted: bool) -> None:
    enrolled = harness.enroll()
    code = hotp(enrolled.secret, step_of(LATER) + offset)
    first = harness.verifier.verify(USER, code, LATER)
    second = harness.verifier.verify(USER, code, LATER)
    if accepted:
        assert first == Verdict(Outcome.ACCEPTED, "totp")
        assert second == Verdict(Outcome.INVALID, "replayed-code")
    else:
        assert first == second == Verdict(Outcome.INVALID, "wrong-code")


def test_each_step_in_the_window_accepted_once_in_order(harness: Harness) -> None:
    enrolled = harness.enroll()
    steps = [step_of(LATER) + offset for offset in (-1, 0, 1)]
    for step in steps:
        assert harness.verifier.verify(USER, hotp(enrolled.secret, step), LATER).ok, step
    for step in steps:
        assert harness.verifier.verify(USER, hotp(enrolled.secret, step), LATER).reason == "replayed-code"


@pytest.mark.parametrize(
    ("generated", "verified"),
    [(29.9, 30.1), (29.9, 59.9), (0.0, -0.1)],
    ids=["end-of-step-then-0.2s", "end-of-step-then-next-step-end", "client-clock-ahead"],
)
def test_code_accepted_across_a_step_boundary(harness: Harness, generated: float, verified: float) -> None:
    enrolled = harness.enroll()
    base = step_of(LATER) * PERIOD  # a step boundary
    code = enrolled.app.code(base + generated)
    assert step_of(base + generated) != step_of(base + verified)
    assert harness.verifier.verify(USER, code, base + verified).ok


def test_confirmation_code_cannot_be_replayed_for_login(harness: Harness) -> None:
    enrolled = harness.enroll()
    code = enrolled.app.code(T0)
    verdict = harness.verifier.verify(USER, code, T0)
    assert verdict == Verdict(Outcome.INVALID, "replayed-code")


def test_wrong_code(harness: Harness) -> None:
    enrolled = harness.enroll()
    verdict = harness.verifier.verify(USER, wrong_code(enrolled.secret, LATER), LATER)
    assert verdict == Verdict(Outcome.INVALID, "wrong-code")


@pytest.mark.parametrize(
    "code_kind",
    ["correct", "wrong", "recovery", "malformed"],
    ids=["with-correct-code", "with-wrong-code", "with-recovery-code", "with-malformed-code"],
)
def test_wrong_password_is_just_invalid(harness: Harness, code_kind: str) -> None:
    enrolled = harness.enroll()
    code = {
        "correct": enrolled.app.code(LATER),
        "wrong": wrong_code(enrolled.secret, LATER),
        "recovery": enrolled.recovery_codes[0],
        "malformed": "abc",
    }[code_kind]
    verdict = harness.verifier.verify(USER, code, LATER, first_factor_ok=False)
    assert verdict.outcome is Outcome.INVALID
    assert verdict == Verdict(Outcome.INVALID, "wrong-password")
    # The correct code and the recovery code were not spent by the refused attempt.
    if code_kind in ("correct", "recovery"):
        assert harness.verifier.verify(USER, code, LATER).ok


RECOVERY_FORMS: list[tuple[str, Callable[[str], str]]] = [
    ("as-shown", lambda code: code),
    ("upper-case", str.upper),
    ("no-dash", lambda code: code.replace("-", "")),
    ("upper-no-dash", lambda code: code.replace("-", "").upper()),
    ("spaces", lambda code: f"  {code.replace('-', ' ')} "),
]


@pytest.mark.parametrize("typed", [form for _, form in RECOVERY_FORMS], ids=[name for name, _ in RECOVERY_FORMS])
def test_recovery_code_accepted_once(harness: Harness, typed: Callable[[str], str]) -> None:
    enrolled = harness.enroll()
    first, second = enrolled.recovery_codes
    verdict = harness.verifier.verify(USER, typed(first), LATER)
    assert verdict == Verdict(Outcome.ACCEPTED, "recovery-code", recovery_codes_left=1)
    for form in (first, typed(first), first.upper().replace("-", "")):
        assert harness.verifier.verify(USER, form, LATER) == Verdict(Outcome.INVALID, "wrong-code")
    assert harness.verifier.verify(USER, typed(second), LATER).recovery_codes_left == 0
    account = harness.store.get(USER)
    assert account is not None and account.recovery_codes_left == 0
    # Using recovery codes does not touch the TOTP factor.
    assert harness.verifier.verify(USER, enrolled.app.code(LATER), LATER).ok


def test_recovery_code_of_another_user_refused(harness: Harness) -> None:
    harness.enroll("ada")
    grace = harness.enroll("grace")
    verdict = harness.verifier.verify("ada", grace.recovery_codes[0], LATER)
    assert verdict == Verdict(Outcome.INVALID, "wrong-code")
    assert harness.verifier.verify("grace", grace.recovery_codes[0], LATER).ok


def test_not_enrolled(harness: Harness) -> None:
    """No row, or only a pending enrollment: NOT_ENROLLED with the right password, INVALID without."""
    harness.enrollment.begin("pending", T0)
    for name in ("nobody", "pending"):
        verdict = harness.verifier.verify(name, "123456", LATER)
        assert verdict == Verdict(Outcome.NOT_ENROLLED, "not-enrolled"), name
        refused = harness.verifier.verify(name, "123456", LATER, first_factor_ok=False)
        assert refused == Verdict(Outcome.INVALID, "wrong-password"), name
    assert harness.store.get("nobody") is None  # nothing written for unknown names


@pytest.mark.parametrize(("raw", "reason"), BAD_CODES, ids=BAD_CODE_IDS)
def test_bad_input_is_invalid_never_an_exception(harness: Harness, raw: object, reason: str) -> None:
    harness.enroll()
    verdict = harness.verifier.verify(USER, raw, LATER)
    assert verdict == Verdict(Outcome.INVALID, "malformed-code")
    assert harness.events[-1].reason == "malformed-code"


@pytest.mark.parametrize(
    "raw",
    ["x" * 10_000, "\udcff" * 6, "١٢٣٤٥-٦٧٨٩٠", 1.5, object(), {"code": "123456"}, True],
    ids=["10k-chars", "lone-surrogates", "arabic-recovery", "float", "object", "dict", "bool"],
)
def test_odd_input_is_invalid_never_an_exception(harness: Harness, raw: object) -> None:
    harness.enroll()
    assert harness.verifier.verify(USER, raw, LATER) == Verdict(Outcome.INVALID, "malformed-code")


@pytest.mark.parametrize(
    "params",
    [
        TOTPParameters(digits=8),
        TOTPParameters(period=60, algorithm="sha256"),
        TOTPParameters(digits=7, period=15, algorithm="sha512"),
    ],
    ids=["8-digits", "60s-sha256", "7-digits-15s-sha512"],
)
def test_other_totp_parameters_end_to_end(make_harness: HarnessFactory, params: TOTPParameters) -> None:
    harness = make_harness(Settings(totp=params, recovery_code_count=1, throttle=FAST_SETTINGS.throttle))
    enrolled = harness.enroll()
    assert enrolled.app.totp.digits == params.digits
    assert enrolled.app.totp.interval == params.period
    later = T0 + 10 * params.period
    code = enrolled.app.code(later)
    assert len(code) == params.digits
    assert harness.verifier.verify(USER, code, later).ok
    assert harness.verifier.verify(USER, code, later).reason == "replayed-code"
    # A 6-digit code is malformed when 8 are expected (and vice versa).
    short = code[:6] if params.digits != 6 else code + "0"
    assert harness.verifier.verify(USER, short, later).reason == "malformed-code"


def test_verdict_ok() -> None:
    assert Verdict(Outcome.ACCEPTED, "totp").ok
    for outcome in Outcome:
        if outcome is not Outcome.ACCEPTED:
            assert not Verdict(outcome, "x").ok
