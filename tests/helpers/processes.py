"""A real Jupyter server as a subprocess on loopback: the browser tests' `jupyter lab` / `jupyter notebook` and the
panel tests' `jupyter server` start, wait for and stop theirs here (on a :func:`helpers.ports.free_port`).

Output goes to a log file (no pipes to leave open); its tail is printed when the server stops, which pytest shows
when a test failed. The server is always terminated, and killed if it does not stop.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

START_SECONDS = 60
STOP_SECONDS = 20
LOG_TAIL_CHARS = 6000


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (the gate's login page does without a session)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http://127.0.0.1 URL)
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-LOG_TAIL_CHARS:] if log.exists() else "(no log)"


def server_options(port: int, root_dir: Path) -> list[str]:
    """The command-line options every test server gets: loopback, this port and no other, no browser."""
    options = [
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # never quietly move to another port than the one we poll
        f"--ServerApp.root_dir={root_dir}",
    ]
    if os.geteuid() == 0:
        options.append("--allow-root")
    return options


@contextlib.contextmanager
def running(
    command: list[str], log: Path, ready_url: str, env: Mapping[str, str], cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends, once ``ready_url`` answers; fail the test if it never does."""
    name = " ".join(command[:4])
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not answers(ready_url):
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{log_tail(log)}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not answer in {START_SECONDS}s:\n{log_tail(log)}", pytrace=False)
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_SECONDS)
        print(f"--- {name} log ({log}), last {LOG_TAIL_CHARS} characters ---\n{log_tail(log)}")
