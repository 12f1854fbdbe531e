"""``kill -9`` of a real `jupyter server` in the middle of linking a device and of a login burst, then a restart on
the same store (the default SQLite file in the Jupyter data dir): nothing half-done survives, and no code that was
accepted before the kill opens a session after it.

To land the kill inside a write transaction rather than between two, the test holds SQLite's SHARED lock on the
store, as any reader (a backup, a ``sqlite3`` shell) does: the server can write its changes into the rollback
journal but cannot commit them, and is killed while it waits.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from jupyter_server.auth import passwd

from jupyter_2fa.config import TwoFactorConfig
from jupyter_2fa.core import Account
from jupyter_2fa.core.store import default_sqlite_url

from helpers.browser import HTTP_SECONDS, PASSWORD, RECOVERY_CODE, Client, write_server_config
from helpers.ports import free_port
from helpers.processes import running, server_options
from helpers.totp import Device

pytestmark = pytest.mark.slow

USER = getpass.getuser()  # the gate's account: the OS user running the server
WAIT_SECONDS = 20


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no handler, no clean-up, no rollback
        self.process.wait(timeout=WAIT_SECONDS)


@pytest.fixture
def start_gate(tmp_path: Path) -> Callable[[str], contextlib.AbstractContextManager[Server]]:
    """``start_gate(name)`` runs a gated `jupyter server` for a ``with`` block; all of them share one store."""
    config_dir = Path(os.environ["JUPYTER_CONFIG_DIR"])
    write_server_config(config_dir)
    with (config_dir / "jupyter_server_config.py").open("a") as config:
        # One password hash for every start, as `jupyter server password` writes it: the hash is part of the
        # cookie secret, and the browser's cookies must outlive the kill.
        config.write(f"c.PasswordIdentityProvider.hashed_password = {passwd(PASSWORD)!r}\n")
        # Only the replay guard decides here: refused replays must not back off or lock the account.
        config.write("c.TwoFactorConfig.lockout_threshold = 100\nc.TwoFactorConfig.backoff_free_attempts = 100\n")
    root = tmp_path / "notebooks"
    root.mkdir()

    @contextlib.contextmanager
    def start(name: str) -> Iterator[Server]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "jupyter", "server", *server_options(port, root)]
        with running(command, tmp_path / f"server-{name}.log", f"{url}/login", os.environ) as process:
            yield Server(url, process)

    return start


# -- the store, seen from outside ----------------------------------------------------------------------------


def store_file() -> Path:
    return Path(default_sqlite_url(Path(os.environ["JUPYTER_DATA_DIR"])).removeprefix("sqlite:///"))


def journal() -> Path:
    return store_file().with_name("store.sqlite-journal")


@contextlib.contextmanager
def commit_counter() -> Iterator[Callable[[], int]]:
    """Read SQLite's file change counter (header bytes 24-27), one more for every committed write transaction.

    The file stays open until the block ends: closing any descriptor of a file drops every POSIX lock this
    process holds on it, :func:`read_locked`'s included.
    """
    fd = os.open(store_file(), os.O_RDONLY)
    try:
        yield lambda: int.from_bytes(os.pread(fd, 4, 24), "big")
    finally:
        os.close(fd)


@contextlib.contextmanager
def read_locked() -> Iterator[None]:
    """Hold SQLite's SHARED lock on the store: writers may write their journal, but none can commit."""
    reader = sqlite3.connect(store_file(), isolation_level=None, timeout=WAIT_SECONDS)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM jupyter_2fa_meta").fetchall()  # the lock is taken by the first read
        yield
    finally:
        reader.close()


PENDING_BYTE = 0x40000000  # where SQLite's lock bytes start in the database file (os_unix.c)


def waiting_to_commit(pid: int) -> bool:
    """Whether process ``pid`` holds the write lock on the store's PENDING byte, as a transaction does while it
    waits for readers to leave so that it can commit (read from /proc/locks, which opens no store file)."""
    inode = store_file().stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        # e.g. "2: POSIX  ADVISORY  WRITE 16325 fe:00:2261167 1073741824 1073741825"
        _, kind, _, mode, owner, file, start, end = line.split()[:8]
        ours = (kind, mode, owner) == ("POSIX", "WRITE", str(pid)) and file.endswith(f":{inode}")
        if ours and int(start) <= PENDING_BYTE <= (PENDING_BYTE if end == "EOF" else int(end)):
            return True
    return False


def kill_inside_a_write(server: Server) -> None:
    """``kill -9`` the server while it is inside a transaction that changed the store: hold the SHARED lock until
    it waits to commit one with a rollback journal, letting the read-only ones (which wait too) through."""
    pid = server.process.pid
    while True:
        with read_locked():
            wait_until(lambda: waiting_to_commit(pid), "the server waits to commit")
            if journal().exists():
                server.kill()
                return
        wait_until(lambda: not waiting_to_commit(pid), "the server committed a read")


def wait_until(condition: Callable[[], bool], what: str, interval: float = 0.001) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(interval)


def account() -> Account:
    """The account as the store holds it; opening the store first rolls back what a killed server left half-done
    (SQLite's hot journal)."""
    enrollment = TwoFactorConfig().open_enrollment()
    try:
        found = enrollment.store.get(USER)
    finally:
        enrollment.store.close()
    assert found is not None
    return found


# -- what a browser does --------------------------------------------------------------------------------------


