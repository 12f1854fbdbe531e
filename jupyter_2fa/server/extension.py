"""The jupyter_server extension: the enrollment page and the 2FA JSON API, when the gate is on."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from jupyter_server.extension.application import ExtensionApp

from ..endpoints import API_URL_ENV, STATUS_TOKEN_ENV
from ..events import event_logger_sink
from .handlers import handlers
from .identity import TOTPIdentityProvider

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp


class TwoFactorExtension(ExtensionApp):
    """Serves ``2fa/enroll`` and ``2fa/api/*`` under the server's base URL while the 2FA gate is on."""

    name = "jupyter_2fa"
    load_other_extensions = True

    @property
    def server(self) -> ServerApp:
        """The server this extension was loaded into (jupyter_server sets it before calling any hook)."""
        if self.serverapp is None:
            raise RuntimeError("jupyter_2fa's extension was used before a server loaded it")
        return self.serverapp

    def initialize_handlers(self) -> None:
        provider = self.server.identity_provider
        if os.environ.get("JUPYTERHUB_SERVICE_URL") and not isinstance(provider, TOTPIdentityProvider):
            self.log.info("jupyter-2fa: gate off in this JupyterHub single-user server; the hub authenticates.")
            return
        if not isinstance(provider, TOTPIdentityProvider):
            self.log.info(
                "jupyter-2fa: gate off (identity provider is %s). Turn it on with `jupyter 2fa enable`.",
                type(provider).__name__,
            )
            return
        if self.server.event_logger is not None:
            provider.add_audit_sink(event_logger_sink(self.server.event_logger))
        self.handlers.extend(handlers())
        self._tell_kernels(provider)

    async def stop_extension(self) -> None:
        """The server stops: close the store's connections (a PostgreSQL pool would otherwise linger)."""
        provider = self.server.identity_provider
        if isinstance(provider, TOTPIdentityProvider):
            provider.close_store()

    def _tell_kernels(self, provider: TOTPIdentityProvider) -> None:
        """Put the API's address and the status token in the environment this server's kernels inherit.

        That is how ``jupyter_2fa.widgets.EnrollmentPanel`` finds the API. The address is known only once
        the port is bound, which happens after extensions load, so it is set when the event loop starts
        (before any kernel can).
        """
        os.environ[STATUS_TOKEN_ENV] = provider.status_token
        self.server.io_loop.add_callback(lambda: os.environ.__setitem__(API_URL_ENV, self._api_url()))

    def _api_url(self) -> str:
        app = self.server
        host = app.ip if app.ip and app.ip not in ("0.0.0.0", "::", "*") else "127.0.0.1"  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if app.certfile else "http"
        return f"{scheme}://{host}:{app.port}{app.base_url}2fa/api/"
