"""Fixtures of the tests of jupyter_2fa.core (pure logic, a real store on SQLite and PostgreSQL, real races), on top
of tests/conftest.py's ``store_url``; their helpers are in helpers/core.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jupyter_2fa.core import Keyring, Settings, Store

from helpers.core import FAST_SETTINGS, Harness, HarnessFactory, new_keyring


@pytest.fixture
def keyring() -> Keyring:
    return new_keyring()


@pytest.fixture
def make_harness(store_url: str, keyring: Keyring) -> Iterator[HarnessFactory]:
    """Open a Harness on this test's store (``settings`` defaults to FAST_SETTINGS); closed afterwards."""
    opened: list[Store] = []

    def make(settings: Settings = FAST_SETTINGS, keys: Keyring | None = None) -> Harness:
        store = Store(store_url, keys or keyring)
        opened.append(store)
        return Harness(store, settings)

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def harness(make_harness: HarnessFactory) -> Harness:
    return make_harness()