def log_in(url: str, code: str) -> bool | None:
    """One login from a fresh browser: True when it opened a session, False when refused, None when the server
    died before answering."""
    http = requests.Session()
    try:
        http.get(f"{url}/login", timeout=HTTP_SECONDS).raise_for_status()
        data = {"_xsrf": http.cookies["_xsrf"], "password": PASSWORD, "otp": code}
        response = http.post(f"{url}/login", data=data, timeout=HTTP_SECONDS, allow_redirects=False)
    except requests.ConnectionError:
        return None
    assert response.status_code in (302, 401), response.text[-500:]  # refused replays: 401, never a 500
    return response.status_code == 302


def post_dying(client: Client, path: str, **fields: str) -> str | None:
    """POST a form; the page, or None when the server died before answering."""
    try:
        return client.post(path, **fields).text
    except requests.ConnectionError:
        return None


def link_through_core() -> tuple[Device, list[str]]:
    """Link a device as `jupyter 2fa enroll` does, confirmed with the previous step's code; returns the device
    (which hands out the steps after it) and the recovery codes."""
    enrollment = TwoFactorConfig().open_enrollment()
    try:
        now = time.time()
        enrollment.begin(USER, now)
        device = Device(enrollment.reveal(USER, now).secret, previous_step_first=True)
        code = device.next_code()
        return device, enrollment.confirm(USER, code, time.time())
    finally:
        enrollment.store.close()


# -- the tests ------------------------------------------------------------------------------------------------


def test_kill_inside_the_linking_transaction_links_nothing(
    start_gate: Callable[[str], contextlib.AbstractContextManager[Server]],
) -> None:
    """2FA activates only after a code is confirmed, and all at once (factor and recovery codes in one
    transaction): a server killed inside the transaction that links the device leaves, after the restart, the
    enrollment still pending, no factor and no recovery codes; the same browser then confirms it and gets its
    ten codes."""
    with start_gate("first") as first:
        client = Client(first.url)
        page = client.post("/2fa/enroll", action="start", password=PASSWORD).text
        key = re.search(r'id="manual_key">([A-Z2-7 ]+)<', page)
        assert key, page
        device = Device(key.group(1).replace(" ", ""), previous_step_first=True)
        with commit_counter() as commits, ThreadPoolExecutor(max_workers=1) as pool:
            before = commits()
            confirming = pool.submit(post_dying, client, "/2fa/enroll", action="confirm", code=device.next_code())
            # Confirming commits twice (the attempt counted, then cleared), hashes the ten recovery codes (some
            # 0.4 s) and links the device in a third transaction: lock the store in that gap.
            wait_until(lambda: commits() >= before + 2, "the attempt was counted and cleared")
            with read_locked():
                assert commits() == before + 2, "the device was linked before the store could be locked"
                wait_until(lambda: waiting_to_commit(first.process.pid), "the linking transaction waits to commit")
                first.kill()
            assert confirming.result() is None  # no answer: the browser never saw a recovery code
        assert journal().exists(), "the kill did not interrupt a write"

    left = account()
    assert (left.enrolled, left.recovery_codes_left) == (False, 0)
    assert left.pending_secret is not None and left.pending_shown, "the pending enrollment was lost"

    with start_gate("second") as second:
        client.url = second.url  # the same browser: its cookies say it started this enrollment
        done = client.post("/2fa/enroll", action="confirm", code=device.next_code()).text
        assert len(re.findall(rf"<li>({RECOVERY_CODE.pattern})</li>", done)) == 10, done
        linked = account()
        assert (linked.enrolled, linked.recovery_codes_left, linked.pending_secret) == (True, 10, None)
        assert log_in(second.url, device.next_code()) is True


def test_kill_during_a_login_burst_leaves_no_code_to_replay(
    start_gate: Callable[[str], contextlib.AbstractContextManager[Server]],
) -> None:
    """A TOTP time step (and a recovery code) is accepted at most once, across processes and restarts: after a
    server is killed inside a write transaction in the middle of a burst of logins, a code or recovery code that
    opened a session before the kill opens none after the restart, and no code opens more than one session in
    all."""
    device, recovery_codes = link_through_core()
    with start_gate("first") as first:
        spent = [device.next_code(), recovery_codes[0]]
        spent_step = device.last_step
        assert [log_in(first.url, code) for code in spent] == [True, True]
        fresh = [device.next_code(), recovery_codes[1]]
        burst = [*spent, *fresh] * 5
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(log_in, first.url, code) for code in burst]
            wait(futures, timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)  # the burst is being answered
            kill_inside_a_write(first)
            answers = [future.result() for future in futures]
        assert journal().exists(), "the kill did not interrupt a write"
        assert None in answers, "the burst was over before the kill"

    with start_gate("second") as second:
        after = {code: [log_in(second.url, code) for _ in range(2)] for code in [*spent, *fresh]}

    sent = list(zip(burst, answers, strict=True))
    during = {code: [answer for used, answer in sent if used == code] for code in [*spent, *fresh]}
    for code in spent:
        assert True not in during[code] + after[code], f"{code!r}, accepted before the kill, was replayed"
    for code in fresh:
        sessions = (during[code] + after[code]).count(True)
        assert sessions <= 1, f"{code!r} opened {sessions} sessions"
    assert (account().last_step or 0) >= (spent_step or 0), "the replay guard forgot a step accepted before the kill"
