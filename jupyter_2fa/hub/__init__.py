"""JupyterHub: ``TOTPAuthenticator`` adds the TOTP factor to any password authenticator (extra ``hub``)."""

from .authenticator import TOTPAuthenticator

__all__ = ["TOTPAuthenticator"]
