"""What the notebook panel's calls cost: the gated server's ``2fa/api/status`` with a browser session and with
the password as HTTP Basic (how the panel's kernel calls it), beside stock jupyter_server's ``api/status``.

    python benchmarks/panel_calls.py [--requests 300]

Both servers run side by side (benchmarks/gate_requests.py starts them); requests alternate between them.
A Basic call checks the password on every request (jupyter_server's Argon2 hash), which is the price of a
kernel holding no session; the panel makes a handful per action, never one per page request.
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import ExitStack

import requests
from gate_requests import PASSWORD, side_by_side, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per kind")
    args = parser.parse_args()
    with ExitStack() as stack:
        (stock_url, stock), (gated_url, gated) = side_by_side(stack)
        kernel = requests.Session()  # no cookies: what the panel's kernel has
        kinds = {
            "stock api/status (cookie)": lambda: timed(stock, stock_url + "api/status"),
            "gated 2fa/api/status (cookie)": lambda: timed(gated, gated_url + "2fa/api/status"),
            "gated 2fa/api/status (Basic)": lambda: timed(kernel, gated_url + "2fa/api/status", auth=("", PASSWORD)),
        }
        samples: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(20):  # warm up
            for call in kinds.values():
                call()
        for _ in range(args.requests):
            for name, call in kinds.items():
                samples[name].append(call())
        base = statistics.median(samples["stock api/status (cookie)"])
        print(f"{'call':<32} {'median / p95 ms':>20} {'/ stock':>8}")
        for name, values in samples.items():
            ms = sorted(v * 1000 for v in values)
            median = statistics.median(ms)
            print(f"{name:<32} {median:>9.2f} / {ms[int(0.95 * len(ms))]:<8.2f} {median / (base * 1000):>8.2f}")


if __name__ == "__main__":
    main()
