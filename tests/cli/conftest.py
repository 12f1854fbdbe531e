"""Fixtures of the CLI tests; the helpers themselves are in cli_support.py."""

from __future__ import annotations

import pytest
from cli_support import CLI


@pytest.fixture
def cli() -> CLI:
    """`python -m jupyter_2fa.cli`, with the environment the isolation fixture prepared."""
    return CLI()
