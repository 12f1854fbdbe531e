"""How long one second-factor check takes through the core, on SQLite and (given a URL) PostgreSQL.

    python benchmarks/core_verify.py                       # SQLite file in a temp dir
    python benchmarks/core_verify.py --db-url postgresql+psycopg://user:pw@127.0.0.1:5432/db

Each round is a real login check: throttle reservation, factor lookup, TOTP match over the window, the atomic
replay-guard UPDATE and the failure reset; codes are precomputed so only verification is timed. Recovery codes
(Argon2id) are timed separately because they are deliberately slow. Reports the median and 95th percentile.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyotp
from cryptography.fernet import Fernet

from jupyter_2fa.core import Enrollment, Keyring, Settings, Store, Verifier


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(label: str, samples: list[float]) -> None:
    ms = [s * 1000 for s in samples]
    print(f"{label:<34} n={len(ms):<5} median {statistics.median(ms):7.2f} ms   p95 {percentile(ms, 0.95):7.2f} ms")


def run(db_url: str, rounds: int) -> None:
    store = Store(db_url, Keyring([Fernet.generate_key()], "benchmark"))
    enrollment = Enrollment(Verifier(store, Settings()))
    user = f"bench-{time.time_ns()}"
    start = 1_800_000_000.0
    enrollment.begin(user, start)
    totp = pyotp.parse_uri(enrollment.reveal(user, start).uri)
    recovery_codes = enrollment.confirm(user, totp.at(start), start)

    verifier = enrollment.verifier
    moments = [start + 30 * (i + 1) for i in range(rounds)]
    codes = [totp.at(t) for t in moments]
    accepted, refused = [], []
    for moment, code in zip(moments, codes, strict=True):
        t0 = time.perf_counter()
        assert verifier.verify(user, code, moment).ok
        accepted.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert not verifier.verify(user, code, moment + 1).ok  # the replay, refused
        refused.append(time.perf_counter() - t0)
        verifier.store.unlock(user)  # keep the throttle out of the measurement
    recovery = []
    for code in recovery_codes[:5]:
        t0 = time.perf_counter()
        assert verifier.verify(user, code, moments[-1] + 60).ok
        recovery.append(time.perf_counter() - t0)

    print(f"store: {store.url.get_backend_name()}")
    report("TOTP code accepted", accepted)
    report("replayed code refused", refused)
    report("recovery code accepted (Argon2id)", recovery)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", help="SQLAlchemy URL; default: a new SQLite file in a temp dir")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    if args.db_url:
        run(args.db_url, args.rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / '2fa' / 'store.sqlite'}", args.rounds)


if __name__ == "__main__":
    main()
