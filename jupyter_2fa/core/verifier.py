"""The one entry point every front-end calls to check a second factor: throttle -> factor -> replay -> verdict."""

from __future__ import annotations

import time

from . import recovery
from .audit import Action, AuditEvent, AuditSink, discard
from .errors import StoreError
from .network import in_networks, source_of
from .settings import Settings
from .store import Account, GuessKeys, Store
from .throttle import name_key
from .totp import InvalidCode, looks_like_totp, matching_step, normalize_code
from .verdicts import Attempt, Outcome, Verdict


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
        """Check ``code`` (a TOTP code or a recovery code) for ``username`` at Unix time ``now``.

        ``first_factor_ok`` is the front-end's password check; passing it in lets a wrong password and a wrong
        code take the same path, so they are throttled alike and answered alike. ``device`` names a browser
        that logged in to this account before (see :class:`GuessKeys`).
        """
        try:
            verdict = self._verify(username, code, now, first_factor_ok, remote_addr, device)
        except StoreError:
            verdict = Verdict(Outcome.UNAVAILABLE, "store-unavailable")
        self._record(Action.LOGIN, username, verdict, now, remote_addr)
        return verdict

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
    ) -> Verdict:
        """A login decision, the same for every front-end.

        From a trusted network the password is enough; so it is for a user without a device while the
        optional rollout policy allows it; otherwise the code is checked with :meth:`verify`.
        """
        if trusted_network:
            return self.verify_password_only(
                username, first_factor_ok, now, "trusted-network", remote_addr=remote_addr, device=device
            )
        if password_alone_allowed:
            try:
                account = self.store.get(username)
            except StoreError:
                return self._unavailable(Action.LOGIN, username, now, remote_addr)
            if account is None or not account.enrolled:
                return self.verify_password_only(
                    username, first_factor_ok, now, "optional-policy", remote_addr=remote_addr, device=device
                )
        return self.verify(username, code, now, first_factor_ok=first_factor_ok, remote_addr=remote_addr, device=device)

    def _unavailable(self, action: Action, username: str, now: float, remote_addr: str | None) -> Verdict:
        verdict = Verdict(Outcome.UNAVAILABLE, "store-unavailable")
        self._record(action, username, verdict, now, remote_addr)
        return verdict

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
        try:
            refusal, account = self._check_password(username, first_factor_ok, now, remote_addr, device)
            if refusal is not None:
                verdict = refusal
            elif account is None:
                # A right password gets the account a row (named in the throttle, listed for admins); wrong
                # passwords for names without a row create nothing.
                self.store.ensure_account(username)
                verdict = Verdict(Outcome.ACCEPTED, reason)
            else:
                verdict = self._locked(account) or Verdict(Outcome.ACCEPTED, reason)
        except StoreError:
            verdict = Verdict(Outcome.UNAVAILABLE, "store-unavailable")
        self._record(action, username, verdict, now, remote_addr)
        return verdict

    def _check_password(
        self, username: str, first_factor_ok: bool, now: float, remote_addr: str | None, device: str | None = None
    ) -> tuple[Verdict | None, Account | None]:
        """Apply the wrong-password policy (:class:`GuessPolicy`); returns the refusal, if any, and the account.

        A name or source that must wait gets the same refusal whether or not this password was right.
        """
        account = self.store.get(username)
        policy = self.settings.guessing
        counted = policy.count_sources and not in_networks(remote_addr, policy.exempt_sources)
        source = source_of(remote_addr) if counted else None
        keys = GuessKeys(name_key(username, account is not None), source and f"source:{source}", device)
        wait = self.store.count_guess(keys, not first_factor_ok, now, policy)
        if wait > 0:
            return Verdict(Outcome.THROTTLED, "throttled", retry_after=wait), account
        if not first_factor_ok:
            return Verdict(Outcome.INVALID, "wrong-password"), account
        return None, account

    def _locked(self, account: Account) -> Verdict | None:
        return Verdict(Outcome.LOCKED, "locked") if self.settings.throttle.is_locked(account.failures) else None

    def admit(self, username: str, now: float) -> Attempt:
        """Count a second-factor attempt against ``username``'s throttle before the factor is checked.

        Callers have checked the password first: only someone who knows it can spend these attempts. A
        locked or waiting account gets its refusal here, before the attempt is looked at, so the answer is
        the same whether or not the code was right. An account without a row has nothing to throttle.
        """
        account = self.store.get(username)
        if account is None:
            return Attempt(None, 0, None)
        failures = self.store.reserve_attempt(username, now, self.settings.throttle)
        if failures is not None:
            return Attempt(account, failures, None)
        current = self.store.get(username) or account
        if self.settings.throttle.is_locked(current.failures):
            return Attempt(current, current.failures, Verdict(Outcome.LOCKED, "locked"))
        wait = max(0.0, (current.next_attempt_at or now) - now)
        return Attempt(current, current.failures, Verdict(Outcome.THROTTLED, "throttled", retry_after=wait))

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

    def _verify(
        self,
        username: str,
        code: object,
        now: float,
        first_factor_ok: bool,
        remote_addr: str | None,
        device: str | None = None,
    ) -> Verdict:
        refusal, account = self._check_password(username, first_factor_ok, now, remote_addr, device)
        if refusal is not None:
            return refusal
        if account is None or not account.enrolled:
            return (account and self._locked(account)) or Verdict(Outcome.NOT_ENROLLED, "not-enrolled")
        attempt = self.admit(username, now)
        if attempt.refusal is not None:
            return attempt.refusal
        assert attempt.account is not None
        if isinstance(code, str) and looks_like_totp(code, self.settings.totp.digits):
            verdict = self._check_totp(attempt.account, code, now)
        else:
            verdict = self._check_recovery_code(attempt.account, code, now, remote_addr)
        self.settle(attempt, verdict, now, remote_addr)
        return verdict

    def _check_totp(self, account: Account, code: str, now: float) -> Verdict:
        assert account.secret is not None
        secret = self.store.keyring.decrypt(account.secret)
        normalized = normalize_code(code, self.settings.totp.digits)
        step = matching_step(secret, normalized, now, self.settings.window, self.settings.totp)
        if step is None:
            return Verdict(Outcome.INVALID, "wrong-code")
        if not self.store.accept_step(account.username, account.generation, step):
            return Verdict(Outcome.INVALID, "replayed-code")
        return Verdict(Outcome.ACCEPTED, "totp")

    def _check_recovery_code(self, account: Account, code: object, now: float, remote_addr: str | None) -> Verdict:
        try:
            normalized = recovery.normalize(code)
        except InvalidCode:
            return Verdict(Outcome.INVALID, "malformed-code")
        for code_id, code_hash in self.store.unused_recovery_hashes(account.username):
            if recovery.matches(normalized, code_hash):
                if not self.store.spend_recovery_code(code_id, now):
                    return Verdict(Outcome.INVALID, "replayed-code")
                left = account.recovery_codes_left - 1
                verdict = Verdict(Outcome.ACCEPTED, "recovery-code", recovery_codes_left=max(left, 0))
                self._record(Action.RECOVERY_CODE_USED, account.username, verdict, now, remote_addr)
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
