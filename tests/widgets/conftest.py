"""Fixtures of the notebook-panel tests: a real gated `jupyter server` per test (see helpers/widgets.py), and a
recording comm that plays the browser at a widget's end of the line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from comm.base_comm import BaseComm
from ipywidgets import Widget

from helpers.widgets import GateServer, running_gate


@pytest.fixture
def gate_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GateServer]:
    """A gated server; ``@pytest.mark.parametrize("gate_server", [config_lines], indirect=True)`` adds config."""
    with running_gate(tmp_path, getattr(request, "param", "")) as server:
        yield server


class BrowserLine(BaseComm):
    """A widget's comm whose other end is the test: what the kernel publishes is recorded, and the test sends
    what ipywidgets' front-end would. All that the browser's model of the widget (the state a saved notebook
    holds) can learn from the kernel is in :attr:`published`."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Any]] = []
        super().__init__(target_name="jupyter.widget")

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **_: Any) -> None:
        self.published.append((msg_type, data))

    def leave_field(self, typed: str) -> None:
        """The browser's message when a text field loses focus (ipywidgets' TextView, continuous_update=False)."""
        data = {"method": "update", "state": {"value": typed}, "buffer_paths": []}
        self.handle_msg({"content": {"data": data}, "buffers": []})

    def states_sent(self) -> list[dict[str, Any]]:
        return [data["state"] for kind, data in self.published if kind == "comm_msg" and "state" in data]


@pytest.fixture
def browser_line() -> Callable[[Widget], BrowserLine]:
    """``browser_line(widget)``: from now on the widget talks to a :class:`BrowserLine` (its public comm trait)."""

    def connect(widget: Widget) -> BrowserLine:
        line = BrowserLine()
        widget.comm = line
        return line

    return connect
