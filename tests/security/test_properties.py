"""Properties of the core under generated input: code parsing, otpauth URIs, and two state machines (the
throttle, enrollment) run against a real store and checked step by step against a model of what the docs
promise (docs/security.md)."""

from __future__ import annotations

import string
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyotp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from jupyter_2fa.core import (
    AlreadyShown,
    CodeRejected,
    EnrollmentError,
    Outcome,
    Settings,
    Store,
    ThrottlePolicy,
    TOTPParameters,
)
from jupyter_2fa.core.throttle import GuessPolicy, backoff
from jupyter_2fa.core.totp import InvalidCode, new_secret, normalize_code, provisioning_uri

from helpers.core import PERIOD, T0, USER, App, Harness, new_keyring, wrong_code

MACHINE_SETTINGS = settings(
    max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# -- parsing ---------------------------------------------------------------------------------------------------------

DIGITS_AND_LOOKALIKES = st.text(
    alphabet=st.sampled_from([*string.digits, " ", "\t", "-", "+", "\u0663", "\uff13", "\x00", "\u200b", "a", "é"]),
    max_size=12,
)


@given(raw=st.one_of(DIGITS_AND_LOOKALIKES, st.text(max_size=80), st.integers(), st.none(), st.binary(max_size=8)))
@pytest.mark.parametrize("digits", [6, 8])
def test_a_code_is_exactly_its_ascii_digits_or_refused(raw: object, digits: int) -> None:
    try:
        code = normalize_code(raw, digits)
    except InvalidCode:
        return
    assert isinstance(raw, str)
    assert len(code) == digits and all(c in string.digits for c in code)
    assert code == raw.replace(" ", "")


@given(
    account=st.text(min_size=1, max_size=40).filter(lambda name: name.replace(":", "").strip()),
    issuer=st.text(min_size=1, max_size=30).filter(lambda name: ":" not in name and name.strip()),
    digits=st.sampled_from([6, 8]),
    period=st.sampled_from([30, 60]),
)
def test_otpauth_uris_round_trip_through_an_authenticator(account: str, issuer: str, digits: int, period: int) -> None:
    """Whatever the names, the app gets the secret and parameters right, and the label cannot be split wrongly."""
    secret = new_secret()
    params = TOTPParameters(digits=digits, period=period)
    uri = provisioning_uri(secret, account, issuer, params)
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    label = parts.path.removeprefix("/")
    assert label.count(":") == 1  # issuer:account, the only separator
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.digits, parsed.interval) == (secret, digits, period)
    assert unquote(label.split(":")[1]) == account.replace(":", "").strip()
    assert parsed.now() == pyotp.TOTP(secret, digits=digits, interval=period).now()


# -- the throttle --------------------------------------------------------------------------------------------------

CODE_POLICY = ThrottlePolicy(lockout_threshold=4, free_attempts=4)  # no code back-off: the lock is the rule here
GUESS_POLICY = GuessPolicy(free_attempts=2, source_free_attempts=100, base_delay=10, max_delay=20, forget_after=600)
SOURCES = st.sampled_from(["192.0.2.1", "198.51.100.7", "2001:db8::1"])


@dataclass
class ThrottleModel:
    """What docs/security.md says the throttle does, written as plainly as possible."""

    code_failures: int = 0
    last_step: int | None = None
    password_failures: int = 0
    password_next_at: float | None = None
    password_last_failure: float | None = None

    def password_waits(self, now: float) -> bool:
        if self.password_last_failure is not None and now - self.password_last_failure >= GUESS_POLICY.forget_after:
            self.password_failures, self.password_next_at = 0, None
        return self.password_next_at is not None and now < self.password_next_at

    def wrong_password(self, now: float) -> Outcome:
        if self.password_waits(now):
            return Outcome.THROTTLED
        self.password_failures += 1
        self.password_last_failure = now
        delay = GUESS_POLICY.account_delay(self.password_failures)
        self.password_next_at = now + delay if delay else None
        return Outcome.INVALID

    def right_password(self, now: float) -> Outcome | None:
        """The refusal a right password gets, or None when the second factor is looked at next."""
        if self.password_waits(now):
            return Outcome.THROTTLED
        self.password_failures, self.password_next_at = 0, None
        return Outcome.LOCKED if self.code_failures >= CODE_POLICY.lockout_threshold else None

    def code(self, now: float, right: bool) -> Outcome:
        refusal = self.right_password(now)
        if refusal is not None:
            return refusal
        step = int(now) // PERIOD
        if right and (self.last_step is None or step > self.last_step):
            self.code_failures, self.last_step = 0, step
            return Outcome.ACCEPTED
        self.code_failures += 1
        return Outcome.INVALID


@dataclass
class Opened:
    """A store of the machine's own in a temporary folder, closed when the machine is torn down."""

    folder: tempfile.TemporaryDirectory[str] = field(default_factory=tempfile.TemporaryDirectory)

    def harness(self, settings: Settings) -> Harness:
        url = f"sqlite:///{Path(self.folder.name) / 'store.sqlite'}"
        return Harness(Store(url, new_keyring()), settings)

    def close(self, harness: Harness) -> None:
        harness.store.close()
        self.folder.cleanup()


