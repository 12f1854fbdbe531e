"""Hub pages and API: ``/hub/2fa/enroll`` (link a device with username + password) and the admin API.

The admin API needs JupyterHub's ``admin:users`` scope (an admin's token, or a service with the admin role):

- ``GET /hub/2fa/api/users``: every account's 2FA state;
- ``DELETE /hub/2fa/api/users/{name}``: reset (the user links a new device; their hub sessions end);
- ``POST /hub/2fa/api/users/{name}/unlock``: clear failed attempts.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import maybe_future, new_token
from tornado import web

from ..core import (
    Account,
    AlreadyEnrolled,
    CodeRejected,
    EnrollmentError,
    NoPendingEnrollment,
    Outcome,
    StoreError,
    Verdict,
)
from ..messages import CLI_ONLY, refusal
from ..web import PENDING_COOKIE, BadInput, form_field, pending_tag, template_env
from .authenticator import TOTPAuthenticator


class HubTwoFactorMixin:
    """The hub's TOTPAuthenticator, our templates, strict form fields."""

    settings: dict[str, Any]
    request: Any

    @property
    def totp(self) -> TOTPAuthenticator:
        authenticator = self.authenticator  # type: ignore[attr-defined]
        if not isinstance(authenticator, TOTPAuthenticator):
            raise web.HTTPError(404)
        return authenticator

    def get_template(self, name: str, sync: bool = False) -> Any:
        return template_env(self.settings, "jinja2_env_sync" if sync else "jinja2_env").get_template(name)

    def field(self, name: str) -> str:
        try:
            return form_field(self.request, name)
        except BadInput as err:
            raise web.HTTPError(err.status, str(err)) from None


