"""The gate's own pages: login (one form, password and code) and logout (everywhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.auth.logout import LogoutHandler

from ..core import StoreError
from ..core.audit import Action
from ..web.forms import BadInput
from ..web.handler import with_language
from ..web.passkeys import login_factor
from ..web.refusals import Refused
from .handlers import GateHandler
from .sessions import TwoFactorUser, end_every_session

if TYPE_CHECKING:
    from ..core import Enrollment


class TOTPLoginHandler(GateHandler, LoginFormHandler):
    """The login page: one form with ``password`` and ``otp`` (a TOTP code or a recovery code)."""

    def _render(self, message: str = "", status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.write(
            with_language(
                self.render_template(
                    "2fa_login.html",
                    next=self.next_url(),
                    message=message,
                    policy=self.host.enrollment_policy,
                    webauthn=self.host.webauthn_allowed,
                    help_text=self.host.help_text,
                )
            )
        )

    def _redirect_next(self) -> None:
        """jupyter_server's own redirect to ``next``, which refuses other hosts (typed here: it has no hints)."""
        redirect_safe = cast(Callable[[str], None], self._redirect_safe)
        redirect_safe(self.next_url())

    @allow_unauthenticated
    def get(self) -> None:
        if self.current_user:
            self._redirect_next()
        else:
            self._render()

    @allow_unauthenticated
    async def post(self) -> None:
        try:
            factor = login_factor(self, self.form_field("otp"))
            result = await self.host.authenticate(self, self.form_field("password"), factor)
        except (BadInput, Refused) as err:
            self._render(str(err), err.status)
            return
        if result.user is not None:
            self.host.set_login_cookie(self, result.user)
            self._redirect_next()
        elif result.enroll:
            self.redirect(f"{self.base_url}2fa/enroll?next={quote(self.next_url(), safe='')}", status=303)
        else:
            if result.retry_after:
                self.set_header("Retry-After", str(int(result.retry_after)))
            self._render(result.message, result.status)


class TOTPLogoutHandler(GateHandler, LogoutHandler):
    """Log out everywhere: the account's epoch moves, so its sessions in every browser end."""

    @allow_unauthenticated
    async def get(self) -> Any:
        if isinstance(self.current_user, TwoFactorUser):
            host = self.host
            name, address = host.username, host.client_address(self)

            def log_out_everywhere(core: Enrollment) -> int:
                epoch = end_every_session(core.store, name)
                core.verifier.record(Action.LOGOUT, name, "success", "logout", address)
                return epoch

            try:
                host.sessions.saw_epoch(await host.in_core(log_out_everywhere))
            except StoreError as err:
                self.log.error("2FA store unavailable at logout: %s", err)
        return super().get()  # type: ignore[no-untyped-call]  # jupyter_server's LogoutHandler has no hints
