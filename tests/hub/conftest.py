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

from collections.abc import Iterator

import pytest

from helpers.ldap import LdapServer
from helpers.unix import session_slapd, unix_account

UNIX_USER_PREFIX = "jupyter2fa-pam-"


@pytest.fixture(scope="session")
def unix_user() -> Iterator[tuple[str, str]]:
    """A real Unix account ``(name, password)`` that PAM's ``login`` service accepts; deleted after the session."""
    with unix_account(UNIX_USER_PREFIX, "the JupyterHub tests") as account:
        yield account


@pytest.fixture(scope="session")
def ldap_server() -> Iterator[LdapServer]:
    """Our slapd on 127.0.0.1 for the whole session, with the users of ``LDAP_USERS`` (see helpers/ldap.py)."""
    with session_slapd("the LDAP tests") as server:
        yield server
