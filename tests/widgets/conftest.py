"""Fixtures of the notebook-panel tests: a real gated `jupyter server` per test (see helpers/widgets.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.widgets import GateServer, running_gate


@pytest.fixture
def gate_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GateServer]:
    """A gated server; ``@pytest.mark.parametrize("gate_server", [config_lines], indirect=True)`` adds config."""
    with running_gate(tmp_path, getattr(request, "param", "")) as server:
        yield server
