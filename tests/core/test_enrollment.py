"""The device-linking state machine: begin -> reveal once -> confirm, re-link, reset, recovery codes, races."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from jupyter_2fa.core import (
    Account,
    Action,
    AlreadyEnrolled,
    AlreadyShown,
    CodeRejected,
    Enrollment,
    EnrollmentError,
    Keyring,
    NoPendingEnrollment,
    NotEnrolled,
    Outcome,
    Provisioning,
    Settings,
    Store,
    StoreError,
    Verdict,
    Verifier,
)

from helpers.core import (
    FAST_SETTINGS,
    PERIOD,
    RECOVERY_CODE_FORMAT,
    T0,
    USER,
    App,
    Harness,
    HarnessFactory,
    scratch_engine,
    wrong_code,
)

LIFETIME = FAST_SETTINGS.enrollment_lifetime


def account(harness: Harness, username: str = USER) -> Account:
    found = harness.store.get(username)
    assert found is not None
    return found


# -- begin and reveal ------------------------------------------------------------------------------------------------


def test_full_enrollment(harness: Harness) -> None:
    expires = harness.enrollment.begin(USER, T0)
    assert expires == T0 + LIFETIME
    provisioning = harness.enrollment.reveal(USER, T0 + 1)
    app = App(provisioning.uri)
    assert app.secret == provisioning.secret
    assert app.totp.issuer == FAST_SETTINGS.issuer
    assert app.totp.name == USER
    assert not account(harness).enrolled
    codes = harness.enrollment.confirm(USER, app.code(T0 + 2), T0 + 2)
    assert len(codes) == FAST_SETTINGS.recovery_code_count
    assert all(RECOVERY_CODE_FORMAT.fullmatch(code) for code in codes)
    enrolled = account(harness)
    assert enrolled.enrolled
    assert enrolled.pending_secret is None
    assert enrolled.epoch == 1  # linking a device ends the sessions the password alone had opened
    assert enrolled.recovery_codes_left == len(codes)


def test_reveal_works_once(harness: Harness) -> None:
    harness.enrollment.begin(USER, T0)
    first = harness.enrollment.reveal(USER, T0)
    for later in (T0, T0 + 1, T0 + LIFETIME - 1):
        with pytest.raises(AlreadyShown, match="already shown") as caught:
            harness.enrollment.reveal(USER, later)
        assert caught.value.reason == "already-shown"
        assert first.secret not in str(caught.value)
    # The secret that was shown still confirms.
    assert harness.enrollment.confirm(USER, App(first.uri).code(T0), T0)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda h: None, "no pending enrollment"),
        (lambda h: h.enroll(), "no pending enrollment"),
        (lambda h: h.enrollment.begin(USER, T0 - LIFETIME), "expired"),
        (lambda h: h.enrollment.begin(USER, T0 - LIFETIME - 1), "expired"),
    ],
    ids=["never-started", "already-enrolled", "expired-exactly", "expired"],
)
def test_reveal_without_a_live_pending_enrollment(
    harness: Harness, setup: Callable[[Harness], object], message: str
) -> None:
    setup(harness)
    with pytest.raises(NoPendingEnrollment, match=message):
        harness.enrollment.reveal(USER, T0)


def test_begin_again_gives_a_fresh_secret_and_voids_the_old_one(harness: Harness) -> None:
    harness.enrollment.begin(USER, T0)
    old = App(harness.enrollment.reveal(USER, T0).uri)
    harness.enrollment.begin(USER, T0 + 5)
    new = App(harness.enrollment.reveal(USER, T0 + 5).uri)
    assert new.secret != old.secret
    now = T0 + 6
    with pytest.raises(CodeRejected) as caught:
        harness.enrollment.confirm(USER, old.code(now), now)
    assert caught.value.verdict == Verdict(Outcome.INVALID, "wrong-code")
    assert not account(harness).enrolled
    assert harness.enrollment.confirm(USER, new.code(now), now)
    assert account(harness).enrolled


def test_confirm_with_a_wrong_code_stays_pending(harness: Harness) -> None:
    harness.enrollment.begin(USER, T0)
    app = App(harness.enrollment.reveal(USER, T0).uri)
    for code in (wrong_code(app.secret, T0), "12345", "", None, "abcde-fghjk"):
        with pytest.raises(CodeRejected) as caught:
            harness.enrollment.confirm(USER, code, T0)
        assert caught.value.verdict.outcome is Outcome.INVALID
        pending = account(harness)
        assert not pending.enrolled
        assert pending.pending_secret is not None
        assert harness.verifier.verify(USER, app.code(T0), T0).outcome is Outcome.NOT_ENROLLED
    assert harness.enrollment.confirm(USER, app.code(T0), T0)


@pytest.mark.parametrize(
    ("after", "confirmed"),
    [(LIFETIME - 1, True), (LIFETIME, False), (LIFETIME + 1, False), (86400, False)],
    ids=["just-before-expiry", "at-expiry", "just-after", "next-day"],
)
def test_expired_pending_refused(harness: Harness, after: float, confirmed: bool) -> None:
    harness.enrollment.begin(USER, T0)
    app = App(harness.enrollment.reveal(USER, T0).uri)
    now = T0 + after
    if confirmed:
        assert harness.enrollment.confirm(USER, app.code(now), now)
        return
    with pytest.raises(NoPendingEnrollment, match="expired"):
        harness.enrollment.confirm(USER, app.code(now), now)
    assert not account(harness).enrolled


def test_confirm_without_begin(harness: Harness) -> None:
    with pytest.raises(NoPendingEnrollment):
        harness.enrollment.confirm(USER, "123456", T0)


def test_active_factor_never_replaced_by_begin(harness: Harness) -> None:
    enrolled = harness.enroll()
    before = account(harness)
    with pytest.raises(AlreadyEnrolled) as caught:
        harness.enrollment.begin(USER, T0 + PERIOD)
    assert caught.value.reason == "already-enrolled"
    after = account(harness)
    assert (after.secret, after.generation, after.pending_secret) == (before.secret, before.generation, None)
    now = T0 + 2 * PERIOD
    assert harness.verifier.verify(USER, enrolled.app.code(now), now).ok
    assert (harness.events[-2].action, harness.events[-2].reason) == (
        Action.ENROLLMENT_STARTED,
        "already-enrolled",
    )


def test_cancel(harness: Harness) -> None:
    harness.enrollment.begin(USER, T0)
    assert harness.enrollment.cancel(USER, T0) is True
    assert harness.enrollment.cancel(USER, T0) is False
    with pytest.raises(NoPendingEnrollment):
        harness.enrollment.reveal(USER, T0)
    with pytest.raises(NoPendingEnrollment):
        harness.enrollment.confirm(USER, "123456", T0)


# -- re-link ---------------------------------------------------------------------------------------------------------


def test_begin_relink_needs_a_valid_current_code(harness: Harness) -> None:
    enrolled = harness.enroll()
    now = T0 + PERIOD
    for code in (wrong_code(enrolled.secret, now), enrolled.app.code(T0), "nonsense", None):
        with pytest.raises(CodeRejected) as caught:
            harness.enrollment.begin_relink(USER, code, now)
        assert caught.value.verdict.outcome is Outcome.INVALID
        assert account(harness).pending_secret is None
    with pytest.raises(NotEnrolled):
        harness.enrollment.begin_relink("nobody", "123456", now)


@pytest.mark.parametrize("proof", ["totp", "recovery-code"])
def test_relink_replaces_the_factor_only_when_confirmed(harness: Harness, proof: str) -> None:
    old = harness.enroll()
    before = account(harness)
    now = T0 + PERIOD
    code = old.app.code(now) if proof == "totp" else old.recovery_codes[0]
    harness.enrollment.begin_relink(USER, code, now)
    new = App(harness.enrollment.reveal(USER, now).uri)
    assert new.secret != old.secret

    # Until the new device is confirmed, the old one keeps working (and the new one does not).
    now += PERIOD
    assert harness.verifier.verify(USER, old.app.code(now), now).ok
    assert harness.verifier.verify(USER, new.code(now + PERIOD), now + PERIOD).reason == "wrong-code"
    assert account(harness).epoch == before.epoch

    now += 2 * PERIOD
    new_codes = harness.enrollment.confirm(USER, new.code(now), now)
    after = account(harness)
    assert after.epoch == before.epoch + 1
    assert after.generation > before.generation
    assert after.pending_secret is None and not after.pending_relink
    assert harness.events[-1].reason == "relinked"

    # The confirmation step is spent; the old device and the old recovery codes are dead.
    assert harness.verifier.verify(USER, new.code(now), now).reason == "replayed-code"
    now += PERIOD
    assert harness.verifier.verify(USER, old.app.code(now), now).reason == "wrong-code"
    assert harness.verifier.verify(USER, old.recovery_codes[-1], now).reason == "wrong-code"
    assert harness.verifier.verify(USER, new.code(now), now).ok
    assert harness.verifier.verify(USER, new_codes[0], now).ok


# -- reset and recovery codes ----------------------------------------------------------------------------------------


def test_reset(harness: Harness) -> None:
    enrolled = harness.enroll()
    before = account(harness)
    now = T0 + PERIOD
    harness.enrollment.begin_relink(USER, enrolled.app.code(now), now)
    assert harness.enrollment.reset(USER, now) is True
    after = account(harness)
    assert not after.enrolled
    assert after.pending_secret is None
    assert after.recovery_codes_left == 0
    assert after.epoch == before.epoch + 1
    assert harness.store.unused_recovery_hashes(USER) == []
    now += PERIOD
    for code in (enrolled.app.code(now), enrolled.recovery_codes[0]):
        assert harness.verifier.verify(USER, code, now).outcome is Outcome.NOT_ENROLLED
    assert harness.enrollment.reset("nobody", now) is False
    # The user can link a new device afterwards.
    again = harness.enroll(USER, now)
    assert again.secret != enrolled.secret
    assert account(harness).epoch == before.epoch + 2  # the reset, then linking the new device


def test_regenerate_recovery_codes_invalidates_the_old_ones(harness: Harness) -> None:
    enrolled = harness.enroll()
    now = T0 + PERIOD
    with pytest.raises(CodeRejected):
        harness.enrollment.regenerate_recovery_codes(USER, wrong_code(enrolled.secret, now), now)
    new_codes = harness.enrollment.regenerate_recovery_codes(USER, enrolled.app.code(now), now)
    assert len(new_codes) == FAST_SETTINGS.recovery_code_count
    assert not set(new_codes) & set(enrolled.recovery_codes)
    for old in enrolled.recovery_codes:
        assert harness.verifier.verify(USER, old, now).reason == "wrong-code"
    assert harness.verifier.verify(USER, new_codes[0], now) == Verdict(
        Outcome.ACCEPTED, "recovery-code", recovery_codes_left=len(new_codes) - 1
    )
    with pytest.raises(NotEnrolled):
        harness.enrollment.regenerate_recovery_codes("nobody", "123456", now)


# -- the provisioning object -----------------------------------------------------------------------------------------


def test_provisioning_hides_its_secret(harness: Harness) -> None:
    harness.enrollment.begin(USER, T0)
    provisioning = harness.enrollment.reveal(USER, T0)
    for text in (repr(provisioning), str(provisioning), f"{provisioning!r}", f"{[provisioning]}"):
        assert provisioning.secret not in text
        assert "otpauth" not in text
    assert provisioning.manual_key.replace(" ", "") == provisioning.secret
    assert all(len(group) == 4 for group in provisioning.manual_key.split(" "))
    assert provisioning.svg().startswith("<svg")
    assert provisioning.terminal() != provisioning.terminal(invert=True)


def test_provisioning_manual_key_groups() -> None:
    assert Provisioning("ABCDEFGHIJ", "otpauth://x").manual_key == "ABCD EFGH IJ"


# -- settings --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": -1},
        {"window": 11},
        {"recovery_code_count": -1},
        {"recovery_code_count": 101},
        {"enrollment_lifetime": 29},
        {"enrollment_lifetime": 86401},
    ],
    ids=["window-negative", "window-11", "codes-negative", "codes-101", "lifetime-29s", "lifetime-over-a-day"],
)
def test_settings_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_zero_recovery_codes(make_harness: HarnessFactory) -> None:
    harness = make_harness(Settings(recovery_code_count=0, throttle=FAST_SETTINGS.throttle))
    enrolled = harness.enroll()
    assert enrolled.recovery_codes == []
    assert account(harness).recovery_codes_left == 0


# -- races (threads on one store) ------------------------------------------------------------------------------------


def run_together(n: int, action: Callable[[int], object]) -> list[object]:
    """Run ``action(i)`` in ``n`` threads released at the same moment; results or raised exceptions."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = action(i)
        except Exception as err:  # the test inspects it
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_reveal_shows_the_secret_once(harness: Harness) -> None:
    harness.enrollment.begin(USER, T0)
    results = run_together(8, lambda _: harness.enrollment.reveal(USER, T0))
    shown = [r for r in results if isinstance(r, Provisioning)]
    assert len(shown) == 1
    assert all(isinstance(r, AlreadyShown) for r in results if r not in shown)


