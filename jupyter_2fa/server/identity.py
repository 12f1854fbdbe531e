"""The gate: a jupyter_server IdentityProvider that asks for the password *and* a TOTP code.

Every way into the server (pages, REST API, kernels' websockets, files, terminals) asks the identity provider
for the current user, so refusing here refuses everywhere. A session is a signed cookie carrying the factor
epoch of the account; reset, re-link and logout move the epoch, which voids every older cookie at once.
"""

from __future__ import annotations

import getpass
import hmac
import inspect
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jupyter_server.auth.identity import PasswordIdentityProvider, User
from tornado import web
from traitlets import Bool, Float, Unicode, default

from ..config import TwoFactorConfig
from ..core import Enrollment, Outcome, StoreError, Verdict
from ..core.audit import Action, AuditSink, fan_out
from ..core.network import in_networks, parse_networks
from ..endpoints import STATUS_TOKEN_HEADER
from ..messages import refusal
from ..web import BadInput, basic_credentials, request_client_address

COOKIE_REFRESH_SECONDS = 60  # how stale the cookie's "last seen" may get before it is rewritten
MAX_PASSWORD_LENGTH = 1024  # longer input is not hashed, just refused
# Per-request credentials for callers without a browser session (a notebook kernel): they reach only the 2FA
# API handlers that accept them, and never become a cookie.
API_CREDENTIAL_FACTORS = frozenset({"password", "status-token"})


@dataclass
class TwoFactorUser(User):
    """A jupyter_server User plus what its session was granted on."""

    epoch: int = 0
    # totp | recovery-code | trusted-network | optional-policy | token, or one of API_CREDENTIAL_FACTORS
    factor: str = "totp"
    issued_at: float = 0.0
    seen_at: float = 0.0


@dataclass(frozen=True)
class LoginResult:
    """What the login form should do: set a session for ``user``, or show ``message`` with ``status``."""

    user: TwoFactorUser | None = None
    status: int = 200
    message: str = ""
    enroll: bool = False  # the password was right but no device is linked: go to the enrollment page
    retry_after: float = 0.0


class EpochView:
    """An in-memory copy of every account's session epoch, refreshed in the background.

    Checking a cookie then costs a dict lookup, not a database query; changes made in this process show at
    once, changes made elsewhere (an admin's ``jupyter 2fa reset``) within ``interval`` seconds.
    """

    def __init__(self, load: Callable[[], dict[str, int]], interval: float) -> None:
        self._load = load
        self.interval = interval
        self._epochs: dict[str, int] | None = None
        self._loaded_at = 0.0
        self._refreshing = threading.Lock()

    def get(self, username: str) -> int | None:
        if self._epochs is None:
            self._refresh()  # the first request waits; every later one reads the copy
        elif time.monotonic() - self._loaded_at > self.interval and not self._refreshing.locked():
            threading.Thread(target=self._refresh, name="jupyter-2fa-epochs", daemon=True).start()
        return None if self._epochs is None else self._epochs.get(username, 0)

    def set(self, username: str, epoch: int) -> None:
        if self._epochs is not None:
            self._epochs[username] = epoch

    def _refresh(self) -> None:
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            self._epochs = dict(self._load())
            self._loaded_at = time.monotonic()
        except StoreError:
            self._loaded_at = time.monotonic()  # keep the last view; retry after the interval
        finally:
            self._refreshing.release()


