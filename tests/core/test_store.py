"""The store's security: private files, keys that must match, rotation, nothing secret at rest, failing closed."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from jupyter_2fa.core import (
    Keyring,
    Outcome,
    Store,
    StoreError,
    StoreUnavailable,
    WrongKey,
)
from jupyter_2fa.core.files import UnsafeFile
from jupyter_2fa.core.store import SCHEMA_VERSION

from helpers.core import (
    FAST_SETTINGS,
    PERIOD,
    T0,
    USER,
    App,
    Harness,
    HarnessFactory,
    collect_resource_warnings,
    dump_database,
    mode,
    new_keyring,
    scratch_engine,
    secret_variants,
    sqlite_path,
    umask,
)
from helpers.ports import free_port


def open_fails(url: str, keyring: Keyring, error: type[Exception], *, leak_check: bool = False) -> str:
    """Assert that ``Store(url, keyring)`` raises ``error``; return its message.

    Whatever the failed Store left behind is garbage-collected here, so a leaked connection's ResourceWarning
    cannot surface in some later test. ``leak_check`` asserts there was none (see
    test_failed_open_releases_its_connection, which owns that check).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            store = Store(url, keyring)
        except error as err:
            message = str(err)
        else:
            store.close()
            pytest.fail(f"Store({url!r}) opened although it should have raised {error.__name__}")
        leaks = collect_resource_warnings()
    leaks += [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    if leak_check:
        assert not leaks, f"a Store that failed to open left its database connection open: {leaks}"
    return message


# -- private files ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o000], ids=["umask-022", "umask-002", "umask-000"])
def test_sqlite_store_file_0600_in_a_0700_folder(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "data" / "jupyter_2fa" / "store.sqlite"
    with umask(mask):
        store = Store(f"sqlite:///{path}", new_keyring())
        try:
            Harness(store, FAST_SETTINGS).enroll()
        finally:
            store.close()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    # SQLite's own side files (journal) must not be readable by others either.
    for sibling in path.parent.iterdir():
        assert mode(sibling) & 0o077 == 0, sibling


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-store", "dangling"])
def test_symlinked_sqlite_store_refused(tmp_path: Path, dangling: bool) -> None:
    keyring = new_keyring()
    target = tmp_path / "real" / "store.sqlite"
    if not dangling:
        Store(f"sqlite:///{target}", keyring).close()
    link = tmp_path / "store.sqlite"
    link.symlink_to(target)
    message = open_fails(f"sqlite:///{link}", keyring, UnsafeFile)
    assert "symbolic link" in message
    assert dangling != target.exists()


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o666], ids=oct)
def test_sqlite_store_readable_by_others_refused(tmp_path: Path, file_mode: int) -> None:
    keyring = new_keyring()
    path = tmp_path / "store.sqlite"
    Store(f"sqlite:///{path}", keyring).close()
    path.chmod(file_mode)
    message = open_fails(f"sqlite:///{path}", keyring, UnsafeFile)
    assert f"chmod 600 {path}" in message
    assert issubclass(UnsafeFile, StoreError)


# -- keys ------------------------------------------------------------------------------------------------------------


def test_wrong_key_refused_at_open(make_harness: HarnessFactory, store_url: str) -> None:
    first = make_harness()
    enrolled = first.enroll()
    first.store.close()
    message = open_fails(store_url, Keyring([Fernet.generate_key()], "$JUPYTER_2FA_KEYS"), WrongKey)
    assert "cannot be decrypted with the keys from $JUPYTER_2FA_KEYS" in message
    assert "Restore the old key" in message
    assert issubclass(WrongKey, StoreError)
    # The right key still opens it and the factor still works: the refused open changed nothing.
    again = make_harness()
    now = T0 + PERIOD
    assert again.verifier.verify(USER, enrolled.app.code(now), now).ok


def _wrong_key(url: str, keyring: Keyring) -> tuple[Keyring, type[Exception]]:
    return new_keyring("another key"), WrongKey


def _newer_schema(url: str, keyring: Keyring) -> tuple[Keyring, type[Exception]]:
    with scratch_engine(url) as engine, engine.begin() as conn:
        conn.execute(sa.text("UPDATE jupyter_2fa_meta SET value = '999' WHERE key = 'schema_version'"))
    return keyring, StoreUnavailable


