"""Passkeys and security keys as a login factor (Verifier) and their registration and removal (Passkeys), on a
real store, with the software authenticator of ``helpers.webauthn``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from jupyter_2fa.core import Action, CodeRejected, Outcome, RelyingParty, ThrottlePolicy, UserNotVerified
from jupyter_2fa.core.passkeys import KeyStepError, LastFactor, NoKeys, Proof, UnknownKey, key_name
from jupyter_2fa.core.webauthn import CredentialRefused, KeyAssertion

from helpers.core import FAST_SETTINGS, T0, USER, Harness, HarnessFactory
from helpers.webauthn import SoftKey, b64s

LAB = RelyingParty("localhost", "Jupyter", "http://localhost:8888")
PHISH = RelyingParty("localhost", "Jupyter", "http://localhost:9999")  # another origin, same host name
SESSION = "browser-session-1"


def options_challenge(options_json: str) -> bytes:
    import base64

    text = json.loads(options_json)["challenge"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def register(harness: Harness, key: SoftKey, now: float = T0, **proof: object) -> list[str]:
    """Register ``key`` for USER through Passkeys (password right); returns the recovery codes it gave."""
    passkeys = harness.enrollment.passkeys
    options, challenge_id = passkeys.registration_options(USER, LAB, SESSION, now, Proof(True, **proof))  # type: ignore[arg-type]
    response = key.register(LAB.id, LAB.origin, options_challenge(options))
    _, codes = passkeys.register(USER, LAB, challenge_id, SESSION, response, "laptop", now)
    return codes


@dataclass
class Ceremony:
    """A login with a key: the options the page got, and the assertion the browser sent back."""

    challenge_id: str
    challenge: bytes

    def assertion(self, key: SoftKey, rp: RelyingParty = LAB, uv: bool = True, bound_to: str = SESSION) -> KeyAssertion:
        return KeyAssertion(key.sign(rp.id, rp.origin, self.challenge, uv=uv), self.challenge_id, bound_to, LAB)


def begin_login(harness: Harness, now: float = T0) -> Ceremony:
    options, challenge_id = harness.enrollment.passkeys.login_options(USER, LAB, SESSION, now, first_factor_ok=True)
    return Ceremony(challenge_id, options_challenge(options))


def login(harness: Harness, factor: object, now: float = T0, **kwargs: bool) -> tuple[Outcome, str]:
    verdict = harness.verifier.login(USER, factor, now, first_factor_ok=True, **kwargs)
    return verdict.outcome, verdict.reason


@pytest.fixture
def key() -> SoftKey:
    return SoftKey(counter=1)


@pytest.fixture
def keyed(harness: Harness, key: SoftKey) -> Harness:
    """USER with one key as the only factor."""
    register(harness, key)
    return harness


def test_first_key_is_a_factor_with_recovery_codes_and_ends_sessions(harness: Harness, key: SoftKey) -> None:
    harness.store.ensure_account(USER)
    epoch = harness.store.epoch(USER)
    codes = register(harness, key)
    account = harness.store.get(USER)
    assert account is not None
    assert (account.enrolled, account.has_second_factor, account.webauthn_keys) == (False, True, 1)
    assert len(codes) == FAST_SETTINGS.recovery_code_count == account.recovery_codes_left
    assert harness.store.epoch(USER) == epoch + 1
    assert [(e.action, e.outcome, e.reason) for e in harness.events if e.action is Action.WEBAUTHN_ADDED] == [
        (Action.WEBAUTHN_ADDED, "success", "first-factor")
    ]


def test_key_login_accepted_and_clears_failures(keyed: Harness, key: SoftKey) -> None:
    assert login(keyed, "000000", T0) == (Outcome.INVALID, "wrong-code")  # a key-only account has no code
    assert keyed.store.get(USER).failures == 1  # type: ignore[union-attr]
    ceremony = begin_login(keyed, T0 + 1)
    key.counter += 1
    assert login(keyed, ceremony.assertion(key), T0 + 2) == (Outcome.ACCEPTED, "webauthn")
    account = keyed.store.get(USER)
    assert account is not None and account.failures == 0
    (stored,) = keyed.store.webauthn_credentials(USER)
    assert (stored.sign_count, stored.last_used_at) == (key.counter, T0 + 2)


Attack = Callable[[Harness, SoftKey, Ceremony], KeyAssertion]


def _other_origin(h: Harness, key: SoftKey, c: Ceremony) -> KeyAssertion:
    key.counter += 1
    return c.assertion(key, rp=PHISH)


def _no_user_verification(h: Harness, key: SoftKey, c: Ceremony) -> KeyAssertion:
    key.counter += 1
    return c.assertion(key, uv=False)


def _counter_went_back(h: Harness, key: SoftKey, c: Ceremony) -> KeyAssertion:
    key.counter = 0  # the stored counter is 1: a copy of the key that signed less often
    return c.assertion(key)


def _another_session(h: Harness, key: SoftKey, c: Ceremony) -> KeyAssertion:
    key.counter += 1
    return c.assertion(key, bound_to="someone-elses-session")


def _unknown_key(h: Harness, key: SoftKey, c: Ceremony) -> KeyAssertion:
    return c.assertion(SoftKey(b"never-registered", counter=5))


def _replayed(h: Harness, key: SoftKey, c: Ceremony) -> KeyAssertion:
    key.counter += 1
    first = c.assertion(key)
    assert login(h, first, T0 + 2) == (Outcome.ACCEPTED, "webauthn")
    return first


def _garbage(h: Harness, key: SoftKey, c: Ceremony) -> KeyAssertion:
    return KeyAssertion('{"rawId": 5, "response": []}', c.challenge_id, SESSION, LAB)


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        pytest.param(_other_origin, "wrong-key", id="phishing-page-on-another-origin"),
        pytest.param(_no_user_verification, "key-not-verified", id="user-not-verified"),
        pytest.param(_counter_went_back, "cloned-key", id="sign-count-regression"),
        pytest.param(_another_session, "webauthn-challenge", id="challenge-of-another-session"),
        pytest.param(_unknown_key, "wrong-key", id="key-of-nobody"),
        pytest.param(_replayed, "webauthn-challenge", id="replayed-assertion"),
        pytest.param(_garbage, "wrong-key", id="malformed-response"),
    ],
)
def test_key_login_refused(keyed: Harness, key: SoftKey, attack: Attack, reason: str) -> None:
    ceremony = begin_login(keyed, T0 + 1)
    assertion = attack(keyed, key, ceremony)
    assert login(keyed, assertion, T0 + 3) == (Outcome.INVALID, reason)
    account = keyed.store.get(USER)
    assert account is not None and account.failures == 1  # counted like a wrong code
    cloned = [e for e in keyed.events if e.action is Action.WEBAUTHN_CLONED]
    assert len(cloned) == (reason == "cloned-key")


def test_locked_account_refused_whatever_the_key(make_harness: HarnessFactory, key: SoftKey) -> None:
    harness = make_harness(settings=FAST_SETTINGS.__class__(throttle=ThrottlePolicy(lockout_threshold=2)))
    register(harness, key)
    ceremony = begin_login(harness, T0)  # options got before the lock: the signature would be good
    for _ in range(2):
        login(harness, "000000", T0)
    key.counter += 1
    assert login(harness, ceremony.assertion(key), T0 + 2) == (Outcome.LOCKED, "locked")
    with pytest.raises(CodeRejected) as refused:  # and no new options
        begin_login(harness, T0 + 3)
    assert refused.value.verdict.outcome is Outcome.LOCKED


def test_one_signature_logs_in_once_across_threads(keyed: Harness, key: SoftKey) -> None:
    ceremony = begin_login(keyed, T0 + 1)
    key.counter += 1
    assertion = ceremony.assertion(key)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: login(keyed, assertion, T0 + 2)[0], range(8)))
    assert outcomes.count(Outcome.ACCEPTED) == 1


@pytest.mark.parametrize(
    ("factor", "kwargs", "expected"),
    [
        pytest.param("app-code", {"key_required": True}, (Outcome.KEY_REQUIRED, "key-required"), id="code-refused"),
        pytest.param("recovery", {"key_required": True}, (Outcome.KEY_REQUIRED, "key-required"), id="recovery-refused"),
        pytest.param(
            "",
            {"key_required": True, "trusted_network": True},
            (Outcome.KEY_REQUIRED, "key-required"),
            id="trusted-network-is-no-key",
        ),
        pytest.param("key", {"key_required": True}, (Outcome.ACCEPTED, "webauthn"), id="key-accepted"),
        pytest.param("app-code", {}, (Outcome.ACCEPTED, "totp"), id="code-without-the-rule"),
    ],
)
def test_phishing_resistant_rule(
    harness: Harness, key: SoftKey, factor: str, kwargs: dict[str, bool], expected: tuple[Outcome, str]
) -> None:
    enrolled = harness.enroll(now=T0 - 300)
    register(harness, key, T0 - 200, code=enrolled.app.code(T0 - 200))
    key.counter += 1
    factors: dict[str, object] = {
        "app-code": enrolled.app.code(T0),
        "recovery": enrolled.recovery_codes[0],
        "key": begin_login(harness, T0).assertion(key),
        "": "",
    }
    assert login(harness, factors[factor], T0, **kwargs) == expected


def test_adding_a_key_beside_the_app_needs_its_code(harness: Harness, key: SoftKey) -> None:
    enrolled = harness.enroll(now=T0 - 300)
    passkeys = harness.enrollment.passkeys
    with pytest.raises(CodeRejected) as refused:
        passkeys.registration_options(USER, LAB, SESSION, T0, Proof(True, code=""))
    assert refused.value.verdict.outcome is Outcome.INVALID
    with pytest.raises(CodeRejected):  # the right code, the wrong password
        passkeys.registration_options(USER, LAB, SESSION, T0, Proof(False, code=enrolled.app.code(T0)))
    assert register(harness, key, T0, code=enrolled.app.code(T0 + 30)) == []  # not the first factor: no codes
    assert harness.store.get(USER).webauthn_keys == 1  # type: ignore[union-attr]


def test_a_key_session_adds_a_second_key_without_a_code(keyed: Harness) -> None:
    assert register(keyed, SoftKey(b"soft-key-2"), T0 + 5, key_session=True) == []
    assert [k.name for k in keyed.store.webauthn_credentials(USER)] == ["laptop", "laptop"]


def test_registration_refused_without_user_verification_or_for_another_session(harness: Harness) -> None:
    passkeys = harness.enrollment.passkeys
    key = SoftKey()
    options, challenge_id = passkeys.registration_options(USER, LAB, SESSION, T0, Proof(True))
    response = key.register(LAB.id, LAB.origin, options_challenge(options), uv=False)
    with pytest.raises(UserNotVerified):
        passkeys.register(USER, LAB, challenge_id, SESSION, response, "k", T0)
    options, challenge_id = passkeys.registration_options(USER, LAB, SESSION, T0, Proof(True))
    response = key.register(LAB.id, LAB.origin, options_challenge(options))
    with pytest.raises(KeyStepError, match="start it again"):
        passkeys.register(USER, LAB, challenge_id, "another-session", response, "k", T0)
    options, challenge_id = passkeys.registration_options(USER, LAB, SESSION, T0, Proof(True))
    response = key.register(PHISH.id, PHISH.origin, options_challenge(options))
    with pytest.raises(CredentialRefused):
        passkeys.register(USER, LAB, challenge_id, SESSION, response, "k", T0)
    assert harness.store.webauthn_credentials(USER) == []


def test_login_options_need_the_password_and_a_key(harness: Harness) -> None:
    passkeys = harness.enrollment.passkeys
    with pytest.raises(CodeRejected):
        passkeys.login_options(USER, LAB, SESSION, T0, first_factor_ok=False)
    with pytest.raises(NoKeys):
        passkeys.login_options(USER, LAB, SESSION, T0, first_factor_ok=True)


def test_the_last_factor_is_not_removed(keyed: Harness, key: SoftKey) -> None:
    passkeys = keyed.enrollment.passkeys
    with pytest.raises(LastFactor):
        passkeys.remove(USER, key.credential_id, T0, Proof(True, key_session=True))
    register(keyed, SoftKey(b"soft-key-2"), T0, key_session=True)
    with pytest.raises(CodeRejected):
        passkeys.remove(USER, key.credential_id, T0, Proof(False, key_session=True))
    passkeys.remove(USER, key.credential_id, T0, Proof(True, key_session=True))
    with pytest.raises(UnknownKey):
        passkeys.remove(USER, key.credential_id, T0, Proof(True, key_session=True))
    assert [b64s(k.credential_id) for k in keyed.store.webauthn_credentials(USER)] == [b64s(b"soft-key-2")]


def test_removing_a_key_takes_the_current_factor(harness: Harness, key: SoftKey) -> None:
    """With the password alone, whoever has it could strip the account down to the factor they can phish."""
    codes = register(harness, key)
    register(harness, SoftKey(b"soft-key-2"), T0, key_session=True)
    passkeys = harness.enrollment.passkeys
    with pytest.raises(CodeRejected):
        passkeys.remove(USER, key.credential_id, T0, Proof(True))  # the password alone
    with pytest.raises(KeyStepError, match="log in with one"):  # where a key is required, only a key session
        passkeys.remove(USER, key.credential_id, T0, Proof(True, code=codes[0], key_required=True))
    passkeys.remove(USER, key.credential_id, T0, Proof(True, code=codes[0]))
    assert harness.store.get(USER).webauthn_keys == 1  # type: ignore[union-attr]


def test_two_removals_at_once_never_leave_the_account_without_a_factor(harness: Harness) -> None:
    """Each removal locks the account, then counts in a statement of its own: on PostgreSQL a count taken in
    the statement that waited for the lock would miss the other removal, and both would go through."""
    keys = [SoftKey(b"key-a"), SoftKey(b"key-b")]
    register(harness, keys[0])
    register(harness, keys[1], T0, key_session=True)
    store = harness.store
    with ThreadPoolExecutor(2) as pool:
        with store.checking(USER):  # hold the account's lock while both removals queue behind it
            futures = [
                pool.submit(store.unlink_webauthn_credential, USER, k.credential_id, keep_a_factor=True) for k in keys
            ]
            time.sleep(0.5)
        outcomes = sorted(future.result().value for future in futures)
    assert outcomes == ["last-factor", "removed"]
    assert store.get(USER).has_second_factor  # type: ignore[union-attr]


def test_a_first_factor_challenge_links_nothing_once_a_factor_exists(harness: Harness, key: SoftKey) -> None:
    """Options asked with the password alone (no factor yet) must not add a key after the owner linked the app."""
    passkeys = harness.enrollment.passkeys
    options, challenge_id = passkeys.registration_options(USER, LAB, SESSION, T0, Proof(True))
    harness.enroll(now=T0 + 1)  # the owner links the app meanwhile
    response = key.register(LAB.id, LAB.origin, options_challenge(options))
    with pytest.raises(KeyStepError, match="start it again"):
        passkeys.register(USER, LAB, challenge_id, SESSION, response, "attacker", T0 + 2)
    assert harness.store.webauthn_credentials(USER) == []


def test_rename(keyed: Harness, key: SoftKey) -> None:
    assert keyed.enrollment.passkeys.rename(USER, key.credential_id, " YubiKey 5C ").name == "YubiKey 5C"
    with pytest.raises(UnknownKey):
        keyed.enrollment.passkeys.rename(USER, b"nope", "x")


@pytest.mark.parametrize("typed", ["x" * 65, "tab\there", "nul\x00", 5, None])
def test_bad_key_names_refused(typed: object) -> None:
    with pytest.raises(KeyStepError):
        key_name(typed)
