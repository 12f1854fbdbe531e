"""The persistent 2FA records, behind SQLAlchemy: SQLite for one server, PostgreSQL for hubs and Kubernetes.

Every check-and-change that guards security (accept a time step once, spend a recovery code once, count a
failure, show a pending secret once, activate a pending factor) is a single conditional UPDATE whose row count
says whether this caller won. That holds across threads and processes on both databases: SQLite runs each
transaction under ``BEGIN IMMEDIATE``; PostgreSQL re-checks the WHERE clause of a concurrent UPDATE.

A login check (:meth:`Store.checking`) is one transaction: it reads the account and its wrong-password rows
with their locks held (``BEGIN IMMEDIATE`` / ``SELECT … FOR UPDATE``), so parallel checks of one account run one
after another, and everything it decides is committed once. One durable commit per login is the cost floor.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import math
import secrets
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url

from .errors import StoreError
from .files import check_private_file, create_private_file
from .keys import Keyring
from .throttle import GuessPolicy, ThrottlePolicy, name_key
from .verdicts import KeyChange
from .webauthn import NewCredential, b64url, from_b64url

SCHEMA_VERSION = 3
_KEY_CHECK_TEXT = "jupyter-2fa key check"
# How long an SQLite transaction waits for another process's lock before the store counts as unavailable
# (logins then fail closed with 503). A login's transactions take milliseconds, so a longer wait means a lock
# held for something else (an admin's sqlite3 shell, a backup, a process hung on NFS), which waiting does not
# cure, while the host's event loop, and with it every user of the server or hub, waits too. Python's own
# default; a URL's ``?timeout=`` (seconds) overrides it.
SQLITE_BUSY_TIMEOUT_SECONDS = 5.0
# Forgotten wrong-password rows are pruned at most this often per store (see Store._forget_guesses).
GUESS_PRUNE_INTERVAL_SECONDS = 60.0
ACCOUNTS_PAGE = 500  # accounts read per query when every account is listed
# The largest OFFSET or LIMIT both databases take (a signed 64-bit integer); a larger one would fail in the
# driver, not as an answer.
MAX_OFFSET = 2**63 - 1
# What a WebAuthn challenge is for; a challenge taken for one purpose cannot serve the other.
WEBAUTHN_PURPOSES = frozenset({"register", "register-first", "authenticate"})

metadata = sa.MetaData()

meta_table = sa.Table(
    "jupyter_2fa_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

accounts = sa.Table(
    "jupyter_2fa_accounts",
    metadata,
    sa.Column("username", sa.String(255), primary_key=True),
    # The active factor: an encrypted Base32 secret, and a counter that changes whenever the secret does.
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False, default=0),
    sa.Column("activated_at", sa.Float, nullable=True),
    # Replay guard: the highest time step ever accepted for this account.
    sa.Column("last_step", sa.BigInteger, nullable=True),
    # Throttle: consecutive failures and the earliest time the next attempt is evaluated.
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=True),
    # Sessions issued before the epoch changed are void (reset, re-link, log out everywhere).
    sa.Column("epoch", sa.Integer, nullable=False, default=0),
    # A pending enrollment: encrypted secret, expiry, whether it was already shown, whether it replaces a factor.
    sa.Column("pending_secret", sa.Text, nullable=True),
    sa.Column("pending_expires_at", sa.Float, nullable=True),
    sa.Column("pending_shown", sa.Boolean, nullable=False, default=False),
    sa.Column("pending_relink", sa.Boolean, nullable=False, default=False),
)


def _owner_column() -> sa.Column[str]:
    """The account a row belongs to (recovery codes, WebAuthn credentials), gone with the account."""
    return sa.Column(
        "username",
        sa.String(255),
        sa.ForeignKey("jupyter_2fa_accounts.username", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


recovery_codes = sa.Table(
    "jupyter_2fa_recovery_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _owner_column(),
    sa.Column("code_hash", sa.Text, nullable=False),
    sa.Column("used_at", sa.Float, nullable=True),
)

# Wrong passwords, counted per account name and per source (see GuessPolicy); keys come from the Verifier.
guesses = sa.Table(
    "jupyter_2fa_guesses",
    metadata,
    sa.Column("key", sa.String(320), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=True),
    sa.Column("last_failure_at", sa.Float, nullable=False, index=True),
)


# WebAuthn credentials (passkeys, security keys), several per account. The id is the credential id in base64url
# (at most 1023 bytes, so at most 1364 characters): readable in an admin's SQL shell and the same on both
# databases. The public key is a COSE key, public by nature, so it is not encrypted.
webauthn_credentials = sa.Table(
    "jupyter_2fa_webauthn_credentials",
    metadata,
    sa.Column("credential_id", sa.String(1400), primary_key=True),
    _owner_column(),
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    # The authenticator's signature counter at the last accepted login (0 for authenticators that do not count).
    sa.Column("sign_count", sa.BigInteger, nullable=False, default=0),
    # How the browser reached the key ("usb nfc internal ..."), space-separated: a hint for later logins.
    sa.Column("transports", sa.Text, nullable=False, default=""),
    sa.Column("aaguid", sa.String(36), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float, nullable=True),
)

# Issued WebAuthn challenges: kept in the store, not in a process, so any hub replica can finish a ceremony
# another one started; single-use (taken by a DELETE ... RETURNING) and short-lived.
webauthn_challenges = sa.Table(
    "jupyter_2fa_webauthn_challenges",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("challenge", sa.LargeBinary, nullable=False),
    # An opaque id of the session or API client that asked: another one cannot answer the challenge.
    sa.Column("bound_to", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


# A login check's statements, built once: constructing a SQLAlchemy statement costs more than running it on
# SQLite, and a login check is meant to cost little more than its one commit. Values are bound at execution.
def _owned_count(table: sa.Table, label: str, *conditions: Any) -> Any:
    """How many of the account's rows ``table`` holds (meeting ``conditions``), as a column of its row."""
    owned = table.c.username == accounts.c.username
    return sa.select(sa.func.count()).select_from(table).where(owned, *conditions).scalar_subquery().label(label)


