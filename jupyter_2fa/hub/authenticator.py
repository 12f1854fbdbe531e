"""``TOTPAuthenticator``: JupyterHub's login with a TOTP code on top of any password authenticator.

    c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
    c.TOTPAuthenticator.inner_authenticator_class = "pam"   # or "shared-password", "native", "ldap", a class

The class JupyterHub instantiates is built on the inner authenticator (``TOTPAuthenticator`` first, the inner
class after it), so the inner class's own settings (``c.PAMAuthenticator.…``), its allow/admin/group rules and
its extra pages all keep working, and ``c.TOTPAuthenticator.…`` / ``c.TwoFactorConfig.…`` configure 2FA.

A login with the password alone (trusted network, optional policy) is valid only where and while its rule holds,
no API token is minted on the password alone, and a reset or re-link ends the user's sessions and the tokens
they minted (a running server's own token stays): see :mod:`.sessions`.
"""

from __future__ import annotations

import base64
import html
import os
import time
from functools import cache
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jupyterhub.auth import Authenticator, PAMAuthenticator
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.handlers.login import LoginHandler
from jupyterhub.traitlets import EntryPointType
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import Bool, Float, TraitError, default, validate

from ..core import Keyring, Outcome, StoreError, Verdict
from ..events import event_logger_sink
from ..web.forms import BadInput
from ..web.host import Host, PasswordCheck
from ..web.passkeys import login_factor
from ..web.refusals import Refused
from . import admin, handlers
from .sessions import HubSessions

CRYPT_KEY_INFO = b"jupyter-2fa TOTP secrets"
# Our overrides of JupyterHub's templates, each extending the stock one ("templates/NAME"): page.html adds the nav
# bar's "2FA" link for admins, login.html the link to the enrollment page.
NAV_TEMPLATES = str(Path(__file__).parent / "nav")
# As JupyterHub's auth_refresh_age: its "refreshed less than this long ago" test never holds, so refresh_user
# (the session check) runs on every request.
EVERY_REQUEST = -1


WEAK_CRYPT_KEY = (
    "JUPYTERHUB_CRYPT_KEY must hold keys JupyterHub accepts, ';'-separated: 32 random bytes each, as 64 hex "
    "digits, 44 base64 characters or 32 characters; make one with `openssl rand -hex 32`"
)


def crypt_key_bytes(key: str) -> bytes:
    """The bytes one ``JUPYTERHUB_CRYPT_KEY`` key stands for, read as jupyter-2fa always has (so existing stores
    stay readable); :data:`WEAK_CRYPT_KEY` for a key JupyterHub itself would refuse.

    >>> len(crypt_key_bytes("00" * 32)), len(crypt_key_bytes("A" * 43 + "="))
    (32, 32)
    >>> crypt_key_bytes("hunter2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: JUPYTERHUB_CRYPT_KEY must hold keys JupyterHub accepts...
    """
    try:
        if len(key) == 64:
            return bytes.fromhex(key)
        if len(key) in (43, 44):
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            if len(raw) == 32:
                return raw
        elif len(key) == 32:  # JupyterHub takes it raw; jupyter-2fa has read it as base64 when it is that
            try:
                return base64.urlsafe_b64decode(key)
            except ValueError:
                return key.encode()
    except ValueError:
        pass
    raise ValueError(WEAK_CRYPT_KEY)


def fernet_keys_from_crypt_key(value: str) -> list[bytes]:
    """Fernet keys derived (HKDF-SHA256) from ``JUPYTERHUB_CRYPT_KEY``'s keys, so 2FA never reuses them as is.

    >>> len(fernet_keys_from_crypt_key("00" * 32 + ";" + "11" * 32))
    2
    """
    keys = []
    for part in value.replace(",", ";").split(";"):
        if part.strip():
            raw = crypt_key_bytes(part.strip())
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CRYPT_KEY_INFO).derive(raw)
            keys.append(base64.urlsafe_b64encode(derived))
    if not keys:
        raise ValueError(WEAK_CRYPT_KEY)
    return keys


