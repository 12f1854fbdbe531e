"""Private files: created 0600 in a 0700 folder, never followed through a symlink, refused when readable by others."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import StoreError


class UnsafeFile(StoreError):
    """A store or key file (or its folder) is a symlink or readable by other users."""


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700 if missing; refuse a symlink."""
    if path.is_symlink():
        raise UnsafeFile(f"{path} is a symbolic link; refusing to keep 2FA data behind it")
    if not path.exists():
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.chmod(0o700)  # mkdir's mode is filtered by the umask
        except OSError as err:
            raise StoreError(f"cannot create the 2FA folder {path}: {err.strerror or err}") from err


def create_private_file(path: Path, content: bytes = b"", exist_ok: bool = False) -> None:
    """Create ``path`` exclusively with mode 0600 (O_EXCL | O_NOFOLLOW: no race, no symlink).

    With ``exist_ok``, a file that another process created first is left alone (callers check it next).
    """
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        if exist_ok and not path.is_symlink():
            return
        raise StoreError(f"cannot create the 2FA file {path}: it already exists") from None
    except OSError as err:
        raise StoreError(f"cannot create the 2FA file {path}: {err.strerror or err}") from err
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content)
    finally:
        os.close(fd)


def check_private_file(path: Path, what: str) -> None:
    """Refuse ``path`` if it is a symlink, not a regular file, or readable/writable by group or others."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise UnsafeFile(f"the 2FA {what} {path} does not exist") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFile(f"the 2FA {what} {path} is a symbolic link; refusing to open it")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"the 2FA {what} {path} is not a regular file")
    if info.st_mode & 0o077:
        raise UnsafeFile(
            f"the 2FA {what} {path} is readable by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run `chmod 600 {path}` if you trust its contents, then try again"
        )
