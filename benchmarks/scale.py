"""The store at 1, 10 k and 100 k accounts: a login check, ``GET status``'s read, and the admin list (issue 12, item 5).

    .venv/bin/python -m benchmarks.scale [--sizes 1 10000 100000] [--rounds 200] [--postgres-url URL]

One store per database, grown in place: the benchmark account is linked through the real enrollment, the
others are rows inserted in bulk (half of them with a linked device, as a real hub's mix would be). At each
size, interleaved: a login check with a right code (``Verifier.verify``) and the read behind ``GET status``
(``Store.get``); then, with its time and the Python memory it allocates (tracemalloc's peak): one page of the
hub's admin list as ``GET /hub/2fa/api/users?offset=&limit=`` and the admin page read it (``Store.accounts_slice``
of ADMIN_PAGE accounts from the middle of the store, plus ``Store.count_accounts`` for the total), and every
account listed as ``jupyter 2fa list`` does (``Store.iter_accounts``, a page at a time). Measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyotp
from cryptography.fernet import Fernet

from jupyter_2fa.core import Enrollment, Keyring, Settings, Store, ThrottlePolicy, Verifier
from jupyter_2fa.core.store import accounts

SETTINGS = Settings(recovery_code_count=1, throttle=ThrottlePolicy(lockout_threshold=100, free_attempts=100))
INSERT_BATCH = 5000
ADMIN_PAGE = 100  # accounts on one page of the admin list (the admin page's default limit)


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def grow(store: Store, secret_token: str, have: int, want: int) -> None:
    """Insert filler accounts ``have`` .. ``want - 1`` in batches (every other one with a device)."""
    for start in range(have, want, INSERT_BATCH):
        rows = [
            {"username": f"user-{n:06d}", "secret": secret_token if n % 2 else None, "generation": 1 if n % 2 else 0}
            for n in range(start, min(start + INSERT_BATCH, want))
        ]
        with store.engine.begin() as conn:
            conn.execute(accounts.insert(), rows)


def at_size(
    store: Store, verifier: Verifier, totp: pyotp.TOTP, user: str, rounds: int, clock: Iterator[float]
) -> dict[str, Any]:
    check, status = [], []
    for _ in range(rounds):
        now = next(clock)
        code = totp.at(now)
        started = time.perf_counter()
        verdict = verifier.verify(user, code, now, remote_addr="192.0.2.1")
        check.append(time.perf_counter() - started)
        assert verdict.ok, verdict
        started = time.perf_counter()
        store.get(user)
        status.append(time.perf_counter() - started)
    total = store.count_accounts()
    offset = total // 2  # the middle page: 50 000 of 100 000 accounts stepped over, as a deep page would be

    def admin_page() -> int:
        page = store.accounts_slice(offset, ADMIN_PAGE)
        assert store.count_accounts() == total
        return len(page)

    paged, page_seconds, page_peak = traced(admin_page)
    streamed, stream_seconds, stream_peak = traced(lambda: sum(1 for _ in store.iter_accounts()))
    assert streamed == total and paged == min(ADMIN_PAGE, total - offset)
    return {
        "login_check_median_ms": median_ms(check),
        "status_read_median_ms": median_ms(status),
        # one page of the admin list (accounts_slice + count_accounts), no longer every account
        "admin_list_seconds": page_seconds,
        "admin_list_peak_mib": page_peak,
        "admin_page_offset": offset,
        "admin_page_accounts": paged,
        "cli_list_seconds": stream_seconds,
        "cli_list_peak_mib": stream_peak,
        "accounts_listed": streamed,
    }


def traced(action: Callable[[], int]) -> tuple[int, float, float]:
    """``action``'s result, its seconds, and the peak of the Python memory it allocated (MiB)."""
    tracemalloc.start()
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def scale(db_url: str, sizes: list[int], rounds: int) -> dict[str, Any]:
    store = Store(db_url, Keyring([Fernet.generate_key()], "benchmark"))
    enrollment = Enrollment(Verifier(store, SETTINGS))
    user, start = "bench", 1_800_000_000.0
    enrollment.begin(user, start)
    totp = pyotp.parse_uri(enrollment.reveal(user, start).uri)
    enrollment.confirm(user, totp.at(start), start)
    account = store.get(user)
    assert account is not None and account.secret is not None
    clock = (start + 30 * n for n in range(1, 10**9))  # a new time step for every check
    results: dict[str, Any] = {}
    have = 1
    try:
        for size in sorted(sizes):
            grow(store, account.secret, have, size)
            have = max(have, size)
            results[str(size)] = at_size(store, enrollment.verifier, totp, user, rounds, clock)
    finally:
        store.close()
    return {"store": store.url.get_backend_name(), "rounds": rounds, "sizes": results}


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'store' / 'store.sqlite'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--postgres-url", help="also measure on this (empty) PostgreSQL database")
    args = parser.parse_args()
    with sqlite_url() as url:
        runs = [scale(url, args.sizes, args.rounds)]
    if args.postgres_url:
        runs.append(scale(args.postgres_url, args.sizes, args.rounds))
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