_recovery_codes_left = _owned_count(recovery_codes, "recovery_codes_left", recovery_codes.c.used_at.is_(None))
_webauthn_keys = _owned_count(webauthn_credentials, "webauthn_keys")
_ACCOUNT = sa.select(accounts, _recovery_codes_left, _webauthn_keys).where(accounts.c.username == sa.bindparam("name"))
_ACCOUNTS_AFTER = (
    sa.select(accounts, _recovery_codes_left, _webauthn_keys)
    .where(accounts.c.username > sa.bindparam("after"))
    .order_by(accounts.c.username)
    .limit(sa.bindparam("page"))
)
# One page by position, for the hub's admin list (``?offset=&limit=``, as JupyterHub's own API pages). The
# database still steps over ``offset`` index entries, but nothing of them reaches Python.
_ACCOUNTS_SLICE = (
    sa.select(accounts, _recovery_codes_left, _webauthn_keys)
    .order_by(accounts.c.username)
    .limit(sa.bindparam("page"))
    .offset(sa.bindparam("skip"))
)
_COUNT_ACCOUNTS = sa.select(sa.func.count()).select_from(accounts)
# Rows are locked in key order: checks that share a source's or a bucket's row never wait on each other in a
# circle (PostgreSQL would otherwise lock in scan order, which changes as rows come and go, and deadlock).
_LIVE_GUESSES = (
    sa.select(guesses)
    .where(guesses.c.key.in_(sa.bindparam("keys", expanding=True)), guesses.c.last_failure_at > sa.bindparam("since"))
    .order_by(guesses.c.key)
    .with_for_update()
)
# Both in one round trip: a row per live guess row, each beside the account's columns (NULL when either is
# missing). The locks are taken inside the two CTEs, so the outer joins never touch a locked table.
# PostgreSQL holds the rows until commit; SQLite's BEGIN IMMEDIATE already holds the whole file.
_account_cte = _ACCOUNT.with_for_update(of=accounts).cte("account")
_guesses_cte = _LIVE_GUESSES.cte("guess")
_LOCKED_ACCOUNT_AND_GUESSES = sa.select(
    *_account_cte.c, *(column.label(f"guess_{column.name}") for column in _guesses_cte.c)
).select_from(
    sa.select(sa.literal(1).label("one"))
    .subquery("one")
    .outerjoin(_account_cte, sa.true())
    .outerjoin(_guesses_cte, sa.true())
)
_ACCOUNT_FIELDS = tuple(column.name for column in _account_cte.c)
_GUESS_FIELDS = tuple(column.name for column in _guesses_cte.c)
_COUNT_FAILURE = (
    accounts.update()
    .where(accounts.c.username == sa.bindparam("name"))
    .values(failures=sa.bindparam("new_failures"), next_attempt_at=sa.bindparam("wait_until"))
)
# The replay guard: a step newer than every step accepted before for this factor; a success clears failures.
_ACCEPT_STEP = (
    accounts.update()
    .where(
        accounts.c.username == sa.bindparam("name"),
        accounts.c.generation == sa.bindparam("factor_generation"),
        accounts.c.secret.is_not(None),
        sa.or_(accounts.c.last_step.is_(None), accounts.c.last_step < sa.bindparam("step")),
    )
    .values(last_step=sa.bindparam("step"), failures=0, next_attempt_at=None)
)
_COUNT_GUESS = (
    guesses.update()
    .where(guesses.c.key == sa.bindparam("guess_key"))
    .values(
        failures=sa.bindparam("new_failures"),
        next_attempt_at=sa.bindparam("wait_until"),
        last_failure_at=sa.bindparam("failed_at"),
    )
)
_FORGET_GUESS = guesses.delete().where(guesses.c.key == sa.bindparam("guess_key"))


# WebAuthn statements, built once like the login check's.
_WEBAUTHN_CREDENTIALS = (
    sa.select(webauthn_credentials)
    .where(webauthn_credentials.c.username == sa.bindparam("owner"))
    .order_by(webauthn_credentials.c.created_at, webauthn_credentials.c.credential_id)
)
_WEBAUTHN_CREDENTIAL = sa.select(webauthn_credentials).where(
    webauthn_credentials.c.username == sa.bindparam("owner"),
    webauthn_credentials.c.credential_id == sa.bindparam("cid"),
)
_RENAME_WEBAUTHN_CREDENTIAL = (
    webauthn_credentials.update()
    .where(
        webauthn_credentials.c.username == sa.bindparam("owner"),
        webauthn_credentials.c.credential_id == sa.bindparam("cid"),
    )
    .values(name=sa.bindparam("new_name"))
)
_REMOVE_WEBAUTHN_CREDENTIAL = webauthn_credentials.delete().where(
    webauthn_credentials.c.username == sa.bindparam("owner"),
    webauthn_credentials.c.credential_id == sa.bindparam("cid"),
)
# Conditional on the counter the caller checked against: of two logins racing with one key, one moves it, the
# other finds nothing to update, so the stored counter never goes backwards.
_RECORD_WEBAUTHN_USE = (
    webauthn_credentials.update()
    .where(
        webauthn_credentials.c.username == sa.bindparam("owner"),
        webauthn_credentials.c.credential_id == sa.bindparam("cid"),
        webauthn_credentials.c.sign_count == sa.bindparam("old_count"),
    )
    .values(sign_count=sa.bindparam("new_count"), last_used_at=sa.bindparam("used_at"))
)
# Taking a challenge deletes it whatever the caller presents: a wrong session or purpose burns it too.
_TAKE_WEBAUTHN_CHALLENGE = (
    webauthn_challenges.delete()
    .where(webauthn_challenges.c.id == sa.bindparam("challenge_id"))
    .returning(
        webauthn_challenges.c.username,
        webauthn_challenges.c.purpose,
        webauthn_challenges.c.challenge,
        webauthn_challenges.c.bound_to,
        webauthn_challenges.c.expires_at,
    )
)
_FORGET_EXPIRED_CHALLENGES = webauthn_challenges.delete().where(webauthn_challenges.c.expires_at <= sa.bindparam("now"))


