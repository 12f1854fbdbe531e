"""Fixtures of the JupyterHub tests: real hubs behind configurable-http-proxy, and a real Unix account for PAM.

- ``hub_factory`` (per test): ``hub_factory(config_py, env=None) -> hub_support.Hub`` starts a hub with the base
  settings of ``hub_support.base_config`` followed by ``config_py``; every hub is stopped after the test, with
  its proxy and single-user servers (a process left behind fails the test).
- ``unix_user`` (per session, root only): ``(name, password)`` of a Unix account created with ``useradd`` and
  ``chpasswd``, checked against PAM's ``login`` service (the one JupyterHub's PAMAuthenticator uses), and
  removed with ``userdel --remove`` at the end.

configurable-http-proxy comes from ``npm ci`` (``scripts/_venv.sh``; ``.ci/run`` installs Debian's nodejs and
npm when missing). Without it, or without root for ``unix_user``, tests are skipped on a developer machine and
fail under ``CI=true``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import NoReturn

import pamela
import pytest
from ci_support import skip_or_fail
from hub_support import HubFactory, hub_factory_for, hub_tools_missing

UNIX_USER_PREFIX = "jupyter2fa-pam-"
PAM_SERVICE = "login"  # JupyterHub's PAMAuthenticator.service default
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def _skip_or_fail(reason: str) -> NoReturn:
    skip_or_fail(reason, "the JupyterHub tests")


@pytest.fixture
def hub_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubFactory]:
    """``hub_factory(config_py, env=None)`` starts a real JupyterHub (see ``hub_support.HubFactory.start``)."""
    missing = hub_tools_missing()
    if missing:
        _skip_or_fail(missing)
    with hub_factory_for(lambda: tmp_path_factory.mktemp("hub")) as factory:
        yield factory


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
