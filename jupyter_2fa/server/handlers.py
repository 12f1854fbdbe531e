"""Thin tornado handlers of the gate: login, logout, the enrollment page and the JSON API under ``2fa/api/``.

Each verb reads its input, calls one method of the identity provider or the core, and renders the answer.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any
from urllib.parse import quote, urlparse

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.auth.logout import LogoutHandler
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado import web

from ..core import (
    AlreadyEnrolled,
    CodeRejected,
    EnrollmentError,
    NoPendingEnrollment,
    Outcome,
    Provisioning,
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
    form_field,
    json_fields,
    linking_model,
    pending_tag,
    template_env,
)
from .identity import API_CREDENTIAL_FACTORS, LoginResult, TOTPIdentityProvider, TwoFactorUser


class TwoFactorHandlerMixin:
    """What every 2FA handler needs: the provider, our templates, and strict reading of input."""

    request: Any
    settings: dict[str, Any]

    @property
    def gate(self) -> TOTPIdentityProvider:
        provider = self.settings["identity_provider"]
        if not isinstance(provider, TOTPIdentityProvider):
            raise web.HTTPError(404)
        return provider

    def get_template(self, name: str) -> Any:
        return template_env(self.settings).get_template(name)

    def form_field(self, name: str) -> str:
        return form_field(self.request, name)

    def next_url(self) -> str:
        return str(self.get_argument("next", default=self.base_url))  # type: ignore[attr-defined]

    def safe_next_url(self) -> str:
        """``next`` if it is a path on this server, else the base URL (it ends up in a link on our pages).

        Normalised the way jupyter_server's login redirect does, so ``//evil``, ``/\\evil``, ``https:///evil``
        and ``javascript:`` all fall back to the base URL.
        """
        base_url = str(self.base_url)  # type: ignore[attr-defined]
        url = self.next_url().replace("\\", "%5C")
        if ":" in url:
            scheme, _, rest = url.partition(":")
            url = f"{scheme}://{rest.lstrip('/')}"
        elif url.startswith("//"):
            url = "//" + url.lstrip("/")
        parsed = urlparse(url)
        if parsed.scheme or parsed.netloc or not (parsed.path + "/").startswith(base_url):
            return base_url
        return url


class TOTPLoginHandler(TwoFactorHandlerMixin, LoginFormHandler):
    """The login page: one form with ``password`` and ``otp`` (a TOTP code or a recovery code)."""

    def _render(self, message: str = "", status: int = 200, reminder: str = "") -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.write(
            self.render_template(
                "2fa_login.html",
                next=self.next_url(),
                message=message,
                policy=self.gate.enrollment_policy,
                help_text=self.gate.help_text,
            )
        )

    @allow_unauthenticated
    def get(self) -> None:
        if self.current_user:
            self._redirect_safe(self.next_url())
        else:
            self._render()

    @allow_unauthenticated
    def post(self) -> None:
        try:
            result = self.gate.authenticate(self, self.form_field("password"), self.form_field("otp"))
        except BadInput as err:
            self._render(str(err), err.status)
            return
        if result.user is not None:
            self.gate.set_login_cookie(self, result.user)
            self._redirect_safe(self.next_url())
        elif result.enroll:
            self.redirect(f"{self.base_url}2fa/enroll?next={quote(self.next_url(), safe='')}", status=303)
        else:
            if result.retry_after:
                self.set_header("Retry-After", str(int(result.retry_after)))
            self._render(result.message, result.status)


class TOTPLogoutHandler(LogoutHandler):
    """Log out everywhere: the account's epoch moves, so its sessions in every browser end."""

    @allow_unauthenticated
    def get(self) -> Any:
        provider = self.identity_provider
        if isinstance(provider, TOTPIdentityProvider) and isinstance(self.current_user, TwoFactorUser):
            try:
                provider.revoke_sessions()
                remote = provider.client_address(self)
                provider.enrollment.verifier.record(Action.LOGOUT, provider.username, "success", "logout", remote)
            except StoreError as err:
                self.log.error("2FA store unavailable at logout: %s", err)
        return super().get()