@pytest.mark.parametrize("breakage", [_wrong_key, _newer_schema], ids=["wrong-key", "newer-schema"])
def test_failed_open_releases_its_connection(
    store_url: str,
    keyring: Keyring,
    breakage: Callable[[str, Keyring], tuple[Keyring, type[Exception]]],
) -> None:
    """A Store() that raises must dispose its engine: the caller has no object to close().

    A leaked psycopg connection warns (ResourceWarning) whenever the garbage collector gets to it, which under
    ``filterwarnings = error`` fails an unrelated later test, and on a server keeps a backend busy.
    """
    Store(store_url, keyring).close()
    keys, error = breakage(store_url, keyring)
    open_fails(store_url, keys, error, leak_check=True)


def test_replaced_key_file_refused_at_open(store_url: str, tmp_path: Path) -> None:
    """Someone deletes the key file: from_file makes a new key, and the store must refuse it, not go on."""
    key_file = tmp_path / "keys" / "2fa.key"
    store = Store(store_url, Keyring.from_file(key_file))
    try:
        Harness(store, FAST_SETTINGS).enroll()
    finally:
        store.close()
    key_file.unlink()
    message = open_fails(store_url, Keyring.from_file(key_file), WrongKey)
    assert str(key_file) in message


def test_newer_schema_refused(store_url: str, keyring: Keyring) -> None:
    Store(store_url, keyring).close()
    with scratch_engine(store_url) as engine, engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE jupyter_2fa_meta SET value = :v WHERE key = 'schema_version'"),
            {"v": str(SCHEMA_VERSION + 1)},
        )
    message = open_fails(store_url, keyring, StoreUnavailable)
    assert "upgrade jupyter-2fa" in message


def test_a_version_1_store_is_upgraded_in_place(store_url: str, keyring: Keyring) -> None:
    """Stores made before the wrong-password table existed gain it on open, keeping every account."""
    harness = Harness(Store(store_url, keyring), FAST_SETTINGS)
    enrolled = harness.enroll()
    harness.store.close()
    with scratch_engine(store_url) as engine, engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE jupyter_2fa_guesses"))
        conn.execute(sa.text("DROP TABLE jupyter_2fa_webauthn_credentials"))
        conn.execute(sa.text("DROP TABLE jupyter_2fa_webauthn_challenges"))
        conn.execute(sa.text("UPDATE jupyter_2fa_meta SET value = '1' WHERE key = 'schema_version'"))
    upgraded = Harness(Store(store_url, keyring), FAST_SETTINGS)
    try:
        assert upgraded.store.schema_version() == SCHEMA_VERSION == 3
        now = T0 + 60
        assert upgraded.verifier.verify(USER, enrolled.app.code(now), now).ok
        assert not upgraded.verifier.verify(USER, "", now, first_factor_ok=False, remote_addr="192.0.2.1").ok
    finally:
        upgraded.store.close()


def test_rotation_keeps_every_factor_working(make_harness: HarnessFactory, store_url: str) -> None:
    old, new = new_keyring("old"), new_keyring("new")
    first = make_harness(keys=old)
    users = {name: first.enroll(name, T0) for name in ("ada", "grace")}
    # A pending enrollment's secret is encrypted too and must survive the rotation.
    first.enrollment.begin("linus", T0)
    pending_app = App(first.enrollment.reveal("linus", T0).uri)

    both = Keyring([new.keys[0], old.keys[0]], "new+old")
    assert first.store.rotate_keys(both) == 3
    first.store.close()

    open_fails(store_url, old, WrongKey)
    after = make_harness(keys=Keyring(new.keys, "new only"))
    now = T0 + PERIOD
    for name, enrolled in users.items():
        assert after.verifier.verify(name, enrolled.app.code(now), now).ok, name
        assert after.verifier.verify(name, enrolled.recovery_codes[0], now).ok, name
    assert after.enrollment.confirm("linus", pending_app.code(now), now)


def test_rotation_without_the_old_key_changes_nothing(make_harness: HarnessFactory) -> None:
    harness = make_harness()
    enrolled = harness.enroll()
    with pytest.raises(WrongKey):
        harness.store.rotate_keys(new_keyring("unrelated"))
    now = T0 + PERIOD
    assert harness.verifier.verify(USER, enrolled.app.code(now), now).ok


