"""The store's disk fills up or turns read-only under a gate: logins fail closed with a message that says the
2FA store is unavailable, and work again, in the same process, once the disk is writable.

The disk is a real one: a small tmpfs mounted over a folder of the test (we run as root, whom file modes do not
stop). Where mounting is impossible (no CAP_SYS_ADMIN), SQLite's own error is raised for every write to the store
instead (:class:`SimulatedDisk`); a test prints which disk it used.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jupyter_2fa.config import TwoFactorConfig
from jupyter_2fa.core import Outcome
from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import PASSWORD, Browser, EnrolledAccount, login_message

DISK_SIZE = "2m"  # roomy for the store (some 40 KiB), small enough to fill in a blink
FULL = "database or disk is full"  # SQLite's words for SQLITE_FULL
READ_ONLY = "attempt to write a readonly database"  # and for SQLITE_READONLY
READS = ("SELECT", "PRAGMA", "BEGIN")  # what still works on a full or read-only disk


class TmpfsDisk:
    """A tmpfs of its own at ``folder``: filled with a filler file, remounted read-only and back."""

    kind = "tmpfs"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.filler = folder / "filler"

    @property
    def store(self) -> Path:
        return self.folder / "store.sqlite"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, bytes(65536))
        except OSError as err:
            assert err.errno == 28, err  # ENOSPC: full
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink()

    def read_only(self) -> None:
        # The kernel refuses while a file is open for writing: whoever opens the store next finds it read-only.
        mount("-o", "remount,ro", str(self.folder))

    def writable(self) -> None:
        mount("-o", "remount,rw", str(self.folder))


class SimulatedDisk:
    """Where no tmpfs can be mounted: every write statement to the store fails with SQLite's error for a full
    or read-only disk (raised at the driver, below SQLAlchemy, as sqlite3 raises it)."""

    kind = "simulated"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.error: str | None = None
        sa.event.listen(Engine, "before_cursor_execute", self._refuse_writes)

    @property
    def store(self) -> Path:
        return self.folder / "store.sqlite"

    def _refuse_writes(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.error and conn.engine.url.database == str(self.store) and not statement.lstrip().startswith(READS):
            raise sqlite3.OperationalError(self.error)

    def fill(self) -> None:
        self.error = FULL

    def read_only(self) -> None:
        self.error = READ_ONLY

    def free(self) -> None:
        self.error = None

    writable = free

    def remove(self) -> None:
        sa.event.remove(Engine, "before_cursor_execute", self._refuse_writes)


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"mount {' '.join(args)}: {result.stderr}"
    return result


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[TmpfsDisk | SimulatedDisk]:
    folder = tmp_path / "disk"
    folder.mkdir(mode=0o700)
    command = ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "tmpfs", str(folder)]
    if subprocess.run(command, capture_output=True, check=False).returncode != 0:
        simulated = SimulatedDisk(folder)
        print("disk: simulated (no tmpfs could be mounted)")
        yield simulated
        simulated.remove()
        return
    print("disk: a tmpfs of its own")
    try:
        yield TmpfsDisk(folder)
    finally:
        # The gate may still hold the store open: detach now, freed when the last file closes.
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


@pytest.fixture
def gate_config(disk: TmpfsDisk | SimulatedDisk) -> dict[str, Any]:
    return {"TwoFactorConfig": {"db_url": f"sqlite:///{disk.store}"}}


def open_files(path: Path) -> int:
    """How many of this process's file descriptors point at ``path``."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _target(fd) == str(path))


def _target(fd: Path) -> str:
    with contextlib.suppress(OSError):
        return os.readlink(fd)
    return ""


async def test_full_disk_fails_closed_then_recovers(
    disk: TmpfsDisk | SimulatedDisk, browser: Browser, enrolled: EnrolledAccount
) -> None:
    """If the store's disk is full, login fails closed with a clear message: the right password and a fresh code
    get 503 "unavailable" and no session, since the code cannot be recorded as used; once there is room again the
    same gate process lets them in."""
    code = enrolled.fresh_code()
    await browser.ensure_xsrf()
    disk.fill()
    refused = await browser.login(PASSWORD, code)
    assert refused.code == 503
    assert "unavailable" in (login_message(refused) or "")
    assert browser.login_cookie() is None

    disk.free()
    accepted = await browser.login(PASSWORD, code)
    assert accepted.code == 302, login_message(accepted)
    assert (await browser.get("api/contents")).code == 200


def link_through_core(url: str, username: str) -> pyotp.TOTP:
    """Link a device as `jupyter 2fa enroll` does, with a Store of our own that is closed again; the link uses the
    previous step's code, leaving the current one for a login."""
    enrollment = TwoFactorConfig(db_url=url).open_enrollment()
    try:
        now = time.time()
        enrollment.begin(username, now)
        totp = pyotp.TOTP(enrollment.reveal(username, now).secret)
        enrollment.confirm(username, totp.at(now - totp.interval), now)
        return totp
    finally:
        enrollment.store.close()


async def test_read_only_disk_fails_closed_then_recovers(
    disk: TmpfsDisk | SimulatedDisk, browser: Browser, gate: TOTPIdentityProvider
) -> None:
    """If the store's disk is read-only (as after a reboot with the home file system read-only), login fails
    closed with a clear message, and the store the gate opened for it is closed, not left open; once the disk is
    writable the same gate process lets the password and a code in."""
    totp = link_through_core(f"sqlite:///{disk.store}", gate.username)
    code = totp.now()
    await browser.ensure_xsrf()
    disk.read_only()
    for _ in range(3):
        refused = await browser.login(PASSWORD, code)
        assert refused.code == 503
        assert "unavailable" in (login_message(refused) or "")
        assert browser.login_cookie() is None
    assert open_files(disk.store) == 0, "a store that could not be used is still open"

    disk.writable()
    accepted = await browser.login(PASSWORD, code)
    assert accepted.code == 302, login_message(accepted)
    assert (await browser.get("api/contents")).code == 200


def test_a_store_opened_on_a_read_only_disk_recovers(disk: TmpfsDisk | SimulatedDisk) -> None:
    """If the store is unreachable, login fails closed, and recovers without a restart, also for a host that keeps
    the store it opened (the hub opens its store without writing): a read-only disk refuses the code as
    "unavailable"; once the disk is writable the same Store accepts it. SQLite keeps a connection opened on a
    read-only disk read-only, so the store must not reuse a connection that failed."""
    url = f"sqlite:///{disk.store}"
    totp = link_through_core(url, "alice")
    disk.read_only()
    enrollment = TwoFactorConfig(db_url=url).open_enrollment()
    try:
        verifier = enrollment.verifier
        code, now = totp.now(), time.time()
        assert verifier.verify("alice", code, now).outcome is Outcome.UNAVAILABLE
        disk.writable()
        assert verifier.verify("alice", code, now).outcome is Outcome.ACCEPTED
    finally:
        enrollment.store.close()
