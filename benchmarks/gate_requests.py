"""Per-request cost of the 2FA gate: stock jupyter_server and the gated one, side by side, same machine.

    python benchmarks/gate_requests.py [--requests 1000]

Starts two servers on 127.0.0.1 (stock with a password; gated with the same password and a linked device),
logs in to each, then alternates authenticated requests between them so both see the same machine load.
Reports median and p95 latency per endpoint and the gated/stock ratio. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pyotp
import requests
from jupyter_server.auth import passwd

PASSWORD = "benchmark password"
ENDPOINTS = ("api/contents", "api/status", "api/kernelspecs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(root: Path, gated: bool) -> Iterator[str]:
    """A jupyter_server subprocess with its own config and data dirs; yields its base URL."""
    config, data = root / "config", root / "data"
    config.mkdir(parents=True)
    lines = [f"c.PasswordIdentityProvider.hashed_password = {passwd(PASSWORD)!r}"]
    if gated:
        lines.append('c.ServerApp.identity_provider_class = "jupyter_2fa.server.TOTPIdentityProvider"')
    (config / "jupyter_server_config.py").write_text("\n".join(lines) + "\n")
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(data)}
    env["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
    command = [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ServerApp.ip=127.0.0.1"]
    command += ["--ServerApp.port_retries=0", "--no-browser", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(url + "login", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def login(url: str, otp: str = "") -> requests.Session:
    session = requests.Session()
    session.get(url + "login")
    fields = {"password": PASSWORD, "_xsrf": session.cookies.get("_xsrf", "")}
    if otp:
        fields["otp"] = otp
    reply = session.post(url + "login", data=fields, allow_redirects=False)
    if reply.status_code != 302:
        raise SystemExit(f"login to {url} failed: {reply.status_code}")
    return session


def enroll(url: str) -> str:
    """Link a device through the enrollment page; returns a login code for the next time step."""
    session = requests.Session()
    session.get(url + "2fa/enroll")
    xsrf = session.cookies.get("_xsrf", "")
    page = session.post(url + "2fa/enroll", data={"action": "start", "password": PASSWORD, "_xsrf": xsrf}).text
    key = page.split('id="manual_key">', 1)[1].split("<", 1)[0].replace(" ", "")
    totp = pyotp.TOTP(key)
    session.post(url + "2fa/enroll", data={"action": "confirm", "code": totp.now(), "_xsrf": xsrf})
    return totp.at(time.time() + 30)


def timed(session: requests.Session, url: str, **kwargs: Any) -> float:
    """Seconds one GET takes (``kwargs`` go to requests, e.g. ``auth``); anything but 200 stops the run."""
    start = time.perf_counter()
    reply = session.get(url, **kwargs)
    elapsed = time.perf_counter() - start
    if reply.status_code != 200:
        raise SystemExit(f"{url}: {reply.status_code} {reply.text[:200]}")
    return elapsed


def side_by_side(stack: ExitStack) -> tuple[tuple[str, requests.Session], tuple[str, requests.Session]]:
    """Stock and gated servers (a device linked) running until ``stack`` closes: (url, logged-in session) each."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    stock_url = stack.enter_context(server(tmp / "stock", gated=False))
    gated_url = stack.enter_context(server(tmp / "gated", gated=True))
    return (stock_url, login(stock_url)), (gated_url, login(gated_url, enroll(gated_url)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per endpoint and server")
    args = parser.parse_args()
    with ExitStack() as stack:
        (stock_url, stock), (gated_url, gated) = side_by_side(stack)
        print(f"{'endpoint':<18} {'stock median/p95 ms':>22} {'gated median/p95 ms':>22} {'ratio':>6}")
        for endpoint in ENDPOINTS:
            for _ in range(50):  # warm up both
                timed(stock, stock_url + endpoint), timed(gated, gated_url + endpoint)
            samples: dict[str, list[float]] = {"stock": [], "gated": []}
            for _ in range(args.requests):
                samples["stock"].append(timed(stock, stock_url + endpoint))
                samples["gated"].append(timed(gated, gated_url + endpoint))
            row = {}
            for name, values in samples.items():
                ms = sorted(v * 1000 for v in values)
                row[name] = (statistics.median(ms), ms[int(0.95 * len(ms))])
            ratio = row["gated"][0] / row["stock"][0]
            print(
                f"{endpoint:<18} {row['stock'][0]:>10.3f} / {row['stock'][1]:<9.3f} "
                f"{row['gated'][0]:>10.3f} / {row['gated'][1]:<9.3f} {ratio:>6.2f}"
            )


if __name__ == "__main__":
    main()
