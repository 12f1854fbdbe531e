"""Faults of the world around the gate: the store locked, stopped, full or read-only, and servers killed mid-way.

The in-process gate's fixtures (``gate``, ``browser``, ``enrolled``; helpers/gate_fixtures.py) serve the store
outages; the ``kill -9`` tests start real `jupyter server` processes themselves (helpers/processes.py).
"""

from helpers.gate_fixtures import *  # noqa: F403