class EnrollPageHandler(TwoFactorHandlerMixin, JupyterHandler):
    """Link a device without JavaScript: password -> QR code and key (once) -> a code -> recovery codes (once).

    Posting the password again starts a fresh enrollment that voids the previous one, so a reload or a second
    tab never shows an earlier secret again.
    """

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "same-origin")  # "no-referrer" makes browsers send Origin: null

    def _render(self, step: str, status: int = 200, **ns: Any) -> None:
        self.set_status(status)
        self.write(
            self.render_template(
                "2fa_enroll.html",
                step=step,
                next=self.safe_next_url(),
                enroll_url=f"{self.base_url}2fa/enroll",
                xsrf_input=self.xsrf_form_html(),
                ask_username=False,
                username=self.gate.username,
                issuer=self.gate.issuer,
                help_text=self.gate.help_text,
                **ns,
            )
        )

    def _start_page(self, message: str = "", status: int = 200) -> None:
        """The password form; the same for everyone, so it tells a visitor nothing about the account."""
        if self.gate.enrollment_policy == "cli-only":
            self._render("cli-only", 403, message=CLI_ONLY)
            return
        self._render("start", status, message=message)

    @allow_unauthenticated
    def get(self) -> None:
        self._start_page()

    @allow_unauthenticated
    def post(self) -> None:
        if self.gate.enrollment_policy == "cli-only":
            self._start_page()
            return
        action = ""
        try:
            action = self.form_field("action")
            if action == "start":
                self._begin(self.form_field("password"), self.form_field("otp"))
            elif action == "confirm":
                self._confirm(self.form_field("code"))
            elif action == "cancel":
                self._cancel()
            else:
                raise BadInput("unknown action")
        except BadInput as err:
            if action == "confirm":  # keep the code form: the pending enrollment is untouched
                self._render("confirm", err.status, message=str(err))
            else:
                self._start_page(str(err), err.status)
        except StoreError:
            self._start_page(self.gate.refusal(Verdict(Outcome.UNAVAILABLE, "")).message, 503)

    def _begin(self, password: str, otp: str) -> None:
        result = begin_enrollment(self.gate, self, password, otp)
        if isinstance(result, LoginResult):
            self._retry_after(result)
            self._start_page(result.message, result.status)
            return
        self._remember_pending()
        self._render("scan", provisioning=result, svg=result.svg())

    def _pending_tag(self) -> str:
        return pending_tag(self.gate.enrollment.store.get(self.gate.username))

    def _remember_pending(self) -> None:
        """Mark this browser as the one that started the pending enrollment: only it may cancel it."""
        tag = self._pending_tag()
        if tag:
            self.set_secure_cookie(
                PENDING_COOKIE, tag, path=self.base_url, httponly=True, samesite="Strict", expires_days=None
            )

    def _cancel(self) -> None:
        tag = self._pending_tag()
        mine = self.get_secure_cookie(PENDING_COOKIE, max_age_days=1)
        if not tag or mine is None or not hmac.compare_digest(mine.decode(), tag):
            self._start_page("There is no pending enrollment started in this browser to cancel.", 409)
            return
        self.gate.enrollment.cancel(self.gate.username, time.time(), self.gate.client_address(self))
        self.clear_cookie(PENDING_COOKIE, path=self.base_url)
        self._start_page("The pending enrollment was cancelled. Nothing was linked.")

    def _retry_after(self, result: LoginResult) -> None:
        if result.retry_after:
            self.set_header("Retry-After", str(int(result.retry_after)))

    def _confirm(self, code: str) -> None:
        try:
            codes = self.gate.enrollment.confirm(self.gate.username, code, time.time(), self.gate.client_address(self))
        except CodeRejected as err:
            refusal = self.gate.refusal(err.verdict)
            self._retry_after(refusal)
            if err.verdict.outcome is Outcome.INVALID:
                message = "That code does not match the new device. Enter the code your app shows now."
                self._render("confirm", 400, message=message)
            else:
                self._render("confirm", refusal.status, message=refusal.message)
            return
        except NoPendingEnrollment as err:
            self._start_page(f"{err} (nothing was linked)", 409)
            return
        self.gate.set_login_cookie(self, self.gate.session_user("totp", time.time()))
        self._render("done", recovery_codes=codes)


