"""The gate's adapter: the shared 2FA page, API and picture (``jupyter_2fa.web``) served with jupyter_server's
handlers and login rules. The gate's own login and logout pages are in ``login.py``.
"""

from __future__ import annotations

import time
from typing import Any, cast
from urllib.parse import urlparse

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado import web

from ..web import api, pages, passkeys
from ..web.handler import Caller, FlowHandler, authenticated, routes
from ..web.refusals import RefusedError
from .identity import TOTPIdentityProvider
from .sessions import SessionFactor, TwoFactorUser


class GateHandler(FlowHandler):
    """The gate's answers to what a flow asks of its host (see ``FlowHandler``)."""

    page_template = "2fa_enroll.html"
    ask_username = False
    base_url: str  # JupyterHandler's

    @property
    def host(self) -> TOTPIdentityProvider:
        return cast(TOTPIdentityProvider, self.settings["identity_provider"])

    def url(self, route: str) -> str:
        return f"{self.base_url}{route}"

    def next_url(self) -> str:
        return str(self.get_argument("next", default=self.base_url))

    def page_next(self) -> str:
        """``next`` if it is a path on this server, else the base URL (it ends up in a link on our pages).

        Normalised the way jupyter_server's login redirect does, so ``//evil``, ``/\\evil``, ``https:///evil``
        and ``javascript:`` all fall back to the base URL.
        """
        url = self.next_url().replace("\\", "%5C")
        if ":" in url:
            scheme, _, rest = url.partition(":")
            url = f"{scheme}://{rest.lstrip('/')}"
        elif url.startswith("//"):
            url = "//" + url.lstrip("/")
        parsed = urlparse(url)
        if parsed.scheme or parsed.netloc or not (parsed.path + "/").startswith(self.base_url):
            return self.base_url
        return url

    def _factor(self) -> SessionFactor | None:
        """What this request's user was granted on; None before jupyter_server's ``prepare`` found one (tornado
        checks XSRF before ``prepare``, and jupyter_server forbids asking ``get_current_user`` directly)."""
        user = getattr(self, "_jupyter_current_user", None)
        return user.factor if isinstance(user, TwoFactorUser) else None

    async def caller(self, *, read_only: bool = False) -> Caller:
        factor = self._factor()
        if factor is None:  # the verbs are @web.authenticated; this holds should one ever not be
            raise web.HTTPError(403)
        return Caller(self.host.username, credentials=factor.per_request)

    def session_of(self, caller: Caller) -> tuple[str | None, float | None]:
        user = self.current_user
        if caller.credentials or not isinstance(user, TwoFactorUser):
            return None, None
        return user.factor.value, user.issued_at + self.host.session_max_age

    async def device_linked(self, caller: Caller, factor: str = "totp") -> None:
        host = self.host
        epoch = await host.in_core(lambda core: core.store.epoch(host.username))
        host.sessions.saw_epoch(epoch)  # every older session ends now
        # This browser's cookie was voided with the others: give it a new one (a kernel takes no cookie).
        if not caller.credentials:
            host.set_login_cookie(self, host.sessions.issue(SessionFactor(factor), time.time(), epoch))

    def picture_owner(self) -> str | None:
        factor = self._factor()
        if factor is None or factor is SessionFactor.TOKEN or factor.per_request:
            return None
        return self.host.username


class EnrollPageHandler(GateHandler, pages.EnrollPage, JupyterHandler):
    """``2fa/enroll``: open to visitors (the password is checked there)."""

    get = allow_unauthenticated(pages.EnrollPage.get)
    post = allow_unauthenticated(pages.EnrollPage.post)


class TwoFactorAPIHandler(GateHandler, APIHandler):
    """Base of the gate's JSON API. Besides the browser session it accepts the password as HTTP Basic
    credentials (how the notebook panel's kernel calls it; see ``credentials.py``)."""

    accepts_password = True

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # The Retry-After of a throttled Basic check rides on the error (see RefusedError).
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, RefusedError):
            for name, value in error.headers.items():
                self.set_header(name, value)
        super().write_error(status_code, **kwargs)

    def check_xsrf_cookie(self) -> None:
        # XSRF guards cookies, which a browser adds to forged requests by itself. It never adds Basic
        # credentials unasked (we send no WWW-Authenticate challenge), nor our status-token header.
        factor = self._factor()
        if factor is not None and factor.per_request:
            return
        super().check_xsrf_cookie()


class StatusAPIHandler(TwoFactorAPIHandler, api.StatusAPI):
    accepts_status_token = True
    get = authenticated(api.StatusAPI.get)


class EnrollmentAPIHandler(TwoFactorAPIHandler, api.EnrollmentAPI):
    post = authenticated(api.EnrollmentAPI.post)
    delete = authenticated(api.EnrollmentAPI.delete)


class ConfirmAPIHandler(TwoFactorAPIHandler, api.ConfirmAPI):
    post = authenticated(api.ConfirmAPI.post)


class RelinkAPIHandler(TwoFactorAPIHandler, api.RelinkAPI):
    post = authenticated(api.RelinkAPI.post)


class RecoveryCodesAPIHandler(TwoFactorAPIHandler, api.RecoveryCodesAPI):
    post = authenticated(api.RecoveryCodesAPI.post)


class KeyLoginOptionsAPIHandler(TwoFactorAPIHandler, passkeys.KeyLoginOptionsAPI):
    """Before any session: the login page asks with the password."""

    post = allow_unauthenticated(passkeys.KeyLoginOptionsAPI.post)


class KeyRegistrationOptionsAPIHandler(TwoFactorAPIHandler, passkeys.KeyRegistrationOptionsAPI):
    """Open to visitors too: the 2FA page links a first factor before any session (the password is checked)."""

    post = allow_unauthenticated(passkeys.KeyRegistrationOptionsAPI.post)


class KeyCredentialsAPIHandler(TwoFactorAPIHandler, passkeys.KeyCredentialsAPI):
    get = authenticated(passkeys.KeyCredentialsAPI.get)
    post = authenticated(passkeys.KeyCredentialsAPI.post)


class KeyCredentialAPIHandler(TwoFactorAPIHandler, passkeys.KeyCredentialAPI):
    patch = authenticated(passkeys.KeyCredentialAPI.patch)
    delete = authenticated(passkeys.KeyCredentialAPI.delete)


class KeyScriptHandler(GateHandler, passkeys.KeyScript, JupyterHandler):
    get = allow_unauthenticated(passkeys.KeyScript.get)


class OneShotImageHandler(GateHandler, api.OneShotPicture, JupyterHandler):
    """Neither the server token nor per-request credentials fetch the picture (see ``picture_owner``)."""

    get = authenticated(api.OneShotPicture.get)


def handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """The extension's routes (the login and logout pages come from the identity provider)."""
    api_handlers = (
        StatusAPIHandler,
        EnrollmentAPIHandler,
        ConfirmAPIHandler,
        RelinkAPIHandler,
        RecoveryCodesAPIHandler,
        KeyLoginOptionsAPIHandler,
        KeyRegistrationOptionsAPIHandler,
        KeyCredentialsAPIHandler,
        KeyCredentialAPIHandler,
    )
    return routes(EnrollPageHandler, *api_handlers, OneShotImageHandler, KeyScriptHandler)
