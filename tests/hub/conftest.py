"""Fixtures of the JupyterHub tests: a real Unix account for PAM and a real OpenLDAP server; the hubs themselves
come from ``hub_factory`` (tests/conftest.py, shared with tests/browser) or ``helpers.hub.module_hub``.

- ``unix_user`` (per session, root only): ``(name, password)`` of a Unix account created with ``useradd`` and
  ``chpasswd``, checked against PAM's ``login`` service (the one JupyterHub's PAMAuthenticator uses), and
  removed with ``userdel --remove`` at the end.
- ``ldap_server`` (per session): our own ``slapd`` on 127.0.0.1 with the users of ``helpers.ldap.LDAP_USERS``
  (see helpers/ldap.py).

configurable-http-proxy comes from ``npm ci`` (``scripts/_venv.sh``; ``.ci/run`` installs Debian's nodejs and
npm when missing), slapd from the Debian package ``slapd``. Without them, or without root for ``unix_user``,
tests are skipped on a developer machine and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pamela
import pytest

from helpers.ci import skip_or_fail
from helpers.ldap import LdapServer, missing_tools, running_slapd

UNIX_USER_PREFIX = "jupyter2fa-pam-"
PAM_SERVICE = "login"  # JupyterHub's PAMAuthenticator.service default
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def _skip_or_fail(reason: str) -> NoReturn:
    skip_or_fail(reason, "the JupyterHub tests")


def _tool(name: str) -> str:
    path = shutil.which(name, path=_SBIN_PATH)
    if path is None:
        raise RuntimeError(f"{name} not found (Debian package 'passwd')")
    return path


@pytest.fixture(scope="session")
def unix_user(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A real Unix account ``(name, password)`` that PAM's ``login`` service accepts; deleted after the session."""
    if os.geteuid() != 0:
        _skip_or_fail("creating a Unix account for the PAM tests needs root")
    name = f"{UNIX_USER_PREFIX}{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(18)
    subprocess.run(
        [_tool("useradd"), "--create-home", "--shell", "/bin/bash", name],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        subprocess.run([_tool("chpasswd")], input=f"{name}:{password}\n", capture_output=True, text=True, check=True)
        try:
            pamela.authenticate(name, password, service=PAM_SERVICE)
        except pamela.PAMError as error:
            _skip_or_fail(f"PAM service {PAM_SERVICE!r} refuses the new account {name}: {error}")
        yield name, password
    finally:
        result = subprocess.run(
            [_tool("userdel"), "--remove", name], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        try:
            pwd.getpwnam(name)
        except KeyError:
            pass
        else:
            pytest.fail(f"userdel --remove {name} left the account ({result.returncode}): {result.stderr}")


@pytest.fixture(scope="session")
def ldap_server(request: pytest.FixtureRequest) -> Iterator[LdapServer]:
    """Our slapd on 127.0.0.1 for the whole session, with the users of ``LDAP_USERS`` (see helpers/ldap.py)."""
    missing = missing_tools()
    if missing:
        skip_or_fail(missing, "the LDAP tests")
    directory = Path(tempfile.mkdtemp(prefix="jupyter-2fa-ldap-"))
    try:
        with running_slapd(directory) as server:
            for uid, password in server.passwords.items():
                assert server.can_bind(server.user_dn(uid), password), f"slapd refuses {uid}'s password"
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)