def begin_enrollment(
    gate: TOTPIdentityProvider, handler: web.RequestHandler, password: str, otp: str
) -> Provisioning | LoginResult:
    """Start (or re-link) and reveal a pending enrollment for the page and the API; a LoginResult refuses."""
    try:
        return gate.enrollment.start(
            gate.username,
            time.time(),
            first_factor_ok=gate.password_ok(password),
            code=otp,
            remote_addr=gate.client_address(handler),
        )
    except CodeRejected as err:
        return gate.refusal(err.verdict)
    except AlreadyEnrolled:
        return LoginResult(status=409, message="A device is already linked; re-link it with your current code.")
    except EnrollmentError as err:
        return LoginResult(status=409, message=str(err))


# -- JSON API -------------------------------------------------------------------------------------------------


class TwoFactorAPIHandler(TwoFactorHandlerMixin, APIHandler):
    """Base of the JSON API: strict bodies, JSON errors, nothing cached.

    Besides the browser session it accepts the password as HTTP Basic credentials (how the notebook panel's
    kernel calls it; see ``TOTPIdentityProvider.api_credential_user``).
    """

    accepts_password = True

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Headers an error carries (Retry-After of a throttled Basic check), as JupyterHub's handlers do:
        # send_error has cleared the ones set on the handler before raising.
        error = kwargs.get("exc_info", (None, None, None))[1]
        for name, value in (getattr(error, "headers", None) or {}).items():
            self.set_header(name, value)
        super().write_error(status_code, **kwargs)

    @property
    def api_credential(self) -> bool:
        """Whether this request came with per-request credentials rather than a session cookie."""
        return getattr(getattr(self, "_jupyter_current_user", None), "factor", None) in API_CREDENTIAL_FACTORS

    def check_xsrf_cookie(self) -> None:
        # XSRF guards cookies, which a browser adds to forged requests by itself. It never adds Basic
        # credentials unasked (we send no WWW-Authenticate challenge), nor our status-token header.
        if self.api_credential:
            return
        super().check_xsrf_cookie()

    def json_fields(self, *names: str) -> dict[str, str]:
        return json_fields(self.request.body, *names)

    def reply(self, status: int, payload: dict[str, Any]) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload))

    def refuse(self, result: LoginResult) -> None:
        if result.retry_after:
            self.set_header("Retry-After", str(int(result.retry_after)))
        status = 403 if result.status == 401 else result.status  # 401 would read as "session expired"
        self.reply(status, {"message": result.message})

    def guarded(self, work: Any) -> None:
        try:
            work()
        except BadInput as err:
            self.reply(err.status, {"message": str(err)})
        except StoreError:
            self.refuse(self.gate.refusal(Verdict(Outcome.UNAVAILABLE, "")))


class StatusAPIHandler(TwoFactorAPIHandler):
    accepts_status_token = True

    @web.authenticated
    def get(self) -> None:
        self.guarded(self._status)

    def _status(self) -> None:
        gate = self.gate
        account = gate.enrollment.store.get(gate.username)
        policy = gate.enrollment.settings.throttle
        session = None if self.api_credential else self.current_user
        self.reply(
            200,
            {
                "username": gate.username,
                **account_status(account, policy.lockout_threshold),
                "policy": gate.enrollment_policy,
                "optional_until": gate.optional_until or None,
                "session_factor": getattr(session, "factor", None),
                "session_expires_at": session.issued_at + gate.session_max_age if session else None,
            },
        )


class LinkingAPIHandler(TwoFactorAPIHandler):
    """What starting an enrollment and a re-link share: the policy check and the one-time reveal."""

    def _linking_refused(self) -> bool:
        if self.gate.enrollment_policy != "cli-only":
            return False
        self.reply(403, {"message": CLI_ONLY})
        return True

    def _reveal(self, password: str, otp: str, mode: str) -> None:
        gate = self.gate
        result = begin_enrollment(gate, self, password, otp)
        if isinstance(result, LoginResult):
            self.refuse(result)
            return
        account = gate.enrollment.store.get(gate.username)
        expires_at = account.pending_expires_at if account else None
        qr_path = f"{self.base_url}2fa/qr/"
        self.reply(201, linking_model(result, expires_at, mode, gate.one_shot_images, gate.username, qr_path))


