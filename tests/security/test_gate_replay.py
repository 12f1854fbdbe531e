"""Replay across processes: two real `jupyter server` processes with the gate share one store (the default
SQLite file in the Jupyter data dir), as two servers of one user on a cluster's login nodes do. A code, or a
recovery code, sent to both at once opens exactly one session."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from helpers.browser import HTTP_SECONDS, PASSWORD, Client, write_server_config
from helpers.ports import free_port
from helpers.processes import running, server_options

pytestmark = pytest.mark.slow


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[str]]:
    """Two gated `jupyter server` processes on one store; their base URLs."""
    config_dir = Path(os.environ["JUPYTER_CONFIG_DIR"])
    write_server_config(config_dir)
    # The replay guard alone decides here: no back-off or lock from the refused replays.
    with (config_dir / "jupyter_server_config.py").open("a") as config:
        config.write("c.TwoFactorConfig.lockout_threshold = 100\nc.TwoFactorConfig.backoff_free_attempts = 100\n")
    root = tmp_path / "notebooks"
    root.mkdir()
    urls: list[str] = []
    with running_server(tmp_path, root, "a", urls), running_server(tmp_path, root, "b", urls):
        yield urls


def running_server(
    tmp_path: Path, root: Path, name: str, urls: list[str]
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    urls.append(url)
    command = [sys.executable, "-m", "jupyter", "server", *server_options(port, root)]
    return running(command, tmp_path / f"server-{name}.log", f"{url}/login", os.environ)


def log_in(url: str, otp: str, start: threading.Barrier) -> bool:
    """One login from a fresh browser (its own cookies and XSRF token); True when it opened a session."""
    http = requests.Session()
    http.get(f"{url}/login", timeout=HTTP_SECONDS).raise_for_status()
    data = {"_xsrf": http.cookies["_xsrf"], "password": PASSWORD, "otp": otp}
    start.wait(timeout=60)
    response = http.post(f"{url}/login", data=data, timeout=HTTP_SECONDS, allow_redirects=False)
    if response.status_code == 302:
        return http.get(f"{url}/api/contents", timeout=HTTP_SECONDS).status_code == 200
    assert response.status_code in (401, 403, 429), response.text[-500:]
    return False


def parallel_logins(urls: list[str], otp: str, count: int) -> int:
    """``count`` logins with one code, spread over the servers, all released at once; how many got in."""
    start = threading.Barrier(count)
    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(lambda n: log_in(urls[n % len(urls)], otp, start), range(count)))
    return sum(results)


def test_one_code_opens_one_session_across_two_processes(two_servers: list[str]) -> None:
    first, second = two_servers
    device, recovery_codes = Client(first).enroll()

    # The code that confirmed the device is spent: it cannot log in, on either server.
    confirm_code = device.code_at(device.last_step or 0)
    assert parallel_logins(two_servers, confirm_code, 2) == 0

    assert parallel_logins(two_servers, device.next_code(), 20) == 1
    assert parallel_logins(two_servers, recovery_codes[0], 2) == 1
    # And the spent recovery code is refused afterwards too.
    assert parallel_logins([second], recovery_codes[0], 1) == 0
