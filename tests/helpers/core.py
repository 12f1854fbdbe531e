"""Helpers shared by the core tests: a fixed clock, an "authenticator app" built from pyotp, a test harness.

Codes are always computed with pyotp directly from the otpauth URI or the Base32 secret, never with the
core's own helpers, so a test is an independent check of the core.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import sqlalchemy as sa
from cryptography.fernet import Fernet

from jupyter_2fa.core import (
    AuditEvent,
    Enrollment,
    Keyring,
    Settings,
    Store,
    ThrottlePolicy,
    TOTPParameters,
    Verifier,
)
from jupyter_2fa.core.store import guesses
from jupyter_2fa.core.totp import MAX_INPUT_LENGTH

PERIOD = 30
DEFAULT_PARAMS = TOTPParameters()
# A fixed "now": 10 seconds into time step 60_000_000 (2027-01-15). Tests pass it (plus offsets) explicitly.
T0 = 1_800_000_010.0
USER = "ada"

# No back-off and no lock within any test that does not exercise the throttle itself.
LENIENT_THROTTLE = ThrottlePolicy(lockout_threshold=100, free_attempts=100)
# Two recovery codes keep Argon2 hashing (about 20-30 ms per code) cheap.
FAST_SETTINGS = Settings(recovery_code_count=2, throttle=LENIENT_THROTTLE)


# Codes normalize_code refuses (tests/core/test_totp.py), and so does the verifier (test_verifier.py):
# (input, the words the reason must contain).
BAD_CODES: list[tuple[object, str]] = [
    ("١٢٣٤٥٦", "only the digits 0-9"),
    ("\uff11\uff12\uff13\uff14\uff15\uff16", "only the digits 0-9"),  # full-width 123456
    ("+12345", "only the digits 0-9"),
    ("12_345", "only the digits 0-9"),
    ("12345", "6 digits"),
    ("1234567", "6 digits"),
    ("1" * (MAX_INPUT_LENGTH + 1), "too long"),
    (" " * 60 + "123456", "too long"),
    ("\x00123456", "only the digits 0-9"),
    ("123456\x00", "only the digits 0-9"),
    ("123456\n", "only the digits 0-9"),
    ("123\u00a0456", "only the digits 0-9"),
    ("-123456", "only the digits 0-9"),
    (None, "text"),
    (123456, "text"),
    (b"123456", "text"),
    (["123456"], "text"),
    ("", "empty"),
    ("   ", "empty"),
]
BAD_CODE_IDS = [
    "arabic-indic",
    "full-width",
    "plus-sign",
    "underscore",
    "too-short",
    "too-many",
    "65-chars",
    "66-with-spaces",
    "leading-nul",
    "trailing-nul",
    "newline",
    "no-break-space",
    "minus-sign",
    "none",
    "int",
    "bytes",
    "list",
    "empty",
    "blank",
]


# A recovery code as shown to people: Crockford Base32 (no i, l, o, u), two groups of five.
RECOVERY_CODE_FORMAT = re.compile(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}")


def mode(path: Path) -> int:
    """Permission bits of ``path`` itself (not of a symlink's target)."""
    return stat.S_IMODE(os.lstat(path).st_mode)


def step_of(now: float, period: int = PERIOD) -> int:
    return int(now) // period


def hotp(secret: str, step: int, params: TOTPParameters = DEFAULT_PARAMS) -> str:
    """The RFC 4226 code of ``secret`` for counter ``step`` (pyotp, not the core)."""
    digest = getattr(hashlib, params.algorithm)
    return str(pyotp.HOTP(secret, digits=params.digits, digest=digest).at(step))


def totp_at(secret: str, now: float, params: TOTPParameters = DEFAULT_PARAMS) -> str:
    """The TOTP code an authenticator app shows at Unix time ``now``."""
    return hotp(secret, step_of(now, params.period), params)


def wrong_code(secret: str, now: float, params: TOTPParameters = DEFAULT_PARAMS, spread: int = 3) -> str:
    """A well-formed code that matches no step within ``spread`` steps of ``now``."""
    step = step_of(now, params.period)
    taken = {hotp(secret, s, params) for s in range(step - spread, step + spread + 1)}
    for n in range(10**params.digits):
        candidate = f"{n:0{params.digits}d}"
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class App:
    """The user's authenticator app, configured only from the otpauth URI it scanned."""

    uri: str

    @property
    def totp(self) -> pyotp.TOTP:
        parsed = pyotp.parse_uri(self.uri)
        assert isinstance(parsed, pyotp.TOTP)
        return parsed

    @property
    def secret(self) -> str:
        return str(self.totp.secret)

    def code(self, now: float) -> str:
        totp = self.totp
        return str(totp.generate_otp(int(now) // totp.interval))


@dataclass
class Enrolled:
    """A user enrolled through the real state machine: the app they scanned and the codes they were shown."""

    username: str
    app: App
    recovery_codes: list[str]
    confirmed_at: float

    @property
    def secret(self) -> str:
        return self.app.secret


@dataclass
class Harness:
    """A real Store on a real database, the Verifier and Enrollment over it, and every audit event."""

    store: Store
    settings: Settings
    events: list[AuditEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.verifier = Verifier(self.store, self.settings, audit=self.events.append)
        self.enrollment = Enrollment(self.verifier)

    def enroll(self, username: str = USER, now: float = T0) -> Enrolled:
        """begin -> reveal -> confirm with the app's current code."""
        self.enrollment.begin(username, now)
        provisioning = self.enrollment.reveal(username, now)
        app = App(provisioning.uri)
        codes = self.enrollment.confirm(username, app.code(now), now)
        return Enrolled(username, app, codes, now)


HarnessFactory = Callable[..., Harness]


def new_keyring(source: str = "test keyring") -> Keyring:
    return Keyring([Fernet.generate_key()], source)


def sqlite_path(url: str) -> Path | None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


@contextmanager
def scratch_engine(url: str) -> Iterator[sa.Engine]:
    """A throw-away engine (outside the Store under test) for inspecting or damaging the database."""
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def dump_database(url: str) -> str:
    """Every value of every column of every table, as one string (for "is this secret stored?" checks)."""
    with scratch_engine(url) as engine, engine.connect() as conn:
        values: list[object] = []
        for name in sa.inspect(conn).get_table_names():
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            values.extend(conn.execute(sa.select(table)).all())
        return json.dumps(values, default=str)


def secret_variants(secrets: Iterable[str]) -> set[str]:
    """Every form in which a Base32 secret or a recovery code could leak: as shown, bare, upper, lower."""
    out: set[str] = set()
    for secret in secrets:
        bare = secret.replace("-", "").replace(" ", "")
        out |= {secret, bare, secret.upper(), secret.lower(), bare.upper(), bare.lower()}
    return out


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def collect_resource_warnings() -> list[str]:
    """Run the garbage collector and return the ResourceWarnings it produced (leaked files/connections)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def password_failures(store: Store, username: str) -> int:
    """Wrong passwords counted against ``username``'s name (0 once they are cleared or forgotten)."""
    with store.engine.connect() as conn:
        count = conn.execute(sa.select(guesses.c.failures).where(guesses.c.key == f"account:{username}")).scalar()
    return int(count or 0)


@contextmanager
def held_exclusively(store: Path) -> Iterator[None]:
    """Another process holds SQLite's EXCLUSIVE lock on ``store`` (as ``BEGIN EXCLUSIVE`` in a sqlite3 shell
    does) until the block ends: nobody else may even read it."""
    script = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"  # until the test closes our stdin
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked", "the lock holder did not get the lock"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()