class TOTPIdentityProvider(PasswordIdentityProvider, TwoFactorConfig):
    """Password (jupyter_server's own ``hashed_password``) plus a TOTP code from the user's phone.

    Enable with ``c.ServerApp.identity_provider_class = "jupyter_2fa.server.TOTPIdentityProvider"`` or
    ``jupyter 2fa enable``. Settings shared with the hub authenticator live in ``c.TwoFactorConfig``.
    """

    username = Unicode(
        config=True,
        help="""The account name this server checks codes for, the same name `jupyter 2fa` commands use.
        Default: the operating-system user running the server.

        .. versionadded:: 0.1
        """,
    )

    @default("username")
    def _username_default(self) -> str:
        return getpass.getuser()

    allow_token_access = Bool(
        False,
        config=True,
        help="""Accept the server's API token (``?token=``, ``Authorization: token …``) as well as 2FA logins.

        Off by default: the token is a single factor, and anyone holding it would skip the second factor.
        Turn it on only for scripts that must reach the API, keep the token secret, and expect a warning in
        the start-up log. The token is never accepted in the login form's password field.

        .. warning:: With this on, the token alone opens the server.

        .. versionadded:: 0.1
        """,
    )

    session_max_age = Float(
        12 * 3600,
        config=True,
        help="""Seconds a login lasts at most, however active the session is. Default 43200 (12 hours).

        .. versionadded:: 0.1
        """,
    )

    session_idle_timeout = Float(
        2 * 3600,
        config=True,
        help="""Seconds without a request after which a login expires. Default 7200 (2 hours). An open
        JupyterLab tab polls the server and so keeps its session alive; a closed one lets it lapse.

        .. versionadded:: 0.1
        """,
    )

    epoch_refresh_interval = Float(
        5.0,
        config=True,
        help="""Seconds between reloads of the in-memory copy of session epochs. A reset or re-link made by
        another process (``jupyter 2fa reset``) signs sessions out within this time; one made through this
        server does so at once. Default 5.

        .. versionadded:: 0.1
        """,
    )

    @default("need_token")
    def _need_token_default(self) -> bool:
        return bool(self.allow_token_access)

    @default("login_handler_class")
    def _login_handler_class_default(self) -> type:
        from .handlers import TOTPLoginHandler

        return TOTPLoginHandler

    @default("logout_handler_class")
    def _logout_handler_class_default(self) -> type:
        from .handlers import TOTPLogoutHandler

        return TOTPLogoutHandler

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._enrollment: Enrollment | None = None
        self._extra_audit_sinks: list[AuditSink] = []
        self._epochs = EpochView(lambda: self.enrollment.store.epochs(), self.epoch_refresh_interval)
        self._trusted_networks = parse_networks(self.trusted_networks)
        self._trusted_proxies = parse_networks(self.trusted_proxies)
        # Lets this server's kernels read (never change) the 2FA status; the extension puts it in their env.
        self.status_token = secrets.token_urlsafe(32)

    # -- the core ------------------------------------------------------------------------------------------

    @property
    def enrollment(self) -> Enrollment:
        """The core, opened on first use; raises StoreError (handlers answer 503) while the store is down."""
        if self._enrollment is None:
            enrollment = self.open_enrollment(fan_out(self.audit_sink(), *self._extra_audit_sinks))
            enrollment.store.ensure_account(self.username)  # the one account: count every wrong password
            self._enrollment = enrollment
        return self._enrollment

    def add_audit_sink(self, sink: AuditSink) -> None:
        """Also send every decision to ``sink`` (the extension adds jupyter_events this way)."""
        self._extra_audit_sinks.append(sink)
        if self._enrollment is not None:
            verifier = self._enrollment.verifier
            verifier.audit = fan_out(verifier.audit, sink)

    def client_address(self, handler: web.RequestHandler) -> str | None:
        return request_client_address(handler.request, self._trusted_proxies)

    def password_ok(self, password: object) -> bool:
        return (
            isinstance(password, str)
            and 0 < len(password) <= MAX_PASSWORD_LENGTH
            and "\x00" not in password
            and bool(self.hashed_password)
            and bool(self.passwd_check(password))
        )

    # -- logging in ----------------------------------------------------------------------------------------

    def authenticate(self, handler: web.RequestHandler, password: object, otp: object) -> LoginResult:
        """Decide a login from the form's ``password`` and ``otp`` fields."""
        now = time.time()
        remote = self.client_address(handler)
        try:
            verifier = self.enrollment.verifier
        except StoreError as err:
            self.log.error("2FA store unavailable: %s", err)
            return self.refusal(Verdict(Outcome.UNAVAILABLE, "store-unavailable"))
        verdict = verifier.login(
            self.username,
            otp,
            now,
            first_factor_ok=self.password_ok(password),
            remote_addr=remote,
            trusted_network=in_networks(remote, self._trusted_networks),
            password_alone_allowed=self.password_alone_allowed(now),
        )
        if verdict.ok:
            return LoginResult(user=self.session_user(verdict.reason, now))
        if verdict.outcome is Outcome.NOT_ENROLLED:
            if self.enrollment_policy == "cli-only":
                return LoginResult(
                    status=403,
                    message="No authenticator device is linked to this account. Link one in a terminal with "
                    "`jupyter 2fa enroll`, then log in with its code.",
                )
            return LoginResult(status=303, enroll=True)
        return self.refusal(verdict)

    def refusal(self, verdict: Verdict) -> LoginResult:
        """The user-facing answer to a failed attempt: one message for every wrong factor."""
        answer = refusal(verdict, self.help_text)
        return LoginResult(status=answer.status, message=answer.message, retry_after=answer.retry_after)

    def session_user(self, factor: str, now: float) -> TwoFactorUser:
        """A new session for the account, stamped with its current epoch."""
        account = self.enrollment.store.get(self.username)
        epoch = account.epoch if account else 0
        self._epochs.set(self.username, epoch)
        return TwoFactorUser(
            username=self.username,
            name=self.username,
            display_name=self.username,
            epoch=epoch,
            factor=factor,
            issued_at=now,
            seen_at=now,
        )

    def revoke_sessions(self, handler: web.RequestHandler | None = None) -> None:
        """Sign out every session of the account, in every browser (logout, re-link)."""
        store = self.enrollment.store
        store.ensure_account(self.username)
        store.bump_epoch(self.username)
        account = store.get(self.username)
        if account is not None:
            self._epochs.set(self.username, account.epoch)

    def reload_epoch(self) -> None:
        """Take the account's epoch from the store at once, after a change that issued no new cookie here
        (a device confirmed by a kernel), so older sessions end now rather than at the next refresh."""
        account = self.enrollment.store.get(self.username)
        if account is not None:
            self._epochs.set(self.username, account.epoch)

    # -- sessions ------------------------------------------------------------------------------------------

    def user_to_cookie(self, user: User) -> str:
        if not isinstance(user, TwoFactorUser):
            raise TypeError("the 2FA gate only issues sessions for TwoFactorUser")
        return json.dumps(
            {"u": user.username, "e": user.epoch, "f": user.factor, "i": user.issued_at, "s": user.seen_at},
            separators=(",", ":"),
        )

    def user_from_cookie(self, cookie_value: str) -> TwoFactorUser | None:
        data = json.loads(cookie_value)
        if not isinstance(data, dict) or data.get("u") != self.username:
            return None
        return TwoFactorUser(
            username=self.username,
            name=self.username,
            display_name=self.username,
            epoch=int(data["e"]),
            factor=str(data["f"]),
            issued_at=float(data["i"]),
            seen_at=float(data["s"]),
        )

    def get_user_cookie(self, handler: web.RequestHandler) -> TwoFactorUser | None:  # type: ignore[override]
        user = super().get_user_cookie(handler)
        if not isinstance(user, TwoFactorUser):
            return None
        now = time.time()
        if not self.session_valid(user, now, handler):
            handler._jupyter_2fa_stale_session = True  # type: ignore[attr-defined]
            return None
        if now - user.seen_at > min(COOKIE_REFRESH_SECONDS, self.session_idle_timeout / 2):
            user.seen_at = now
            self.set_login_cookie(handler, user)
        return user

    def session_valid(self, user: TwoFactorUser, now: float, handler: web.RequestHandler) -> bool:
        """Age, idle time, epoch, and whether what granted the session still holds."""
        if now - user.issued_at > self.session_max_age or now - user.seen_at > self.session_idle_timeout:
            return False
        if user.epoch != self._epochs.get(user.username):
            return False
        if user.factor == "trusted-network":
            return in_networks(self.client_address(handler), self._trusted_networks)
        if user.factor == "optional-policy":
            return self.password_alone_allowed(now)
        return user.factor in ("totp", "recovery-code")

    def clear_login_cookie(self, handler: web.RequestHandler) -> None:
        """Clear the cookie, except a well-signed one that has merely ended: that request may have left the
        browser just before a confirm or re-link gave it a new cookie, which clearing would delete too. A kept
        stale cookie stays refused (its epoch or age is checked on every request)."""
        if getattr(handler, "_jupyter_2fa_stale_session", False):
            return
        super().clear_login_cookie(handler)

    def set_login_cookie(self, handler: web.RequestHandler, user: User) -> None:
        self.cookie_options.setdefault("samesite", "Lax")
        super().set_login_cookie(handler, user)

    async def get_user(self, handler: web.RequestHandler) -> User | None:
        user = self.api_credential_user(handler)
        if user is not None:
            return user
        found = super().get_user(handler)
        return await found if inspect.isawaitable(found) else found

    def api_credential_user(self, handler: web.RequestHandler) -> TwoFactorUser | None:
        """The account, for a 2FA API request that carries the password (HTTP Basic) or the status token.

        Only handlers that say so (``accepts_password``, ``accepts_status_token``) look at these, so neither
        opens anything else. A Basic password is counted by the throttle like a login; the status token
        (GET status only) is what this server's kernels find in ``JUPYTER_2FA_STATUS_TOKEN``.
        """
        request = handler.request
        token = request.headers.get(STATUS_TOKEN_HEADER)
        if token is not None and getattr(handler, "accepts_status_token", False) and request.method == "GET":
            if not hmac.compare_digest(token.encode(), self.status_token.encode()):
                raise web.HTTPError(403, "wrong status token")
            return self._api_user("status-token")
        if not getattr(handler, "accepts_password", False):
            return None
        try:
            credentials = basic_credentials(request.headers.get("Authorization", ""))
        except BadInput as err:
            raise web.HTTPError(err.status, str(err)) from None
        if credentials is None:
            return None
        try:
            verdict = self.enrollment.verifier.verify_password_only(
                self.username,
                self.password_ok(credentials[1]),  # the user part is ignored: a single server has one account
                time.time(),
                "api",
                remote_addr=self.client_address(handler),
                action=Action.PASSWORD_CHECK,
            )
        except StoreError:
            verdict = Verdict(Outcome.UNAVAILABLE, "store-unavailable")
        if not verdict.ok:
            answer = self.refusal(verdict)
            error = web.HTTPError(403 if answer.status == 401 else answer.status, answer.message)
            if answer.retry_after:
                # Not handler.set_header: tornado's send_error clears the headers before writing the error.
                error.headers = {"Retry-After": str(int(answer.retry_after))}  # type: ignore[attr-defined]
            raise error
        return self._api_user("password")

    def _api_user(self, factor: str) -> TwoFactorUser:
        now = time.time()
        return TwoFactorUser(
            username=self.username, name=self.username, display_name=self.username, factor=factor, issued_at=now
        )

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        if not self.allow_token_access:
            return None
        return await super().get_user_token(handler)

    def generate_anonymous_user(self, handler: web.RequestHandler) -> User:
        """A token-authenticated request (only with ``allow_token_access``) acts as the account."""
        now = time.time()
        return TwoFactorUser(username=self.username, name=self.username, factor="token", issued_at=now, seen_at=now)

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        """Unused: the 2FA login handler calls :meth:`authenticate`. Never accept a token as a password."""
        return None

    @property
    def auth_enabled(self) -> bool:
        return True

    def validate_security(self, app: Any, ssl_options: dict[str, Any] | None = None) -> None:
        super().validate_security(app, ssl_options)
        if not self.hashed_password:
            self.log.critical("The 2FA gate needs a password (the first factor), and none is set.")
            self.log.critical("Set one with:  jupyter server password")
            raise SystemExit(1)
        if self.allow_token_access:
            self.log.warning(
                "TOTPIdentityProvider.allow_token_access is on: the API token alone opens this server, "
                "without the second factor."
            )
        self.log.info("2FA gate on for %r (policy %s)", self.username, self.enrollment_policy)


__all__ = ["LoginResult", "TOTPIdentityProvider", "TwoFactorUser"]
