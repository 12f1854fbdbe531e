"""Passkeys and security keys (WebAuthn) in the JSON API, the same paths on both hosts (``openapi.yaml``):
options for the browser's ceremonies, and the user's own keys (list, register, rename, remove).

A ceremony is two requests: options (here), then the browser's answer (a login form's ``webauthn`` field, or
``POST webauthn/credentials``). The challenge between them is kept in the store, single-use, and bound to this
browser by a signed, HttpOnly, SameSite=Strict cookie holding its id and a random nonce: another browser (or a
page on another site) cannot answer it.
"""

from __future__ import annotations

import binascii
import functools
import json
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tornado import web

from ..core import BadRelyingParty, RelyingParty
from ..core.passkeys import CHALLENGE_LIFETIME, NO_SUCH_KEY
from ..core.webauthn import KeyAssertion, b64url, from_b64url
from ..messages import KEYS_IN_A_BROWSER, WEBAUTHN_OFF
from .api import APIFlow, answered
from .forms import BadInput, json_object
from .handler import Caller, FlowHandler
from .refusals import Refused

SCRIPT = Path(__file__).with_name("webauthn.js")


@functools.cache
def script() -> bytes:
    """The pages' script, read once, on its first request (not at import: the gate starts without it)."""
    return SCRIPT.read_bytes()


if TYPE_CHECKING:
    from ..core import WebAuthnCredential

CEREMONY_COOKIE = "jupyter-2fa-webauthn"
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,1400}")
# A browser's answer to a ceremony (``PublicKeyCredential.toJSON()``): a few hundred bytes, up to about 3 KiB with
# the longest credential ids the spec allows.
MAX_RESPONSE_CHARS = 16 * 1024


def relying_party(handler: FlowHandler) -> RelyingParty:
    """The relying party of the page ``handler`` serves; :class:`Refused` (400) when it cannot work, saying why
    (the page is on an IP address: open it on a host name such as localhost)."""
    host = handler.host
    if not host.webauthn_allowed:
        raise Refused(404, WEBAUTHN_OFF)
    try:
        return host.relying_party(handler.request.protocol, handler.request.host)
    except BadRelyingParty as err:
        raise Refused(400, str(err)) from None


def new_nonce() -> str:
    """A new nonce for this browser's next ceremony (what its challenge is bound to)."""
    return secrets.token_urlsafe(24)


def remember_ceremony(handler: FlowHandler, challenge_id: str, nonce: str) -> None:
    handler.set_secure_cookie(
        CEREMONY_COOKIE,
        json.dumps([challenge_id, nonce]),
        expires_days=None,
        max_age=int(CHALLENGE_LIFETIME),
        path=handler.url(""),
        httponly=True,
        samesite="Strict",
        secure=handler.request.protocol == "https",
    )


def login_factor(handler: FlowHandler, otp: str) -> object:
    """What a login form sent as its second factor: the code, or a key's answer (its ``webauthn`` field) with
    the challenge this browser was given (read from its ceremony cookie; an answer without one is refused as
    a wrong key, and counted)."""
    response = handler.form_field("webauthn", MAX_RESPONSE_CHARS)
    if not response:
        return otp
    challenge_id, nonce = ceremony(handler)
    end_ceremony(handler)
    return KeyAssertion(response, challenge_id, nonce, relying_party(handler))


def end_ceremony(handler: FlowHandler) -> None:
    handler.clear_cookie(CEREMONY_COOKIE, path=handler.url(""))


def ceremony(handler: FlowHandler) -> tuple[str, str]:
    """The challenge id and nonce of this browser's ceremony (from its signed cookie; blanks without one)."""
    signed = handler.get_secure_cookie(CEREMONY_COOKIE, max_age_days=1)
    try:
        challenge_id, nonce = json.loads(signed or b"null")
    except (TypeError, ValueError):
        return "", "no-ceremony"
    if not isinstance(challenge_id, str) or not isinstance(nonce, str) or not nonce:
        return "", "no-ceremony"
    return challenge_id, nonce


def in_a_browser(caller: Caller) -> Caller:
    """``caller``, if it is a browser session: a kernel or script has no WebAuthn API to answer with."""
    if caller.credentials:
        raise Refused(403, KEYS_IN_A_BROWSER)
    return caller


def credential_model(key: WebAuthnCredential) -> dict[str, Any]:
    return {
        "id": b64url(key.credential_id),
        "name": key.name,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "transports": list(key.transports),
        "aaguid": key.aaguid,
    }


def credential_id(text: str) -> bytes:
    """A key's id in a URL (base64url without padding); 404 for anything that cannot be one."""
    if not _CREDENTIAL_ID.fullmatch(text):
        raise Refused(404, NO_SUCH_KEY)
    try:
        return from_b64url(text)
    except (ValueError, binascii.Error):
        raise Refused(404, NO_SUCH_KEY) from None


