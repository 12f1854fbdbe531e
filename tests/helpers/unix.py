"""Real Unix accounts for the PAM tests (the hub's and the docs' PAM snippet), and a slapd for a whole session.

Both need what a developer machine may lack (root; Debian's ``passwd`` tools; slapd): without them the tests are
skipped, and under ``CI=true`` they fail (``helpers.ci.skip_or_fail``).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pamela
import pytest

from helpers.ci import skip_or_fail
from helpers.ldap import LdapServer, missing_tools, running_slapd

PAM_SERVICE = "login"  # JupyterHub's PAMAuthenticator.service default
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def _tool(name: str) -> str:
    path = shutil.which(name, path=_SBIN_PATH)
    if path is None:
        raise RuntimeError(f"{name} not found (Debian package 'passwd')")
    return path


def _run(*command: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), input=stdin, capture_output=True, text=True, check=check)


@contextlib.contextmanager
def unix_account(prefix: str, what: str, groups: Sequence[str] = ()) -> Iterator[tuple[str, str]]:
    """``(name, password)`` of a new Unix account in ``groups`` (created if the machine has none, and removed
    again) that PAM's ``login`` service accepts; the account is removed at the end. ``what`` names the tests
    that need it, for the skip or failure message."""
    if os.geteuid() != 0:
        skip_or_fail("creating a Unix account for PAM needs root", what)
    created: list[str] = []
    for group in groups:
        try:
            grp.getgrnam(group)
        except KeyError:
            _run(_tool("groupadd"), group)
            created.append(group)
    name, password = f"{prefix}{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    try:
        extra = ["--groups", ",".join(groups)] if groups else []
        _run(_tool("useradd"), "--create-home", "--shell", "/bin/bash", *extra, name)
        try:
            _run(_tool("chpasswd"), stdin=f"{name}:{password}\n")
            try:
                pamela.authenticate(name, password, service=PAM_SERVICE)
            except pamela.PAMError as error:
                skip_or_fail(f"PAM service {PAM_SERVICE!r} refuses the new account {name}: {error}", what)
            yield name, password
        finally:
            removed = _run(_tool("userdel"), "--remove", name, check=False)
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                pytest.fail(f"userdel --remove {name} left the account ({removed.returncode}): {removed.stderr}")
    finally:
        for group in created:
            _run(_tool("groupdel"), group, check=False)


@contextlib.contextmanager
def session_slapd(what: str) -> Iterator[LdapServer]:
    """Our slapd on 127.0.0.1 with the users of ``helpers.ldap.LDAP_USERS``, each checked to bind."""
    missing = missing_tools()
    if missing:
        skip_or_fail(missing, what)
    directory = Path(tempfile.mkdtemp(prefix="jupyter-2fa-ldap-"))
    try:
        with running_slapd(directory) as server:
            for uid, password in server.passwords.items():
                assert server.can_bind(server.user_dn(uid), password), f"slapd refuses {uid}'s password"
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)