@dataclass(frozen=True)
class GuessKeys:
    """Where a wrong password is counted: its account name's key and, when the request has one, its source's.

    A browser that logged in to the account before (``device``, from its signed device cookie) is counted on
    its own instead: a stranger's guesses at the name, or from the same address, never slow the owner down
    on a device the owner has used.
    """

    account: str
    source: str | None = None
    device: str | None = None

    def counted(self, policy: GuessPolicy) -> list[tuple[str, Callable[[int], float]]]:
        """The keys this attempt is judged and counted by, each with its back-off curve."""
        if self.device:
            return [(f"device:{self.device}", policy.account_delay)]
        return [(self.account, policy.account_delay), *([(self.source, policy.source_delay)] if self.source else [])]

    @property
    def cleared_by_a_right_password(self) -> str | None:
        """The key a right password clears: its device's or its account's, never a shared bucket or a source."""
        if self.device:
            return f"device:{self.device}"
        return self.account if self.account.startswith("account:") else None


_NO_PENDING: dict[str, Any] = dict(
    pending_secret=None, pending_expires_at=None, pending_shown=False, pending_relink=False
)


class StoreUnavailable(StoreError):
    """The database cannot be reached or used; every login must fail closed."""


@dataclass(frozen=True)
class Account:
    """A snapshot of one account's row; secrets stay encrypted until a caller decrypts them."""

    username: str
    secret: str | None = field(repr=False)
    generation: int
    activated_at: float | None
    last_step: int | None
    failures: int
    next_attempt_at: float | None
    epoch: int
    pending_secret: str | None = field(repr=False)
    pending_expires_at: float | None
    pending_shown: bool
    pending_relink: bool
    recovery_codes_left: int
    webauthn_keys: int = 0  # passkeys and security keys registered

    @property
    def enrolled(self) -> bool:
        """Whether an authenticator app is linked (the TOTP factor)."""
        return self.secret is not None

    @property
    def has_second_factor(self) -> bool:
        """Whether any second factor is linked: the app, or at least one passkey or security key."""
        return self.secret is not None or self.webauthn_keys > 0


@dataclass(frozen=True)
class WebAuthnCredential:
    """One stored passkey or security key of an account (satisfies :class:`.webauthn.KnownCredential`)."""

    credential_id: bytes
    username: str
    public_key: bytes = field(repr=False)
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    name: str
    created_at: float
    last_used_at: float | None

    @classmethod
    def _from_row(cls, row: Any) -> WebAuthnCredential:
        return cls(
            credential_id=from_b64url(row.credential_id),
            username=row.username,
            public_key=bytes(row.public_key),
            sign_count=row.sign_count,
            transports=tuple(row.transports.split()),
            aaguid=row.aaguid,
            name=row.name,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
        )


@dataclass
class LoginCheck:
    """The reads and writes of one login check, inside :meth:`Store.checking`'s transaction.

    ``account`` was read with its row locked, so it is current for the whole check: each method decides from
    it and writes at most one statement, and the transaction commits them together.
    """

    store: Store
    conn: Connection
    username: str
    account: Account | None
    # The wrong-password rows read (and locked) with the account, by key; keys read that had no live row are
    # absent, and ``read`` says which keys were asked for.
    guesses: dict[str, Any]
    read: frozenset[str]
    counted: int | None = None  # the second factor's failure count once this check has counted one

    def count_guess(self, keys: GuessKeys, wrong: bool, now: float, policy: GuessPolicy) -> float:
        """Apply the wrong-password policy to one password check; returns 0 when the attempt may count.

        While a key must wait (or the source is blocked) the answer is the seconds left, whether or not this
        password was right, and nothing is counted or written. Otherwise a wrong password is counted against
        every key, and a right one clears its own (see :class:`GuessKeys`).
        """
        keyed = keys.counted(policy)
        names = [key for key, _ in keyed]
        if self.read.issuperset(names):
            counts = {key: self.guesses[key] for key in names if key in self.guesses}
        else:
            counts = _live_guesses(self.conn, names, now, policy)
        wait = _guess_wait(counts, keys.source, now, policy)
        if wait > 0:
            return wait
        if not wrong:
            cleared = keys.cleared_by_a_right_password
            if cleared in counts:  # a right password with nothing to clear writes nothing
                self.conn.execute(_FORGET_GUESS, {"guess_key": cleared})
            return 0.0
        # Rows are made only for an attempt that counts; a row another request made meanwhile is read again.
        if any(key not in counts for key in names):
            for key in names:
                if key not in counts:
                    _insert_missing(self.conn, guesses, {"key": key, "failures": 0, "last_failure_at": now})
            counts = _live_guesses(self.conn, names, now, policy)
            wait = _guess_wait(counts, keys.source, now, policy)
            if wait > 0:
                return wait
        for key, delay_after in keyed:
            failures = (counts[key]["failures"] if key in counts else 0) + 1
            delay = delay_after(failures)
            wait_until = now + delay if delay else None
            counted = {"guess_key": key, "new_failures": failures, "wait_until": wait_until, "failed_at": now}
            if self.conn.execute(_COUNT_GUESS, counted).rowcount == 0:
                # Another process pruned the row (forgotten, so neither read nor locked) since it was inserted.
                row = {"key": key, "failures": failures, "next_attempt_at": wait_until, "last_failure_at": now}
                _insert_missing(self.conn, guesses, row)
        self.store._forget_guesses(self.conn, now, policy)
        return 0.0

    def ensure_account(self) -> None:
        """Give a name whose password was right its row (named in the throttle, listed for admins)."""
        if self.account is None:
            _insert_missing(self.conn, accounts, {"username": self.username})

    def count_failure(self, now: float, policy: ThrottlePolicy) -> int:
        """Count one second-factor failure and set the back-off it earns; returns the new count."""
        assert self.account is not None
        failures = self.account.failures + 1
        delay = policy.delay_after(failures)
        wait_until = now + delay if delay else None
        self.conn.execute(_COUNT_FAILURE, {"name": self.username, "new_failures": failures, "wait_until": wait_until})
        self.counted = failures
        return failures

    def accept_step(self, step: int) -> bool:
        """Record ``step`` as used if it is newer than every step accepted before (the replay guard), and clear
        the failures in the same statement. Its conditions hold without the row lock too."""
        assert self.account is not None
        values = {"name": self.username, "factor_generation": self.account.generation, "step": step}
        return self.conn.execute(_ACCEPT_STEP, values).rowcount == 1

    def unused_recovery_hashes(self) -> list[tuple[int, str]]:
        return _unused_recovery_hashes(self.conn, self.username)

    def take_webauthn_challenge(self, challenge_id: str, purpose: str, bound_to: str, now: float) -> bytes | None:
        """As :meth:`Store.take_webauthn_challenge`, for this check's account, inside its transaction."""
        return _take_webauthn_challenge(self.conn, challenge_id, self.username, purpose, bound_to, now)

    def webauthn_credential(self, credential_id: bytes) -> WebAuthnCredential | None:
        """This account's credential with ``credential_id``, if it has one."""
        cid = b64url(credential_id)
        row = self.conn.execute(_WEBAUTHN_CREDENTIAL, {"owner": self.username, "cid": cid}).first()
        return None if row is None else WebAuthnCredential._from_row(row)

    def accept_webauthn_use(self, credential: WebAuthnCredential, new_count: int, now: float) -> bool:
        """Store a login's new signature counter (conditional on the one checked against, as
        :meth:`Store.record_webauthn_use`) and clear the failures, in this check's transaction."""
        cid, old = credential.credential_id, credential.sign_count
        if not _record_webauthn_use(self.conn, self.username, cid, old, new_count, now):
            return False
        self.conn.execute(_COUNT_FAILURE, {"name": self.username, "new_failures": 0, "wait_until": None})
        return True


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'jupyter_2fa' / 'store.sqlite'}"


