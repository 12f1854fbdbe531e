"""The gate's fixtures (a real jupyter_server with the 2FA gate on): see helpers/gate_fixtures.py."""

from helpers.gate_fixtures import *  # noqa: F403