# -- nothing secret at rest ------------------------------------------------------------------------------------------


def test_no_secret_or_code_at_rest(make_harness: HarnessFactory, store_url: str) -> None:
    harness = make_harness()
    enrolled = harness.enroll()
    # Start a re-link too, so a pending secret is stored next to the active one.
    now = T0 + PERIOD
    harness.enrollment.begin_relink(USER, enrolled.app.code(now), now)
    pending = App(harness.enrollment.reveal(USER, now).uri)
    harness.store.close()

    secrets = secret_variants([enrolled.secret, pending.secret, *enrolled.recovery_codes])
    assert len(secrets) > 6
    dumped = dump_database(store_url)
    assert USER in dumped  # the dump does see the data
    for secret in secrets:
        assert secret not in dumped, secret

    path = sqlite_path(store_url)
    if path is not None:
        raw = b"".join(p.read_bytes() for p in path.parent.iterdir())
        assert USER.encode() in raw
        for secret in secrets:
            assert secret.encode() not in raw, secret
            assert secret.encode("utf-16-le") not in raw, secret


def test_account_repr_hides_encrypted_secrets(harness: Harness) -> None:
    enrolled = harness.enroll()
    now = T0 + PERIOD
    harness.enrollment.begin_relink(USER, enrolled.app.code(now), now)
    account = harness.store.get(USER)
    assert account is not None
    assert account.secret is not None and account.pending_secret is not None
    for text in (repr(account), str(account)):
        assert account.secret not in text
        assert account.pending_secret not in text
        assert "secret=" not in text


# -- unreachable and broken stores -----------------------------------------------------------------------------------


def _garbage_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    path.chmod(0o600)
    return f"sqlite:///{path}"


def _folder_is_a_file(tmp_path: Path) -> str:
    (tmp_path / "not-a-folder").write_text("")
    return f"sqlite:///{tmp_path / 'not-a-folder' / 'store.sqlite'}"


def _closed_postgres_port(tmp_path: Path) -> str:
    return f"postgresql+psycopg://jupyter:hunter2@127.0.0.1:{free_port()}/jupyter_2fa"  # nobody listens there


def _unknown_dialect(tmp_path: Path) -> str:
    return "nosuchdb://localhost/store"


def _no_driver(tmp_path: Path) -> str:
    return "postgresql+nosuchdriver://localhost/store"


def _folder_as_store(tmp_path: Path) -> str:
    (tmp_path / "store.sqlite").mkdir(mode=0o700)
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.mark.parametrize(
    ("make_url", "words"),
    [
        (_closed_postgres_port, "cannot be used"),
        (_folder_is_a_file, "not-a-folder"),
        (_garbage_sqlite, "cannot be used"),
        (_folder_as_store, "not a regular file"),
        (_unknown_dialect, "nosuchdb"),
        (_no_driver, "nosuchdriver"),
    ],
    ids=[
        "postgres-closed-port",
        "sqlite-folder-is-a-file",
        "sqlite-garbage-file",
        "sqlite-path-is-a-folder",
        "unknown-dialect",
        "unknown-driver",
    ],
)
def test_unusable_store_is_a_store_error(tmp_path: Path, make_url: Callable[[Path], str], words: str) -> None:
    url = make_url(tmp_path)
    message = open_fails(url, new_keyring(), StoreError)
    assert words in message
    assert "hunter2" not in message  # the database password never reaches a log line


def _drop_tables(url: str) -> None:
    with scratch_engine(url) as engine, engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE jupyter_2fa_recovery_codes"))
        conn.execute(sa.text("DROP TABLE jupyter_2fa_webauthn_credentials"))
        conn.execute(sa.text("DROP TABLE jupyter_2fa_accounts"))


def test_verify_fails_closed_when_the_tables_are_gone(harness: Harness, store_url: str) -> None:
    enrolled = harness.enroll()
    harness.enrollment.begin("grace", T0)
    _drop_tables(store_url)
    now = T0 + PERIOD
    for code in (enrolled.app.code(now), enrolled.recovery_codes[0], "000000", None):
        verdict = harness.verifier.verify(USER, code, now)
        assert verdict.outcome is Outcome.UNAVAILABLE
        assert verdict.reason == "store-unavailable"
        assert not verdict.ok
    assert harness.events[-1].reason == "store-unavailable"
    assert harness.events[-1].outcome == "failure"
    for action in (
        lambda: harness.enrollment.begin("linus", now),
        lambda: harness.enrollment.reveal("grace", now),
        lambda: harness.enrollment.confirm("grace", "123456", now),
        lambda: harness.enrollment.reset(USER, now),
        lambda: harness.store.get(USER),
    ):
        with pytest.raises(StoreUnavailable):
            action()


