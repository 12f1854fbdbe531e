"""The JSON API under ``2fa/api/`` (and the one-time QR picture), the same paths and bodies on both hosts;
``server/openapi.yaml`` documents it. Each verb: who is calling, read the body, one linking step, reply.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tornado import web

from ..core import (
    AlreadyEnrolled,
    CodeRejected,
    EnrollmentError,
    Outcome,
    StoreError,
    UserNotVerified,
    Verdict,
    WebAuthnError,
)
from ..core.passkeys import KeyNotAdded, KeyStepError, LastFactor, NoKeys, Proof, UnknownKey
from ..messages import (
    CLI_ONLY,
    KEY_NOT_VERIFIED,
    KEY_REFUSED,
    NOTHING_PENDING,
    PICTURE_GONE,
    USE_ENROLLMENT,
    USE_RELINK,
)
from . import linking
from .forms import BadInput
from .handler import Caller, FlowHandler
from .host import PasswordCheck
from .models import account_status, linking_model
from .refusals import Refused

ONE_SHOT_IMAGE_HEADERS = {
    "Content-Type": "image/svg+xml",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


Flow = TypeVar("Flow", bound="APIFlow")
Failure = BadInput | Refused | EnrollmentError | WebAuthnError | StoreError


def answered(verb: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The verb, with every refusal answered in the host's way: bad input, a wrong or throttled factor, a state
    that does not allow the step, a key's response that does not hold, a store outage (never a 500)."""

    @functools.wraps(verb)
    async def answer(self: APIFlow, *args: str) -> None:
        try:
            await verb(self, *args)
        except (BadInput, Refused, EnrollmentError, WebAuthnError, StoreError) as err:
            self.write_refusal(self.refusal_of(err))

    return answer


def key_refusal_text(err: KeyStepError | WebAuthnError) -> str:
    """What a user is told when a key step fails: our own words for a name or a ceremony to start again, fixed
    ones for a response that did not hold (py_webauthn's words name the origin and id it expected)."""
    if isinstance(err, UserNotVerified):
        return KEY_NOT_VERIFIED
    if isinstance(err, WebAuthnError):
        return KEY_REFUSED
    return str(err)


class APIFlow(FlowHandler):
    """What the API verbs share (each is wrapped in :func:`answered`)."""

    async def password_of(self, caller: Caller, password: str) -> PasswordCheck:
        """Whether ``password`` is the caller's own (a right password of another account is not)."""
        check = await self.host.check_password(self, caller.name, password)
        return PasswordCheck(caller.name, check.ok and check.name == caller.name)

    def proof(self, check: PasswordCheck, otp: str, key_session: bool, name: str) -> Proof:
        """What this request shows for a key step (see :class:`Proof`)."""
        key_required = self.host.key_required_of(self, name)
        return Proof(check.ok, otp, key_session, key_required, self.host.client_address(self))

    def refusal_of(self, err: Failure) -> Refused:
        """How the API words a refusal: a wrong factor is 403 (throttled 429), a step the account's state does
        not allow is 409, an unknown key 404, a key's response that does not hold 400, the store down 503."""
        if isinstance(err, Refused):
            return err
        if isinstance(err, BadInput):
            return Refused(err.status, str(err))
        if isinstance(err, CodeRejected):
            return Refused.api(self.host.refusal(err.verdict))
        if isinstance(err, AlreadyEnrolled):
            return Refused(409, USE_RELINK)
        if isinstance(err, UnknownKey):
            return Refused(404, str(err))
        if isinstance(err, (LastFactor, NoKeys, KeyNotAdded)):
            return Refused(409, str(err))
        if isinstance(err, (KeyStepError, WebAuthnError)):
            return Refused(400, key_refusal_text(err))
        if isinstance(err, EnrollmentError):
            return Refused(409, str(err))
        return Refused.api(self.host.refusal(Verdict(Outcome.UNAVAILABLE, "store-unavailable")))


