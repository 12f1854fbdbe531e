"""The test fixtures themselves: a real PostgreSQL answers, databases are isolated, both stores open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from jupyter_2fa.core import Keyring, Store
from jupyter_2fa.core.store import SCHEMA_VERSION

from helpers.postgres import PostgresServer


def _scalar(url: str, statement: str) -> object:
    """Run one SQL statement on a throw-away engine, commit, and dispose it (no connection outlives the test)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement))
            return result.scalar_one() if result.returns_rows else None
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT 1", 1),
        ("SELECT current_user", "postgres"),
        ("SELECT inet_server_addr()::text", "127.0.0.1/32"),
        ("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", 0),
    ],
    ids=["select-1", "superuser", "loopback-tcp", "empty"],
)
def test_postgres_url_is_a_real_empty_server(postgres_url: str, statement: str, expected: object) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres:")
    assert _scalar(postgres_url, statement) == expected


def test_postgres_url_gives_each_test_its_own_database(postgres_server: PostgresServer, postgres_url: str) -> None:
    other = postgres_server.create_database()
    try:
        names = {_scalar(url, "SELECT current_database()") for url in (postgres_url, other)}
        assert len(names) == 2
        _scalar(postgres_url, "CREATE TABLE only_here (x int)")
        assert _scalar(other, "SELECT to_regclass('only_here') IS NULL") is True
    finally:
        postgres_server.drop_database(str(sa.make_url(other).database))


def test_postgres_password_is_required(postgres_url: str) -> None:
    """SCRAM authentication is on: a wrong password is refused, so the URL's password is what got us in."""
    wrong = sa.make_url(postgres_url).set(password="not-the-password")
    with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
        _scalar(wrong.render_as_string(hide_password=False), "SELECT 1")


@pytest.mark.parametrize(
    ("variable", "expected_under_tmp"),
    [
        ("JUPYTER_DATA_DIR", True),
        ("JUPYTER_CONFIG_DIR", True),
        ("JUPYTER_RUNTIME_DIR", True),
        ("JUPYTER_2FA_KEYS", None),
    ],
)
def test_jupyter_paths_are_isolated(tmp_path: Path, variable: str, expected_under_tmp: bool | None) -> None:
    value = os.environ.get(variable)
    if expected_under_tmp is None:
        assert value is None
    else:
        assert value is not None
        assert Path(value).is_relative_to(tmp_path)


def test_store_url_kinds(store_url: str, request: pytest.FixtureRequest) -> None:
    kind = request.node.callspec.id
    url = sa.make_url(store_url)
    assert url.get_backend_name() == kind
    if kind == "sqlite":
        assert url.database is not None
        assert not Path(url.database).parent.exists(), "the store must create its own private folder"
    else:
        assert request.node.get_closest_marker("postgres") is not None


def test_store_opens_at_the_current_schema_version(store_url: str) -> None:
    keyring = Keyring([Fernet.generate_key()], "test")
    store = Store(store_url, keyring)
    try:
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.close()
    reopened = Store(store_url, keyring)
    try:
        assert reopened.schema_version() == SCHEMA_VERSION
    finally:
        reopened.close()
