"""Recovery codes: single-use fall-backs for a lost phone, shown once and stored only as Argon2 hashes."""

from __future__ import annotations

import functools
import re
import secrets
from typing import TYPE_CHECKING

from .hashing import hashed
from .totp import MAX_INPUT_LENGTH, InvalidCode

if TYPE_CHECKING:
    from argon2 import PasswordHasher

# Crockford's Base32: no I, L, O or U, so a code read aloud or copied by hand survives.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
CODE_LENGTH = 10  # 10 characters x 5 bits = 50 bits each
_CONFUSABLE = str.maketrans({"i": "1", "l": "1", "o": "0"})
_CODE = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}", re.ASCII)


@functools.cache
def _hasher() -> PasswordHasher:
    """OWASP's Argon2id floor (19 MiB, 2 passes). The codes already carry 50 random bits; the slow hash keeps a
    stolen database from turning into usable codes. Built on first use: argon2 is not loaded before a code is."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def new_codes(count: int) -> list[str]:
    """``count`` fresh codes formatted for people, e.g. ``'7gk2q-x9m4d'``."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize(raw: object) -> str:
    """The canonical form of a typed recovery code, or :class:`InvalidCode`.

    >>> normalize(" 7GK2Q-X9M4D ")
    '7gk2qx9m4d'
    """
    if not isinstance(raw, str):
        raise InvalidCode("the code must be text")
    if len(raw) > MAX_INPUT_LENGTH:
        raise InvalidCode("the code is too long")
    code = raw.replace(" ", "").replace("-", "").lower().translate(_CONFUSABLE)
    if not _CODE.fullmatch(code):
        raise InvalidCode("this is not a recovery code")
    return code


def hash_code(code: str) -> str:
    """A salted Argon2id hash of a code (normalised first, so any typed form verifies)."""
    normalized = normalize(code)
    return hashed(lambda: _hasher().hash(normalized))


def matches(code: str, code_hash: str) -> bool:
    """Whether a normalised code matches a stored hash; a corrupt hash never matches."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return hashed(lambda: _hasher().verify(code_hash, code))
    except (VerificationError, InvalidHashError):
        return False
