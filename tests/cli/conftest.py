"""Fixtures of the CLI tests; the helpers themselves are in helpers/cli.py."""

from __future__ import annotations

import pytest

from helpers.cli import CLI


@pytest.fixture
def cli() -> CLI:
    """`python -m jupyter_2fa.cli`, with the environment the isolation fixture prepared."""
    return CLI()
