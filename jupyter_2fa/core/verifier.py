"""The one entry point every front-end calls to check a second factor: throttle -> factor -> replay -> verdict.

Each check runs inside one store transaction (:meth:`Store.checking`) and so costs one durable commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from . import recovery
from .audit import Action, AuditEvent, AuditSink, discard
from .errors import StoreError
from .network import in_networks, source_of
from .settings import Settings
from .store import Account, GuessKeys, LoginCheck, Store
from .throttle import name_key
from .totp import InvalidCode, looks_like_totp, matching_step, normalize_code
from .verdicts import Attempt, Outcome, Verdict
from .webauthn import ClonedAuthenticator, CredentialRefused, KeyAssertion, UserNotVerified, verify_assertion


@dataclass(frozen=True)
class _RecoveryAttempt:
    """A recovery-shaped code, counted as a failure, to compare with the unused hashes outside the lock."""

    code: str
    hashes: list[tuple[int, str]]  # the unused codes, read under the lock
    epoch: int


class Verifier:
    """Checks second factors against the store, counting failures and refusing replays."""

    def __init__(self, store: Store, settings: Settings, audit: AuditSink = discard) -> None:
        self.store = store
        self.settings = settings
        self.audit = audit

    def verify(
        self,
        username: str,
        code: object,
        now: float,
        *,
        first_factor_ok: bool = True,
        remote_addr: str | None = None,
        device: str | None = None,
    ) -> Verdict:
        """Check ``code`` (a TOTP code, a recovery code or a :class:`KeyAssertion`) for ``username`` at Unix
        time ``now``.

        ``first_factor_ok`` is the front-end's password check; passing it in lets a wrong password and a wrong
        code take the same path, so they are throttled alike and answered alike. ``device`` names a browser
        that logged in to this account before (see :class:`GuessKeys`).
        """
        return self._guarded(
            Action.LOGIN,
            username,
            now,
            remote_addr,
            lambda: self._checked(username, now, remote_addr, code, first_factor_ok, device),
        )

    def login(
        self,
        username: str,
        code: object,
        now: float,
        *,
        first_factor_ok: bool,
        remote_addr: str | None = None,
        trusted_network: bool = False,
        password_alone_allowed: bool = False,
        device: str | None = None,
        key_required: bool = False,
    ) -> Verdict:
        """A login decision, the same for every front-end.

        From a trusted network the password is enough; so it is for a user without a device while the
        optional rollout policy allows it; otherwise the code or key is checked as :meth:`verify` does.
        ``key_required``: this account must use a phishing-resistant factor (a passkey or security key); a
        code gets :attr:`Outcome.KEY_REQUIRED`, and so does the trusted network (it stands in for a code).
        """
        if trusted_network and not key_required:
            return self.verify_password_only(
                username, first_factor_ok, now, "trusted-network", remote_addr=remote_addr, device=device
            )
        return self._guarded(
            Action.LOGIN,
            username,
            now,
            remote_addr,
            lambda: self._checked(
                username, now, remote_addr, code, first_factor_ok, device, password_alone_allowed, key_required
            ),
        )

    def verify_password_only(
        self,
        username: str,
        first_factor_ok: bool,
        now: float,
        reason: str,
        *,
        remote_addr: str | None = None,
        action: Action = Action.LOGIN,
        device: str | None = None,
    ) -> Verdict:
        """A check where the password alone is enough (trusted network, optional rollout, an API call).

        ``reason`` says why no second factor was asked for ("trusted-network", "optional-policy"); it is audited.
        A success clears nothing that a second factor counted: the password alone never buys more code guesses.
        """
        return self._guarded(
            action,
            username,
            now,
            remote_addr,
            lambda: self._password_checked(username, now, remote_addr, first_factor_ok, device, reason),
        )

    def _guarded(
        self,
        action: Action,
        username: str,
        now: float,
        remote_addr: str | None,
        check: Callable[[], Verdict],
    ) -> Verdict:
        """Run one check, failing closed if the store cannot be used, and audit its verdict."""
        try:
            verdict = check()
        except StoreError:
            verdict = Verdict(Outcome.UNAVAILABLE, "store-unavailable")
        self._record(action, username, verdict, now, remote_addr)
        return verdict

    def _password_checked(
        self, username: str, now: float, remote_addr: str | None, first_factor_ok: bool, device: str | None, reason: str
    ) -> Verdict:
        with self._checking(username, now, remote_addr, device) as check:
            return self._check_password(check, first_factor_ok, now, remote_addr, device) or self._password_alone(
                check, reason
            )

    def _checked(
        self,
        username: str,
        now: float,
        remote_addr: str | None,
        code: object,
        first_factor_ok: bool,
        device: str | None,
        password_alone_allowed: bool = False,
        key_required: bool = False,
    ) -> Verdict:
        """Password policy, throttle, factor, replay guard and the resulting counts: one transaction, one commit.

        A recovery code is the exception: its Argon2id hashes are compared after that transaction, with the
        attempt already counted, and a match is spent (and the count cleared) in a second one.
        """
        with self._checking(username, now, remote_addr, device) as check:
            decided = self._check_password(check, first_factor_ok, now, remote_addr, device) or self._check_factor(
                check, code, now, password_alone_allowed, key_required
            )
        if isinstance(decided, _RecoveryAttempt):
            decided = self._check_recovery_code(username, decided, now, remote_addr)
        if decided.reason == "cloned-key":
            self._record(Action.WEBAUTHN_CLONED, username, decided, now, remote_addr)
        if not decided.ok and check.counted == self.settings.throttle.lockout_threshold:
            self._record(Action.LOCK, username, Verdict(Outcome.LOCKED, "too-many-failures"), now, remote_addr)
        return decided

    def _checking(
        self, username: str, now: float, remote_addr: str | None, device: str | None
    ) -> AbstractContextManager[LoginCheck]:
        """The store's transaction for one check, reading with the account every wrong-password row the check
        may need: whether the name has a row (and so which name key counts) is only known once it is read."""
        policy = self.settings.guessing
        keys = {
            key
            for has_account in (True, False)
            for key, _ in self._guess_keys(username, has_account, remote_addr, device).counted(policy)
        }
        return self.store.checking(username, sorted(keys), now - policy.forget_after)

    def _guess_keys(self, username: str, has_account: bool, remote_addr: str | None, device: str | None) -> GuessKeys:
        policy = self.settings.guessing
        counted = policy.count_sources and not in_networks(remote_addr, policy.exempt_sources)
        source = source_of(remote_addr) if counted else None
        return GuessKeys(name_key(username, has_account), source and f"source:{source}", device)

    def _check_password(
        self, check: LoginCheck, first_factor_ok: bool, now: float, remote_addr: str | None, device: str | None
    ) -> Verdict | None:
        """Apply the wrong-password policy (:class:`GuessPolicy`); the refusal, if any.

        A name or source that must wait gets the same refusal whether or not this password was right.
        """
        policy = self.settings.guessing
        keys = self._guess_keys(check.username, check.account is not None, remote_addr, device)
        wait = check.count_guess(keys, not first_factor_ok, now, policy)
        if wait > 0:
            return Verdict(Outcome.THROTTLED, "throttled", retry_after=wait)
        if not first_factor_ok:
            return Verdict(Outcome.INVALID, "wrong-password")
        return None

    def _password_alone(self, check: LoginCheck, reason: str) -> Verdict:
        if check.account is None:
            # A right password gets the account a row (named in the throttle, listed for admins); wrong
            # passwords for names without a row create nothing.
            check.ensure_account()
            return Verdict(Outcome.ACCEPTED, reason, epoch=0)
        return self._locked(check.account) or Verdict(Outcome.ACCEPTED, reason, epoch=check.account.epoch)

    def _check_factor(
        self, check: LoginCheck, code: object, now: float, password_alone_allowed: bool, key_required: bool = False
    ) -> Verdict | _RecoveryAttempt:
        account = check.account
        if account is None or not account.has_second_factor:
            if password_alone_allowed and not key_required:
                return self._password_alone(check, "optional-policy")
            return (account and self._locked(account)) or Verdict(Outcome.NOT_ENROLLED, "not-enrolled")
        refusal = self._refusal(account, now)
        if refusal is not None:
            return refusal
        if isinstance(code, KeyAssertion):
            verdict = self._check_key(check, account, code, now)
        elif key_required:  # asked before the code is looked at: the answer says nothing about it
            return Verdict(Outcome.KEY_REQUIRED, "key-required")
        elif isinstance(code, str) and looks_like_totp(code, self.settings.totp.digits):
            verdict = self._check_totp(check, account, code, now)
        else:
            try:
                normalized = recovery.normalize(code)
            except InvalidCode:
                verdict = Verdict(Outcome.INVALID, "malformed-code")
            else:
                check.count_failure(now, self.settings.throttle)  # counted before Argon2id runs, unlocked
                return _RecoveryAttempt(normalized, check.unused_recovery_hashes(), account.epoch)
        if not verdict.ok:
            check.count_failure(now, self.settings.throttle)
        return verdict

    def _refusal(self, account: Account, now: float) -> Verdict | None:
        """The throttle's answer before a second factor is looked at: the same whether or not it is right."""
        wait = (account.next_attempt_at or now) - now
        throttled = Verdict(Outcome.THROTTLED, "throttled", retry_after=wait) if wait > 0 else None
        return self._locked(account) or throttled

    def _locked(self, account: Account) -> Verdict | None:
        return Verdict(Outcome.LOCKED, "locked") if self.settings.throttle.is_locked(account.failures) else None

    def admit(self, username: str, now: float) -> Attempt:
        """Count a second-factor attempt against ``username``'s throttle before the factor is checked, for a
        check that cannot run inside the login's transaction (confirming a pending device).

        Callers have checked the password first: only someone who knows it can spend these attempts. A
        locked or waiting account gets its refusal here, before the attempt is looked at, so the answer is
        the same whether or not the code was right. An account without a row has nothing to throttle.
        """
        with self.store.checking(username) as check:
            account = check.account
            if account is None:
                return Attempt(None, 0, None)
            refusal = self._refusal(account, now)
            failures = account.failures if refusal else check.count_failure(now, self.settings.throttle)
        return Attempt(account, failures, refusal)

    def settle(self, attempt: Attempt, verdict: Verdict, now: float, remote_addr: str | None) -> None:
        """Clear the failure count after a right second factor; write the lock event when this failure hit
        the limit."""
        if attempt.account is None or attempt.refusal is not None:
            return
        if verdict.ok:
            self.store.clear_failures(attempt.account.username)
        elif attempt.failures == self.settings.throttle.lockout_threshold:
            lock = Verdict(Outcome.LOCKED, "too-many-failures")
            self._record(Action.LOCK, attempt.account.username, lock, now, remote_addr)

    def _check_totp(self, check: LoginCheck, account: Account, code: str, now: float) -> Verdict:
        if account.secret is None:  # only keys are linked: no code can be right
            return Verdict(Outcome.INVALID, "wrong-code")
        secret = self.store.keyring.decrypt(account.secret)
        normalized = normalize_code(code, self.settings.totp.digits)
        step = matching_step(secret, normalized, now, self.settings.window, self.settings.totp)
        if step is None:
            return Verdict(Outcome.INVALID, "wrong-code")
        if not check.accept_step(step):
            return Verdict(Outcome.INVALID, "replayed-code")
        return Verdict(Outcome.ACCEPTED, "totp", epoch=account.epoch)

    def _check_key(self, check: LoginCheck, account: Account, key: KeyAssertion, now: float) -> Verdict:
        """A passkey's or security key's signature: the challenge this session was given (used up either
        way), one of the account's keys, the signature with user verification, a counter that moved on.
        The new counter is stored in this check's transaction, so of two logins racing with one signature
        at most one wins."""
        challenge = check.take_webauthn_challenge(key.challenge_id, "authenticate", key.bound_to, now)
        if challenge is None:
            return Verdict(Outcome.INVALID, "webauthn-challenge")
        credential_id = key.credential_id
        credential = check.webauthn_credential(credential_id) if credential_id else None
        if credential is None:
            return Verdict(Outcome.INVALID, "wrong-key")
        try:
            new_count = verify_assertion(key.relying_party, challenge, key.response_json, credential)
        except ClonedAuthenticator:
            return Verdict(Outcome.INVALID, "cloned-key")
        except UserNotVerified:
            return Verdict(Outcome.INVALID, "key-not-verified")
        except CredentialRefused:
            return Verdict(Outcome.INVALID, "wrong-key")
        if not check.accept_webauthn_use(credential, new_count, now):
            return Verdict(Outcome.INVALID, "replayed-key")
        return Verdict(Outcome.ACCEPTED, "webauthn", epoch=account.epoch)

    def _check_recovery_code(
        self, username: str, attempt: _RecoveryAttempt, now: float, remote_addr: str | None
    ) -> Verdict:
        for code_id, code_hash in attempt.hashes:
            if recovery.matches(attempt.code, code_hash):
                if not self.store.spend_recovery_code(username, code_id, now):
                    return Verdict(Outcome.INVALID, "replayed-code")
                left = len(attempt.hashes) - 1
                verdict = Verdict(Outcome.ACCEPTED, "recovery-code", recovery_codes_left=left, epoch=attempt.epoch)
                self._record(Action.RECOVERY_CODE_USED, username, verdict, now, remote_addr)
                return verdict
        return Verdict(Outcome.INVALID, "wrong-code")

    def _record(self, action: Action, username: str, verdict: Verdict, now: float, remote_addr: str | None) -> None:
        self.record(action, username, "success" if verdict.ok else "failure", verdict.reason, remote_addr, now)

    def record(
        self,
        action: Action,
        username: str,
        outcome: str,
        reason: str,
        remote_addr: str | None = None,
        now: float | None = None,
    ) -> None:
        """Write one audit event (``reason`` from a fixed vocabulary, never user input or a secret)."""
        self.audit(AuditEvent(action, username, outcome, reason, time.time() if now is None else now, remote_addr))
