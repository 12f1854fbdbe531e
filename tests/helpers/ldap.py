"""A real OpenLDAP server on loopback for the JupyterHub tests with ``inner_authenticator_class = "ldap"``.

:func:`running_slapd` starts our own ``slapd`` (Debian package ``slapd``, installed by ``.ci/run``) in a
temporary folder: a ``slapd.conf`` with the ``mdb`` backend, suffix ``dc=example,dc=org``, the core, cosine,
inetorgperson and nis schemas, listening on ``ldap://127.0.0.1:PORT/`` only. The directory is seeded with
``slapadd`` before the server starts (``ou=people`` and the users of :data:`LDAP_USERS`, each an
``inetOrgPerson`` + ``posixAccount`` whose ``userPassword`` is a salted hash made by ``slappasswd``), so no client
tool (``ldap-utils``) is needed. It waits until the server answers binds (ldap3, as LDAPAuthenticator uses it)
and stops it at the end. A system slapd that the Debian package may have started on port 389 is neither used
nor touched.

The session fixture ``ldap_server`` (tests/hub/conftest.py) runs one for the whole run; without ``slapd`` it
skips the LDAP tests on a developer machine and fails them under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from helpers.ports import free_port

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
PEOPLE_DN = f"ou=people,{SUFFIX}"
LDAP_USERS = ("ldapuser", "ldapauditor")  # uid=NAME,ou=people,dc=example,dc=org, each with a random password
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
MODULE_DIR = Path("/usr/lib/ldap")  # Debian builds back_mdb as a loadable module
START_SECONDS = 20
STOP_SECONDS = 10
START_ATTEMPTS = 3
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


@dataclass(frozen=True)
class LdapServer:
    """Our slapd: where it listens, its admin (rootdn) and the seeded users' passwords."""

    host: str
    port: int
    admin_password: str = field(repr=False)
    passwords: dict[str, str] = field(repr=False)  # uid -> userPassword (clear text; the server holds a hash)
    directory: Path = field(repr=False)

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}/"

    @staticmethod
    def user_dn(uid: str) -> str:
        return f"uid={uid},{PEOPLE_DN}"

    def log_text(self) -> str:
        log = self.directory / "slapd.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def can_bind(self, dn: str, password: str) -> bool:
        """Whether a simple bind as ``dn`` with ``password`` succeeds (what LDAPAuthenticator does, TLS aside)."""
        ldap3 = import_ldap3()
        server = ldap3.Server(self.host, port=self.port, connect_timeout=2)
        connection = ldap3.Connection(server, user=dn, password=password, receive_timeout=5)
        try:
            return bool(connection.bind())
        finally:
            connection.unbind()