class StatusAPI(APIFlow):
    route = r"/2fa/api/status"

    @answered
    async def get(self) -> None:
        caller = await self.caller(read_only=True)
        host = self.host
        account = await host.in_core(lambda core: core.store.get(caller.name))
        factor, expires_at = self.session_of(caller)
        self.reply(
            200,
            {
                "username": caller.name,
                **account_status(account, host.lockout_threshold),
                "webauthn_enabled": host.webauthn_allowed,
                "policy": host.enrollment_policy,
                "optional_until": host.optional_until or None,
                "session_factor": factor,
                "session_expires_at": expires_at,
            },
        )


class LinkingAPI(APIFlow):
    """What starting an enrollment and a re-link share: the policy check and the one-time reveal."""

    async def linking_caller(self) -> Caller:
        caller = await self.caller()
        if self.host.enrollment_policy == "cli-only":
            raise Refused(403, CLI_ONLY)
        return caller

    async def reveal(self, caller: Caller, fields: dict[str, str], *, relink: bool) -> None:
        host = self.host
        account = await host.in_core(lambda core: core.store.get(caller.name))
        if relink and (account is None or not account.enrolled):
            raise Refused(409, USE_ENROLLMENT)
        if not relink and account is not None and account.enrolled:
            raise Refused(409, USE_RELINK)
        check = await self.password_of(caller, fields["password"])
        key_session = self.session_factor(caller) == "webauthn"
        provisioning = await linking.start(self, check, fields.get("otp", ""), key_session)
        account = await host.in_core(lambda core: core.store.get(caller.name))
        expires_at = account.pending_expires_at if account else None
        qr_path = self.url("2fa/qr/")
        self.reply(
            201, linking_model(provisioning, expires_at, fields["reveal"], host.one_shot_images, caller.name, qr_path)
        )


class EnrollmentAPI(LinkingAPI):
    route = r"/2fa/api/enrollment"

    @answered
    async def post(self) -> None:
        caller = await self.linking_caller()
        # ``otp``: beside passkeys or security keys already registered, a recovery code (see Enrollment.start).
        await self.reveal(caller, self.json_fields("password", "otp", "reveal"), relink=False)

    @answered
    async def delete(self) -> None:
        caller = await self.caller()
        # A session that logged in with the second factor has shown the device; anyone else shows it now.
        otp = None if self.second_factor_proven(caller) else self.json_fields("otp")["otp"]
        if not await linking.cancel(self, caller.name, otp):
            raise Refused(404, NOTHING_PENDING)
        self.set_status(204)
        self.finish()


class RelinkAPI(LinkingAPI):
    route = r"/2fa/api/relink"

    @answered
    async def post(self) -> None:
        caller = await self.linking_caller()
        await self.reveal(caller, self.json_fields("password", "otp", "reveal"), relink=True)


class ConfirmAPI(APIFlow):
    route = r"/2fa/api/enrollment/confirm"

    @answered
    async def post(self) -> None:
        caller = await self.caller()
        codes = await linking.confirm(self, caller, self.json_fields("code")["code"])
        self.reply(200, {"recovery_codes": codes})


class RecoveryCodesAPI(APIFlow):
    route = r"/2fa/api/recovery-codes"

    @answered
    async def post(self) -> None:
        caller = await self.caller()
        fields = self.json_fields("password", "otp")
        check = await self.password_of(caller, fields["password"])
        codes = await linking.new_recovery_codes(self, check, fields["otp"])
        self.reply(200, {"recovery_codes": codes})


class OneShotPicture(FlowHandler):
    """``2fa/qr/<ticket>``: the notebook panel's QR picture, once, to its owner's browser session only."""

    route = r"/2fa/qr/([A-Za-z0-9_-]{1,64})"

    async def get(self, ticket: str) -> None:
        owner = self.picture_owner()
        content = self.host.one_shot_images.take(ticket, owner, time.time()) if owner else None
        if content is None:
            raise web.HTTPError(404, PICTURE_GONE)
        for name, value in ONE_SHOT_IMAGE_HEADERS.items():
            self.set_header(name, value)
        self.finish(content)
