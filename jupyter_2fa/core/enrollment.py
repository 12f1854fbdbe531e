"""Linking a device: begin (password already checked) -> pending -> shown once -> confirmed -> active.

An active factor is replaced only by an admin's reset or by a re-link that proved the current factor. The
pending secret is handed out exactly once; a second ``begin`` starts a fresh secret and voids the old one, so
a reload or a second tab never sees the first secret again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import recovery
from .audit import Action
from .errors import CodeRejected, EnrollmentError
from .passkeys import Passkeys
from .qr import qr_card_svg, qr_svg, qr_terminal
from .totp import InvalidCode, matching_step, new_secret, normalize_code, provisioning_uri
from .verdicts import Outcome, Verdict

if TYPE_CHECKING:
    from .verifier import Verifier


class AlreadyEnrolled(EnrollmentError):
    reason = "already-enrolled"


class NotEnrolled(EnrollmentError):
    reason = "not-enrolled"


class NoPendingEnrollment(EnrollmentError):
    reason = "no-pending-enrollment"


class AlreadyShown(EnrollmentError):
    reason = "already-shown"


@dataclass(frozen=True)
class Provisioning:
    """What the user's app needs, handed out once. Never log it or put it in a URL."""

    secret: str
    uri: str

    @property
    def manual_key(self) -> str:
        """The secret in groups of four, as authenticator apps accept it typed by hand."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))

    def svg(self) -> str:
        return qr_svg(self.uri)

    def card_svg(self) -> str:
        """The QR code and the typed-out key as one picture (what a one-time image link serves)."""
        return qr_card_svg(self.uri, self.manual_key)

    def terminal(self, invert: bool = False) -> str:
        return qr_terminal(self.uri, invert=invert)

    def __repr__(self) -> str:  # keep the secret out of tracebacks and debug logs
        return "Provisioning(secret=<hidden>, uri=<hidden>)"


class Enrollment:
    """The device-linking state machine, on top of a :class:`Verifier` (and so its store and throttle)."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.store = verifier.store
        self.settings = verifier.settings
        self.passkeys = Passkeys(verifier)

    def begin(self, username: str, now: float, remote_addr: str | None = None) -> float:
        """Create a pending secret for a user whose password the caller has checked; returns its expiry.

        Refused with :class:`AlreadyEnrolled` when a factor is active (that needs :meth:`begin_relink`).
        """
        expires_at = now + self.settings.enrollment_lifetime
        if not self.store.set_pending(username, new_secret(), expires_at, relink=False):
            self._audit(Action.ENROLLMENT_STARTED, username, "failure", "already-enrolled", now, remote_addr)
            raise AlreadyEnrolled(f"{username} already has an active second factor")
        self._audit(Action.ENROLLMENT_STARTED, username, "success", "started", now, remote_addr)
        return expires_at

    def start(
        self,
        username: str,
        now: float,
        *,
        first_factor_ok: bool,
        code: object = "",
        remote_addr: str | None = None,
        key_session: bool = False,
    ) -> Provisioning:
        """What a "link your device" form does: check the password (throttled), begin a new enrollment, or a
        re-link when a device is already linked (which needs ``code``), and reveal it once.

        An account with only passkeys or security keys adds the app beside them with the password and a
        recovery code (``code``) or from a browser session opened with one of its keys (``key_session``):
        the password alone must never add a factor that then stands in for the key.

        Raises :class:`CodeRejected` (wrong password or code, throttled, locked) or another EnrollmentError.
        """
        account = self.store.get(username)
        if account is not None and account.enrolled:
            self.begin_relink(username, code, now, remote_addr, first_factor_ok=first_factor_ok)
        elif account is not None and account.has_second_factor and not key_session:
            self.prove_factor(Action.ENROLLMENT_STARTED, username, code, now, remote_addr, first_factor_ok)
            self.begin(username, now, remote_addr)
        else:
            verdict = self.verifier.verify_password_only(
                username, first_factor_ok, now, "enrollment", remote_addr=remote_addr, action=Action.PASSWORD_CHECK
            )
            if not verdict.ok:
                raise CodeRejected("the password was not accepted", verdict)
            self.begin(username, now, remote_addr)
        return self.reveal(username, now, remote_addr)

    def begin_relink(
        self,
        username: str,
        code: object,
        now: float,
        remote_addr: str | None = None,
        *,
        first_factor_ok: bool = True,
    ) -> float:
        """Start replacing an active factor; needs the current code or a recovery code (and the password,
        which the caller checked). The old factor keeps working until the new one is confirmed."""
        self.prove_factor(Action.RELINK, username, code, now, remote_addr, first_factor_ok)
        expires_at = now + self.settings.enrollment_lifetime
        if not self.store.set_pending(username, new_secret(), expires_at, relink=True):
            raise NotEnrolled(f"{username} has no active second factor to replace")
        self._audit(Action.RELINK, username, "success", "started", now, remote_addr)
        return expires_at

    def reveal(self, username: str, now: float, remote_addr: str | None = None) -> Provisioning:
        """The pending secret and its otpauth URI, exactly once; :class:`AlreadyShown` afterwards."""
        secret = self.store.reveal_pending(username, now)
        if secret is None:
            account = self.store.get(username)
            error: EnrollmentError
            if account is None or account.pending_secret is None:
                error = NoPendingEnrollment("there is no pending enrollment; start one")
            elif account.pending_expires_at is not None and account.pending_expires_at <= now:
                error = NoPendingEnrollment("the pending enrollment has expired; start a new one")
            else:
                error = AlreadyShown(
                    "the QR code of this enrollment was already shown and cannot be shown again; "
                    "cancel it and start a new one if you did not scan it"
                )
            self._audit(Action.ENROLLMENT_SHOWN, username, "failure", error.reason, now, remote_addr)
            raise error
        uri = provisioning_uri(secret, username, self.settings.issuer, self.settings.totp)
        self._audit(Action.ENROLLMENT_SHOWN, username, "success", "shown", now, remote_addr)
        return Provisioning(secret=secret, uri=uri)

    def confirm(self, username: str, code: object, now: float, remote_addr: str | None = None) -> list[str]:
        """Activate the pending secret if ``code`` comes from it; returns the new recovery codes (show once)."""
        # Nothing (unexpired) pending, e.g. a double-submitted form, is no guess at a code: it is not counted.
        before = self.store.get(username)
        if before is None or before.pending_secret is None:
            self._audit(Action.ENROLLMENT_CONFIRMED, username, "failure", NoPendingEnrollment.reason, now, remote_addr)
            raise NoPendingEnrollment("there is no pending enrollment to confirm; start one")
        if before.pending_expires_at is None or before.pending_expires_at <= now:
            self._audit(Action.ENROLLMENT_CONFIRMED, username, "failure", "expired", now, remote_addr)
            raise NoPendingEnrollment("the pending enrollment has expired; start a new one")
        attempt = self.verifier.admit(username, now)
        account = attempt.account
        if account is None or account.pending_secret is None:
            raise NoPendingEnrollment("the pending enrollment changed meanwhile; start a new one")
        if attempt.refusal is not None:
            self._audit(Action.ENROLLMENT_CONFIRMED, username, "failure", attempt.refusal.reason, now, remote_addr)
            raise CodeRejected("too many failed attempts", attempt.refusal)
        verdict, step = self._check_pending(account.pending_secret, account.pending_expires_at, code, now)
        self.verifier.settle(attempt, verdict, now, remote_addr)
        if step is None:
            self._audit(Action.ENROLLMENT_CONFIRMED, username, "failure", verdict.reason, now, remote_addr)
            if verdict.reason == "expired":
                raise NoPendingEnrollment("the pending enrollment has expired; start a new one")
            raise CodeRejected("the code does not match the new device; check the app and try again", verdict)
        codes = recovery.new_codes(self.settings.recovery_code_count)
        hashes = [recovery.hash_code(c) for c in codes]
        if not self.store.activate_pending(username, account.pending_secret, step, hashes, now):
            raise NoPendingEnrollment("the pending enrollment changed meanwhile; start a new one")
        reason = "relinked" if account.pending_relink else "confirmed"
        self._audit(Action.ENROLLMENT_CONFIRMED, username, "success", reason, now, remote_addr)
        return codes

    def cancel(self, username: str, now: float, remote_addr: str | None = None) -> bool:
        cancelled = self.store.cancel_pending(username)
        if cancelled:
            self._audit(Action.ENROLLMENT_CANCELLED, username, "success", "cancelled", now, remote_addr)
        return cancelled

    def regenerate_recovery_codes(
        self,
        username: str,
        code: object,
        now: float,
        remote_addr: str | None = None,
        *,
        first_factor_ok: bool = True,
    ) -> list[str]:
        """Replace every recovery code after a current TOTP code (or a recovery code) was accepted."""
        self.prove_factor(Action.RECOVERY_CODES_REGENERATED, username, code, now, remote_addr, first_factor_ok)
        codes = recovery.new_codes(self.settings.recovery_code_count)
        self.store.replace_recovery_codes(username, [recovery.hash_code(c) for c in codes])
        self._audit(Action.RECOVERY_CODES_REGENERATED, username, "success", "regenerated", now, remote_addr)
        return codes

    def reset(self, username: str, now: float) -> bool:
        """Admin: delete the factor so the user can link a new device; signs out every session."""
        done = self.store.reset(username)
        if done:
            self._audit(Action.RESET, username, "success", "admin", now, None)
        return done

    def unlock(self, username: str, now: float) -> bool:
        done = self.store.unlock(username)
        if done:
            self._audit(Action.UNLOCK, username, "success", "admin", now, None)
        return done

    def prove_factor(
        self,
        action: Action,
        username: str,
        code: object,
        now: float,
        remote_addr: str | None,
        first_factor_ok: bool,
    ) -> None:
        """Require the password (checked by the caller) and a current or recovery code before ``action``."""
        verdict = self.verifier.verify(username, code, now, first_factor_ok=first_factor_ok, remote_addr=remote_addr)
        if verdict.outcome is Outcome.NOT_ENROLLED:
            raise NotEnrolled(f"{username} has no active second factor")
        if not verdict.ok:
            self._audit(action, username, "failure", verdict.reason, now, remote_addr)
            raise CodeRejected("the current code was not accepted", verdict)

    def _check_pending(
        self, pending_token: str, expires_at: float | None, code: object, now: float
    ) -> tuple[Verdict, int | None]:
        """The verdict on a confirmation code, and the time step it matched (None unless accepted)."""
        if expires_at is None or expires_at <= now:
            return Verdict(Outcome.INVALID, "expired"), None
        try:
            normalized = normalize_code(code, self.settings.totp.digits)
        except InvalidCode:
            return Verdict(Outcome.INVALID, "malformed-code"), None
        secret = self.store.keyring.decrypt(pending_token)
        step = matching_step(secret, normalized, now, self.settings.window, self.settings.totp)
        if step is None:
            return Verdict(Outcome.INVALID, "wrong-code"), None
        return Verdict(Outcome.ACCEPTED, "confirmed"), step

    def _audit(
        self, action: Action, username: str, outcome: str, reason: str, now: float, remote_addr: str | None
    ) -> None:
        self.verifier.record(action, username, outcome, reason, remote_addr, now)
