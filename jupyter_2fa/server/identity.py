"""The gate: a jupyter_server IdentityProvider that asks for the password *and* a TOTP code.

Every way into the server (pages, REST API, kernels' websockets, files, terminals) asks the identity provider
for the current user, so refusing here refuses everywhere. This module is the identity and the login decision;
sessions live in :mod:`.sessions`, the API's per-request credentials in :mod:`.credentials`.
"""

from __future__ import annotations

import asyncio
import getpass
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from jupyter_server.auth import security
from jupyter_server.auth.identity import PasswordIdentityProvider, User
from tornado import web
from traitlets import Bool, Float, Type, Unicode, default

from ..core import Enrollment, Outcome
from ..core.hashing import hashing
from ..web.host import Host, PasswordCheck
from .credentials import api_credential_user
from .sessions import SessionFactor, Sessions, TwoFactorUser

# jupyter_server's password check, typed (jupyter_server.auth.security has no annotations).
passwd_check = cast(Callable[[str, str], bool], security.passwd_check)
MAX_PASSWORD_LENGTH = 1024  # longer input is not hashed, just refused
NOT_ENROLLED_CLI_ONLY = (
    "No authenticator device is linked to this account. Link one in a terminal with `jupyter 2fa enroll`, "
    "then log in with its code."
)


@dataclass(frozen=True)
class LoginResult:
    """What the login form should do: set a session for ``user``, or show ``message`` with ``status``."""

    user: TwoFactorUser | None = None
    status: int = 200
    message: str = ""
    enroll: bool = False  # the password was right but no device is linked: go to the enrollment page
    retry_after: float = 0.0


