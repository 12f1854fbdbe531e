"""The jupyter_server extension: the enrollment page and the 2FA JSON API, when the gate is on."""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp

from ..events import event_logger_sink
from .handlers import handlers
from .identity import TOTPIdentityProvider


class TwoFactorExtension(ExtensionApp):
    """Serves ``2fa/enroll`` and ``2fa/api/*`` under the server's base URL while the 2FA gate is on."""

    name = "jupyter_2fa"
    load_other_extensions = True

    def initialize_handlers(self) -> None:
        provider = self.serverapp.identity_provider
        if os.environ.get("JUPYTERHUB_SERVICE_URL") and not isinstance(provider, TOTPIdentityProvider):
            self.log.info("jupyter-2fa: gate off in this JupyterHub single-user server; the hub authenticates.")
            return
        if not isinstance(provider, TOTPIdentityProvider):
            self.log.info(
                "jupyter-2fa: gate off (identity provider is %s). Turn it on with `jupyter 2fa enable`.",
                type(provider).__name__,
            )
            return
        provider.add_audit_sink(event_logger_sink(self.serverapp.event_logger))
        self.handlers.extend(handlers())
