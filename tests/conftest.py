"""Fixtures and hooks of the whole suite: isolated Jupyter paths for every test, a real PostgreSQL server on
loopback, and the servers that more than one test folder starts (a JupyterHub, the project's installed wheel).

The PostgreSQL tests run against a server the test session starts itself (helpers/postgres.py), because the
store's security guarantees rest on PostgreSQL's real locking, which no fake reproduces. Whatever a test needs
that is missing (PostgreSQL, node, Chromium, slapd) skips it on a developer machine but fails it under
``CI=true``: in CI nothing may silently skip. Fixtures used by one folder only are in that folder's conftest.py;
the helpers every test imports are the package tests/helpers (``from helpers.hub import Hub``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from jupyter_2fa.endpoints import API_URL_ENV, STATUS_TOKEN_ENV

from helpers.ci import in_ci, skip_or_fail
from helpers.hub import HubFactory, hub_factory_for, hub_tools_missing
from helpers.postgres import (
    POSTGRES_SUPERUSER,
    POSTGRES_URL_VARIABLE,
    LocalCluster,
    PostgresServer,
    find_postgres_bindir,
    postgres_skip_or_fail,
    server_from_url,
)
from helpers.wheel import WheelInstall, built_wheel_install, lab_extension_built, remove_built_wheel_install

_STARTUP_NOTE = pytest.StashKey[str]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the server fixtures ``postgres``, so ``-m 'not postgres'`` skips them all."""
    for item in items:
        if {"postgres_server", "postgres_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say which PostgreSQL the run used and how long it took to start: its main fixed cost."""
    note = config.stash.get(_STARTUP_NOTE, None)
    if note:
        terminalreporter.write_line(note)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a missing part, so the run fails, whatever skipped it."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if in_ci() and skipped and exitstatus == pytest.ExitCode.OK:
        print(f"\nCI=true: {len(skipped)} test(s) skipped; every test must run in CI.", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- isolation ------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_jupyter_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point Jupyter's data/config/runtime dirs into ``tmp_path`` so no test reads or writes the real ones.

    The folders are not created: code under test must create them (with the right modes) itself. Only
    JUPYTER_* variables change; HOME stays, because tools such as pip and git rely on it. Returns the
    parent folder, ``tmp_path / "jupyter"``.
    """
    root = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(root / "config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
    # Kernels started by tests create an IPython profile; keep it here, not in the real ~/.ipython (whose
    # presence would also make every JupyterApp run its IPython-3 config migration).
    (root / "ipython").mkdir(parents=True)
    monkeypatch.setenv("IPYTHONDIR", str(root / "ipython"))
    # Extra search paths from the developer's shell would let their config leak into tests.
    monkeypatch.delenv("JUPYTER_CONFIG_PATH", raising=False)
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    # A developer's real encryption keys must never reach a test (or be used to encrypt test data).
    monkeypatch.delenv("JUPYTER_2FA_KEYS", raising=False)
    # What a gated server tells its kernels (jupyter_2fa.endpoints): an in-process server sets these in the
    # test process. Set-then-delete makes monkeypatch remove them again after the test, whoever set them.
    for name in (API_URL_ENV, STATUS_TOKEN_ENV):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return root


# -- PostgreSQL -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session: ours on 127.0.0.1, or the one ``JUPYTER_2FA_TEST_POSTGRES_URL`` names.

    Starting a cluster takes about a second, so it is shared; tests get isolation from ``postgres_url``,
    which makes each one a fresh database.
    """
    existing = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if existing:
        server = server_from_url(existing)
        pytestconfig.stash[_STARTUP_NOTE] = (
            f"PostgreSQL tests used {POSTGRES_URL_VARIABLE} ({server.host}:{server.port})"
        )
        yield server
        return

    bindir = find_postgres_bindir()
    if bindir is None:
        postgres_skip_or_fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or "
            f"on PATH; install the Debian package 'postgresql' or set {POSTGRES_URL_VARIABLE}"
        )

    cluster = LocalCluster(bindir)
    try:
        started = time.monotonic()
        cluster.init()
        cluster.start()
        server = PostgresServer(host="127.0.0.1", port=cluster.port, user=POSTGRES_SUPERUSER, password=cluster.password)
        with server.admin() as conn:
            version = conn.info.server_version
        pytestconfig.stash[_STARTUP_NOTE] = (
            f"PostgreSQL {version // 10000}.{version % 10000} ({bindir}) on 127.0.0.1:{cluster.port}, "
            f"started in {time.monotonic() - started:.2f}s"
        )
        yield server
    finally:
        cluster.stop()
        cluster.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database, dropped (connections and all) after the test."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(str(make_url(url).database))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL that does not hold a store yet: once a fresh SQLite file path, once a fresh database.

    The SQLite file and its folder do not exist, so the store's own private-file creation is exercised.
    PostgreSQL is only started when a postgresql case actually runs (``-k sqlite`` needs no server).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / '2fa' / 'store.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


# -- servers that several folders start -----------------------------------------------------------------


@pytest.fixture
def hub_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubFactory]:
    """``hub_factory(config_py, env=None) -> helpers.hub.Hub`` starts a real JupyterHub behind
    configurable-http-proxy (``HubFactory.start``: the base settings of ``helpers.hub.base_config``, then
    ``config_py``); every hub is stopped after the test, with its proxy and single-user servers (a process left
    behind fails the test). Used by tests/hub and tests/browser."""
    missing = hub_tools_missing()
    if missing:
        skip_or_fail(missing, "the JupyterHub tests")
    with hub_factory_for(lambda: tmp_path_factory.mktemp("hub")) as factory:
        yield factory


@pytest.fixture(scope="session")
def installed_wheel() -> Iterator[WheelInstall]:
    """The project's wheel, built once and installed into a fresh venv without node (helpers/wheel.py), removed
    at the end of the run. Used by tests/labextension and tests/browser; needs the Lab extension built."""
    if not lab_extension_built():
        skip_or_fail("the Lab extension is not built (scripts/_venv.sh builds it when node is installed)", "Lab tests")
    try:
        yield built_wheel_install()
    finally:
        remove_built_wheel_install()