class TOTPIdentityProvider(Host, PasswordIdentityProvider):
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

    login_handler_class = Type(
        default_value="jupyter_2fa.server.login.TOTPLoginHandler",
        klass=web.RequestHandler,
        config=True,
        help="""The handler of the login page: one form with the password and the code. Default
        ``jupyter_2fa.server.login.TOTPLoginHandler``; a replacement must keep asking for both factors.

        .. versionadded:: 0.1
        """,
    )

    logout_handler_class = Type(
        default_value="jupyter_2fa.server.login.TOTPLogoutHandler",
        klass=web.RequestHandler,
        config=True,
        help="""The handler of the logout page, which ends the account's sessions in every browser. Default
        ``jupyter_2fa.server.login.TOTPLogoutHandler``.

        .. versionadded:: 0.1
        """,
    )

    @default("need_token")
    def _need_token_default(self) -> bool:
        return bool(self.allow_token_access)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = Sessions(
            self.username,
            lambda: self.enrollment.store,
            self.session_max_age,
            self.session_idle_timeout,
            self.epoch_refresh_interval,
        )
        # Requests whose cookie is well signed but ended (see clear_login_cookie); gone with the request.
        self._stale_cookies: weakref.WeakSet[web.RequestHandler] = weakref.WeakSet()
        # Lets this server's kernels read (never change) the 2FA status; the extension puts it in their env.
        self.status_token = secrets.token_urlsafe(32)

    # -- the host's part -----------------------------------------------------------------------------------

    def store_opened(self, enrollment: Enrollment) -> None:
        enrollment.store.ensure_account(self.username)  # the one account: count every wrong password

    def account_named(self, typed: str) -> str:
        return self.username

    def key_required_of(self, handler: web.RequestHandler, name: str) -> bool:
        """The one user administers this server: ``webauthn_required_for = "admins"`` means them too."""
        return super().key_required_of(handler, name) or self.webauthn_required_for == "admins"

    async def check_password(self, handler: web.RequestHandler, name: str, password: object) -> PasswordCheck:
        """jupyter_server's own password (an Argon2 hash, about 50 ms of a core) checked in the hashing threads:
        on the event loop, a burst of logins or of the panel's Basic calls would stall every user's request."""
        ok = await asyncio.wrap_future(hashing(lambda: self.password_ok(password)))
        return PasswordCheck(self.username, ok)

    def password_ok(self, password: object) -> bool:
        return (
            isinstance(password, str)
            and 0 < len(password) <= MAX_PASSWORD_LENGTH
            and "\x00" not in password
            and bool(self.hashed_password)
            and passwd_check(self.hashed_password, password)
        )

    # -- logging in ----------------------------------------------------------------------------------------

    async def authenticate(self, handler: web.RequestHandler, password: object, otp: object) -> LoginResult:
        """Decide a login from the form's ``password`` and its ``otp`` field (or a key's :class:`KeyAssertion`)."""
        now = time.time()
        check = await self.check_password(handler, self.username, password)
        device = self.known_device(handler, check.name)
        key_required = self.key_required_of(handler, check.name)
        verdict = await self.login_verdict(check, otp, self.client_address(handler), now, device, key_required)
        if verdict.ok:
            self.remember_device(handler, check.name, device)
            return LoginResult(user=self.sessions.issue(SessionFactor(verdict.reason), now, verdict.epoch or 0))
        if verdict.outcome is Outcome.NOT_ENROLLED:
            if self.enrollment_policy == "cli-only":
                return LoginResult(status=403, message=NOT_ENROLLED_CLI_ONLY)
            return LoginResult(status=303, enroll=True)
        refusal = self.refusal(verdict)
        return LoginResult(status=refusal.status, message=refusal.message, retry_after=refusal.retry_after)

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        """Unused: the 2FA login handler calls :meth:`authenticate`. Never accept a token as a password."""
        return None

    # -- who is asking -------------------------------------------------------------------------------------

    async def get_user(self, handler: web.RequestHandler) -> User | None:
        user = await api_credential_user(self, handler)
        if user is not None:
            return user
        found = super().get_user(handler)
        return await found if isinstance(found, Awaitable) else found

    def user_to_cookie(self, user: User) -> str:
        if not isinstance(user, TwoFactorUser):
            raise TypeError("the 2FA gate only issues sessions for TwoFactorUser")
        return self.sessions.encode(user)

    def user_from_cookie(self, cookie_value: str) -> TwoFactorUser | None:
        return self.sessions.decode(cookie_value)

    def get_user_cookie(self, handler: web.RequestHandler) -> TwoFactorUser | None:
        user = super().get_user_cookie(handler)
        if not isinstance(user, TwoFactorUser):
            return None
        now = time.time()
        if not self.session_valid(user, now, handler):
            self._stale_cookies.add(handler)
            return None
        if self.sessions.stale_seen_at(user, now):
            user.seen_at = now
            self.set_login_cookie(handler, user)
        return user

    def session_valid(self, user: TwoFactorUser, now: float, handler: web.RequestHandler) -> bool:
        """Age, idle time, epoch, and whether what granted the session still holds."""
        if not self.sessions.current(user, now):
            return False
        if user.factor is SessionFactor.TRUSTED_NETWORK:
            return self.in_trusted_network(self.client_address(handler))
        if user.factor is SessionFactor.OPTIONAL_POLICY:
            return self.password_alone_allowed(now)
        return user.factor in (SessionFactor.TOTP, SessionFactor.RECOVERY_CODE, SessionFactor.WEBAUTHN)

    def set_login_cookie(self, handler: web.RequestHandler, user: User) -> None:
        self.cookie_options.setdefault("samesite", "Lax")
        super().set_login_cookie(handler, user)

    def clear_login_cookie(self, handler: web.RequestHandler) -> None:
        """Clear the cookie, except a well-signed one that has merely ended: that request may have left the
        browser just before a confirm or re-link gave it a new cookie, which clearing would delete too. A kept
        stale cookie stays refused (its epoch or age is checked on every request)."""
        if handler in self._stale_cookies:
            return
        super().clear_login_cookie(handler)

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        if not self.allow_token_access:
            return None
        return await super().get_user_token(handler)

    def generate_anonymous_user(self, handler: web.RequestHandler) -> User:
        """A token-authenticated request (only with ``allow_token_access``) acts as the account."""
        return self.sessions.user(SessionFactor.TOKEN, time.time())

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
