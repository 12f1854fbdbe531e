"""TOTP arithmetic: secrets, otpauth URIs, code normalisation and time-step matching.

Everything here is a pure function of its arguments; the current time is always passed in as integer or
float Unix seconds, so tests (and callers with their own clock) decide what "now" is.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pyotp

ALGORITHMS = ("sha1", "sha256", "sha512")
MAX_INPUT_LENGTH = 64
SECRET_BASE32_LENGTH = 32  # 32 Base32 characters carry 160 bits, RFC 4226's recommended key size.

_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class InvalidCode(ValueError):
    """A submitted code was rejected before any comparison; ``reason`` is safe to log and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TOTPParameters:
    """The RFC 6238 parameters shared by the server and the authenticator app.

    Google Authenticator honours only the defaults (SHA1, 6 digits, 30 s), which is why they are the defaults.
    """

    digits: int = 6
    period: int = 30
    algorithm: str = "sha1"

    def __post_init__(self) -> None:
        if self.digits not in (6, 7, 8):
            raise ValueError(f"digits must be 6, 7 or 8, not {self.digits!r}")
        if not 10 <= self.period <= 300:
            raise ValueError(f"period must be between 10 and 300 seconds, not {self.period!r}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {self.algorithm!r}")

    def step(self, now: float) -> int:
        """The RFC 6238 time step (counter) that contains Unix time ``now``."""
        return int(now) // self.period

    def otp(self, secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(secret, digits=self.digits, interval=self.period, digest=self.algorithm)


def new_secret() -> str:
    """A fresh random Base32 secret of 160 bits, unpadded, from the OS's CSPRNG.

    >>> len(new_secret()) * 5
    160
    """
    return pyotp.random_base32(SECRET_BASE32_LENGTH)


def provisioning_uri(secret: str, account: str, issuer: str, params: TOTPParameters = TOTPParameters()) -> str:
    """The otpauth URI that an authenticator app scans, per Google's Key Uri Format.

    ':' separates issuer from account in the label, so it is refused in the issuer (an admin's setting) and
    stripped from the account name (a user's name, shown only as a label).

    >>> provisioning_uri("JBSWY3DPEHPK3PXP", "ada", "Example HPC")
    'otpauth://totp/Example%20HPC:ada?secret=JBSWY3DPEHPK3PXP&issuer=Example%20HPC'
    """
    if ":" in issuer:
        raise ValueError("the issuer name must not contain ':'")
    issuer = issuer.strip()
    account = account.replace(":", "").strip()
    if not issuer or not account:
        raise ValueError("issuer and account name must not be empty")
    query: dict[str, str | int] = {"secret": secret.rstrip("="), "issuer": issuer}
    if params.algorithm != "sha1":
        query["algorithm"] = params.algorithm.upper()
    if params.digits != 6:
        query["digits"] = params.digits
    if params.period != 30:
        query["period"] = params.period
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    return f"otpauth://totp/{label}?{urlencode(query, quote_via=quote)}"


def normalize_code(raw: object, digits: int) -> str:
    """Return ``raw`` as a string of exactly ``digits`` ASCII digits, or raise :class:`InvalidCode`.

    Only spaces are removed (apps show codes as "123 456"). Python's ``int()`` and NFKC would accept
    Arabic-Indic or full-width digits, so the check is an explicit ASCII pattern.

    >>> normalize_code(" 123 456 ", 6)
    '123456'
    >>> normalize_code("١٢٣٤٥٦", 6)
    Traceback (most recent call last):
    ...
    jupyter_2fa.core.totp.InvalidCode: the code must contain only the digits 0-9
    """
    if not isinstance(raw, str):
        raise InvalidCode("the code must be text")
    if len(raw) > MAX_INPUT_LENGTH:
        raise InvalidCode("the code is too long")
    code = raw.replace(" ", "")
    if not code:
        raise InvalidCode("the code is empty")
    if not _ASCII_DIGITS.fullmatch(code):
        raise InvalidCode("the code must contain only the digits 0-9")
    if len(code) != digits:
        raise InvalidCode(f"the code must have {digits} digits")
    return code


def looks_like_totp(raw: str, digits: int) -> bool:
    """True when ``raw`` normalises to a TOTP code, so callers can tell it apart from a recovery code."""
    try:
        normalize_code(raw, digits)
    except InvalidCode:
        return False
    return True


def matching_step(
    secret: str, code: str, now: float, window: int, params: TOTPParameters = TOTPParameters()
) -> int | None:
    """The time step within ``window`` steps of ``now`` whose code equals ``code``, or None.

    ``code`` must already be normalised. Every candidate is computed and compared in constant time, so the
    time taken does not depend on which step (if any) matched. Replay protection is the caller's job: this
    function only answers "which step does this code belong to".
    """
    totp = params.otp(secret)
    current = params.step(now)
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        if step < 0:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched
