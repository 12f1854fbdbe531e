"""The single-server gate: password + TOTP in front of jupyter_server (JupyterLab, Notebook 7)."""

from .identity import TOTPIdentityProvider, TwoFactorUser

__all__ = ["TOTPIdentityProvider", "TwoFactorUser"]