def _prepare_sqlite_file(database: str) -> None:
    """Create the SQLite file 0600 in a 0700 folder before SQLAlchemy opens it, or refuse an unsafe one."""
    path = Path(database).expanduser()
    if not path.exists() and not path.is_symlink():
        create_private_file(path, exist_ok=True)  # two servers may start at once
    check_private_file(path, what="store")


def _sqlite_begin_immediate(engine: Engine) -> None:
    """Take SQLite's write lock at BEGIN, so read-then-write transactions wait instead of failing."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the 'begin' hook below issue BEGIN itself

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _drop_hung_up_connections(engine: Engine) -> None:
    """Before the pool hands out a PostgreSQL connection, drop it if the server has hung up on it.

    A server that restarts, or ends an idle session, writes a termination notice or closes the socket, so the
    socket turns readable while no query is pending: a ``poll()`` sees it without a round trip. This replaces
    ``pool_pre_ping``, whose ``SELECT 1`` was one of the five round trips of every login check. A connection lost
    without a word (a network partition) fails its first statement instead, as it could right after a ping too;
    the pool then drops every connection and the next transaction starts afresh."""
    dbapi_error = engine.dialect.loaded_dbapi.Error

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            socket = select.poll()
            socket.register(dbapi_connection.fileno(), select.POLLIN)
            hung_up = bool(socket.poll(0))
        except dbapi_error:  # psycopg already knows it is closed
            hung_up = True
        if hung_up:
            raise sa_exc.DisconnectionError("the database server closed this connection")


class _TurnTaking:
    """SQLite lets one transaction write at a time, and every transaction here takes the write lock at BEGIN. The
    threads of one process wait their turn on a lock, which wakes the next one as soon as it is free, instead of
    in SQLite's busy handler, which sleeps and retries up to 100 ms apart and lets a newcomer in first: with four
    worker threads at 200 checks a second, a few checks waited seconds and one hit the busy timeout. Other
    processes still meet the busy handler. Re-entrant, as SQLite's own lock is not: a nested transaction fails
    the same way it did without it."""

    def __init__(self, timeout: float) -> None:
        self._lock = threading.RLock()
        self._timeout = timeout

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=self._timeout):
            raise StoreUnavailable(f"the 2FA store stayed busy for {self._timeout:g} s")
        try:
            yield
        finally:
            self._lock.release()


class Store:
    """All reads and writes of 2FA state. Methods take ``now`` (Unix seconds) rather than reading a clock."""

    def __init__(self, url: str, keyring: Keyring, engine_options: dict[str, Any] | None = None):
        self.keyring = keyring
        self.url = make_url(url)
        self._pruned_at = -math.inf
        self._turn: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
        options = dict(engine_options or {})
        try:
            if self.url.get_backend_name() == "sqlite":
                busy_timeout: Any = self.url.query.get("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
                self._turn = _TurnTaking(float(busy_timeout) if isinstance(busy_timeout, str) else busy_timeout)
                if self.url.database and self.url.database != ":memory:":
                    _prepare_sqlite_file(self.url.database)
                # Rollback journal, not WAL: home directories on HPC systems are often NFS/Lustre/GPFS,
                # where WAL's shared memory does not work.
                if "timeout" not in self.url.query:  # connect_args would override the URL's
                    options.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            self.engine = sa.create_engine(self.url, **options)
        except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError, ValueError) as err:
            raise StoreUnavailable(f"cannot use 2FA store URL {self.url!r}: {err}") from err
        if self.url.get_backend_name() == "sqlite":
            _sqlite_begin_immediate(self.engine)
        elif self.url.get_backend_name() == "postgresql":
            _drop_hung_up_connections(self.engine)
        try:
            with self._transaction() as conn:
                self._migrate(conn)
                self._check_key(conn)
        except BaseException:
            self.engine.dispose()  # the caller gets no Store to close
            raise

    # -- plumbing -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self._turn(), self.engine.connect() as conn:
                try:
                    with conn.begin():
                        yield conn
                except sa_exc.IntegrityError:
                    raise
                except sa_exc.DBAPIError:
                    # Never hand a connection that failed to the next transaction: SQLite keeps a connection
                    # opened while its disk was read-only read-only for good, so the pool would refuse every
                    # login until a restart, long after the disk is writable again.
                    conn.invalidate()
                    raise
        except sa_exc.IntegrityError:
            raise
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DatabaseError) as err:
            raise StoreUnavailable(f"the 2FA store at {self.url!r} cannot be used: {err.orig or err}") from err
        except sa_exc.TimeoutError as err:  # every pooled connection busy (more worker threads than the pool holds)
            raise StoreUnavailable(f"the 2FA store at {self.url!r} has no free connection: {err}") from err

    def _migrate(self, conn: Connection) -> None:
        """Bring the schema to SCHEMA_VERSION; each step runs once, inside the opening transaction."""
        if conn.dialect.name == "postgresql":
            # Two hub replicas starting together must not both create the tables.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(2202)"))
        metadata.create_all(conn, tables=[meta_table])
        version_row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
        version = int(version_row) if version_row is not None else 0
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"the 2FA store has schema version {version}, newer than this jupyter-2fa understands "
                f"({SCHEMA_VERSION}); upgrade jupyter-2fa"
            )
        for step in range(version, SCHEMA_VERSION):
            _MIGRATIONS[step](conn)
        if version == 0:
            conn.execute(meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif version < SCHEMA_VERSION:
            conn.execute(
                meta_table.update().where(meta_table.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
            )

    def _check_key(self, conn: Connection) -> None:
        """Fail at start-up, not at the first login, when the configured key cannot read this store."""
        token = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "key_check")).scalar()
        if token is None:
            conn.execute(meta_table.insert().values(key="key_check", value=self.keyring.encrypt(_KEY_CHECK_TEXT)))
        else:
            self.keyring.decrypt(token)

    def schema_version(self) -> int:
        with self._transaction() as conn:
            value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar_one()
        return int(value)

    def ensure_account(self, username: str) -> None:
        """Create the account's row (no factor yet) if it does not exist, so its failures can be counted."""
        with self._transaction() as conn:
            self._ensure_row(conn, username)

    def _ensure_row(self, conn: Connection, username: str) -> None:
        """INSERT the account's row unless it exists; concurrent callers for a new user both succeed."""
        _insert_missing(conn, accounts, {"username": username})

    def _update(self, conn: Connection, username: str, *conditions: Any, **values: Any) -> bool:
        """UPDATE the account row if ``conditions`` hold; True when this caller changed it."""
        statement = accounts.update().where(accounts.c.username == username, *conditions)
        return conn.execute(statement.values(**values)).rowcount == 1

    # -- reading ------------------------------------------------------------------------------------------

    def get(self, username: str) -> Account | None:
        with self._transaction() as conn:
            return self._get(conn, username)

    def _get(self, conn: Connection, username: str) -> Account | None:
        """The account's row and its count of unused recovery codes."""
        row = conn.execute(_ACCOUNT, {"name": username}).mappings().first()
        return None if row is None else Account(**row)

    def accounts_page(self, after: str = "", limit: int = ACCOUNTS_PAGE) -> list[Account]:
        """Up to ``limit`` accounts whose names sort after ``after``, in name order: one query on the primary
        key's index, however many accounts the store holds."""
        with self._transaction() as conn:
            rows = conn.execute(_ACCOUNTS_AFTER, {"after": after, "page": limit}).mappings()
            return [Account(**row) for row in rows]

    def iter_accounts(self, page: int = ACCOUNTS_PAGE) -> Iterator[Account]:
        """Every account in name order, read ``page`` at a time (a list of 100 000 never sits in memory)."""
        after = ""
        while batch := self.accounts_page(after, page):
            yield from batch
            after = batch[-1].username

    def accounts_slice(self, offset: int, limit: int) -> list[Account]:
        """Up to ``limit`` accounts after skipping the first ``offset``, in name order: one page of the hub's
        admin list, which pages by position as JupyterHub's API does (a client asks for ``offset`` and
        ``limit``, not for a name to start after). One query; only the page's rows reach Python.

        Numbers outside 0 .. MAX_OFFSET are refused (ValueError) rather than passed on: SQLite reads
        ``LIMIT -1`` as "no limit", the very list this method exists to avoid, and a database's refusal of the
        others would look like an unavailable store."""
        if not (0 <= offset <= MAX_OFFSET and 0 <= limit <= MAX_OFFSET):
            raise ValueError(f"offset and limit must be between 0 and {MAX_OFFSET}, not {offset} and {limit}")
        with self._transaction() as conn:
            rows = conn.execute(_ACCOUNTS_SLICE, {"skip": offset, "page": limit}).mappings()
            return [Account(**row) for row in rows]

    def count_accounts(self) -> int:
        """How many accounts the store holds: the ``total`` of a paged list, so a client knows where it ends."""
        with self._transaction() as conn:
            return int(conn.execute(_COUNT_ACCOUNTS).scalar_one())

    def epoch(self, username: str) -> int:
        """The account's session epoch (0 for a name without a row, as a new row starts)."""
        with self._transaction() as conn:
            epoch = conn.execute(sa.select(accounts.c.epoch).where(accounts.c.username == username)).scalar()
        return int(epoch or 0)

    def epochs(self) -> dict[str, int]:
        """Every account's session epoch, for front-ends that keep an in-memory copy."""
        with self._transaction() as conn:
            rows = conn.execute(sa.select(accounts.c.username, accounts.c.epoch))
            return {name: epoch for name, epoch in rows}

    # -- a login check --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def checking(
        self, username: str, guess_keys: Sequence[str] = (), live_since: float = -math.inf
    ) -> Iterator[LoginCheck]:
        """One login check's transaction: the account's row, and the wrong-password rows of ``guess_keys``
        that had a failure after ``live_since``, are read and locked first, in one statement; every count and
        mark the check makes is written inside, and all of it is committed once, durably, when the block ends
        (and none of it if the block raises). Parallel checks of one account therefore run one after another
        and each sees what the last one wrote: counting is exact and the replay guard strictly increasing, on
        SQLite and PostgreSQL alike. Keep the block short and free of slow work (Argon2id): it holds the lock."""
        with self._transaction() as conn:
            rows = conn.execute(
                _LOCKED_ACCOUNT_AND_GUESSES, {"name": username, "keys": list(guess_keys), "since": live_since}
            ).mappings()
            account, guesses_read = None, {}
            for row in rows:
                if row["username"] is not None:
                    account = Account(**{name: row[name] for name in _ACCOUNT_FIELDS})
                if row["guess_key"] is not None:
                    guesses_read[row["guess_key"]] = {name: row[f"guess_{name}"] for name in _GUESS_FIELDS}
            yield LoginCheck(self, conn, username, account, guesses_read, frozenset(guess_keys))

    def spend_recovery_code(self, username: str, code_id: int, now: float) -> bool:
        """Mark the code used unless someone else did first; a win also clears the second factor's failures."""
        with self._transaction() as conn:
            result = conn.execute(
                recovery_codes.update()
                .where(
                    recovery_codes.c.id == code_id,
                    recovery_codes.c.username == username,
                    recovery_codes.c.used_at.is_(None),
                )
                .values(used_at=now)
            )
            won = result.rowcount == 1
            if won:
                self._update(conn, username, failures=0, next_attempt_at=None)
            return won

    def unused_recovery_hashes(self, username: str) -> list[tuple[int, str]]:
        with self._transaction() as conn:
            return _unused_recovery_hashes(conn, username)

    def _forget_guesses(self, conn: Connection, now: float, policy: GuessPolicy) -> None:
        """Delete rows forgotten ``policy.forget_after`` ago, a batch at a time and at most once a minute per
        store (the check ignores forgotten rows anyway, so this only bounds the table). Rows another login
        holds are skipped (PostgreSQL), so pruning never waits on, or deadlocks with, a login."""
        if self._pruned_at <= now < self._pruned_at + GUESS_PRUNE_INTERVAL_SECONDS:
            return
        self._pruned_at = now
        batch = (
            sa.select(guesses.c.key)
            .where(guesses.c.last_failure_at <= now - policy.forget_after)
            .limit(1000)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        conn.execute(guesses.delete().where(guesses.c.key.in_(batch)))

    def clear_failures(self, username: str) -> None:
        with self._transaction() as conn:
            self._update(conn, username, failures=0, next_attempt_at=None)

    def unlock(self, username: str) -> bool:
        """Clear every failure counted against ``username``: the second factor's and its name's wrong passwords."""
        with self._transaction() as conn:
            # The account's row first, as a login check locks them: the other order can deadlock with one.
            unlocked = self._update(conn, username, failures=0, next_attempt_at=None)
            conn.execute(_FORGET_GUESS, {"guess_key": name_key(username, has_account=True)})
            return unlocked

    # -- second factor ------------------------------------------------------------------------------------

    def replace_recovery_codes(self, username: str, hashes: Sequence[str]) -> None:
        with self._transaction() as conn:
            self._replace_recovery_codes(conn, username, hashes)

    def _replace_recovery_codes(self, conn: Connection, username: str, hashes: Sequence[str]) -> None:
        conn.execute(recovery_codes.delete().where(recovery_codes.c.username == username))
        if hashes:
            conn.execute(recovery_codes.insert(), [{"username": username, "code_hash": h} for h in hashes])

    # -- enrollment ---------------------------------------------------------------------------------------

    def set_pending(self, username: str, secret: str, expires_at: float, relink: bool) -> bool:
        """Start (or restart) a pending enrollment; refused when a factor is active and this is no re-link."""
        token = self.keyring.encrypt(secret)
        values = dict(pending_secret=token, pending_expires_at=expires_at, pending_shown=False, pending_relink=relink)
        with self._transaction() as conn:
            self._ensure_row(conn, username)
            active = accounts.c.secret.is_not(None) if relink else accounts.c.secret.is_(None)
            return self._update(conn, username, active, **values)

    def reveal_pending(self, username: str, now: float) -> str | None:
        """The pending secret, decrypted, the first time it is asked for while unexpired; None after that."""
        with self._transaction() as conn:
            token = conn.execute(sa.select(accounts.c.pending_secret).where(accounts.c.username == username)).scalar()
            won = token is not None and self._update(
                conn,
                username,
                accounts.c.pending_secret == token,
                accounts.c.pending_shown.is_(False),
                accounts.c.pending_expires_at > now,
                pending_shown=True,
            )
        return self.keyring.decrypt(token) if won and token else None

    def activate_pending(self, username: str, pending_token: str, step: int, hashes: Sequence[str], now: float) -> bool:
        """Make the pending secret (still ``pending_token``) the active factor, with ``step`` already used.

        The session epoch moves, which signs out every other session: after a re-link, those of the old device;
        after a first link, those the password alone had opened (optional policy, trusted network).
        """
        with self._transaction() as conn:
            won = self._update(
                conn,
                username,
                accounts.c.pending_secret == pending_token,
                accounts.c.pending_expires_at > now,
                secret=accounts.c.pending_secret,
                generation=accounts.c.generation + 1,
                activated_at=now,
                last_step=step,
                failures=0,
                next_attempt_at=None,
                epoch=accounts.c.epoch + 1,
                **_NO_PENDING,
            )
            if won:
                self._replace_recovery_codes(conn, username, hashes)
        return won

    def cancel_pending(self, username: str) -> bool:
        with self._transaction() as conn:
            return self._update(
                conn,
                username,
                accounts.c.pending_secret.is_not(None),
                **_NO_PENDING,
            )

    def reset(self, username: str) -> bool:
        """Delete the factor, its WebAuthn keys and challenges, any pending enrollment and the recovery codes; sign out
        every session."""
        with self._transaction() as conn:
            conn.execute(recovery_codes.delete().where(recovery_codes.c.username == username))
            conn.execute(webauthn_credentials.delete().where(webauthn_credentials.c.username == username))
            conn.execute(webauthn_challenges.delete().where(webauthn_challenges.c.username == username))
            return self._update(
                conn,
                username,
                secret=None,
                generation=accounts.c.generation + 1,
                activated_at=None,
                last_step=None,
                failures=0,
                next_attempt_at=None,
                epoch=accounts.c.epoch + 1,
                **_NO_PENDING,
            )

    def bump_epoch(self, username: str) -> bool:
        with self._transaction() as conn:
            return self._update(conn, username, epoch=accounts.c.epoch + 1)

    # -- WebAuthn -----------------------------------------------------------------------------------------

    def add_webauthn_credential(self, username: str, credential: NewCredential, name: str, now: float) -> bool:
        """Store a verified credential for ``username``; False when that credential id is already stored
        (for anyone: an id names one key, and a second account must not claim it)."""
        return self.link_webauthn_credential(username, credential, name, now) is not KeyChange.DUPLICATE

    def link_webauthn_credential(
        self,
        username: str,
        credential: NewCredential,
        name: str,
        now: float,
        recovery_hashes: Sequence[str] = (),
        *,
        first_factor: bool | None = None,
        max_keys: int | None = None,
    ) -> KeyChange:
        """Store a verified credential, as :meth:`add_webauthn_credential`. When it is the account's first
        factor (no app, no other key) and ``recovery_hashes`` are given, they become its recovery codes and its
        sessions end, as when a first device is confirmed.

        Decided under the account's lock: ``first_factor`` (when not None) is what the caller's challenge was
        issued for, and a change since (a factor linked or removed meanwhile) answers ``STALE``; an account
        with ``max_keys`` keys answers ``TOO_MANY``."""
        values = {
            "credential_id": b64url(credential.credential_id),
            "username": username,
            "public_key": credential.public_key,
            "sign_count": credential.sign_count,
            "transports": " ".join(credential.transports),
            "aaguid": credential.aaguid,
            "name": name,
            "created_at": now,
            "last_used_at": None,
        }
        with self._transaction() as conn:
            self._ensure_row(conn, username)
            app_linked, keys = _locked_factors(conn, username)
            has_factor = app_linked or keys > 0
            if first_factor is not None and first_factor == has_factor:
                return KeyChange.STALE
            if max_keys is not None and keys >= max_keys:
                return KeyChange.TOO_MANY
            if not _insert_new(conn, webauthn_credentials, values):
                return KeyChange.DUPLICATE
            if has_factor or not recovery_hashes:
                return KeyChange.ADDED
            self._replace_recovery_codes(conn, username, recovery_hashes)
            self._update(conn, username, epoch=accounts.c.epoch + 1)
            return KeyChange.FIRST_FACTOR

    def webauthn_credentials(self, username: str) -> list[WebAuthnCredential]:
        """The account's credentials, oldest first."""
        with self._transaction() as conn:
            rows = conn.execute(_WEBAUTHN_CREDENTIALS, {"owner": username}).all()
        return [WebAuthnCredential._from_row(row) for row in rows]

    def rename_webauthn_credential(self, username: str, credential_id: bytes, name: str) -> bool:
        with self._transaction() as conn:
            result = conn.execute(
                _RENAME_WEBAUTHN_CREDENTIAL, {"owner": username, "cid": b64url(credential_id), "new_name": name}
            )
        return result.rowcount == 1

    def remove_webauthn_credential(self, username: str, credential_id: bytes) -> bool:
        """Delete one of ``username``'s credentials; False when it has no such credential."""
        return self.unlink_webauthn_credential(username, credential_id) is KeyChange.REMOVED

    def unlink_webauthn_credential(
        self, username: str, credential_id: bytes, *, keep_a_factor: bool = False
    ) -> KeyChange:
        """Delete one of ``username``'s credentials; with ``keep_a_factor``, not the account's last factor
        (decided under the account's lock, so two removals at once cannot leave it with none)."""
        with self._transaction() as conn:
            factors = _locked_factors(conn, username)
            if factors is None:
                return KeyChange.UNKNOWN
            app_linked, keys = factors
            if keep_a_factor and not app_linked and keys <= 1:
                owned = conn.execute(_WEBAUTHN_CREDENTIAL, {"owner": username, "cid": b64url(credential_id)})
                return KeyChange.LAST_FACTOR if owned.first() is not None else KeyChange.UNKNOWN
            result = conn.execute(_REMOVE_WEBAUTHN_CREDENTIAL, {"owner": username, "cid": b64url(credential_id)})
        return KeyChange.REMOVED if result.rowcount == 1 else KeyChange.UNKNOWN

    def record_webauthn_use(
        self, username: str, credential_id: bytes, old_count: int, new_count: int, now: float
    ) -> bool:
        """Store a login's new signature counter, only if the stored one is still ``old_count`` (what the
        assertion was checked against). False means another login with the same key won the race (or the key
        was removed meanwhile): the caller refuses this login."""
        with self._transaction() as conn:
            return _record_webauthn_use(conn, username, credential_id, old_count, new_count, now)

    def save_webauthn_challenge(
        self, username: str, purpose: str, challenge: bytes, bound_to: str, expires_at: float, now: float
    ) -> str:
        """Keep a challenge until ``expires_at``; returns the id to take it back by. Expired challenges of
        every account are deleted on the way, so the table holds only live ones."""
        if purpose not in WEBAUTHN_PURPOSES:
            raise ValueError(f"a WebAuthn challenge is for one of {sorted(WEBAUTHN_PURPOSES)}, not {purpose!r}")
        if not bound_to:
            raise ValueError("a WebAuthn challenge must be bound to the session or API client that asked")
        challenge_id = secrets.token_urlsafe(32)
        with self._transaction() as conn:
            conn.execute(_FORGET_EXPIRED_CHALLENGES, {"now": now})
            # One live challenge per account and purpose: whoever knows the password cannot fill the table.
            conn.execute(
                webauthn_challenges.delete().where(
                    webauthn_challenges.c.username == username, webauthn_challenges.c.purpose == purpose
                )
            )
            conn.execute(
                webauthn_challenges.insert().values(
                    id=challenge_id,
                    username=username,
                    purpose=purpose,
                    challenge=challenge,
                    bound_to=bound_to,
                    expires_at=expires_at,
                )
            )
        return challenge_id

    def take_registration_challenge(
        self, challenge_id: str, username: str, bound_to: str, now: float
    ) -> tuple[bytes, bool] | None:
        """As :meth:`take_webauthn_challenge` for a registration: the challenge, and whether it was issued for
        the account's first factor (purpose ``register-first``)."""
        with self._transaction() as conn:
            taken = _take_challenge_for(conn, challenge_id, username, ("register", "register-first"), bound_to, now)
        return None if taken is None else (taken[0], taken[1] == "register-first")

    def take_webauthn_challenge(
        self, challenge_id: str, username: str, purpose: str, bound_to: str, now: float
    ) -> bytes | None:
        """The challenge saved under ``challenge_id``, deleted in the same statement, so of two processes at
        most one gets it. None when it is unknown, already taken, expired, or was issued for another account,
        purpose or session; a mismatched attempt still uses it up."""
        with self._transaction() as conn:
            return _take_webauthn_challenge(conn, challenge_id, username, purpose, bound_to, now)

    # -- keys ---------------------------------------------------------------------------------------------

    def rotate_keys(self, keyring: Keyring) -> int:
        """Re-encrypt every stored secret under ``keyring``'s first key; returns how many were rewritten."""
        rewritten = 0
        with self._transaction() as conn:
            rows = conn.execute(sa.select(accounts.c.username, accounts.c.secret, accounts.c.pending_secret)).all()
            for username, secret, pending in rows:
                values = {}
                if secret is not None:
                    values["secret"] = keyring.rotate(secret)
                if pending is not None:
                    values["pending_secret"] = keyring.rotate(pending)
                if values:
                    self._update(conn, username, **values)
                    rewritten += 1
            conn.execute(
                meta_table.update()
                .where(meta_table.c.key == "key_check")
                .values(value=keyring.encrypt(_KEY_CHECK_TEXT))
            )
        self.keyring = keyring
        return rewritten

    def close(self) -> None:
        self.engine.dispose()


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[accounts, recovery_codes])


