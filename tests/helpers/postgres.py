"""A PostgreSQL server for the tests: our own throw-away cluster on loopback, or one named by a URL.

The PostgreSQL tests run against a server the test session starts itself (``initdb`` + ``pg_ctl`` into a
temporary directory, SCRAM passwords, 127.0.0.1 only), because the store's security guarantees rest on
PostgreSQL's real locking and UPDATE re-check behaviour, which no fake reproduces. Without the server
binaries these tests are skipped on a developer machine but fail under ``CI=true``: in CI nothing may
silently skip. ``JUPYTER_2FA_TEST_POSTGRES_URL`` (an admin URL such as
``postgresql://postgres:secret@db.example:5432/postgres``) uses an existing server instead. The fixtures
(``postgres_server``, ``postgres_url``, ``store_url``) are in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from helpers.ci import skip_or_fail
from helpers.ports import free_port

POSTGRES_URL_VARIABLE = "JUPYTER_2FA_TEST_POSTGRES_URL"
POSTGRES_OS_USER = "postgres"  # PostgreSQL refuses to run as root; this is who runs it when we are root
POSTGRES_SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60


def postgres_skip_or_fail(reason: str) -> NoReturn:
    """Skip locally, where PostgreSQL may just not be installed; fail in CI, where it must be."""
    skip_or_fail(reason, "PostgreSQL tests")


@dataclass
class PostgresServer:
    """A PostgreSQL server the tests may create and drop databases on, as superuser ``user``."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    admin_database: str = "postgres"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL (psycopg 3 driver) of ``database`` on this server, password included."""
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    @contextlib.contextmanager
    def admin(self) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit psycopg connection to the admin database (CREATE/DROP DATABASE need autocommit)."""
        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.admin_database,
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            yield conn

    def create_database(self, prefix: str = "jupyter_2fa_test") -> str:
        """Create an empty database with a unique name and return its SQLAlchemy URL."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it (a leaked engine must not block cleanup)."""
        with self.admin() as conn:
            if conn.info.server_version >= 130000:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            else:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _version_key(path: str) -> tuple[int, ...]:
    """Sort /usr/lib/postgresql/<version>/bin numerically, so 16 beats 9.6."""
    match = re.search(r"/postgresql/([\d.]+)/bin/", path)
    return tuple(int(part) for part in match.group(1).split(".") if part) if match else ()


def find_postgres_bindir() -> Path | None:
    """The newest Debian-style PostgreSQL bin directory, else the one holding ``initdb`` on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    for initdb in reversed(candidates):
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").is_file():
            return bindir
    on_path = shutil.which("initdb")
    if on_path:
        bindir = Path(on_path).resolve().parent
        if (bindir / "pg_ctl").is_file():
            return bindir
    return None


class LocalCluster:
    """initdb/pg_ctl in a temporary directory, run as the ``postgres`` OS user when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.owner: pwd.struct_passwd | None = None
        if self.as_root:
            try:
                self.owner = pwd.getpwnam(POSTGRES_OS_USER)
            except KeyError:
                postgres_skip_or_fail(
                    f"running as root, PostgreSQL needs an unprivileged OS user "
                    f"{POSTGRES_OS_USER!r} to run as, and there is none"
                )
        # Not under pytest's tmp_path: that lives in a 0700 root-owned folder the postgres user cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="jupyter-2fa-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.password = secrets.token_urlsafe(24)
        self.port = 0

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bindir / program), *args]
        if self.as_root:
            # runuser (util-linux) switches user without PAM prompts or a login shell; root only.
            return ["runuser", "-u", POSTGRES_OS_USER, "--", *command]
        return command

    def _run(self, program: str, *args: str) -> None:
        command = self._command(program, *args)
        result = subprocess.run(
            command,
            cwd=self.root,  # the postgres user may not be able to enter the current directory
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            timeout=START_TIMEOUT_SECONDS + 30,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{shlex.join(command)} exited with {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}\nserver log:\n{log}"
            )

    def _chown(self, *paths: Path) -> None:
        if self.owner is not None:
            for path in paths:
                os.chown(path, self.owner.pw_uid, self.owner.pw_gid)

    def init(self) -> None:
        self.sockets.mkdir(mode=0o700)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self.root.chmod(0o700)
        self._chown(self.root, self.sockets, pwfile)
        try:
            self._run(
                "initdb",
                "--pgdata",
                str(self.data),
                "--username",
                POSTGRES_SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # throw-away data: skip the fsync of every file initdb wrote
            )
        finally:
            pwfile.unlink()

    def start(self, attempts: Sequence[int] = (1, 2, 3), *, durable: bool = False) -> None:
        """Start on a free loopback port; ``durable`` keeps PostgreSQL's own commit settings (benchmarks)."""
        server_options = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.sockets)}
        if not durable:
            # Durability is worthless for test data; these make commits and CREATE DATABASE fast.
            server_options.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        for attempt in attempts:
            self.port = free_port()
            options = {**server_options, "port": str(self.port)}
            argv = [token for key, value in options.items() for token in ("-c", f"{key}={value}")]
            try:
                self.pg_ctl_start(argv)
                return
            except RuntimeError:
                if attempt == attempts[-1]:
                    raise
                # Most likely someone took the port between free_port() and the bind; try another.

    def pg_ctl_start(self, server_argv: list[str]) -> None:
        """``pg_ctl start`` on this cluster with the server's own options (``-c key=value`` …)."""
        self._run(
            "pg_ctl",
            "start",
            "--wait",
            f"--timeout={START_TIMEOUT_SECONDS}",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "-o",
            shlex.join(server_argv),  # pg_ctl hands -o to /bin/sh
        )

    def stop(self) -> None:
        """Stop the server immediately (no checkpoint: the data is about to be deleted)."""
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            self._run("pg_ctl", "stop", "--wait", "--mode=immediate", "--pgdata", str(self.data))
        except (RuntimeError, subprocess.TimeoutExpired):
            # Never leave a postmaster running on a deleted directory: kill it by its pid file.
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def server_from_url(url_text: str) -> PostgresServer:
    url = make_url(url_text)
    if url.get_backend_name() != "postgresql":
        pytest.fail(f"{POSTGRES_URL_VARIABLE} must be a postgresql:// URL, not {url!r}", pytrace=False)
    return PostgresServer(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or POSTGRES_SUPERUSER,
        password=url.password or "",
        admin_database=url.database or "postgres",
    )
