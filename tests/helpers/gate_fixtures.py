"""Fixtures of a real jupyter_server (pytest-jupyter) with the 2FA gate on, for tests/server/ and
tests/security/: their conftest.py files star-import this module.

Fixture names are shared by the test modules of both folders; keep them stable:

- ``gate_config``: extra traitlets config merged into ``jp_server_config`` (default ``{}``); override it with
  ``@pytest.mark.parametrize("gate_config", [...], indirect=True)`` or a local fixture of that name.
- ``jp_server_config``: the gate on (TOTPIdentityProvider, a password, the jupyter_2fa extension), and a
  server API token ``helpers.gate.SERVER_TOKEN`` that must not open anything.
- ``jp_auth_header``: ``{}``, so the server's token does not log requests in.
- ``gate``: the running TOTPIdentityProvider.
- ``new_browser`` / ``browser``: independent cookie-keeping clients (``helpers.gate.Browser``).
- ``enrolled``: the gate's user with a device linked through the core (``helpers.gate.EnrolledAccount``).
- ``audit_events``: a list receiving every AuditEvent the gate writes from then on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from jupyter_server.auth import passwd
from jupyter_server.serverapp import ServerApp

# pytest-jupyter's fixtures and hooks (jp_serverapp, jp_fetch, jp_ws_fetch, ...), for the folders that import
# this module only. Imported rather than named in ``pytest_plugins``: pytest refuses that in a conftest below the
# top one (https://docs.pytest.org/en/stable/deprecations.html#pytest-plugins-in-non-top-level-conftest-files), and in
# tests/conftest.py it would apply to the whole suite, with its autouse fixtures (an event loop and a ServerApp
# clean-up) and its test-call hook around every test of every folder.
from pytest_jupyter.jupyter_server import *  # noqa: F403
from traitlets.config import Config

from jupyter_2fa.core.audit import AuditEvent, fan_out
from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import PASSWORD, SERVER_TOKEN, Browser, EnrolledAccount, Fetch, merge_config

IDENTITY_PROVIDER = "jupyter_2fa.server.TOTPIdentityProvider"

# Hashing the password (argon2) once per session keeps each server start cheap.
_HASHED_PASSWORD = passwd(PASSWORD)


@pytest.fixture
def gate_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Extra config sections for the server (e.g. ``{"TwoFactorConfig": {"enrollment_policy": "optional"}}``).

    Parametrize with ``indirect=True`` to set it per case; the default is no extra config.
    """
    return dict(getattr(request, "param", None) or {})


@pytest.fixture
def jp_server_config(gate_config: dict[str, Any]) -> Config:
    base: dict[str, Any] = {
        "ServerApp": {
            "identity_provider_class": IDENTITY_PROVIDER,
            "jpserver_extensions": {"jupyter_2fa": True, "jupyter_server_terminals": True},
        },
        "PasswordIdentityProvider": {"hashed_password": _HASHED_PASSWORD},
        # A server API token exists (as with JUPYTER_TOKEN); the gate must not let it in.
        "IdentityProvider": {"token": SERVER_TOKEN},
    }
    return Config(merge_config(base, gate_config))


@pytest.fixture
def jp_auth_header() -> dict[str, str]:
    """No ``Authorization: token`` header: requests are authenticated only by what the test sends."""
    return {}


@pytest.fixture
def gate(jp_serverapp: ServerApp) -> TOTPIdentityProvider:
    provider = jp_serverapp.identity_provider
    assert isinstance(provider, TOTPIdentityProvider), f"the gate is not on: {type(provider).__name__}"
    return provider


@pytest.fixture
def new_browser(jp_fetch: Fetch, jp_http_port: int, jp_base_url: str) -> Callable[[], Browser]:
    """A factory of independent browsers (each with its own cookie jar) on the test server.

    Like a real browser they send a same-origin ``Referer`` (jupyter_server refuses ``/files/`` without one).
    """

    def make() -> Browser:
        return Browser(jp_fetch, base_url=jp_base_url, referer=f"http://127.0.0.1:{jp_http_port}{jp_base_url}")

    return make


@pytest.fixture
def browser(new_browser: Callable[[], Browser]) -> Browser:
    return new_browser()


@pytest.fixture
def enrolled(gate: TOTPIdentityProvider) -> EnrolledAccount:
    """Link a device to the gate's user through the core, as ``jupyter 2fa enroll`` would.

    The confirmation uses the code of the previous time step, so the current and the next step are still
    fresh for logins (``EnrolledAccount.fresh_code``).
    """
    enrollment = gate.enrollment
    settings = enrollment.settings
    period = settings.totp.period
    now = time.time()
    enrollment.begin(gate.username, now)
    provisioning = enrollment.reveal(gate.username, now)
    totp = pyotp.TOTP(provisioning.secret, digits=settings.totp.digits, interval=period, digest=settings.totp.algorithm)
    confirm_step = int(now) // period - 1
    codes = enrollment.confirm(gate.username, totp.at(confirm_step * period), now)
    return EnrolledAccount(
        username=gate.username,
        totp=totp,
        recovery_codes=codes,
        secret=provisioning.secret,
        last_step=confirm_step,
        period=period,
    )


@pytest.fixture
def audit_events(gate: TOTPIdentityProvider) -> list[AuditEvent]:
    """Every AuditEvent the gate writes from now on (the gate's own sinks keep working)."""
    events: list[AuditEvent] = []
    verifier = gate.enrollment.verifier
    verifier.audit = fan_out(verifier.audit, events.append)
    return events
