"""The notebook panel: ``from jupyter_2fa.widgets import EnrollmentPanel; EnrollmentPanel()``."""

from .client import ClientError, Endpoint, TwoFactorClient
from .panel import EnrollmentPanel

__all__ = ["ClientError", "Endpoint", "EnrollmentPanel", "TwoFactorClient"]
