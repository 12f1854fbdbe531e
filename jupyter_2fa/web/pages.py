"""The enrollment page (``2fa/enroll``), without JavaScript: password -> QR code and key (once) -> a code ->
recovery codes (once); cancel. Posting the password again starts a fresh enrollment that voids the previous
one, so a reload or a second tab never shows an earlier secret again.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from ..core import (
    AlreadyEnrolled,
    CodeRejected,
    EnrollmentError,
    NoPendingEnrollment,
    Outcome,
    StoreError,
    Verdict,
    WebAuthnError,
)
from ..core.passkeys import KeyStepError
from ..messages import ALREADY_LINKED, CANCELLED, CLI_ONLY, NOTHING_TO_CANCEL, STARTED_ELSEWHERE, WRONG_NEW_CODE
from . import linking
from .api import key_refusal_text
from .forms import BadInput
from .handler import Caller, FlowHandler
from .models import pending_tag
from .passkeys import MAX_RESPONSE_CHARS, ceremony, end_ceremony, relying_party
from .refusals import Refused

if TYPE_CHECKING:
    from ..core import Account

PENDING_COOKIE = "jupyter-2fa-enrollment"  # which browser started a pending enrollment (only it may finish it)


class EnrollPage(FlowHandler):
    """The page's verbs; each host serves them with its own base handler and login rules."""

    route = r"/2fa/enroll"

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Referrer-Policy", "same-origin")  # "no-referrer" makes browsers send Origin: null

    async def get(self) -> None:
        await self._start_page()

    async def post(self) -> None:
        if self.host.enrollment_policy == "cli-only":
            await self._start_page()
            return
        action = ""
        try:
            action = self.form_field("action")
            if action == "start":
                await self._begin()
            elif action == "confirm":
                await self._confirm()
            elif action == "cancel":
                await self._cancel()
            elif action == "add-key":
                await self._add_key()
            else:
                raise BadInput("unknown action")
        except BadInput as err:
            if action == "confirm":  # keep the code form: the pending enrollment is untouched
                await self._render("confirm", err.status, message=str(err))
            else:
                await self._start_page(str(err), err.status)
        except Refused as refused:
            for name, value in refused.headers.items():
                self.set_header(name, value)
            await self._render("confirm" if action == "confirm" else "start", refused.status, message=refused.message)
        except (KeyStepError, WebAuthnError) as err:  # a key's registration that did not hold: say why
            await self._start_page(key_refusal_text(err), 400)
        except StoreError:
            await self._start_page(self.host.refusal(Verdict(Outcome.UNAVAILABLE, "")).message, 503)

    async def _render(self, step: str, status: int = 200, **ns: Any) -> None:
        host = self.host
        ns.setdefault("username", self._typed_account())
        if step == "start":
            ns["relink"], ns["offer_relink"] = await self._relink_form()
        await self.render_page(
            self.page_template,
            status,
            step=step,
            next=self.page_next(),
            enroll_url=self.url("2fa/enroll"),
            webauthn=host.webauthn_allowed,
            api_url=self.url("2fa/api/"),
            script_url=self.url("2fa/webauthn.js"),
            xsrf_input=self.xsrf_form_html(),
            ask_username=self.ask_username,
            issuer=host.issuer,
            help_text=host.help_text,
            **ns,
        )

    async def _start_page(self, message: str = "", status: int = 200) -> None:
        """The password form; the same for every anonymous visitor, so it tells them nothing about the account
        (see :meth:`_relink_form`)."""
        if self.host.enrollment_policy == "cli-only":
            await self._render("cli-only", 403, message=CLI_ONLY)
        else:
            await self._render("start", status, message=message)

    async def _relink_form(self) -> tuple[bool, bool]:
        """Whether the start form asks for a current code (replacing a linked device), and whether it offers
        a link to the form that does.

        The code field shows when this browser's session is of an account with a device, or the visitor asked
        for it (the offered link's ``relink``, a code just sent). An anonymous visitor gets the first-time form
        whatever the account, with the link: the page never tells them whether an account has a device.
        """
        try:
            asked = bool(self.get_query_argument("relink", "") or self.form_field("otp"))
        except BadInput:
            asked = False
        name = self.session_account()
        if asked or name is None:
            return asked, not asked
        try:
            account = await self._stored(name)
        except StoreError:  # the page says the store is down; the first-time form is the one to show then
            return False, True
        return account is not None and account.has_second_factor, False

    def _account(self) -> str:
        """The account the form is about (the hub's page asks for a username; the gate has one account)."""
        return self.host.account_named(self.form_field("username") if self.ask_username else "")

    def _typed_account(self) -> str:
        try:
            return self._account()
        except BadInput:
            return ""

    async def _begin(self) -> None:
        host = self.host
        check = await host.check_password(self, self._account(), self.form_field("password"))
        try:
            provisioning = await linking.start(self, check, self.form_field("otp"))
        except CodeRejected as err:
            raise Refused.page(host.refusal(err.verdict)) from None
        except AlreadyEnrolled:
            raise Refused(409, ALREADY_LINKED) from None
        except EnrollmentError as err:
            raise Refused(409, str(err)) from None
        await self._remember_pending(check.name)
        await self._render("scan", username=check.name, provisioning=provisioning, svg=provisioning.svg())

    async def _stored(self, name: str) -> Account | None:
        return await self.host.in_core(lambda core: core.store.get(name))

    def _started_here(self, tag: str) -> bool:
        """Whether this browser started the pending enrollment ``tag`` names (see :func:`pending_tag`)."""
        mine = self.get_secure_cookie(PENDING_COOKIE, max_age_days=1)
        return mine is not None and hmac.compare_digest(mine.decode(), tag)

    async def _remember_pending(self, name: str) -> None:
        """Mark this browser as the one that started the pending enrollment: only it may confirm or cancel it."""
        tag = pending_tag(await self._stored(name))
        if tag:
            self.set_secure_cookie(
                PENDING_COOKIE, tag, path=self.url(""), httponly=True, samesite="Strict", expires_days=None
            )

    async def _confirm(self) -> None:
        name = self._account()
        account = await self._stored(name)
        live = account is not None and (account.pending_expires_at or 0.0) > time.time()
        if live and not self._started_here(pending_tag(account)):  # who saw the QR code must not link it first
            await self._start_page(STARTED_ELSEWHERE, 409)
            return
        try:
            codes = await linking.confirm(self, Caller(name), self.form_field("code"))
        except CodeRejected as err:
            if err.verdict.outcome is Outcome.INVALID:
                raise Refused(400, WRONG_NEW_CODE) from None
            raise Refused.page(self.host.refusal(err.verdict)) from None
        except NoPendingEnrollment as err:
            await self._start_page(f"{err} (nothing was linked)", 409)
            return
        await self._render("done", recovery_codes=codes)

    async def _add_key(self) -> None:
        """Register the passkey or security key this browser just created (``webauthn.js``, after the password,
        and the current factor when one is linked, went to ``POST webauthn/registration-options``)."""
        host = self.host
        name, rp = self._account(), relying_party(self)
        challenge_id, nonce = ceremony(self)
        response = self.form_field("credential", MAX_RESPONSE_CHARS)
        typed_name, now, address = self.form_field("key_name"), time.time(), host.client_address(self)
        key, codes = await host.in_core(
            lambda core: core.passkeys.register(name, rp, challenge_id, nonce, response, typed_name, now, address)
        )
        end_ceremony(self)
        if codes:  # the account's first factor
            await self.device_linked(Caller(name), "webauthn")
        await self._render("key-added", username=name, key_name=key.name, recovery_codes=codes)

    async def _cancel(self) -> None:
        name = self._account()
        tag = pending_tag(await self._stored(name))
        if not tag or not self._started_here(tag):
            await self._start_page(NOTHING_TO_CANCEL, 409)
            return
        await linking.cancel(self, name)
        self.clear_cookie(PENDING_COOKIE, path=self.url(""))
        await self._start_page(CANCELLED)
