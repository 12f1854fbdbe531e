"""The hub's answers to what the shared 2FA flows ask of their host, and the hub's routes for them:
``/hub/2fa/enroll`` (username + password, checked by the inner authenticator), the user's JSON API under
``/hub/2fa/api/`` (the gate's paths and bodies) and the notebook panel's one-time QR pictures; and JupyterHub's
own ``/hub/api/users/NAME/tokens``, where no token is minted on the password alone (:mod:`.sessions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.apihandlers.users import UserTokenListAPIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.handlers.login import LoginHandler
from sqlalchemy.orm import Session
from tornado import web

from ..core import StoreError
from ..messages import TOKEN_NEEDS_BOTH_FACTORS
from ..web import api, pages, passkeys
from ..web.forms import BadInput, basic_credentials
from ..web.handler import Caller, FlowHandler, authenticated, routes
from ..web.refusals import Refused
from .sessions import revoke_hub_sessions

if TYPE_CHECKING:
    from .authenticator import TOTPAuthenticator


class HubHandler(FlowHandler):
    """The hub's answers to what a flow asks of its host (see ``FlowHandler``).

    The user's API acts on the caller's own account, identified by their credentials (HTTP Basic, checked by
    the inner authenticator and throttled) or their hub login cookie; an API token (which a single-user server
    and its kernels hold) may only read the status.
    """

    page_template = "hub_2fa_enroll.html"
    ask_username = True
    # JupyterHub's, set on its handlers
    hub: Any
    db: Session
    parsed_scopes: dict[str, Any]

    @property
    def host(self) -> TOTPAuthenticator:
        return cast("TOTPAuthenticator", self.settings["authenticator"])

    def url(self, route: str) -> str:
        return f"{self.hub.base_url}{route}"

    def page_next(self) -> str:
        return str(self.hub.base_url)

    def _by_token(self) -> bool:
        return bool(getattr(self, "_token_authenticated", False))

    async def caller(self, *, read_only: bool = False) -> Caller:
        try:
            credentials = basic_credentials(self.request.headers.get("Authorization", ""))
        except BadInput as err:
            raise web.HTTPError(err.status, str(err)) from None
        if credentials is not None:
            return Caller(await self.host.basic_account(self, *credentials), credentials=True)
        if self._by_token() and not read_only:
            raise web.HTTPError(403, "use your own credentials (Basic or the hub login), not an API token")
        user = self.current_user
        if user is None or getattr(user, "kind", "user") != "user":  # a service has no 2FA account
            raise web.HTTPError(403, "log in to the hub or send Basic credentials")
        return Caller(str(user.name), credentials=self._by_token())

    def session_of(self, caller: Caller) -> tuple[str | None, float | None]:
        return None, None  # the hub's login cookie carries no factor or end time to report

    def session_factor(self, caller: Caller) -> str | None:
        user = self.current_user
        return None if caller.credentials or user is None else self.host.sessions.granted_on(self, user)

    def second_factor_proven(self, caller: Caller) -> bool:
        """A hub login cookie whose grant (:mod:`.sessions`) was given on both factors."""
        user = self.current_user
        return not caller.credentials and user is not None and self.host.sessions.two_factor_session(self, user)

    async def device_linked(self, caller: Caller, factor: str = "totp") -> None:
        revoke_hub_sessions(self.db, caller.name)

    def picture_owner(self) -> str | None:
        user = self.current_user
        return None if user is None or self._by_token() else str(user.name)

    def write_refusal(self, refused: Refused) -> None:
        raise refused.http_error()  # JupyterHub's API writes its JSON errors (and Retry-After) itself


class HubEnrollPageHandler(HubHandler, pages.EnrollPage, BaseHandler):
    """Link a device on the hub; no hub session is issued here (the user then logs in with the new code)."""


class HubAPIHandler(HubHandler, APIHandler):
    pass


class HubStatusAPIHandler(HubAPIHandler, api.StatusAPI):
    pass


class HubEnrollmentAPIHandler(HubAPIHandler, api.EnrollmentAPI):
    pass


class HubConfirmAPIHandler(HubAPIHandler, api.ConfirmAPI):
    pass


class HubRelinkAPIHandler(HubAPIHandler, api.RelinkAPI):
    pass


class HubRecoveryCodesAPIHandler(HubAPIHandler, api.RecoveryCodesAPI):
    pass


class HubKeyLoginOptionsAPIHandler(HubAPIHandler, passkeys.KeyLoginOptionsAPI):
    pass


class HubKeyRegistrationOptionsAPIHandler(HubAPIHandler, passkeys.KeyRegistrationOptionsAPI):
    pass


class HubKeyCredentialsAPIHandler(HubAPIHandler, passkeys.KeyCredentialsAPI):
    pass


class HubKeyCredentialAPIHandler(HubAPIHandler, passkeys.KeyCredentialAPI):
    pass


class HubKeyScriptHandler(HubHandler, passkeys.KeyScript, BaseHandler):
    pass


class HubOneShotImageHandler(HubHandler, api.OneShotPicture, BaseHandler):
    """Not to an API token: the single-user server and its kernels hold one (see ``picture_owner``)."""

    get = authenticated(api.OneShotPicture.get)


class HubTokensAPIHandler(UserTokenListAPIHandler):
    """JupyterHub's ``/hub/api/users/NAME/tokens`` (registered before it: an authenticator's routes come first).

    A cookie session may mint a token only if it was granted on both factors; credentials in the body go to
    ``TOTPAuthenticator.authenticate``, which wants both too. A token the user mints for themselves is marked,
    so that a reset or re-link ends it.
    """

    db: Session

    @property
    def host(self) -> TOTPAuthenticator:
        return cast("TOTPAuthenticator", self.settings["authenticator"])

    # The requester's account epoch, read before the token is made: by ``post`` for a cookie or token, by
    # ``TOTPAuthenticator.authenticate`` (with the verdict) for credentials in the body. Marked with it, a
    # token the user minted ends at a reset or re-link; a reset in between ends it at once.
    minted_epoch: int | None = None

    async def post(self, user_name: str) -> None:
        requester = self.current_user
        by_cookie = requester is not None and not getattr(self, "_token_authenticated", False)
        if by_cookie and not self.host.sessions.two_factor_session(self, requester):
            raise web.HTTPError(403, TOKEN_NEEDS_BOTH_FACTORS)
        if getattr(requester, "kind", None) == "user":
            try:
                self.minted_epoch = await self.host.sessions.epoch_in_store(requester.name)
            except StoreError as err:
                raise web.HTTPError(503, f"2FA store unavailable: {err}") from None
        await super().post(user_name)

    def token_model(self, token: Any) -> dict[str, Any]:
        if self.request.method == "POST":  # the token just minted, before JupyterHub shows it
            self.host.sessions.mark_minted(self.db, token, self.current_user, self.minted_epoch or 0)
        return cast("dict[str, Any]", super().token_model(token))


class HubLoginHandler(HubHandler, LoginHandler):
    """JupyterHub's login page (which asks for the code, see ``request_otp``; ``nav/login.html`` adds the link to
    the enrollment page and the key button), answering a form field that is not UTF-8 like a wrong one: the stock
    page's error view reads the field again and fails with a traceback. A 2FA flow handler too: a key's answer
    is read with the challenge this browser was given (``web.passkeys.login_factor``)."""

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        return value.decode("utf-8", "replace")

    def render_template(self, name: str, *args: Any, **ns: Any) -> Any:
        """A refusal with an HTML message (``jupyterhub_html_message``: the "no device yet" link) keeps its link
        in the login form, which shows the error's text otherwise (JupyterHub's ``render_template`` puts
        ``message`` in the form's ``login_error``, escaped)."""
        if name == "error.html" and ns.get("message_html"):
            ns["message"] = SafeHtml(str(ns["message_html"]))
        return super().render_template(name, *args, **ns)


class SafeHtml(str):
    """Markup already escaped where needed: Jinja's autoescape leaves an object with ``__html__`` as it is."""

    def __html__(self) -> str:
        return str(self)


def handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """The user's 2FA routes on the hub (the admins' are in ``admin.py``), and JupyterHub's login and token
    routes."""
    api_handlers = (HubStatusAPIHandler, HubEnrollmentAPIHandler, HubConfirmAPIHandler, HubRelinkAPIHandler)
    key_handlers = (
        HubKeyLoginOptionsAPIHandler,
        HubKeyRegistrationOptionsAPIHandler,
        HubKeyCredentialsAPIHandler,
        HubKeyCredentialAPIHandler,
        HubKeyScriptHandler,
    )
    flows = routes(
        HubEnrollPageHandler, *api_handlers, HubRecoveryCodesAPIHandler, *key_handlers, HubOneShotImageHandler
    )
    return [*flows, (r"/login", HubLoginHandler), (r"/api/users/([^/]+)/tokens", HubTokensAPIHandler)]
