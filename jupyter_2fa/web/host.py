"""What the two hosts (the single-server gate, the hub authenticator) share at run time.

:class:`Host` is the configurable both inherit: the core opened on first use, where a request comes from, the
one login decision, the password-as-credentials check, and the wording of refusals. Each host supplies the
little that differs: how a password is checked and which account a typed name means.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler

from ..config import TwoFactorConfig
from ..core import Enrollment, Outcome, StoreError, Verdict
from ..core.audit import Action, AuditEvent, AuditSink, fan_out
from ..core.network import Network, client_address, in_networks, parse_networks
from ..messages import INVALID, Refusal, refusal
from .refusals import Refused

# A browser that logged in to an account before carries this signed cookie (the account and a random id):
# its wrong passwords are counted on their own, and no stranger's guesses slow it down (core GuessKeys).
DEVICE_COOKIE = "jupyter-2fa-device"
DEVICE_COOKIE_DAYS = 90

T = TypeVar("T")


@dataclass(frozen=True)
class PasswordCheck:
    """What a host's password check said: the account the name means, and whether it may log in.

    ``result`` is what the hub's inner authenticator returned (JupyterHub wants it back on success).
    """

    name: str
    ok: bool
    result: Any = None


class Host(TwoFactorConfig):
    """The 2FA runtime of a host; ``TOTPIdentityProvider`` and ``TOTPAuthenticator`` are its two kinds."""

    # What a wrong password or code is called in this host's refusals.
    invalid_message = INVALID

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._enrollment: Enrollment | None = None
        self._opening = threading.Lock()  # the store opens once, whichever worker thread asks first
        self._workers: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # where work in the workers came from
        self._extra_audit_sinks: list[AuditSink] = []
        self._trusted_networks: list[Network] = parse_networks(self.trusted_networks)
        self._trusted_proxies: list[Network] = parse_networks(self.trusted_proxies)

    # -- what each host supplies ---------------------------------------------------------------------------

    async def check_password(self, handler: RequestHandler, name: str, password: str) -> PasswordCheck:
        """The host's first factor: is ``password`` right for the account ``name`` means, may it log in?"""
        raise NotImplementedError

    def account_named(self, typed: str) -> str:
        """The account a name typed into a form means (the gate has one account, whatever is typed)."""
        raise NotImplementedError

    def store_opened(self, enrollment: Enrollment) -> None:
        """Called once when the store opens (the gate makes its one account's row there)."""

    # -- shared --------------------------------------------------------------------------------------------

    @property
    def enrollment(self) -> Enrollment:
        """The core, opened on first use; raises StoreError (answered 503) while the store is down."""
        if self._enrollment is not None:  # once open, no lock: the loop never waits on a worker's open
            return self._enrollment
        with self._opening:
            if self._enrollment is None:
                enrollment = self.open_enrollment(fan_out(self.audit_sink(), *self._extra_audit_sinks))
                self.store_opened(enrollment)
                self._enrollment = enrollment
            return self._enrollment

    def _on_the_loop(self, sink: AuditSink) -> AuditSink:
        def emit(event: AuditEvent) -> None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # a worker thread (or no loop at all, as in a test calling the core directly)
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(sink, event)
                    return
            sink(event)

        return emit

    async def in_core(self, work: Callable[[Enrollment], T]) -> T:
        """``work(core)`` in this host's 2FA worker threads, never on the event loop.

        Store calls wait on disk syncs, row locks and the network, and recovery codes on Argon2id; on the loop,
        each would stall every request of the server or hub meanwhile. ``worker_threads`` bounds what a flood
        can occupy: further requests wait for a thread without holding the loop. Errors (StoreError when the
        store is down) are raised here, as if ``work`` had run in place.
        """
        self._loop = asyncio.get_running_loop()
        if self._workers is None:
            self._workers = ThreadPoolExecutor(self.worker_threads, thread_name_prefix="jupyter-2fa")
        return await self._loop.run_in_executor(self._workers, lambda: work(self.enrollment))

    def close_store(self) -> None:
        """Close the store's connections and stop the worker threads, if started; both start again on use."""
        if self._workers is not None:
            self._workers.shutdown(wait=False, cancel_futures=True)
            self._workers = None
        if self._enrollment is not None:
            self._enrollment.store.close()
            self._enrollment = None

    def add_audit_sink(self, sink: AuditSink) -> None:
        """Also send every decision to ``sink`` (jupyter_events, the hosts' event bus), on the event loop's thread:
        jupyter_events schedules its listeners on the running loop, which a worker thread has not."""
        sink = self._on_the_loop(sink)
        self._extra_audit_sinks.append(sink)
        if self._enrollment is not None:
            verifier = self._enrollment.verifier
            verifier.audit = fan_out(verifier.audit, sink)

    def client_address(self, handler: RequestHandler) -> str | None:
        return request_client_address(handler.request, self._trusted_proxies)

    def in_trusted_network(self, address: str | None) -> bool:
        return in_networks(address, self._trusted_networks)

    def refusal(self, verdict: Verdict) -> Refusal:
        """The user-facing answer to a failed attempt: one message for every wrong factor."""
        return refusal(verdict, self.help_text, invalid=self.invalid_message)

    def key_required_of(self, handler: RequestHandler, name: str) -> bool:
        """Whether ``name`` must log in with a passkey or security key (``factors``, ``webauthn_required_for``;
        the hub adds its admins and groups)."""
        return "totp" not in self.factors or self.webauthn_required_for == "everyone"

    async def login_verdict(
        self,
        check: PasswordCheck,
        otp: object,
        remote_addr: str | None,
        now: float,
        device: str | None = None,
        key_required: bool = False,
    ) -> Verdict:
        """The one login decision of both hosts: password checked by the host, then the second factor, the
        trusted network or the optional rollout policy, as the core decides (:meth:`Verifier.login`).
        ``device`` is :meth:`known_device`'s answer for this browser and account; ``key_required``
        :meth:`key_required_of`'s for the account."""
        trusted_network, password_alone = self.in_trusted_network(remote_addr), self.password_alone_allowed(now)
        return await self.verdict_of(
            lambda core: core.verifier.login(
                check.name,
                otp,
                now,
                first_factor_ok=check.ok,
                remote_addr=remote_addr,
                trusted_network=trusted_network,
                password_alone_allowed=password_alone,
                device=device,
                key_required=key_required,
            )
        )

    async def verdict_of(self, check: Callable[[Enrollment], Verdict]) -> Verdict:
        """A verifier's verdict, reached in the worker threads; UNAVAILABLE when the store would not open."""
        try:
            return await self.in_core(check)
        except StoreError as err:
            self.log.error("2FA store unavailable: %s", err)
            return Verdict(Outcome.UNAVAILABLE, "store-unavailable")

    def known_device(self, handler: RequestHandler, name: str) -> str | None:
        """This browser's device id if it logged in to ``name`` before (its signed device cookie), else None."""
        signed = handler.get_secure_cookie(DEVICE_COOKIE, max_age_days=DEVICE_COOKIE_DAYS)
        try:
            owner, device = json.loads(signed or b"null")
        except (TypeError, ValueError):
            return None
        return device if owner == name and isinstance(device, str) and device else None

    def remember_device(self, handler: RequestHandler, name: str, device: str | None) -> None:
        """After a login of ``name``: give (or renew) this browser's device cookie."""
        handler.set_secure_cookie(
            DEVICE_COOKIE,
            json.dumps([name, device or secrets.token_urlsafe(18)]),
            expires_days=DEVICE_COOKIE_DAYS,
            path=self.device_cookie_path(handler),
            httponly=True,
            samesite="Strict",
            secure=handler.request.protocol == "https",
        )

    def device_cookie_path(self, handler: RequestHandler) -> str:
        """Where the login form posts: the device cookie goes nowhere else (never to user servers)."""
        return str(handler.settings.get("base_url") or "/")

    async def basic_account(self, handler: RequestHandler, username: str, password: str) -> str:
        """The account whose password came as HTTP Basic credentials (how a notebook kernel calls the API),
        counted by the throttle like a login; :class:`Refused` when it is wrong, throttled or locked."""
        check = await self.check_password(handler, username, password)
        now, address = time.time(), self.client_address(handler)
        verdict = await self.verdict_of(
            lambda core: core.verifier.verify_password_only(
                check.name, check.ok, now, "api", remote_addr=address, action=Action.PASSWORD_CHECK
            )
        )
        if not verdict.ok:
            raise Refused.api(self.refusal(verdict))
        return check.name


def request_client_address(request: HTTPServerRequest, trusted_proxies: list[Network]) -> str | None:
    """The client of a request, believing forwarding headers only from ``trusted_proxies``.

    The connection's peer comes from the connection context, not ``request.remote_ip``: with tornado's
    ``xheaders`` (as JupyterHub runs) ``remote_ip`` is whatever the client put in ``X-Real-Ip``. No peer is a
    proxy unless listed, loopback included: on a hub's machine, user code can reach the hub's own port too.
    """
    context = getattr(request.connection, "context", None)
    peer = getattr(context, "address", None)
    peer_ip = peer[0] if isinstance(peer, tuple) and peer else None
    headers = request.headers
    return client_address(peer_ip, headers.get("X-Forwarded-For"), headers.get("X-Real-Ip"), trusted_proxies)