class TOTPAuthenticator(Host, Authenticator):
    """Adds the second factor (TOTP or recovery code in the login form's ``otp`` field) to a password
    authenticator chosen with ``inner_authenticator_class``."""

    invalid_message = "Invalid username, password or code"

    inner_authenticator_class = EntryPointType(
        default_value=PAMAuthenticator,
        klass=Authenticator,
        entry_point_group="jupyterhub.authenticators",
        config=True,
        help="""The password authenticator whose login gets the second factor: any name or class that
        ``c.JupyterHub.authenticator_class`` accepts ("pam", "shared-password", "dummy", "native", "ldap",
        or "package.module.Class"). Its settings stay in its own section (``c.PAMAuthenticator.…``) and its
        allow/admin/group rules keep applying. Default "pam".

        .. versionadded:: 0.1
        """,
    )

    @default("request_otp")
    def _request_otp_default(self) -> bool:
        return True

    @default("otp_prompt")
    def _otp_prompt_default(self) -> str:
        return "Code from your authenticator app (or a recovery code):"

    @default("db_url")
    def _db_url_default(self) -> str:
        return f"sqlite:///{Path(os.getcwd()) / 'jupyter_2fa.sqlite'}"

    @default("key_file")
    def _key_file_default(self) -> str:
        return str(Path(os.getcwd()) / "jupyter_2fa.key")

    use_crypt_key = Bool(
        True,
        config=True,
        help="""Derive the keys that encrypt TOTP secrets from ``JUPYTERHUB_CRYPT_KEY`` when it is set and the
        ``keys_env_var`` variable is not (HKDF, so the hub's own keys are never used as they are). Default
        True. To rotate, list the new key first (``JUPYTERHUB_CRYPT_KEY="new;old"``), run ``jupyter 2fa
        rotate-key --config jupyterhub_config.py`` with that value, then drop the old key.

        .. versionadded:: 0.1
        """,
    )

    password_only_token_lifetime = Float(
        3600.0,
        config=True,
        help="""Seconds a token obtained by a hub session that logged in with the password alone (a trusted
        network, the optional policy) stays valid at most: in practice the browser's login to its single-user
        server. The server never tells the hub where the browser is, so only at the hub can the rule be checked
        again: when the token expires (plus the server's own 5-minute cache), the browser is sent back to the hub,
        which checks the network (and ``optional_until``, which such a token never outlives) and lets it in again
        or asks for a login. Default 3600 (1 hour). Lower it for a tighter bound on a session taken off the
        trusted network; raise it if users of trusted networks are sent back too often.

        .. warning:: This is how long a laptop that leaves a trusted network keeps a server open in it.

        .. versionadded:: 0.1
        """,
    )

    @validate("password_only_token_lifetime")
    def _validate_password_only_token_lifetime(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if value <= 0:
            raise TraitError("TOTPAuthenticator.password_only_token_lifetime must be a positive number of seconds")
        return value

    def __new__(cls, *args: Any, **kwargs: Any) -> TOTPAuthenticator:
        if cls is TOTPAuthenticator:
            cls = combined_class(resolve_inner(kwargs))
        return super().__new__(cls)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parent = kwargs.get("parent")
        template_paths = getattr(parent, "template_paths", None)
        if isinstance(template_paths, list) and NAV_TEMPLATES not in template_paths:
            template_paths.insert(0, NAV_TEMPLATES)  # the admins' "2FA" link, the login page's enrollment link
        # JupyterHub calls its jupyter_events logger `eventlog` (jupyter_server: `event_logger`).
        event_logger = getattr(parent, "eventlog", None) or getattr(parent, "event_logger", None)
        if event_logger is not None:
            self.add_audit_sink(event_logger_sink(event_logger))
        crypt_key = self._crypt_key()
        if crypt_key is not None:
            fernet_keys_from_crypt_key(crypt_key)  # a weak key stops the hub here, not at the first login
        self._warn_about_networks()
        self.sessions = HubSessions(self)
        # JupyterHub refreshes a user at most every auth_refresh_age seconds, per user rather than per session: any
        # session of the user would pass unchecked that long after another one's request. The session check is a
        # signed-cookie read, so it runs on every request; the inner authenticator's refresh keeps the admin's age.
        self.inner_refresh_age = self.auth_refresh_age
        self.auth_refresh_age = EVERY_REQUEST
        self._inner_refreshed: dict[str, float] = {}

    def device_cookie_path(self, handler: web.RequestHandler) -> str:
        return str(handler.hub.base_url)  # type: ignore[attr-defined]  # JupyterHub's handlers know their hub

    def sees_client_addresses(self) -> bool:
        """Behind configurable-http-proxy every request's peer is the proxy, unless the proxy is listed: then
        counting wrong passwords per source would let a stranger slow down every user's login at once."""
        return bool(self.trusted_proxies)

    def _warn_about_networks(self) -> None:
        """Behind configurable-http-proxy, every request's peer is the proxy: say so when that makes
        ``trusted_networks`` let everyone in, or match no one."""
        if not self.trusted_networks:
            return
        proxies_listed = bool(self.trusted_proxies)
        if not proxies_listed and (self.in_trusted_network("127.0.0.1") or self.in_trusted_network("::1")):
            self.log.critical(
                "TwoFactorConfig.trusted_networks contains loopback, and no trusted_proxies are listed: behind "
                "configurable-http-proxy on this machine every login comes from 127.0.0.1, so every login "
                "skips the code. Remove loopback from trusted_networks (see trusted_proxies' help)."
            )
        elif not proxies_listed:
            self.log.warning(
                "TwoFactorConfig.trusted_networks is set but no trusted_proxies are: the hub sees its proxy's "
                "address, so these networks match only clients that connect to the hub directly."
            )

    def _crypt_key(self) -> str | None:
        """``JUPYTERHUB_CRYPT_KEY``, when the 2FA keys come from it (see ``use_crypt_key``)."""
        value = os.environ.get("JUPYTERHUB_CRYPT_KEY", "")
        if self.use_crypt_key and value.strip() and not os.environ.get(self.keys_env_var, "").strip():
            return value
        return None

    # -- the core ------------------------------------------------------------------------------------------

    def keyring(self) -> Keyring:
        crypt_key = self._crypt_key()
        if crypt_key is not None:
            return Keyring(fernet_keys_from_crypt_key(crypt_key), "$JUPYTERHUB_CRYPT_KEY")
        return super().keyring()

    def refuse(self, verdict: Verdict) -> web.HTTPError:
        """An error the stock login form shows as its message (JupyterHub renders it in place)."""
        answer = self.refusal(verdict)
        return web.HTTPError(answer.status, answer.message)

    # -- logging in ----------------------------------------------------------------------------------------

    async def authenticate(self, handler: BaseHandler, data: dict[str, Any]) -> Any:
        """The inner authenticator checks the password; then the second factor is checked for that user.

        Only the login form may let the password alone in (a trusted network, the optional policy), and its
        browser gets a grant saying so (:mod:`.sessions`). JupyterHub also calls this for the credentials in
        the body of ``POST /hub/api/users/NAME/tokens``: a token always needs both factors.
        """
        check = await self.check_password(handler, str(data.get("username", "")), str(data.get("password", "")))
        otp, address, now = data.get("otp", ""), self.client_address(handler), time.time()
        browser_login = isinstance(handler, LoginHandler)
        device = self.known_device(handler, check.name) if browser_login else None
        if browser_login:
            try:  # the form's key button sends the key's answer in ``webauthn``, with ``otp`` empty
                factor = login_factor(cast(handlers.HubLoginHandler, handler), str(otp))
            except (BadInput, Refused) as err:
                raise web.HTTPError(err.status, str(err)) from None
            key_required = self.key_required_of(handler, check.name)
            verdict = await self.login_verdict(check, factor, address, now, device, key_required)
        else:
            # Credentials in a token request's body: no key can answer there, so an account that must use a key
            # gets its token from a session opened with one (KEY_REQUIRED, before the code is looked at).
            key_required = self.key_required_of(handler, check.name)
            verdict = await self.verdict_of(
                lambda core: core.verifier.login(
                    check.name, otp, now, first_factor_ok=check.ok, remote_addr=address, key_required=key_required
                )
            )
        if verdict.ok and browser_login:
            self.remember_device(handler, check.name, device)
            self.sessions.issue(handler, check.name, verdict, now)
        elif verdict.ok and isinstance(handler, handlers.HubTokensAPIHandler):
            handler.minted_epoch = verdict.epoch  # credentials in the body: the token is theirs, at this epoch
        if verdict.ok:
            self._inner_refreshed[check.name] = time.monotonic()
            return check.result
        if verdict.outcome is Outcome.NOT_ENROLLED:
            raise self.not_enrolled(handler)
        if verdict.outcome is Outcome.INVALID:
            return None  # the stock "Invalid username or password", whichever factor was wrong
        raise self.refuse(verdict)

    async def refresh_user(self, user: Any, handler: BaseHandler | None = None) -> Any:
        """On every request (see ``__init__``): False, so JupyterHub asks for a new login, when the request's
        cookie session no longer holds (:meth:`HubSessions.request_allowed`); then, every ``auth_refresh_age``
        seconds as configured, the inner authenticator's own refresh."""
        if handler is not None and not await self.sessions.request_allowed(user, handler, time.time()):
            return False
        age, now = self.inner_refresh_age, time.monotonic()
        last = self._inner_refreshed.get(user.name)
        if age <= 0 or (last is not None and now - last < age):
            return True
        refreshed = await maybe_future(super().refresh_user(user, handler))
        if refreshed:
            self._inner_refreshed[user.name] = now
        return refreshed

    async def check_password(self, handler: web.RequestHandler, username: str, password: str) -> PasswordCheck:
        """The inner authenticator's verdict on username and password alone, with its allow/block rules.

        The inner class never sees the form's ``otp`` (PAM would pass it on as an answer of its own), and the
        name it returns is normalised as JupyterHub will (so "ALICE" is checked as "alice").
        """
        typed = self.account_named(username)
        try:
            result = await maybe_future(super().authenticate(handler, {"username": username, "password": password}))
        except (TypeError, ValueError, UnicodeError) as err:
            # Input the inner class cannot take is a wrong password, not a 500 (SharedPasswordAuthenticator's
            # compare_digest refuses non-ASCII text; PAM refuses NUL).
            self.log.debug("the inner authenticator refused the password's shape: %s", type(err).__name__)
            return PasswordCheck(typed, False)
        if result is None:
            return PasswordCheck(typed, False)
        returned = result.get("name", typed) if isinstance(result, dict) else (result or typed)
        try:
            name = str(self.normalize_username(str(returned)))
        except KeyError:  # the system's user database failed us (sssd restarting?): never guess the account
            return PasswordCheck(typed, False)
        authentication = result if isinstance(result, dict) else {"name": name}
        allowed = await maybe_future(self.check_blocked_users(name, authentication)) and await maybe_future(
            self.check_allowed(name, authentication)
        )
        return PasswordCheck(name, bool(allowed), result)

    def key_required_of(self, handler: web.RequestHandler, name: str) -> bool:
        """As the gate's, plus hub admins (``webauthn_required_for = "admins"``) and members of
        ``webauthn_required_groups``, as the hub's database knows them (a user's first login: its config)."""
        if super().key_required_of(handler, name):
            return True
        user = cast(BaseHandler, handler).find_user(name)
        if self.webauthn_required_for == "admins" and (name in self.admin_users or bool(user and user.admin)):
            return True
        groups = {group.name for group in user.groups} if user is not None else set()
        return bool(groups & set(self.webauthn_required_groups))

    def account_named(self, typed: str) -> str:
        """The name as JupyterHub normalises it. A name the system does not know stays as typed: PAM's
        ``pam_normalize_username`` looks it up and raises, which would answer an unknown user with a 500 and a
        known one with a 403, telling who has an account."""
        try:
            return str(self.normalize_username(typed))
        except KeyError:
            return typed

    def not_enrolled(self, handler: BaseHandler) -> web.HTTPError:
        """The login form's answer to the right password of an account with no device: where to link one, as
        text (logs, API clients) and, for the page, with the enrollment page as a link (JupyterHub's
        ``jupyterhub_html_message``; ``HubLoginHandler`` shows it in the form)."""
        lead = "No authenticator device is linked to this account yet."
        if self.enrollment_policy == "cli-only":
            error = web.HTTPError(403, f"{lead} {self.help_text}")
            error.jupyterhub_html_message = html.escape(error.log_message or "")  # type: ignore[attr-defined]
            return error
        url = f"{handler.hub.base_url}2fa/enroll"
        error = web.HTTPError(403, f"{lead} Link one at {url}, then log in with its code.")
        link = f'<a href="{html.escape(url)}">Link one</a>'
        error.jupyterhub_html_message = f"{lead} {link}, then log in with its code."  # type: ignore[attr-defined]
        return error

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        # JupyterHub's stock /login asks for the code (request_otp); an inner class's own login page would not.
        inner = [(path, handler) for path, handler in super().get_handlers(app) if path not in ("/login", r"/login")]
        return [*inner, *handlers.handlers(), *admin.handlers()]

    async def delete_user(self, user: Any) -> None:
        """A user deleted from the hub loses their device link too."""
        await maybe_future(super().delete_user(user))
        name, now = str(user.name), time.time()  # read here: the ORM object stays on the loop's thread
        try:
            await self.in_core(lambda core: core.reset(name, now))
        except StoreError as err:
            self.log.error("2FA store unavailable while deleting %s: %s", user.name, err)


def resolve_inner(kwargs: dict[str, Any]) -> type[Authenticator]:
    """The inner authenticator class named by the configuration the hub passes in."""
    config = kwargs.get("config") or getattr(kwargs.get("parent"), "config", None)
    value: Any = "pam"
    if config is not None:
        for section in ("TOTPAuthenticator", "TwoFactorConfig"):
            if "inner_authenticator_class" in config.get(section, {}):
                value = config[section]["inner_authenticator_class"]
                break
    trait = cast(EntryPointType, TOTPAuthenticator.class_traits()["inner_authenticator_class"])
    inner: type[Authenticator] = trait.validate(None, value)
    if issubclass(inner, TOTPAuthenticator):
        raise ValueError("TOTPAuthenticator.inner_authenticator_class must be a password authenticator")
    return inner


@cache
def combined_class(inner: type[Authenticator]) -> type[TOTPAuthenticator]:
    """``TOTPAuthenticator`` layered over ``inner``: 2FA first in the MRO, the inner class's rules after."""
    return type(f"TOTP{inner.__name__}", (TOTPAuthenticator, inner), {"__module__": __name__})
