"""Linking a device, on both hosts and both surfaces (the enrollment page, the JSON API): start or re-link and
reveal once, confirm, cancel, new recovery codes. The pages and API verbs call these and render the outcome;
core errors (:class:`CodeRejected`, :class:`EnrollmentError`) pass through for them to word. The core runs in
the host's worker threads (:meth:`Host.in_core`): a confirmation hashes new recovery codes with Argon2id.
"""

from __future__ import annotations

import time

from ..core import Action, Provisioning
from ..messages import KEYS_ONLY, RELINK_CANCEL_NEEDS_CODE
from .handler import Caller, FlowHandler
from .host import PasswordCheck
from .refusals import Refused


async def start(handler: FlowHandler, check: PasswordCheck, otp: str, key_session: bool = False) -> Provisioning:
    """Begin linking a device to ``check.name`` (a re-link, with ``otp``, when one is linked; beside keys, with a
    recovery code or a session opened with a key) and reveal it."""
    host = handler.host
    if "totp" not in host.factors:
        raise Refused(403, KEYS_ONLY)
    now, address = time.time(), host.client_address(handler)
    return await host.in_core(
        lambda core: core.start(
            check.name, now, first_factor_ok=check.ok, code=otp, remote_addr=address, key_session=key_session
        )
    )


async def confirm(handler: FlowHandler, caller: Caller, code: str) -> list[str]:
    """Activate the pending device if ``code`` comes from it; older sessions end. Returns the recovery codes."""
    host = handler.host
    now, address = time.time(), host.client_address(handler)
    codes = await host.in_core(lambda core: core.confirm(caller.name, code, now, address))
    host.one_shot_images.discard(caller.name)
    await handler.device_linked(caller)
    return codes


async def cancel(handler: FlowHandler, name: str, otp: str | None = None) -> bool:
    """Drop the pending enrollment (and its one-time picture); False when there was none.

    ``otp`` is None when the caller is already bound to this enrollment (the browser that started it). Any
    other caller may cancel a first link with what proved them (their password or session), but a re-link
    replaces a working device, so cancelling it needs that device's current code (or a recovery code),
    checked and throttled like a login; :class:`CodeRejected` when it is missing or wrong.
    """
    host = handler.host
    now, address = time.time(), host.client_address(handler)
    account = await host.in_core(lambda core: core.store.get(name))
    if otp is not None and account is not None and account.pending_relink:
        if not otp:
            raise Refused(403, RELINK_CANCEL_NEEDS_CODE)
        await host.in_core(
            lambda core: core.prove_factor(Action.ENROLLMENT_CANCELLED, name, otp, now, address, first_factor_ok=True)
        )
    host.one_shot_images.discard(name)
    return await host.in_core(lambda core: core.cancel(name, now, address))


async def new_recovery_codes(handler: FlowHandler, check: PasswordCheck, otp: str) -> list[str]:
    """Replace every recovery code, after the password and a current (or recovery) code."""
    host = handler.host
    now, address = time.time(), host.client_address(handler)
    return await host.in_core(
        lambda core: core.regenerate_recovery_codes(check.name, otp, now, address, first_factor_ok=check.ok)
    )