def import_ldap3() -> ModuleType:
    """ldap3, imported without its pyasn1 DeprecationWarning ("tagMap is deprecated"): the suite's
    ``filterwarnings = error`` would make that import fail, and the warning is not ours to fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import ldap3
    return ldap3


# -- slapd ------------------------------------------------------------------------------------------------------


def _tool(name: str) -> str | None:
    return shutil.which(name, path=_SBIN_PATH)


def missing_tools() -> str | None:
    """Why our slapd cannot start on this machine, or None."""
    for name in ("slapd", "slapadd", "slappasswd"):
        if _tool(name) is None:
            return f"{name} not found; install the Debian package 'slapd'"
    for schema in SCHEMAS:
        if not (SCHEMA_DIR / f"{schema}.schema").is_file():
            return f"{SCHEMA_DIR / schema}.schema not found; install the Debian package 'slapd'"
    if not any(MODULE_DIR.glob("back_mdb.*")):
        return f"back_mdb not found in {MODULE_DIR}; install the Debian package 'slapd'"
    return None


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} exited with {result.returncode}: {result.stderr}{result.stdout}")
    return result


def _password_hash(password: str, directory: Path) -> str:
    """A salted hash (``{SSHA}…``) by ``slappasswd``, which reads the password from a private file (not argv)."""
    secret = directory / "secret"
    secret.write_text(password)  # slappasswd -T takes the whole file, so no trailing newline
    secret.chmod(0o600)
    try:
        return _run([str(_tool("slappasswd")), "-T", str(secret)]).stdout.strip()
    finally:
        secret.unlink()


def _config(directory: Path, admin_hash: str) -> str:
    includes = "\n".join(f"include {SCHEMA_DIR / f'{schema}.schema'}" for schema in SCHEMAS)
    return includes + textwrap.dedent(
        f"""
            pidfile {directory / "slapd.pid"}
            argsfile {directory / "slapd.args"}
            modulepath {MODULE_DIR}
            moduleload back_mdb

            database mdb
            maxsize 10485760
            suffix "{SUFFIX}"
            rootdn "{ADMIN_DN}"
            rootpw {admin_hash}
            directory {directory / "db"}

            # Users bind with their own password and read nothing of others' passwords.
            access to attrs=userPassword by self write by anonymous auth by * none
            access to * by * read
            """
    )


def _seed(passwords: dict[str, str], directory: Path) -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
        f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n",
    ]
    for number, (uid, password) in enumerate(passwords.items(), start=10001):
        entries.append(
            textwrap.dedent(
                f"""\
                dn: {LdapServer.user_dn(uid)}
                objectClass: inetOrgPerson
                objectClass: posixAccount
                uid: {uid}
                cn: {uid}
                sn: {uid}
                uidNumber: {number}
                gidNumber: {number}
                homeDirectory: /home/{uid}
                userPassword: {_password_hash(password, directory)}
                """
            )
        )
    return "\n".join(entries)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the slapd we started (by its pid; never another one), killing it if SIGTERM is not enough."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


def _accepts_connections(server: LdapServer) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((server.host, server.port), timeout=0.5):
        return True
    return False


def _wait_until_up(server: LdapServer, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            return "exited"
        # Bind only once the port takes connections: ldap3 leaves its socket unclosed when the connect itself
        # fails, and the ResourceWarning would surface later, in whichever test the garbage collector hits.
        with contextlib.suppress(Exception):
            if _accepts_connections(server) and server.can_bind(ADMIN_DN, server.admin_password):
                return "up"
        if time.monotonic() > deadline:
            return f"did not accept a bind in {START_SECONDS}s"
        time.sleep(0.1)


@contextlib.contextmanager
def running_slapd(directory: Path) -> Iterator[LdapServer]:
    """Our own slapd in ``directory`` (config, database, log), seeded, answering binds; stopped at the end."""
    admin_password = secrets.token_urlsafe(18)
    passwords = {uid: secrets.token_urlsafe(18) for uid in LDAP_USERS}
    (directory / "db").mkdir(mode=0o700)
    config = directory / "slapd.conf"
    config.write_text(_config(directory, _password_hash(admin_password, directory)))
    config.chmod(0o600)
    seed = directory / "seed.ldif"
    seed.write_text(_seed(passwords, directory))
    _run([str(_tool("slapadd")), "-f", str(config), "-l", str(seed)])  # offline load into the mdb database

    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        server = LdapServer("127.0.0.1", port, admin_password, passwords, directory)
        with (directory / "slapd.log").open("wb") as log:
            # -d keeps slapd in the foreground (so this Popen is slapd itself); level "none" logs errors only.
            process = subprocess.Popen(
                [str(_tool("slapd")), "-h", server.url, "-f", str(config), "-d", "none"],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            outcome = _wait_until_up(server, process)
            if outcome == "up":
                yield server
                return
            clash = "already in use" in server.log_text().lower()
            if not (outcome == "exited" and clash and attempt < START_ATTEMPTS):
                raise RuntimeError(f"slapd {outcome}:\n{server.log_text()[-4000:]}")
        finally:
            _stop(process)