def test_concurrent_confirm_activates_once(harness: Harness) -> None:
    harness.enrollment.begin(USER, T0)
    app = App(harness.enrollment.reveal(USER, T0).uri)
    code = app.code(T0)
    results = run_together(4, lambda _: harness.enrollment.confirm(USER, code, T0))
    assert len([r for r in results if isinstance(r, list)]) == 1, results
    assert all(isinstance(r, (list, NoPendingEnrollment)) for r in results), results
    assert account(harness).recovery_codes_left == FAST_SETTINGS.recovery_code_count
    assert account(harness).generation == 1


def test_concurrent_begin_for_a_new_user_on_postgresql(postgres_url: str, keyring: Keyring) -> None:
    """Two tabs start enrolling a brand-new user at the same moment: both begins must succeed.

    set_pending() reads "is there a row?" and then INSERTs. On PostgreSQL (READ COMMITTED) both transactions can
    see no row; the second INSERT then hits the primary key and a raw sqlalchemy IntegrityError escapes to the
    front-end. The race is made deterministic here: a SHARE lock on the table lets both SELECTs through but holds
    both INSERTs until both transactions are past their check.
    """
    store = Store(postgres_url, keyring)
    enrollment = Enrollment(Verifier(store, FAST_SETTINGS))
    results: list[object] = []
    try:
        with scratch_engine(postgres_url) as engine, engine.connect() as holder, engine.connect() as watcher:
            holder.execute(sa.text("BEGIN"))
            holder.execute(sa.text("LOCK TABLE jupyter_2fa_accounts IN SHARE MODE"))

            def begin() -> None:
                try:
                    results.append(enrollment.begin("newbie", T0))
                except Exception as err:  # the test inspects it
                    results.append(err)

            threads = [threading.Thread(target=begin) for _ in range(2)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 20
            waiting = 0
            while waiting < 2 and time.monotonic() < deadline:
                waiting = watcher.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
                watcher.commit()
                time.sleep(0.02)
            holder.execute(sa.text("COMMIT"))
            for thread in threads:
                thread.join(timeout=30)
        assert waiting == 2, "both begins should have been held at their INSERT"
        failures = [r for r in results if isinstance(r, Exception)]
        assert not failures, f"a concurrent begin() failed: {failures!r}"
        assert results == [T0 + LIFETIME, T0 + LIFETIME]
        # Whichever begin came last owns the pending secret, and it can be revealed once.
        assert enrollment.reveal("newbie", T0).secret
    finally:
        store.close()


def test_enrollment_errors_are_two_factor_errors() -> None:
    for error in (AlreadyEnrolled, AlreadyShown, NoPendingEnrollment, NotEnrolled, CodeRejected):
        assert issubclass(error, EnrollmentError)
        assert not issubclass(error, StoreError)
