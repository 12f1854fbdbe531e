"""Fixtures of the Lab extension's packaging tests: the built wheel, installed into a fresh venv without node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wheel_support import WheelInstall, installed_wheel_fixture


@pytest.fixture(scope="session")
def installed_wheel() -> Iterator[WheelInstall]:
    yield from installed_wheel_fixture()