def test_a_connection_the_server_ended_is_dropped_before_use(postgres_url: str) -> None:
    """A pooled PostgreSQL connection whose backend was terminated (a restart, an idle timeout) is replaced when
    it is checked out, without a ping's round trip, and the next login check works instead of failing once."""
    store = Store(postgres_url, new_keyring())
    try:
        harness = Harness(store, FAST_SETTINGS)
        enrolled = harness.enroll()
        with store.engine.connect() as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        assert store.engine.pool.checkedin() == 1
        with scratch_engine(postgres_url) as engine, engine.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)}, 5000)").scalar()
        verdict = harness.verifier.verify(USER, enrolled.app.code(T0 + PERIOD), T0 + PERIOD)
        assert verdict.ok, verdict
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != backend
    finally:
        store.close()


def test_verify_fails_closed_when_the_sqlite_folder_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "2fa" / "store.sqlite"
    store = Store(f"sqlite:///{path}", new_keyring())
    try:
        harness = Harness(store, FAST_SETTINGS)
        enrolled = harness.enroll()
        store.close()  # drop pooled connections, which would keep the deleted file alive
        shutil.rmtree(path.parent)
        now = T0 + PERIOD
        verdict = harness.verifier.verify(USER, enrolled.app.code(now), now)
        assert verdict.outcome is Outcome.UNAVAILABLE
    finally:
        store.close()


def test_external_sqlite_writer_lock_does_not_break_reads(tmp_path: Path) -> None:
    """Another process holding SQLite's write lock makes the store wait (busy timeout), not fail."""
    path = tmp_path / "2fa" / "store.sqlite"
    store = Store(f"sqlite:///{path}", new_keyring())
    try:
        harness = Harness(store, FAST_SETTINGS)
        enrolled = harness.enroll()
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN IMMEDIATE")
            timer = threading.Timer(0.3, other.execute, args=("COMMIT",))
            timer.start()
            now = T0 + PERIOD
            assert harness.verifier.verify(USER, enrolled.app.code(now), now).ok
            timer.join()
        finally:
            other.close()
    finally:
        store.close()


def test_threads_of_one_process_take_turns_on_sqlite(tmp_path: Path) -> None:
    """The store's own threads queue on a lock for SQLite's one writer (woken when it is free) rather than in
    SQLite's busy handler, which polls and let a few checks of a 200/s load wait seconds: a second transaction
    starts only once the first has ended, and one that waits longer than the URL's ``timeout`` fails closed."""
    store = Store(f"sqlite:///{tmp_path / '2fa' / 'store.sqlite'}?timeout=0.2", new_keyring())
    try:
        order: list[str] = []
        second = threading.Thread(target=lambda: order.append(f"read {store.epoch(USER)}"))
        with store._transaction():
            second.start()
            second.join(0.1)
            order.append("first ends")
            assert second.is_alive()  # waiting its turn, not reading around the first
        second.join()
        assert order == ["first ends", "read 0"]

        def too_late() -> None:
            with pytest.raises(StoreUnavailable, match=r"busy for 0\.2 s"):
                store.epoch(USER)

        with store._transaction():
            waiter = threading.Thread(target=too_late)
            waiter.start()
            waiter.join()
    finally:
        store.close()


# -- opening and reading ---------------------------------------------------------------------------------------------


def test_concurrent_first_open_creates_one_schema(store_url: str, keyring: Keyring) -> None:
    """Several servers starting at once on a new store: all open, one schema, one key check."""
    errors: list[Exception] = []
    stores: list[Store] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        barrier.wait()
        try:
            stores.append(Store(store_url, keyring))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert not errors, f"opening a new store concurrently failed: {errors!r}"
    assert len(stores) == 4
    with scratch_engine(store_url) as engine, engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT key FROM jupyter_2fa_meta ORDER BY key")).scalars().all()
    assert rows == ["key_check", "schema_version"]


