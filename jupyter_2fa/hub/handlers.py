"""Hub pages and API: ``/hub/2fa/enroll`` (link a device with username + password), the user's JSON API, the
one-time QR pictures of the notebook panel (``/hub/2fa/qr/<ticket>``), and the admin API.

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
from ..core.audit import Action
from ..messages import CLI_ONLY
from ..web import (
    ONE_SHOT_IMAGE_HEADERS,
    PENDING_COOKIE,
    BadInput,
    account_status,
    basic_credentials,
    form_field,
    json_fields,
    linking_model,
    pending_tag,
    template_env,
)
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
            answer = self.totp.refusal(Verdict(Outcome.UNAVAILABLE, ""))
            await self.render("start", answer.status, message=answer.message)

    async def _start(self, username: str) -> None:
        check = await self.totp.check_password(self, username, self.field("password"))
        name = check.name
        try:
            provisioning = self.totp.enrollment.start(
                name,
                time.time(),
                first_factor_ok=check.ok,
                code=self.field("otp"),
                remote_addr=self.totp.client_address(self),
            )
        except CodeRejected as err:
            answer = self.totp.refusal(err.verdict)
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
            answer = self.totp.refusal(err.verdict)
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
        revoke_hub_sessions(self.db, username)  # a new device: sessions granted before it end
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


# -- the user's JSON API (same paths and bodies as the gate's) -------------------------------------------------


class HubUserAPIHandler(HubTwoFactorMixin, APIHandler):
    """Acts on the caller's own account, identified by their credentials (HTTP Basic, checked by the inner
    authenticator and throttled) or their hub login cookie; never by an API token, which a single-user
    server also holds."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def reply(self, status: int, payload: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def fields(self, *names: str) -> dict[str, str]:
        try:
            return json_fields(self.request.body, *names)
        except BadInput as err:
            raise web.HTTPError(err.status, str(err)) from None

    def refused(self, verdict: Verdict) -> web.HTTPError:
        answer = self.totp.refusal(verdict)
        error = web.HTTPError(403 if answer.status == 401 else answer.status, answer.message)
        if answer.retry_after:
            # On the error, which JupyterHub's write_error applies: send_error clears the handler's own headers.
            error.headers = {"Retry-After": str(int(answer.retry_after))}  # type: ignore[attr-defined]
        return error

    async def account_name(self, token_may_read: bool = False) -> str:
        """Whose account this is. ``token_may_read``: an API token (e.g. a kernel's) may name it, to read."""
        try:
            credentials = basic_credentials(self.request.headers.get("Authorization", ""))
        except BadInput as err:
            raise web.HTTPError(err.status, str(err)) from None
        if credentials is not None:
            return await self.password_holder(*credentials)
        if getattr(self, "_token_authenticated", False) and not token_may_read:
            raise web.HTTPError(403, "use your own credentials (Basic or the hub login), not an API token")
        user = self.current_user
        if user is None or getattr(user, "kind", "user") != "user":  # a service has no 2FA account
            raise web.HTTPError(403, "log in to the hub or send Basic credentials")
        return str(user.name)

    async def password_holder(self, username: str, password: str) -> str:
        """The account whose password this is (inner authenticator), counted by the throttle."""
        check = await self.totp.check_password(self, username, password)
        name = check.name
        verdict = self.totp.enrollment.verifier.verify_password_only(
            name,
            check.ok,
            time.time(),
            "api",
            remote_addr=self.totp.client_address(self),
            action=Action.PASSWORD_CHECK,
        )
        if not verdict.ok:
            raise self.refused(verdict)
        return str(name)

    async def run(self, work: Any) -> None:
        try:
            await work()
        except StoreError:
            raise self.refused(Verdict(Outcome.UNAVAILABLE, "store-unavailable")) from None


class HubStatusAPIHandler(HubUserAPIHandler):
    async def get(self) -> None:
        await self.run(self._status)

    async def _status(self) -> None:
        name = await self.account_name(token_may_read=True)
        enrollment = self.totp.enrollment
        account = enrollment.store.get(name)
        self.reply(
            200,
            {
                "username": name,
                **account_status(account, enrollment.settings.throttle.lockout_threshold),
                "policy": self.totp.enrollment_policy,
                "optional_until": self.totp.optional_until or None,
                # The gate's body has them; the hub's login cookie carries no factor or end time to report.
                "session_factor": None,
                "session_expires_at": None,
            },
        )


class HubLinkingAPIHandler(HubUserAPIHandler):
    async def reveal(self, name: str, password: str, otp: str, mode: str) -> None:
        if self.totp.enrollment_policy == "cli-only":
            raise web.HTTPError(403, CLI_ONLY)
        check = await self.totp.check_password(self, name, password)
        try:
            provisioning = self.totp.enrollment.start(
                name,
                time.time(),
                first_factor_ok=check.ok and check.name == name,
                code=otp,
                remote_addr=self.totp.client_address(self),
            )
        except CodeRejected as err:
            raise self.refused(err.verdict) from None
        except EnrollmentError as err:
            raise web.HTTPError(409, str(err)) from None
        account = self.totp.enrollment.store.get(name)
        expires_at = account.pending_expires_at if account else None
        qr_path = f"{self.hub.base_url}2fa/qr/"
        self.reply(201, linking_model(provisioning, expires_at, mode, self.totp.one_shot_images, name, qr_path))


