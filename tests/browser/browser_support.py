"""Helpers of the browser test: Debian's Chromium settings and a real `jupyter lab` behind the 2FA gate.

Imported by the test and the fixtures in this folder (pytest puts the folder on ``sys.path``; a plain
``import conftest`` could give another folder's conftest.py, so shared names live here).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from wheel_support import WheelInstall

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "test-output" / "browser"  # gitignored

CHROMIUM = Path("/usr/bin/chromium")  # the Debian package; Playwright's own browser download is never used
# Headless, and quiet: the network is closed, and without these Chromium keeps dialling Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PASSWORD = "correct horse battery staple"
SERVER_START_SECONDS = 60
SERVER_STOP_SECONDS = 20
LOG_TAIL_CHARS = 6000


@dataclass
class LabServer:
    """A running `jupyter lab` whose only way in is the 2FA gate, with password :data:`PASSWORD`."""

    url: str
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-LOG_TAIL_CHARS:] if self.log.exists() else "(no log)"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (the login page does without a session)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http://127.0.0.1 URL)
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def write_server_config(config_dir: Path) -> None:
    """The gate as an administrator turns it on: the 2FA identity provider and a hashed password.

    Also keeps JupyterLab off the (closed) network: no news feed or update check on the server, and the
    user setting that otherwise makes Lab ask "notified about official Jupyter news?" over the Launcher.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.py").write_text(
        "from jupyter_server.auth import passwd\n"
        "\n"
        "c = get_config()  # noqa: F821\n"
        'c.ServerApp.identity_provider_class = "jupyter_2fa.server.TOTPIdentityProvider"\n'
        f"c.PasswordIdentityProvider.hashed_password = passwd({PASSWORD!r})\n"
        "c.LabApp.news_url = None\n"
        'c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"\n'
    )
    notification = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@contextlib.contextmanager
def running_lab(workdir: Path, installed: WheelInstall | None = None) -> Iterator[LabServer]:
    """`jupyter lab` on a free loopback port, configured through the JUPYTER_* dirs in ``os.environ``.

    By default from the project's venv; with ``installed``, from the fresh venv the built wheel went into
    (started in ``workdir``, so the source tree is not on its path). Its output goes to a log file in
    ``workdir`` (no pipes to leave open); the tail is printed when it stops, which pytest shows when the test
    failed. The server is always terminated, and killed if it does not stop.
    """
    write_server_config(Path(os.environ["JUPYTER_CONFIG_DIR"]))
    notebooks = workdir / "notebooks"
    notebooks.mkdir()
    port = free_port()
    launcher = [str(installed.python), "-m", "jupyterlab"] if installed else [sys.executable, "-m", "jupyter", "lab"]
    command = [
        *launcher,
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # never quietly move to another port than the one we poll
        f"--ServerApp.root_dir={notebooks}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    server = LabServer(url=f"http://127.0.0.1:{port}", log=workdir / "jupyter-lab.log")
    with server.log.open("wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=installed.env() if installed else os.environ,
            cwd=workdir if installed else None,
        )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not answers(f"{server.url}/login"):
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter lab did not answer in {SERVER_START_SECONDS}s:\n{server.log_tail()}", pytrace=False
                )
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=SERVER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=SERVER_STOP_SECONDS)
        print(f"--- jupyter lab log ({server.log}), last {LOG_TAIL_CHARS} characters ---\n{server.log_tail()}")