@pytest.mark.parametrize("page", [1, 2, 3, 500], ids=lambda page: f"page-{page}")
def test_every_account_is_listed_once_in_name_order_a_page_at_a_time(harness: Harness, page: int) -> None:
    """What ``jupyter 2fa list`` and the hub's admin list read: pages on the primary key, never all at once.
    Names that sort close together (a prefix, upper case, non-ASCII) neither repeat nor go missing."""
    names = ["ada", "Ada", "ada2", "adam", "bob", "zoë", "émile"]
    for name in names:
        harness.store.ensure_account(name)
    listed = [account.username for account in harness.store.iter_accounts(page)]
    assert sorted(listed) == sorted(names)  # once each, in the database's collation order
    assert [a.username for a in harness.store.accounts_page("ada", 2)] == listed[listed.index("ada") + 1 :][:2]


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        pytest.param(0, 3, slice(0, 3), id="first-page"),
        pytest.param(3, 3, slice(3, 6), id="second-page"),
        pytest.param(6, 3, slice(6, 7), id="last-page-short"),
        pytest.param(7, 3, slice(7, 7), id="just-past-the-end"),
        pytest.param(2**63 - 1, 3, slice(7, 7), id="largest-offset"),
        pytest.param(0, 2**63 - 1, slice(0, 7), id="largest-limit"),
        pytest.param(2, 0, slice(2, 2), id="limit-0"),
    ],
)
def test_a_slice_of_the_accounts_by_position(harness: Harness, offset: int, limit: int, expected: slice) -> None:
    """What one page of the hub's admin list reads (``?offset=&limit=``): the accounts at those positions in
    name order, the same order ``iter_accounts`` lists, on SQLite and PostgreSQL alike; and the total."""
    assert harness.store.count_accounts() == 0
    assert harness.store.accounts_slice(0, 3) == []
    names = ["ada", "Ada", "ada2", "adam", "bob", "zoë", "émile"]
    for name in names:
        harness.store.ensure_account(name)
    harness.enroll("bob")
    in_order = list(harness.store.iter_accounts())
    page = harness.store.accounts_slice(offset, limit)
    assert page == in_order[expected]  # whole Account rows: the recovery-code count comes with each one
    assert harness.store.count_accounts() == len(names)


@pytest.mark.parametrize(
    ("offset", "limit"),
    [
        pytest.param(-1, 3, id="negative-offset"),
        pytest.param(0, -1, id="negative-limit"),  # SQLite would read LIMIT -1 as every account
        pytest.param(2**63, 3, id="offset-past-64-bit"),
        pytest.param(0, 2**63, id="limit-past-64-bit"),
    ],
)
def test_a_slice_out_of_range_is_refused_before_the_database(harness: Harness, offset: int, limit: int) -> None:
    harness.store.ensure_account("ada")
    with pytest.raises(ValueError, match="between 0 and"):
        harness.store.accounts_slice(offset, limit)
    assert [a.username for a in harness.store.accounts_slice(0, 1)] == ["ada"]  # the store is still usable


def test_reading_accounts(harness: Harness) -> None:
    assert harness.store.get(USER) is None
    assert list(harness.store.iter_accounts()) == []
    assert harness.store.epochs() == {}
    assert harness.store.schema_version() == SCHEMA_VERSION
    harness.enroll("ada")
    harness.enrollment.begin("grace", T0)
    accounts = {a.username: a for a in harness.store.iter_accounts()}
    assert sorted(accounts) == ["ada", "grace"]
    ada, grace = accounts["ada"], accounts["grace"]
    assert ada.enrolled and not grace.enrolled
    assert ada.recovery_codes_left == FAST_SETTINGS.recovery_code_count
    assert ada.last_step == int(T0) // PERIOD
    assert ada.activated_at == T0
    assert ada.pending_secret is None
    assert grace.pending_secret is not None and grace.pending_expires_at == T0 + 600
    assert harness.store.epochs() == {"ada": 1, "grace": 0}  # linking a device moved ada's epoch
    assert harness.store.bump_epoch("ada") is True
    assert harness.store.bump_epoch("nobody") is False
    assert harness.store.epochs() == {"ada": 2, "grace": 0}
    assert len(harness.store.unused_recovery_hashes("ada")) == FAST_SETTINGS.recovery_code_count
    assert harness.store.unused_recovery_hashes("grace") == []