class KeyLoginOptionsAPI(APIFlow):
    """``POST webauthn/login-options``: the login page's first step with a key, after the password."""

    route = r"/2fa/api/webauthn/login-options"

    @answered
    async def post(self) -> None:
        host = self.host
        fields = self.json_fields("username", "password")
        rp = relying_party(self)
        check = await host.check_password(self, host.account_named(fields["username"]), fields["password"])
        now, address, nonce = time.time(), host.client_address(self), new_nonce()
        options, challenge_id = await host.in_core(
            lambda core: core.passkeys.login_options(
                check.name, rp, nonce, now, first_factor_ok=check.ok, remote_addr=address
            )
        )
        remember_ceremony(self, challenge_id, nonce)
        self.reply(200, {"options": json.loads(options)})


class KeyRegistrationOptionsAPI(APIFlow):
    """``POST webauthn/registration-options``: password, and the current factor when one is linked. Open to a
    browser without a session too (the 2FA page, where a first factor is linked): its body names the account."""

    route = r"/2fa/api/webauthn/registration-options"

    @answered
    async def post(self) -> None:
        fields = self.json_fields("username", "password", "otp")
        rp = relying_party(self)
        name, key_session = await self.registrant(fields["username"])
        check = await self.password_of(Caller(name), fields["password"])
        proof = self.proof(check, fields["otp"], key_session, name)
        now, nonce = time.time(), new_nonce()
        options, challenge_id = await self.host.in_core(
            lambda core: core.passkeys.registration_options(check.name, rp, nonce, now, proof)
        )
        remember_ceremony(self, challenge_id, nonce)
        self.reply(200, {"options": json.loads(options)})

    async def registrant(self, typed: str) -> tuple[str, bool]:
        """Whose key is registered: the signed-in browser's account, or the one the form names (before any
        login); and whether the browser's session was opened with a key."""
        try:
            caller = await self.caller()
        except web.HTTPError:
            return self.host.account_named(typed), False
        return in_a_browser(caller).name, self.session_factor(caller) == "webauthn"


class KeyCredentialsAPI(APIFlow):
    """``GET webauthn/credentials``: the caller's keys; ``POST``: register the key the browser just created."""

    route = r"/2fa/api/webauthn/credentials"

    @answered
    async def get(self) -> None:
        caller = await self.caller()
        keys = await self.host.in_core(lambda core: core.store.webauthn_credentials(caller.name))
        self.reply(200, {"credentials": [credential_model(key) for key in keys]})

    @answered
    async def post(self) -> None:
        caller = in_a_browser(await self.caller())
        body = json_object(self.request.body, name=str, credential=dict)
        response = json.dumps(body.get("credential") or {})
        if len(response) > MAX_RESPONSE_CHARS:
            raise BadInput("field 'credential' is too large")
        rp = relying_party(self)
        challenge_id, nonce = ceremony(self)
        now, address = time.time(), self.host.client_address(self)
        key, codes = await self.host.in_core(
            lambda core: core.passkeys.register(
                caller.name, rp, challenge_id, nonce, response, body.get("name", ""), now, address
            )
        )
        end_ceremony(self)
        if codes:  # the account's first factor: its older (password-only) sessions end
            await self.device_linked(caller, "webauthn")
        self.reply(201, {"credential": credential_model(key), "recovery_codes": codes})


class KeyCredentialAPI(APIFlow):
    """``PATCH webauthn/credentials/<id>``: rename; ``DELETE``: remove (with the password)."""

    # Any segment reaches the handler, which answers an id that cannot be one with the API's 404 (a route that
    # did not match would leave it to the host's default handler, with an HTML answer).
    route = r"/2fa/api/webauthn/credentials/([^/]+)"

    @answered
    async def patch(self, key_id: str) -> None:
        caller = await self.caller()
        name = self.json_fields("name")["name"]
        cid = credential_id(key_id)
        key = await self.host.in_core(lambda core: core.passkeys.rename(caller.name, cid, name))
        self.reply(200, {"credential": credential_model(key)})

    @answered
    async def delete(self, key_id: str) -> None:
        caller = await self.caller()
        fields = self.json_fields("password", "otp")
        check = await self.password_of(caller, fields["password"])
        cid, now = credential_id(key_id), time.time()
        proof = self.proof(check, fields["otp"], self.session_factor(caller) == "webauthn", caller.name)
        await self.host.in_core(lambda core: core.passkeys.remove(check.name, cid, now, proof))
        self.set_status(204)
        self.finish()


class KeyScript(FlowHandler):
    """``2fa/webauthn.js``: the login page's key button and the 2FA page's "add a key" (public, like any page's
    script: it holds no secret)."""

    route = r"/2fa/webauthn\.js"

    def get(self) -> None:
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(script())