class HubEnrollPageHandler(HubTwoFactorMixin, BaseHandler):
    """Link a device on the hub: username + password (checked by the inner authenticator, throttled), the QR
    code and key once, a code to confirm, the recovery codes once. No hub session is issued here."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "same-origin")

    async def render(self, step: str, status: int = 200, **ns: Any) -> None:  # type: ignore[override]
        self.set_status(status)
        html = await maybe_future(
            self.render_template(
                "hub_2fa_enroll.html",
                step=step,
                next=self.hub.base_url,
                enroll_url=f"{self.hub.base_url}2fa/enroll",
                xsrf_input=self.xsrf_form_html(),
                ask_username=True,
                issuer=self.totp.issuer,
                help_text=self.totp.help_text,
                **ns,
            )
        )
        self.finish(html)

    async def get(self) -> None:
        if self.totp.enrollment_policy == "cli-only":
            await self.render("cli-only", 403, message=CLI_ONLY)
            return
        await self.render("start")

    async def post(self) -> None:
        if self.totp.enrollment_policy == "cli-only":
            await self.render("cli-only", 403, message=CLI_ONLY)
            return
        action = self.field("action")
        username = self.totp.normalize_username(self.field("username"))
        try:
            if action == "start":
                await self._start(username)
            elif action == "confirm":
                await self._confirm(username)
            elif action == "cancel":
                await self._cancel(username)
            else:
                raise web.HTTPError(400, "unknown action")
        except StoreError:
            answer = refusal(Verdict(Outcome.UNAVAILABLE, ""), self.totp.help_text)
            await self.render("start", answer.status, message=answer.message)

    async def _start(self, username: str) -> None:
        data = {"username": username, "password": self.field("password")}
        result = await self.totp.check_password(self, data)
        name = result.get("name", username) if isinstance(result, dict) else (result or username)
        try:
            provisioning = self.totp.enrollment.start(
                name,
                time.time(),
                first_factor_ok=result is not None,
                code=self.field("otp"),
                remote_addr=self.totp.client_address(self),
            )
        except CodeRejected as err:
            answer = refusal(err.verdict, self.totp.help_text, invalid="Invalid username, password or code")
            await self.render("start", answer.status, message=answer.message)
            return
        except AlreadyEnrolled:
            await self.render("start", 409, message="A device is already linked; add its current code to re-link.")
            return
        except EnrollmentError as err:
            await self.render("start", 409, message=str(err))
            return
        self.set_secure_cookie(
            PENDING_COOKIE, pending_tag(self.totp.enrollment.store.get(name)), path=self.hub.base_url, httponly=True
        )
        await self.render("scan", username=name, provisioning=provisioning, svg=provisioning.svg())

    async def _confirm(self, username: str) -> None:
        try:
            codes = self.totp.enrollment.confirm(
                username, self.field("code"), time.time(), self.totp.client_address(self)
            )
        except CodeRejected as err:
            answer = refusal(err.verdict, self.totp.help_text)
            message = answer.message
            if err.verdict.outcome is Outcome.INVALID:
                message = "That code does not match the new device. Enter the code your app shows now."
            await self.render(
                "confirm", 400 if answer.status == 401 else answer.status, message=message, username=username
            )
            return
        except NoPendingEnrollment as err:
            await self.render("start", 409, message=f"{err} (nothing was linked)")
            return
        await self.render("done", recovery_codes=codes, username=username)

    async def _cancel(self, username: str) -> None:
        mine = self.get_secure_cookie(PENDING_COOKIE, max_age_days=1)
        tag = pending_tag(self.totp.enrollment.store.get(username))
        if not tag or mine is None or not hmac.compare_digest(mine.decode(), tag):
            await self.render("start", 409, message="There is no pending enrollment started in this browser to cancel.")
            return
        self.totp.enrollment.cancel(username, time.time(), self.totp.client_address(self))
        self.clear_cookie(PENDING_COOKIE, path=self.hub.base_url)
        await self.render("start", message="The pending enrollment was cancelled. Nothing was linked.")


# -- admin API --------------------------------------------------------------------------------------------------


def account_model(account: Account, lockout_threshold: int) -> dict[str, Any]:
    return {
        "name": account.username,
        "enrolled": account.enrolled,
        "activated_at": account.activated_at,
        "pending": account.pending_secret is not None,
        "recovery_codes_left": account.recovery_codes_left,
        "failures": account.failures,
        "locked": account.failures >= lockout_threshold,
    }


class AdminAPIHandler(HubTwoFactorMixin, APIHandler):
    def reply(self, status: int, payload: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def store_guard(self) -> Any:
        try:
            return self.totp.enrollment
        except StoreError as err:
            raise web.HTTPError(503, f"2FA store unavailable: {err}") from None


class UsersAPIHandler(AdminAPIHandler):
    @needs_scope("admin:users")
    def get(self) -> None:
        enrollment = self.store_guard()
        threshold = enrollment.settings.throttle.lockout_threshold
        self.reply(200, [account_model(a, threshold) for a in enrollment.store.all_accounts()])


class UserAPIHandler(AdminAPIHandler):
    @needs_scope("admin:users")
    def get(self, user_name: str) -> None:
        enrollment = self.store_guard()
        account = enrollment.store.get(user_name)
        if account is None:
            raise web.HTTPError(404, f"{user_name} is not in the 2FA store")
        self.reply(200, account_model(account, enrollment.settings.throttle.lockout_threshold))

    @needs_scope("admin:users")
    def delete(self, user_name: str) -> None:
        """Reset: the device link and recovery codes go, the user's hub sessions end, servers keep running."""
        enrollment = self.store_guard()
        if not enrollment.reset(user_name, time.time()):
            raise web.HTTPError(404, f"{user_name} is not in the 2FA store")
        revoke_hub_sessions(self.db, user_name)
        self.set_status(204)
        self.finish()


class UnlockAPIHandler(AdminAPIHandler):
    @needs_scope("admin:users")
    def post(self, user_name: str) -> None:
        enrollment = self.store_guard()
        if not enrollment.unlock(user_name, time.time()):
            raise web.HTTPError(404, f"{user_name} is not in the 2FA store")
        self.reply(200, account_model(enrollment.store.get(user_name), enrollment.settings.throttle.lockout_threshold))


def revoke_hub_sessions(db: Any, user_name: str) -> None:
    """End a user's browser sessions: a new cookie id voids hub cookies; session-bound tokens are deleted."""
    user = db.query(orm.User).filter(orm.User.name == user_name).first()
    if user is None:
        return
    user.cookie_id = new_token()
    for token in db.query(orm.APIToken).filter(orm.APIToken.user_id == user.id, orm.APIToken.session_id.isnot(None)):
        db.delete(token)
    db.commit()


def handlers() -> list[tuple[str, Any]]:
    return [
        (r"/2fa/enroll", HubEnrollPageHandler),
        (r"/2fa/api/users", UsersAPIHandler),
        (r"/2fa/api/users/([^/]+)", UserAPIHandler),
        (r"/2fa/api/users/([^/]+)/unlock", UnlockAPIHandler),
    ]
