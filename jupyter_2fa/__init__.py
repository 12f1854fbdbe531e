"""Two-factor authentication (password + TOTP) for Jupyter Server and JupyterHub."""

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.extension import TwoFactorExtension

    return [{"module": "jupyter_2fa.server.extension", "app": TwoFactorExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt Lab extension, for `jupyter labextension develop` (a wheel installs it as shared data)."""
    return [{"src": "labextension", "dest": "jupyter-2fa"}]
