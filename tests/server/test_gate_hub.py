"""The extension stays out of the way when the gate is off: under JupyterHub, or with another identity provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from jupyter_server.auth import passwd
from traitlets.config import Config

from jupyter_2fa.server.handlers import handlers

from helpers.gate import Browser, example_path


@dataclass(frozen=True)
class Setting:
    hub: bool
    provider: str | None  # None: jupyter_server's default identity provider
    routes: bool  # whether the 2fa routes should exist
    log: str  # what the extension says at start-up


SETTINGS = {
    "hub-single-user": Setting(True, None, False, "gate off in this JupyterHub single-user server"),
    "default-provider": Setting(False, None, False, "gate off (identity provider is"),
    "hub-with-gate-configured": Setting(True, "jupyter_2fa.server.TOTPIdentityProvider", True, ""),
}


@pytest.fixture(params=list(SETTINGS.values()), ids=list(SETTINGS))
def setting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Setting:
    value: Setting = request.param
    if value.hub:
        monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:1/")
    else:
        monkeypatch.delenv("JUPYTERHUB_SERVICE_URL", raising=False)
    return value


@pytest.fixture
def jp_server_config(setting: Setting) -> Config:
    """This module's own server: the extension enabled, the TOTP identity provider only where the case says."""
    server: dict[str, Any] = {"jpserver_extensions": {"jupyter_2fa": True, "jupyter_server_terminals": True}}
    config: dict[str, Any] = {"ServerApp": server}
    if setting.provider:
        server["identity_provider_class"] = setting.provider
        config["PasswordIdentityProvider"] = {"hashed_password": passwd("pw")}
    return Config(config)


ROUTES = [example_path(path) for path, _ in handlers()]


async def test_routes_exist_only_with_the_gate(
    capfd: pytest.CaptureFixture[str], setting: Setting, browser: Browser
) -> None:
    startup = capfd.readouterr().err
    for path in ROUTES:
        response = await browser.get(path)
        if setting.routes:
            assert response.code != 404, path
        else:
            assert response.code == 404, path
    if setting.log:
        assert setting.log in startup, startup[-3000:]
    else:
        assert "gate off" not in startup
