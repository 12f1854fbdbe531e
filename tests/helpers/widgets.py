"""Helpers of the notebook-panel tests: a real gated `jupyter server`, a browser-like HTTP user, and notebooks run
by nbclient in kernels that the server under test started (so they get the environment a user's kernel gets).
The fixture ``gate_server`` is in tests/widgets/conftest.py; the browser test tests/browser/test_lab_panel.py links
its first device with :func:`enroll_over_api` too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import nbformat
import requests
from jupyter_client.manager import KernelManager
from jupyter_server.auth import passwd
from nbclient import NotebookClient

from jupyter_2fa.widgets import Endpoint, TwoFactorClient

from helpers.ports import free_port
from helpers.processes import log_tail, running, server_options
from helpers.totp import Device

PASSWORD = "correct horse battery staple"
REQUEST_SECONDS = 30
KERNEL_SECONDS = 90
_HASHED_PASSWORD = passwd(PASSWORD)  # argon2: hash once per test run
_KEY_LINE = re.compile(r'font-family="monospace"[^>]*>([^<]+)</text>')


def manual_key(svg: str) -> str:
    """The secret typed out under the QR code in the one-time picture (what a user types into the app)."""
    lines = _KEY_LINE.findall(svg)
    assert lines, svg[:300]
    return "".join(lines).replace(" ", "")


def basic_header(password: str, username: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@dataclass
class GateServer:
    """A running `jupyter server` whose only way in is the 2FA gate (password :data:`PASSWORD`)."""

    url: str  # http://127.0.0.1:PORT, base URL "/"
    root_dir: Path
    runtime_dir: Path
    log: Path

    @property
    def api_url(self) -> str:
        return f"{self.url}/2fa/api/"

    def log_tail(self) -> str:
        return log_tail(self.log)

    def panel_client(self, password: str = PASSWORD) -> TwoFactorClient:
        """A client for a panel in the test process: it has no kernel environment, so it reads the status with
        the password (Basic) instead of the status token the server gives its own kernels."""
        return TwoFactorClient(Endpoint(self.api_url, "", on_hub=False, status_headers=basic_header(password)))


@contextlib.contextmanager
def running_gate(workdir: Path, extra_config: str = "") -> Iterator[GateServer]:
    """`jupyter server` with the gate on, on a free loopback port, in the JUPYTER_* dirs of ``os.environ``.

    ``extra_config`` is appended to its jupyter_server_config.py (e.g. ``c.TwoFactorConfig.lockout_threshold = 3``).
    """
    config_dir = Path(os.environ["JUPYTER_CONFIG_DIR"])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        'c.ServerApp.identity_provider_class = "jupyter_2fa.server.TOTPIdentityProvider"\n'
        f"c.PasswordIdentityProvider.hashed_password = {_HASHED_PASSWORD!r}\n" + extra_config
    )
    root_dir = workdir / "notebooks"
    root_dir.mkdir(parents=True)
    port = free_port()
    command = [sys.executable, "-m", "jupyter", "server", *server_options(port, root_dir)]
    server = GateServer(
        f"http://127.0.0.1:{port}", root_dir, Path(os.environ["JUPYTER_RUNTIME_DIR"]), workdir / "server.log"
    )
    with running(command, server.log, f"{server.url}/login", os.environ):
        yield server


def enroll_over_api(api_url: str) -> Device:
    """Link a device the way a script would (Basic password, the secret inline), for tests that start enrolled."""
    return enroll_with_codes(api_url)[0]


def enroll_with_codes(api_url: str) -> tuple[Device, list[str]]:
    """:func:`enroll_over_api`, and the recovery codes the link handed out."""
    headers = basic_header(PASSWORD)
    started = requests.post(f"{api_url}enrollment", json={"password": PASSWORD}, headers=headers, timeout=30)
    assert started.status_code == 201, started.text
    device = Device(started.json()["secret"])
    confirm = {"code": device.next_code()}
    confirmed = requests.post(f"{api_url}enrollment/confirm", json=confirm, headers=headers, timeout=30)
    assert confirmed.status_code == 200, confirmed.text
    return device, list(confirmed.json()["recovery_codes"])


@dataclass
class WebUser:
    """A browser (cookies, XSRF) on a gated single server or on a hub's public URL."""

    base_url: str  # where the server's paths start, e.g. http://127.0.0.1:8888 or http://127.0.0.1:8000/user/alice
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def xsrf(self) -> str:
        """This server's ``_xsrf`` cookie (a hub's browser also holds the hub's, on another path)."""
        path = urlparse(self.base_url).path.rstrip("/") + "/"
        return str(self.session.cookies.get("_xsrf", default="", path=path))

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self._url(path), timeout=REQUEST_SECONDS, allow_redirects=False, **kwargs)

    def api(self, method: str, path: str, body: Any = None) -> requests.Response:
        """A Jupyter REST call with this browser's session and XSRF header."""
        headers = {"X-XSRFToken": self.xsrf}
        return self.session.request(
            method, self._url(path), json=body, headers=headers, timeout=REQUEST_SECONDS, allow_redirects=False
        )

    def login(self, otp: str = "", password: str = PASSWORD) -> requests.Response:
        """The gate's login form; 302 means logged in."""
        self.get("login")
        fields = {"password": password, "otp": otp, "_xsrf": self.xsrf}
        return self.session.post(self._url("login"), data=fields, timeout=REQUEST_SECONDS, allow_redirects=False)

    def logged_in(self) -> bool:
        return self.get("api/status").status_code == 200

    def picture(self, qr_url: str) -> requests.Response:
        """What the browser does with the panel's ``<img src=qr_url>`` (an absolute path on the same origin)."""
        origin = re.match(r"https?://[^/]+", self.base_url)
        assert origin is not None, self.base_url
        return self.session.get(origin.group(0) + qr_url, timeout=REQUEST_SECONDS, allow_redirects=False)

    def _url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