def _add_guesses_v2(conn: Connection) -> None:
    metadata.create_all(conn, tables=[guesses])


def _add_webauthn_v3(conn: Connection) -> None:
    metadata.create_all(conn, tables=[webauthn_credentials, webauthn_challenges])


# _MIGRATIONS[n] upgrades a store from schema version n to n + 1; append, never edit.
_MIGRATIONS = [_create_v1, _add_guesses_v2, _add_webauthn_v3]


def _insert_new(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT a row unless its primary key exists; True when this caller inserted it (told by RETURNING, which
    both databases report reliably, where a rowcount after ON CONFLICT DO NOTHING depends on the driver)."""
    dialect = conn.dialect.name
    if dialect in _INSERT_OR_NOTHING:
        return conn.execute(_insert_new_returning(dialect, table), values).first() is not None
    key = table.primary_key.columns[0]
    if conn.execute(sa.select(key).where(key == values[key.name])).first() is not None:
        return False
    conn.execute(table.insert().values(**values))
    return True


def _locked_factors(conn: Connection, username: str) -> Any:
    """Lock the account's row, then read whether the app is linked and how many keys it has: ``(app, keys)``, or
    None without a row. Two statements on purpose: on PostgreSQL a statement reads the rows committed before
    it began, so a count taken in the statement that waited for the lock could miss a key removed (or added)
    by the transaction it waited for; the second statement sees it."""
    secret = conn.execute(sa.select(accounts.c.secret).where(accounts.c.username == username).with_for_update()).first()
    if secret is None:
        return None
    keys = conn.execute(
        sa.select(sa.func.count()).select_from(webauthn_credentials).where(webauthn_credentials.c.username == username)
    ).scalar_one()
    return secret[0] is not None, int(keys)


def _record_webauthn_use(
    conn: Connection, username: str, credential_id: bytes, old_count: int, new_count: int, now: float
) -> bool:
    values = {
        "owner": username,
        "cid": b64url(credential_id),
        "old_count": old_count,
        "new_count": new_count,
        "used_at": now,
    }
    return conn.execute(_RECORD_WEBAUTHN_USE, values).rowcount == 1


def _take_webauthn_challenge(
    conn: Connection, challenge_id: str, username: str, purpose: str, bound_to: str, now: float
) -> bytes | None:
    taken = _take_challenge_for(conn, challenge_id, username, (purpose,), bound_to, now)
    return None if taken is None else taken[0]


def _take_challenge_for(
    conn: Connection, challenge_id: str, username: str, purposes: Sequence[str], bound_to: str, now: float
) -> tuple[bytes, str] | None:
    """The challenge and the purpose it was issued for, if it is one of ``purposes``; used up either way."""
    row = conn.execute(_TAKE_WEBAUTHN_CHALLENGE, {"challenge_id": challenge_id}).first()
    if row is None:
        return None
    matches = (
        hmac.compare_digest(row.username.encode(), username.encode())
        & (row.purpose in purposes)
        & hmac.compare_digest(row.bound_to.encode(), bound_to.encode())
    )
    if not matches or row.expires_at <= now:
        return None
    return bytes(row.challenge), str(row.purpose)


def _unused_recovery_hashes(conn: Connection, username: str) -> list[tuple[int, str]]:
    rows = conn.execute(
        sa.select(recovery_codes.c.id, recovery_codes.c.code_hash).where(
            recovery_codes.c.username == username, recovery_codes.c.used_at.is_(None)
        )
    )
    return [(row_id, code_hash) for row_id, code_hash in rows]


def _live_guesses(conn: Connection, keys: list[str], now: float, policy: GuessPolicy) -> dict[str, Any]:
    """The rows of ``keys`` not yet forgotten, locked until the transaction ends."""
    rows = conn.execute(_LIVE_GUESSES, {"keys": keys, "since": now - policy.forget_after}).mappings()
    return {row["key"]: row for row in rows}


def _guess_wait(counts: dict[str, Any], source: str | None, now: float, policy: GuessPolicy) -> float:
    """Seconds the attempt must wait: the longest back-off of its keys, or its source's block. Clamped, so a
    clock that stepped back (or a faster clock of another process) cannot stretch a wait past the policy."""
    wait = max((min((row["next_attempt_at"] or now) - now, policy.max_delay) for row in counts.values()), default=0.0)
    row = counts.get(source or "")
    if row is not None and policy.source_blocked(row["failures"]):
        wait = max(wait, min(row["last_failure_at"] + policy.forget_after - now, policy.forget_after))
    return wait


def _insert_missing(conn: Connection, table: sa.Table, values: dict[str, Any]) -> None:
    """INSERT a row unless its primary key exists; concurrent callers for the same key both succeed."""
    dialect = conn.dialect.name
    if dialect in _INSERT_OR_NOTHING:
        conn.execute(_insert_or_nothing(dialect, table), values)
    else:
        key = table.primary_key.columns[0]
        if conn.execute(sa.select(key).where(key == values[key.name])).first() is None:
            conn.execute(table.insert().values(**values))


_INSERT_OR_NOTHING: dict[str, Callable[[sa.Table], Any]] = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


@functools.cache
def _insert_or_nothing(dialect: str, table: sa.Table) -> Any:
    return _INSERT_OR_NOTHING[dialect](table).on_conflict_do_nothing()


@functools.cache
def _insert_new_returning(dialect: str, table: sa.Table) -> Any:
    return _insert_or_nothing(dialect, table).returning(*table.primary_key.columns)
