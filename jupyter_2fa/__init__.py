"""Two-factor authentication (password + TOTP) for Jupyter Server and JupyterHub."""

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.extension import TwoFactorExtension

    return [{"module": "jupyter_2fa.server.extension", "app": TwoFactorExtension}]
