"""Passkeys and security keys (WebAuthn) of an account: the ceremonies' options, registering, renaming,
removing. Logging in with a key is the verifier's (:meth:`Verifier.login` with a :class:`KeyAssertion`).

Every step that hands out options checks the password first (throttled like a login's), so a stranger can
neither learn which keys an account has nor fill the store with challenges. Registering beside a linked
factor also needs that factor, as a re-link does: a current code, a recovery code, or a browser session that
was opened with one of the account's keys.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import recovery
from .audit import Action
from .errors import CodeRejected, EnrollmentError
from .verdicts import KeyChange
from .webauthn import (
    CEREMONY_TIMEOUT_MS,
    CredentialRefused,
    RelyingParty,
    UserNotVerified,
    authentication_options,
    registration_options,
    verify_registration,
)

if TYPE_CHECKING:
    from .store import WebAuthnCredential
    from .verifier import Verifier

# A challenge lives as long as the browser's ceremony, and a little longer for the request that answers it.
CHALLENGE_LIFETIME = CEREMONY_TIMEOUT_MS / 1000 + 30
MAX_KEYS = 20  # per account: more is a mistake or an attack on the store
MAX_NAME_CHARS = 64
DEFAULT_KEY_NAME = "Security key"
NO_SUCH_KEY = "There is no such key on this account."
RESTART = "This key registration expired, was started elsewhere, or the account changed since: start it again."
TOO_MANY_KEYS = f"An account has at most {MAX_KEYS} keys: remove one first."


class KeyStepError(EnrollmentError):
    """A key step that cannot go on (its message is for the user)."""

    reason = "webauthn-error"


class NoKeys(KeyStepError):
    reason = "no-keys"


class LastFactor(KeyStepError):
    reason = "last-factor"


class UnknownKey(KeyStepError):
    reason = "unknown-key"


class KeyNotAdded(KeyStepError):
    """The account already has this key, or as many keys as it may."""

    reason = "key-not-added"


def key_name(typed: object) -> str:
    """A key's name as typed, tidied: outer spaces gone, at most :data:`MAX_NAME_CHARS`, no control characters;
    empty means :data:`DEFAULT_KEY_NAME`.

    >>> key_name("  YubiKey 5C "), key_name("")
    ('YubiKey 5C', 'Security key')
    """
    if not isinstance(typed, str):
        raise KeyStepError("a key's name must be text")
    name = typed.strip()
    if len(name) > MAX_NAME_CHARS:
        raise KeyStepError(f"a key's name has at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise KeyStepError("a key's name must not contain control characters")
    return name or DEFAULT_KEY_NAME


@dataclass(frozen=True)
class Proof:
    """What a caller showed for a key step: the password's check, the current factor's ``code`` (an app code
    or a recovery code), whether its browser session was opened with a key, and whether the account must log
    in with a key (``key_required``: then a code is not enough to add or remove keys)."""

    first_factor_ok: bool
    code: object = field(default="", repr=False)
    key_session: bool = False
    key_required: bool = False
    remote_addr: str | None = None


class Passkeys:
    """The key steps of one store, audited and throttled through ``verifier``."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.store = verifier.store

    def login_options(
        self,
        username: str,
        relying_party: RelyingParty,
        bound_to: str,
        now: float,
        *,
        first_factor_ok: bool,
        remote_addr: str | None = None,
    ) -> tuple[str, str]:
        """After the password: ``navigator.credentials.get()`` options for the account's keys, and the id of the
        challenge (kept in the store for ``bound_to``, the session that asked). :class:`NoKeys` when it has none."""
        self._password(username, first_factor_ok, now, remote_addr, "webauthn-login")
        keys = self.store.webauthn_credentials(username)
        if not keys:
            raise NoKeys("No passkey or security key is registered for this account: use the code from your app.")
        options, challenge = authentication_options(relying_party, [key.credential_id for key in keys])
        return options, self._keep(username, "authenticate", challenge, bound_to, now)

    def registration_options(
        self, username: str, relying_party: RelyingParty, bound_to: str, now: float, proof: Proof
    ) -> tuple[str, str]:
        """After the password, and the current factor when one is linked (``code``; or ``key_session``, a
        browser session opened with one of the account's keys): ``navigator.credentials.create()`` options and
        the challenge's id.

        An account that must log in with a key (``key_required``) and has one adds more only from a session
        opened with a key: a code can be relayed by a phishing page, which would then register its own key."""
        account = self.store.get(username)
        linked = account is not None and account.has_second_factor
        self._check(
            username, proof, now, Action.WEBAUTHN_ADDED, linked, account is not None and account.webauthn_keys > 0
        )
        keys = self.store.webauthn_credentials(username)
        if len(keys) >= MAX_KEYS:
            raise KeyNotAdded(TOO_MANY_KEYS)
        options, challenge = registration_options(relying_party, username, [key.credential_id for key in keys])
        purpose = "register" if account is not None and account.has_second_factor else "register-first"
        return options, self._keep(username, purpose, challenge, bound_to, now)

    def register(
        self,
        username: str,
        relying_party: RelyingParty,
        challenge_id: str,
        bound_to: str,
        response_json: str,
        name: object,
        now: float,
        remote_addr: str | None = None,
    ) -> tuple[WebAuthnCredential, list[str]]:
        """Store the key the browser created for :meth:`registration_options`' challenge. Returns it, and the
        account's new recovery codes when it is its first factor (show them once), else an empty list.

        Raises :class:`.CredentialRefused` (or :class:`.UserNotVerified`) for a response that does not hold."""
        tidy_name = key_name(name)
        taken = self.store.take_registration_challenge(challenge_id, username, bound_to, now)
        if taken is None:
            self._audit(Action.WEBAUTHN_ADDED, username, "failure", "webauthn-challenge", now, remote_addr)
            raise KeyStepError(RESTART)
        challenge, first = taken
        try:
            new = verify_registration(relying_party, challenge, response_json)
        except CredentialRefused as err:
            reason = "key-not-verified" if isinstance(err, UserNotVerified) else "wrong-key"
            self._audit(Action.WEBAUTHN_ADDED, username, "failure", reason, now, remote_addr)
            raise
        codes = recovery.new_codes(self.verifier.settings.recovery_code_count) if first else []
        hashes = [recovery.hash_code(code) for code in codes]
        # A challenge issued for a first factor links none once the account has one (and the reverse): what was
        # proven when it was issued (the password alone, or the current factor) must still be enough.
        change = self.store.link_webauthn_credential(
            username, new, tidy_name, now, hashes, first_factor=first, max_keys=MAX_KEYS
        )
        refused = {
            KeyChange.DUPLICATE: KeyNotAdded("This key is registered already."),
            KeyChange.TOO_MANY: KeyNotAdded(TOO_MANY_KEYS),
            KeyChange.STALE: KeyStepError(RESTART),
        }.get(change)
        if refused is not None:
            self._audit(Action.WEBAUTHN_ADDED, username, "failure", change.value, now, remote_addr)
            raise refused
        self._audit(Action.WEBAUTHN_ADDED, username, "success", change.value, now, remote_addr)
        stored = next(
            key for key in self.store.webauthn_credentials(username) if key.credential_id == new.credential_id
        )
        return stored, codes if change is KeyChange.FIRST_FACTOR else []

    def rename(self, username: str, credential_id: bytes, name: object) -> WebAuthnCredential:
        tidy_name = key_name(name)
        if not self.store.rename_webauthn_credential(username, credential_id, tidy_name):
            raise UnknownKey(NO_SUCH_KEY)
        return next(key for key in self.store.webauthn_credentials(username) if key.credential_id == credential_id)

    def remove(self, username: str, credential_id: bytes, now: float, proof: Proof) -> None:
        """Remove one key after the password and the current factor (``code``, or a session opened with a key;
        only the latter where the account must use a key); never the account's last factor (an admin's reset
        does that). With the password alone, whoever has it could strip an account down to the factor they
        can phish, or to none."""
        self._check(username, proof, now, Action.WEBAUTHN_REMOVED, factor_linked=True, keys_linked=True)
        change = self.store.unlink_webauthn_credential(username, credential_id, keep_a_factor=True)
        if change is KeyChange.LAST_FACTOR:
            raise LastFactor(
                "This is the account's only second factor: link the app or another key first "
                "(or ask an admin to reset the account)."
            )
        if change is not KeyChange.REMOVED:
            raise UnknownKey(NO_SUCH_KEY)
        self._audit(Action.WEBAUTHN_REMOVED, username, "success", "removed", now, proof.remote_addr)

    # -- steps shared by the verbs ---------------------------------------------------------------------------

    def _check(
        self, username: str, proof: Proof, now: float, action: Action, factor_linked: bool, keys_linked: bool
    ) -> None:
        """The password, and the current factor when one is linked (a code, or a session opened with a key;
        only the latter for an account that must use a key and has one: a phishing page can relay a code)."""
        address, why = proof.remote_addr, action.value
        if proof.key_session or not factor_linked:
            self._password(username, proof.first_factor_ok, now, address, why)
        elif proof.key_required and keys_linked:
            self._password(username, proof.first_factor_ok, now, address, why)
            self._audit(action, username, "failure", "key-required", now, address)
            raise KeyStepError("This account logs in with a passkey or security key: log in with one first.")
        else:
            verdict = self.verifier.verify(
                username, proof.code, now, first_factor_ok=proof.first_factor_ok, remote_addr=address
            )
            if not verdict.ok:
                self._audit(action, username, "failure", verdict.reason, now, address)
                raise CodeRejected("the current code was not accepted", verdict)

    def _password(self, username: str, first_factor_ok: bool, now: float, remote_addr: str | None, why: str) -> None:
        verdict = self.verifier.verify_password_only(
            username, first_factor_ok, now, why, remote_addr=remote_addr, action=Action.PASSWORD_CHECK
        )
        if not verdict.ok:
            raise CodeRejected("the password was not accepted", verdict)

    def _keep(self, username: str, purpose: str, challenge: bytes, bound_to: str, now: float) -> str:
        return self.store.save_webauthn_challenge(username, purpose, challenge, bound_to, now + CHALLENGE_LIFETIME, now)

    def _audit(
        self, action: Action, username: str, outcome: str, reason: str, now: float, remote_addr: str | None
    ) -> None:
        self.verifier.record(action, username, outcome, reason, remote_addr, now)
