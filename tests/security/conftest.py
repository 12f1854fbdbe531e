"""Attacks on a real gate use the gate's fixtures (helpers/gate_fixtures.py); attacks on a real hub start their
own hub per module (helpers/hub.py)."""

from helpers.gate_fixtures import *  # noqa: F403