class _AttachedKernelManager(KernelManager):
    """A kernel another process (the server under test) started and owns; nbclient only connects to it."""

    def __init__(self, connection_file: Path) -> None:
        super().__init__(connection_file=str(connection_file), owns_kernel=False)
        self.load_connection_file()

    @property
    def has_kernel(self) -> bool:
        return True


@dataclass
class ServerNotebook:
    """A notebook in the server's root, executed cell by cell by nbclient in a kernel the server started."""

    user: WebUser
    path: str  # relative to the server's root, e.g. "panel.ipynb"
    root_dir: Path  # the server's root folder on disk (where its checkpoints go)
    notebook: Any = field(default_factory=nbformat.v4.new_notebook)
    client: NotebookClient | None = None

    def run(self, source: str) -> list[Any]:
        """Append a code cell, execute it, return its outputs (nbclient raises CellExecutionError on errors)."""
        cell = nbformat.v4.new_code_cell(source)
        self.notebook.cells.append(cell)
        assert self.client is not None, "use ServerNotebook inside running_notebook()"
        self.client.execute_cell(cell, len(self.notebook.cells) - 1)
        return list(cell.outputs)

    def value(self, expression: str) -> Any:
        """A JSON value computed in the kernel (printed, so it is in the cell's stream output)."""
        outputs = self.run(f"import json as _json; print(_json.dumps({expression}))")
        text = "".join(output.get("text", "") for output in outputs if output.get("name") == "stdout")
        return json.loads(text.strip().splitlines()[-1])

    def save(self) -> str:
        """Save through the server's contents API, widget state included (as Lab does with "Save Widget State
        Automatically" on), make a checkpoint, and return the saved file's text plus the checkpoint's."""
        assert self.client is not None
        self.client.set_widgets_metadata()
        saved = self.user.api("PUT", f"api/contents/{self.path}", {"type": "notebook", "content": self.notebook})
        assert saved.status_code in (200, 201), saved.text
        checkpoint = self.user.api("POST", f"api/contents/{self.path}/checkpoints")
        assert checkpoint.status_code == 201, checkpoint.text
        checkpoint_file = self.root_dir / Path(self.path).parent / ".ipynb_checkpoints"
        checkpoint_file = checkpoint_file / f"{Path(self.path).stem}-checkpoint.ipynb"
        return (self.root_dir / self.path).read_text() + checkpoint_file.read_text()


@contextlib.contextmanager
def running_notebook(user: WebUser, runtime_dir: Path, root_dir: Path, path: str) -> Iterator[ServerNotebook]:
    """Start a kernel through the server's REST API (as Lab does) and execute cells in it with nbclient."""
    started = user.api("POST", "api/kernels", {"name": "python3"})
    assert started.status_code == 201, started.text
    kernel_id = started.json()["id"]
    connection_file = runtime_dir / f"kernel-{kernel_id}.json"
    deadline = time.monotonic() + KERNEL_SECONDS
    while not connection_file.exists():
        assert time.monotonic() < deadline, f"no {connection_file}"
        time.sleep(0.2)
    notebook = ServerNotebook(user, path, root_dir)
    manager = _AttachedKernelManager(connection_file)
    notebook.client = NotebookClient(
        notebook.notebook, km=manager, timeout=KERNEL_SECONDS, startup_timeout=KERNEL_SECONDS, store_widget_state=True
    )
    try:
        with notebook.client.setup_kernel(cleanup_kc=True):
            yield notebook
    finally:
        user.api("DELETE", f"api/kernels/{kernel_id}")