class ThrottleMachine(RuleBasedStateMachine):
    """Any interleaving of wrong passwords (from any source), wrong and right codes, password-only successes,
    waiting and unlocking: the store's answers and counts are the model's at every step."""

    @initialize()
    def open(self) -> None:
        self.opened = Opened()
        self.harness = self.opened.harness(Settings(recovery_code_count=0, throttle=CODE_POLICY, guessing=GUESS_POLICY))
        self.enrolled = self.harness.enroll(USER, T0)
        self.model = ThrottleModel(last_step=int(T0) // PERIOD)
        self.now = T0

    def teardown(self) -> None:
        if hasattr(self, "harness"):
            self.opened.close(self.harness)

    @rule(source=SOURCES)
    def wrong_password(self, source: str) -> None:
        verdict = self.harness.verifier.verify(USER, "000000", self.now, first_factor_ok=False, remote_addr=source)
        assert verdict.outcome is self.model.wrong_password(self.now)

    @rule(right=st.booleans(), source=SOURCES)
    def code(self, right: bool, source: str) -> None:
        code = self.enrolled.app.code(self.now) if right else wrong_code(self.enrolled.secret, self.now)
        verdict = self.harness.verifier.verify(USER, code, self.now, remote_addr=source)
        assert verdict.outcome is self.model.code(self.now, right)

    @rule(source=SOURCES)
    def password_alone(self, source: str) -> None:
        verdict = self.harness.verifier.verify_password_only(USER, True, self.now, "api", remote_addr=source)
        assert verdict.outcome is (self.model.right_password(self.now) or Outcome.ACCEPTED)

    @rule(seconds=st.sampled_from([1, 10, 30, 600]))
    def wait(self, seconds: int) -> None:
        self.now += seconds

    @precondition(lambda self: self.model.code_failures >= CODE_POLICY.lockout_threshold)
    @rule()
    def unlock(self) -> None:
        assert self.harness.enrollment.unlock(USER, self.now)
        self.model.code_failures = self.model.password_failures = 0
        self.model.password_next_at = None

    @invariant()
    def counts_match(self) -> None:
        if not hasattr(self, "harness"):
            return
        account = self.harness.store.get(USER)
        assert account is not None
        assert account.failures == self.model.code_failures


TestThrottleMachine = ThrottleMachine.TestCase
TestThrottleMachine.settings = MACHINE_SETTINGS


def test_the_model_back_off_is_the_documented_curve() -> None:
    assert [backoff(n, 2, 10, 20) for n in range(1, 6)] == [0.0, 10.0, 20.0, 20.0, 20.0]


# -- enrollment ----------------------------------------------------------------------------------------------------


@dataclass
class EnrollmentModel:
    enrolled: bool = False
    pending: bool = False
    shown: bool = False
    expires_at: float = 0.0


class EnrollmentMachine(RuleBasedStateMachine):
    """Start, reveal, confirm (right or wrong), cancel, re-link, reset and time passing, in any order: a
    secret is shown at most once, a factor becomes active only through a code from the shown secret, and a
    re-link never drops the working device before the new one is confirmed."""

    LIFETIME = 120.0

    @initialize()
    def open(self) -> None:
        self.opened = Opened()
        settings = Settings(recovery_code_count=0, throttle=ThrottlePolicy(100, 100), enrollment_lifetime=self.LIFETIME)
        self.harness = self.opened.harness(settings)
        self.model = EnrollmentModel()
        self.now = T0
        self.device: App | None = None  # the active device, as the user's app knows it
        self.scanned: App | None = None  # the pending one, once shown

    def teardown(self) -> None:
        if hasattr(self, "harness"):
            self.opened.close(self.harness)

    def live(self) -> bool:
        return self.model.pending and self.now < self.model.expires_at

    @rule()
    def start(self) -> None:
        enrollment = self.harness.enrollment
        if self.model.enrolled:
            assert self.device is not None
            self.now += PERIOD  # a fresh step for the current device's code
            enrollment.begin_relink(USER, self.device.code(self.now), self.now)
        else:
            enrollment.begin(USER, self.now)
        self.model = EnrollmentModel(self.model.enrolled, True, False, self.now + self.LIFETIME)
        self.scanned = None

    @rule()
    def reveal(self) -> None:
        try:
            provisioning = self.harness.enrollment.reveal(USER, self.now)
        except (AlreadyShown, EnrollmentError):
            assert not self.live() or self.model.shown
            return
        assert self.live() and not self.model.shown, "a secret was shown twice"
        self.model.shown = True
        self.scanned = App(provisioning.uri)

    @rule(right=st.booleans())
    def confirm(self, right: bool) -> None:
        code = "000000"
        if right and self.scanned is not None:
            code = self.scanned.code(self.now)
        elif self.scanned is not None:
            code = wrong_code(self.scanned.secret, self.now)
        try:
            self.harness.enrollment.confirm(USER, code, self.now)
        except (CodeRejected, EnrollmentError):
            assert not (right and self.scanned is not None and self.live())
            return
        assert right and self.scanned is not None and self.live(), "activated without a code from the shown secret"
        self.device, self.scanned = self.scanned, None
        self.model = EnrollmentModel(enrolled=True)

    @rule()
    def cancel(self) -> None:
        cancelled = self.harness.enrollment.cancel(USER, self.now)
        assert cancelled is self.model.pending
        self.model = EnrollmentModel(self.model.enrolled)
        self.scanned = None

    @rule()
    def reset(self) -> None:
        self.harness.enrollment.reset(USER, self.now)
        self.model, self.device, self.scanned = EnrollmentModel(), None, None

    @rule(seconds=st.sampled_from([5, PERIOD, 200]))
    def wait(self, seconds: int) -> None:
        self.now += seconds

    @invariant()
    def store_matches(self) -> None:
        if not hasattr(self, "harness"):
            return
        account = self.harness.store.get(USER)
        assert (account is not None and account.enrolled) is self.model.enrolled
        if self.model.enrolled and self.device is not None:
            # The working device still logs in (a pending re-link changes nothing until confirmed).
            self.now += PERIOD
            assert self.harness.verifier.verify(USER, self.device.code(self.now), self.now).ok


TestEnrollmentMachine = EnrollmentMachine.TestCase
TestEnrollmentMachine.settings = MACHINE_SETTINGS