class HubEnrollmentAPIHandler(HubLinkingAPIHandler):
    async def post(self) -> None:
        await self.run(self._begin)

    async def _begin(self) -> None:
        fields = self.fields("password", "reveal")
        name = await self.account_name()
        account = self.totp.enrollment.store.get(name)
        if account is not None and account.enrolled:
            raise web.HTTPError(409, "A device is already linked; use relink with your current code.")
        await self.reveal(name, fields["password"], "", fields["reveal"])

    async def delete(self) -> None:
        await self.run(self._cancel)

    async def _cancel(self) -> None:
        name = await self.account_name()
        self.totp.one_shot_images.discard(name)
        if not self.totp.enrollment.cancel(name, time.time(), self.totp.client_address(self)):
            raise web.HTTPError(404, "There is no pending enrollment.")
        self.set_status(204)
        self.finish()


class HubRelinkAPIHandler(HubLinkingAPIHandler):
    async def post(self) -> None:
        await self.run(self._relink)

    async def _relink(self) -> None:
        fields = self.fields("password", "otp", "reveal")
        name = await self.account_name()
        account = self.totp.enrollment.store.get(name)
        if account is None or not account.enrolled:
            raise web.HTTPError(409, "No device is linked yet; use enrollment instead.")
        await self.reveal(name, fields["password"], fields["otp"], fields["reveal"])


class HubConfirmAPIHandler(HubUserAPIHandler):
    async def post(self) -> None:
        await self.run(self._confirm)

    async def _confirm(self) -> None:
        name = await self.account_name()
        code = self.fields("code")["code"]
        try:
            codes = self.totp.enrollment.confirm(name, code, time.time(), self.totp.client_address(self))
        except CodeRejected as err:
            raise self.refused(err.verdict) from None
        except NoPendingEnrollment as err:
            raise web.HTTPError(409, str(err)) from None
        self.totp.one_shot_images.discard(name)
        revoke_hub_sessions(self.db, name)  # a new device: sessions granted before it end
        self.reply(200, {"recovery_codes": codes})


class HubRecoveryCodesAPIHandler(HubUserAPIHandler):
    async def post(self) -> None:
        await self.run(self._regenerate)

    async def _regenerate(self) -> None:
        name = await self.account_name()
        fields = self.fields("password", "otp")
        check = await self.totp.check_password(self, name, fields["password"])
        try:
            codes = self.totp.enrollment.regenerate_recovery_codes(
                name,
                fields["otp"],
                time.time(),
                self.totp.client_address(self),
                first_factor_ok=check.ok and check.name == name,
            )
        except CodeRejected as err:
            raise self.refused(err.verdict) from None
        except EnrollmentError as err:
            raise web.HTTPError(409, str(err)) from None
        self.reply(200, {"recovery_codes": codes})


class HubOneShotImageHandler(HubTwoFactorMixin, BaseHandler):
    """``/hub/2fa/qr/<ticket>``: the notebook panel's QR picture, once, to its owner's hub login only.

    Not to an API token: the single-user server and its kernels hold one, and must not read the secret back.
    """

    @web.authenticated
    def get(self, ticket: str) -> None:
        user = self.current_user
        content = None
        if not getattr(self, "_token_authenticated", False):
            content = self.totp.one_shot_images.take(ticket, user.name, time.time())
        if content is None:
            raise web.HTTPError(404, "This picture was shown already, or has expired.")
        for name, value in ONE_SHOT_IMAGE_HEADERS.items():
            self.set_header(name, value)
        self.finish(content)


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


class AdminPageHandler(HubTwoFactorMixin, BaseHandler):
    """``/hub/2fa/admin``: every account's state, with Reset and Unlock (linked from the hub's nav bar)."""

    @web.authenticated
    @needs_scope("admin:users")
    async def get(self, message: str = "") -> None:
        enrollment = self.totp.enrollment
        threshold = enrollment.settings.throttle.lockout_threshold
        accounts = []
        for account in enrollment.store.all_accounts():
            model = account_model(account, threshold)
            model["activated"] = (
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(account.activated_at)) if account.activated_at else ""
            )
            accounts.append(model)
        html = await maybe_future(
            self.render_template(
                "hub_2fa_admin.html",
                accounts=accounts,
                policy=self.totp.enrollment_policy,
                message=message,
                xsrf=self.xsrf_token.decode("ascii"),
            )
        )
        self.finish(html)

    @web.authenticated
    @needs_scope("admin:users")
    async def post(self) -> None:
        action, name = self.field("action"), self.field("name")
        enrollment = self.totp.enrollment
        if action == "reset" and enrollment.reset(name, time.time()):
            revoke_hub_sessions(self.db, name)
            message = f"Reset {name}: their device is unlinked and their hub sessions ended."
        elif action == "unlock" and enrollment.unlock(name, time.time()):
            message = f"Unlocked {name}."
        else:
            raise web.HTTPError(400, "unknown action or user")
        await self.get(message)


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
        (r"/2fa/admin", AdminPageHandler),
        (r"/2fa/api/status", HubStatusAPIHandler),
        (r"/2fa/api/enrollment", HubEnrollmentAPIHandler),
        (r"/2fa/api/enrollment/confirm", HubConfirmAPIHandler),
        (r"/2fa/api/relink", HubRelinkAPIHandler),
        (r"/2fa/api/recovery-codes", HubRecoveryCodesAPIHandler),
        (r"/2fa/qr/([A-Za-z0-9_-]{1,64})", HubOneShotImageHandler),
        (r"/2fa/api/users", UsersAPIHandler),
        (r"/2fa/api/users/([^/]+)", UserAPIHandler),
        (r"/2fa/api/users/([^/]+)/unlock", UnlockAPIHandler),
    ]
