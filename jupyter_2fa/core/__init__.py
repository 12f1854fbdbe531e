"""The pure core of jupyter-2fa: no tornado, jupyter_server, jupyterhub or ipywidgets in here (a test checks).

Front-ends build a :class:`Store`, a :class:`Verifier` over it, and an :class:`Enrollment` over that.

Names are loaded on first use (PEP 562), so importing the gate loads neither SQLAlchemy nor cryptography,
argon2 or qrcode before the store opens or a code is drawn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .audit import Action, AuditEvent, AuditSink, JsonlAuditLog
    from .enrollment import (
        AlreadyEnrolled,
        AlreadyShown,
        Enrollment,
        NoPendingEnrollment,
        NotEnrolled,
        Provisioning,
    )
    from .errors import CodeRejected, EnrollmentError, StoreError, TwoFactorError
    from .keys import KeyProblem, Keyring, WrongKey
    from .settings import Settings
    from .store import Account, Store, StoreUnavailable, WebAuthnCredential
    from .throttle import ThrottlePolicy
    from .totp import InvalidCode, TOTPParameters
    from .verdicts import Outcome, Verdict
    from .verifier import Verifier
    from .webauthn import (
        BadRelyingParty,
        ClonedAuthenticator,
        CredentialRefused,
        NewCredential,
        RelyingParty,
        UserNotVerified,
        WebAuthnError,
    )

# Where each public name lives.
_HOMES = {
    "Account": "store",
    "Action": "audit",
    "AlreadyEnrolled": "enrollment",
    "AlreadyShown": "enrollment",
    "AuditEvent": "audit",
    "AuditSink": "audit",
    "BadRelyingParty": "webauthn",
    "ClonedAuthenticator": "webauthn",
    "CodeRejected": "errors",
    "CredentialRefused": "webauthn",
    "Enrollment": "enrollment",
    "EnrollmentError": "errors",
    "InvalidCode": "totp",
    "JsonlAuditLog": "audit",
    "KeyProblem": "keys",
    "Keyring": "keys",
    "NewCredential": "webauthn",
    "NoPendingEnrollment": "enrollment",
    "NotEnrolled": "enrollment",
    "Outcome": "verdicts",
    "Provisioning": "enrollment",
    "RelyingParty": "webauthn",
    "Settings": "settings",
    "Store": "store",
    "StoreError": "errors",
    "StoreUnavailable": "store",
    "TOTPParameters": "totp",
    "ThrottlePolicy": "throttle",
    "TwoFactorError": "errors",
    "UserNotVerified": "webauthn",
    "Verdict": "verdicts",
    "Verifier": "verifier",
    "WebAuthnCredential": "store",
    "WebAuthnError": "webauthn",
    "WrongKey": "keys",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Account",
    "Action",
    "AlreadyEnrolled",
    "AlreadyShown",
    "AuditEvent",
    "AuditSink",
    "BadRelyingParty",
    "ClonedAuthenticator",
    "CodeRejected",
    "CredentialRefused",
    "Enrollment",
    "EnrollmentError",
    "InvalidCode",
    "JsonlAuditLog",
    "KeyProblem",
    "Keyring",
    "NewCredential",
    "NoPendingEnrollment",
    "NotEnrolled",
    "Outcome",
    "Provisioning",
    "RelyingParty",
    "Settings",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TOTPParameters",
    "ThrottlePolicy",
    "TwoFactorError",
    "UserNotVerified",
    "Verdict",
    "Verifier",
    "WebAuthnCredential",
    "WebAuthnError",
    "WrongKey",
]
