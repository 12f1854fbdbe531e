"""Two-factor authentication (password + TOTP) for Jupyter Server and JupyterHub."""

from ._version import __version__

__all__ = ["__version__"]
