"""Where a login check's time goes: a pyinstrument profile of right-code checks (issue 12, item 6).

    .venv/bin/python -m benchmarks.profile_check --postgres-url URL [--rounds 300]

Runs ``rounds`` login checks with a right code under pyinstrument's sampling profiler and splits their wall time
by where each sample was: waiting on the database (psycopg's ``wait``, inside which the server, the network and
the disk run), the database driver's and SQLAlchemy's own Python, this project's code, the key and TOTP
arithmetic (cryptography, pyotp), and the rest. ``python -m benchmarks`` runs it on the durable PostgreSQL
whose ratio to one commit stays above 2x; measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import pyotp
from cryptography.fernet import Fernet
from pyinstrument import Profiler
from pyinstrument.frame import Frame

from jupyter_2fa.core import Enrollment, Keyring, Settings, Store, ThrottlePolicy, Verifier

SETTINGS = Settings(recovery_code_count=1, throttle=ThrottlePolicy(lockout_threshold=100, free_attempts=100))
WARM_UP = 50
# Where a sample's innermost frame is, first match wins: (place, file path part, function names or None for any).
# libpq's C calls show as the psycopg frames that make them: sending a statement, and waiting for the answer.
PLACES = (
    (
        "libpq: sending, then waiting for the server (network, server, disk)",
        "psycopg/",
        {"wait", "_exec_command", "_send_query_prepared", "_send_prepare", "_execute_send", "_send_query"},
    ),
    ("psycopg's Python", "psycopg/", None),
    ("SQLAlchemy", "sqlalchemy/", None),
    ("cryptography and pyotp (decrypt the secret, compute codes)", "cryptography/", None),
    ("cryptography and pyotp (decrypt the secret, compute codes)", "pyotp/", None),
    ("jupyter_2fa", "jupyter_2fa/", None),
)
OTHER = "the standard library (context managers, base64, ipaddress)"


def place_of(frame: Frame) -> str:
    path = frame.file_path or ""
    for place, part, functions in PLACES:
        if part in path and (functions is None or frame.function in functions):
            return place
    return OTHER


def self_times(frame: Frame, totals: dict[str, float]) -> None:
    """Add each frame's own time (not its children's) to the place its code lives in. pyinstrument keeps a frame's
    own time in synthetic children (``[self]``), which ``total_self_time`` counts in."""
    place = place_of(frame)
    totals[place] = totals.get(place, 0.0) + frame.total_self_time
    for child in frame.children:
        if not child.is_synthetic:
            self_times(child, totals)


def call_tree(text: str) -> str:
    """pyinstrument's report without its banner, which names the machine's clock and the script's full path."""
    lines = text.splitlines()
    start = next((n + 1 for n, line in enumerate(lines) if line.startswith("Profile at ")), 0)
    return "\n".join(lines[start:]).strip("\n") + "\n"


def profile_check(db_url: str, rounds: int) -> dict[str, Any]:
    store = Store(db_url, Keyring([Fernet.generate_key()], "benchmark"))
    try:
        enrollment = Enrollment(Verifier(store, SETTINGS))
        user, start = f"profile-{time.time_ns()}", 1_800_000_000.0
        enrollment.begin(user, start)
        totp = pyotp.parse_uri(enrollment.reveal(user, start).uri)
        enrollment.confirm(user, totp.at(start), start)
        steps = [start + 30 * (n + 1) for n in range(WARM_UP + rounds)]
        codes = [(now, totp.at(now)) for now in steps]
        for now, code in codes[:WARM_UP]:  # the pool's connection, psycopg's prepared statements
            enrollment.verifier.verify(user, code, now, remote_addr="192.0.2.1")
        profiler = Profiler(interval=0.001)
        profiler.start()
        for now, code in codes[WARM_UP:]:
            assert enrollment.verifier.verify(user, code, now, remote_addr="192.0.2.1").ok
        session = profiler.stop()
        root = session.root_frame()
        assert root is not None
        totals: dict[str, float] = {}
        self_times(root, totals)
        tree = call_tree(profiler.output_text(unicode=False, color=False, show_all=False))
    finally:
        store.close()
    wall = session.duration
    return {
        "store": store.url.get_backend_name(),
        "rounds": rounds,
        "per_check_ms": wall / rounds * 1000,
        "cpu_share": session.cpu_time / wall,
        "places_ms_per_check": {
            place: seconds / rounds * 1000 for place, seconds in sorted(totals.items(), key=lambda kv: -kv[1])
        },
        "tree": tree,
    }


def profile_markdown(result: dict[str, Any], ratio: float) -> list[str]:
    per_check = result["per_check_ms"]
    lines = [
        "",
        f"## Profile: where a right code's time goes on {result['store']}",
        "",
        f"The ratio to one commit above is {ratio:.2f}x there, so the check was profiled (pyinstrument, sampling every"
        f" millisecond over {result['rounds']} checks of {per_check:.2f} ms each, profiler included; the process"
        f" was on a CPU {result['cpu_share']:.0%} of that time):",
        "",
        "| where | per check | share |",
        "|---|---|---|",
    ]
    for place, ms in result["places_ms_per_check"].items():
        lines.append(f"| {place} | {ms:.3f} ms | {ms / per_check:.0%} |")
    lines += [
        "",
        "<details><summary>The profile's call tree</summary>",
        "",
        "```",
        *result["tree"].strip("\n").splitlines(),
        "```",
        "",
        "</details>",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(profile_check(args.postgres_url, args.rounds), indent=2))


if __name__ == "__main__":
    main()
