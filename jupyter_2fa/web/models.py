"""The JSON answers of the 2FA API, the same on the gate and the hub (``server/openapi.yaml`` documents them)."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from ..core.oneshot import OneShotImages

if TYPE_CHECKING:
    from ..core import Account, Provisioning


def account_status(account: Account | None, lockout_threshold: int) -> dict[str, Any]:
    """The part of ``GET status`` that describes the account (the host adds the session fields)."""
    return {
        "enrolled": bool(account and account.enrolled),
        "pending": bool(account and account.pending_secret),
        "recovery_codes_left": account.recovery_codes_left if account else 0,
        "locked": bool(account and account.failures >= lockout_threshold),
        "webauthn_keys": account.webauthn_keys if account else 0,
    }


def provisioning_model(provisioning: Provisioning, expires_at: float | None) -> dict[str, Any]:
    """The one-time answer to ``POST enrollment`` / ``POST relink``."""
    return {
        "otpauth_uri": provisioning.uri,
        "secret": provisioning.secret,
        "manual_key": provisioning.manual_key,
        "qr_svg": provisioning.svg(),
        "expires_at": expires_at,
    }


def linking_model(
    provisioning: Provisioning,
    expires_at: float | None,
    reveal: str,
    images: OneShotImages,
    owner: str,
    qr_path: str,
) -> dict[str, Any]:
    """The one-time answer to POST enrollment / relink: the secret itself, or a one-time picture link.

    ``qr_path`` is the absolute path of the picture route (``…/2fa/qr/``) as the user's browser sees it.
    """
    if reveal == "link":
        ticket = images.put(owner, provisioning.card_svg().encode(), time.time())
        return {"qr_url": qr_path + ticket, "expires_at": expires_at}
    images.discard(owner)  # a link to the secret this one replaced would show a dead secret
    return provisioning_model(provisioning, expires_at)


def pending_tag(account: Account | None) -> str:
    """Names an account's pending enrollment without revealing it ("" when there is none)."""
    if account is None or account.pending_secret is None:
        return ""
    return hashlib.sha256(account.pending_secret.encode()).hexdigest()