class EnrollmentAPIHandler(LinkingAPIHandler):
    @web.authenticated
    def post(self) -> None:
        self.guarded(self._begin)

    def _begin(self) -> None:
        if self._linking_refused():
            return
        fields = self.json_fields("password", "reveal")
        account = self.gate.enrollment.store.get(self.gate.username)
        if account is not None and account.enrolled:
            self.reply(409, {"message": "A device is already linked; use relink with your current code."})
            return
        self._reveal(fields["password"], "", fields["reveal"])

    @web.authenticated
    def delete(self) -> None:
        self.guarded(self._cancel)

    def _cancel(self) -> None:
        gate = self.gate
        gate.one_shot_images.discard(gate.username)
        if not gate.enrollment.cancel(gate.username, time.time(), gate.client_address(self)):
            self.reply(404, {"message": "There is no pending enrollment."})
            return
        self.set_status(204)
        self.finish()


class ConfirmAPIHandler(TwoFactorAPIHandler):
    @web.authenticated
    def post(self) -> None:
        self.guarded(self._confirm)

    def _confirm(self) -> None:
        gate = self.gate
        code = self.json_fields("code")["code"]
        try:
            codes = gate.enrollment.confirm(gate.username, code, time.time(), gate.client_address(self))
        except CodeRejected as err:
            self.refuse(gate.refusal(err.verdict))
            return
        except NoPendingEnrollment as err:
            self.reply(409, {"message": str(err)})
            return
        gate.one_shot_images.discard(gate.username)
        if self.api_credential:
            gate.reload_epoch()  # every browser session ends now; a kernel gets no cookie
        else:
            gate.set_login_cookie(self, gate.session_user("totp", time.time()))  # a re-link voided the old cookie
        self.reply(200, {"recovery_codes": codes})


class RelinkAPIHandler(LinkingAPIHandler):
    @web.authenticated
    def post(self) -> None:
        self.guarded(self._relink)

    def _relink(self) -> None:
        if self._linking_refused():
            return
        fields = self.json_fields("password", "otp", "reveal")
        account = self.gate.enrollment.store.get(self.gate.username)
        if account is None or not account.enrolled:
            self.reply(409, {"message": "No device is linked yet; use enrollment instead."})
            return
        self._reveal(fields["password"], fields["otp"], fields["reveal"])


class RecoveryCodesAPIHandler(TwoFactorAPIHandler):
    @web.authenticated
    def post(self) -> None:
        self.guarded(self._regenerate)

    def _regenerate(self) -> None:
        gate = self.gate
        fields = self.json_fields("password", "otp")
        try:
            codes = gate.enrollment.regenerate_recovery_codes(
                gate.username,
                fields["otp"],
                time.time(),
                gate.client_address(self),
                first_factor_ok=gate.password_ok(fields["password"]),
            )
        except CodeRejected as err:
            self.refuse(gate.refusal(err.verdict))
            return
        except EnrollmentError as err:
            self.reply(409, {"message": str(err)})
            return
        self.reply(200, {"recovery_codes": codes})


class OneShotImageHandler(TwoFactorHandlerMixin, JupyterHandler):
    """``2fa/qr/<ticket>``: the notebook panel's QR picture, once, to this account's browser session only.

    Neither the server token nor per-request credentials fetch it: the kernel that asked for the link must
    not be able to read the secret back.
    """

    @web.authenticated
    def get(self, ticket: str) -> None:
        factor = getattr(self.current_user, "factor", None)
        content = None
        if factor != "token" and factor not in API_CREDENTIAL_FACTORS:
            content = self.gate.one_shot_images.take(ticket, self.gate.username, time.time())
        if content is None:
            raise web.HTTPError(404, "This picture was shown already, or has expired.")
        for name, value in ONE_SHOT_IMAGE_HEADERS.items():
            self.set_header(name, value)
        self.finish(content)


def handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """The extension's routes (the login and logout pages come from the identity provider)."""
    return [
        (r"/2fa/enroll", EnrollPageHandler),
        (r"/2fa/api/status", StatusAPIHandler),
        (r"/2fa/api/enrollment", EnrollmentAPIHandler),
        (r"/2fa/api/enrollment/confirm", ConfirmAPIHandler),
        (r"/2fa/api/relink", RelinkAPIHandler),
        (r"/2fa/api/recovery-codes", RecoveryCodesAPIHandler),
        (r"/2fa/qr/([A-Za-z0-9_-]{1,64})", OneShotImageHandler),
    ]
