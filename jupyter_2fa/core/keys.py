"""Encryption keys for TOTP secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256), with rotation.

Keys come from an environment variable (several keys separated by ';' or ',', newest first) or from a key file
created 0600 on first use. The first key encrypts; every key decrypts, which is what makes rotation possible.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import StoreError
from .files import check_private_file, create_private_file, ensure_private_dir


class KeyProblem(StoreError):
    """Base for key problems; the message is written for an administrator."""


class WrongKey(KeyProblem):
    """Stored data cannot be decrypted with the configured keys."""


class BadKeyMaterial(KeyProblem):
    """A configured key is not a Fernet key."""


def parse_keys(text: str, source: str) -> list[bytes]:
    """Split ``text`` into Fernet keys, checking each one; ``source`` names where it came from."""
    keys = [part.strip().encode() for part in text.replace(",", ";").replace("\n", ";").split(";")]
    keys = [key for key in keys if key]
    if not keys:
        raise BadKeyMaterial(f"no encryption key found in {source}")
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise BadKeyMaterial(
                f"{source} holds a value that is not a Fernet key (32 url-safe Base64 bytes); "
                "create one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from None
    return keys


class Keyring:
    """Encrypts and decrypts secrets with a list of keys; the first key is the one that encrypts."""

    def __init__(self, keys: Sequence[bytes], source: str) -> None:
        if not keys:
            raise BadKeyMaterial(f"no encryption key found in {source}")
        self.keys = list(keys)
        self.source = source
        self._fernet = MultiFernet([Fernet(key) for key in self.keys])

    @classmethod
    def from_env(cls, variable: str) -> Keyring | None:
        """The keys in environment variable ``variable``, or None when it is unset or empty."""
        text = os.environ.get(variable, "")
        if not text.strip():
            return None
        return cls(parse_keys(text, f"${variable}"), f"${variable}")

    @classmethod
    def from_file(cls, path: Path, create: bool = True) -> Keyring:
        """The keys in ``path`` (one per line, newest first), creating it 0600 with a new key if missing."""
        if not path.exists() and not path.is_symlink() and create:
            _create_key_file(path)
        check_private_file(path, what="key file")
        try:
            text = path.read_bytes().decode("ascii")
        except UnicodeDecodeError:
            raise BadKeyMaterial(f"the key file {path} is not text; it must hold Fernet keys") from None
        except OSError as err:
            raise KeyProblem(f"cannot read the key file {path}: {err.strerror or err}") from err
        return cls(parse_keys(text, str(path)), str(path))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as err:
            raise WrongKey(
                f"the 2FA store's secrets cannot be decrypted with the keys from {self.source}; "
                "was the key file replaced or the key variable changed? Restore the old key (rotation keeps "
                "old keys readable: list the new key first, then the old one)."
            ) from err

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the first key (it may have been written under any listed key)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as err:
            raise WrongKey(f"a stored secret cannot be decrypted with the keys from {self.source}") from err


def _create_key_file(path: Path) -> None:
    """Create the key file with a new key, complete or not at all: two processes starting together agree."""
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        create_private_file(tmp, new_key() + b"\n")
    except StoreError as err:  # name the key file, not the temporary one
        reason = getattr(err.__cause__, "strerror", None) or err
        raise KeyProblem(f"cannot create the 2FA file {path}: {reason}") from err
    try:
        os.link(tmp, path)  # atomic, and refuses to replace a key file another process just made
    except FileExistsError:
        pass
    except OSError as err:
        raise KeyProblem(f"cannot create the key file {path}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)


def write_key_file(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file atomically (write a sibling 0600 file, then rename it over the old one)."""
    tmp = path.with_name(path.name + ".new")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    create_private_file(tmp, b"".join(key + b"\n" for key in keys))
    os.replace(tmp, path)


def new_key() -> bytes:
    return Fernet.generate_key()
