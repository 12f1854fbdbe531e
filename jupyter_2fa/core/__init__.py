"""The pure core of jupyter-2fa: no tornado, jupyter_server, jupyterhub or ipywidgets in here (a test checks).

Front-ends build a :class:`Store`, a :class:`Verifier` over it, and an :class:`Enrollment` over that.
"""

from .audit import Action, AuditEvent, AuditSink, JsonlAuditLog
from .enrollment import (
    AlreadyEnrolled,
    AlreadyShown,
    CodeRejected,
    Enrollment,
    EnrollmentError,
    NoPendingEnrollment,
    NotEnrolled,
    Provisioning,
)
from .errors import StoreError, TwoFactorError
from .keys import KeyProblem, Keyring, WrongKey
from .settings import Settings
from .store import Account, Store, StoreUnavailable
from .throttle import ThrottlePolicy
from .totp import InvalidCode, TOTPParameters
from .verifier import Outcome, Verdict, Verifier

__all__ = [
    "Account",
    "Action",
    "AlreadyEnrolled",
    "AlreadyShown",
    "AuditEvent",
    "AuditSink",
    "CodeRejected",
    "Enrollment",
    "EnrollmentError",
    "InvalidCode",
    "JsonlAuditLog",
    "KeyProblem",
    "Keyring",
    "NoPendingEnrollment",
    "NotEnrolled",
    "Outcome",
    "Provisioning",
    "Settings",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TOTPParameters",
    "ThrottlePolicy",
    "TwoFactorError",
    "Verdict",
    "Verifier",
    "WrongKey",
]
