"""Fixtures of the documentation tests: what the guides tell a reader to do, done for real.

- ``reader``: someone following the single-server guide (:class:`Reader`): runs `jupyter 2fa …`, writes their
  jupyter_server_config.py (after a test-only prelude holding the password) and starts `jupyter server` (a
  subprocess, as a reader starts theirs).
- ``ldap_server``: our own slapd on loopback (helpers/ldap.py), for the zero-to-jupyterhub values, whose inner
  authenticator is LDAP.
- ``pam_account``: a real Unix account in the group the hub guide's PAM snippet allows, for the hub snippets that
  keep PAM as the inner authenticator (root only: skipped without it locally, failed under CI=true).

Jupyter's folders are the per-test ones of tests/conftest.py (``isolated_jupyter_paths``), so the reader's
``~/.jupyter`` is ``$JUPYTER_CONFIG_DIR`` here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jupyter_server.auth import passwd

from helpers.cli import MODULE
from helpers.ldap import LdapServer
from helpers.ports import free_port
from helpers.processes import running, server_options
from helpers.unix import session_slapd, unix_account
from helpers.widgets import PASSWORD, WebUser

# The group the hub guide's PAM snippet lets in (c.PAMAuthenticator.allowed_groups).
PAM_GROUP = "jupyterhub-users"
UNIX_USER_PREFIX = "jupyter2fa-docs-"

_HASHED_PASSWORD = passwd(PASSWORD)  # argon2: hash once per test run

# What a reader has before the guide's first step: a password for the server (`jupyter server password`).
SERVER_PRELUDE = f"""\
c = get_config()  # noqa: F821
# test-only prelude: the server's password, as `jupyter server password` would have set it
c.PasswordIdentityProvider.hashed_password = {_HASHED_PASSWORD!r}
"""


@dataclass
class GatedServer:
    """A running `jupyter server` behind the gate, with the password :data:`helpers.widgets.PASSWORD`."""

    url: str
    log: Path

    def browser(self) -> WebUser:
        return WebUser(self.url)

    @property
    def api_url(self) -> str:
        return f"{self.url}/2fa/api/"


@dataclass
class Reader:
    """Someone following the single-server guide on their own machine: `jupyter 2fa …`, their config file,
    `jupyter server`. Everything happens in the test's Jupyter folders and ``workdir``."""

    workdir: Path

    @property
    def config_file(self) -> Path:
        return Path(os.environ["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.py"

    def jupyter_2fa(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`jupyter 2fa ARGS`, run to the end; fails the test when it fails."""
        result = subprocess.run(
            [*MODULE, *args], env=dict(os.environ), capture_output=True, text=True, timeout=120, check=False
        )
        command = f"jupyter 2fa {' '.join(args)}"
        assert result.returncode == 0, f"{command} -> {result.returncode}\n{result.stdout}{result.stderr}"
        return result

    def write_config(self, config_py: str) -> None:
        """jupyter_server_config.py: the test's prelude (the password), then ``config_py``."""
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(SERVER_PRELUDE + config_py.rstrip() + "\n")

    @contextlib.contextmanager
    def server(self) -> Iterator[GatedServer]:
        """`jupyter server` with the reader's configuration, on a free loopback port, until the block ends."""
        root_dir = self.workdir / "notebooks"
        root_dir.mkdir(exist_ok=True)
        port = free_port()
        server = GatedServer(f"http://127.0.0.1:{port}", self.workdir / f"server-{port}.log")
        command = [sys.executable, "-m", "jupyter", "server", *server_options(port, root_dir)]
        with running(command, server.log, f"{server.url}/login", os.environ, cwd=self.workdir):
            yield server


@pytest.fixture
def reader(tmp_path: Path) -> Reader:
    return Reader(tmp_path)


@pytest.fixture(scope="session")
def pam_account() -> Iterator[tuple[str, str]]:
    """``(name, password)`` of a new Unix account in :data:`PAM_GROUP` that PAM's ``login`` service accepts."""
    with unix_account(UNIX_USER_PREFIX, "the docs' hub snippets", groups=[PAM_GROUP]) as account:
        yield account


@pytest.fixture(scope="session")
def ldap_server() -> Iterator[LdapServer]:
    """Our slapd on 127.0.0.1 for the whole session, with the users of ``helpers.ldap.LDAP_USERS``."""
    with session_slapd("the docs' zero-to-jupyterhub values") as server:
        yield server
