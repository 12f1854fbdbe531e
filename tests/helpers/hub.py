"""Helpers of the JupyterHub tests: a real ``jupyterhub`` behind configurable-http-proxy, and a browser for it.

Everything is driven over HTTP, as a user or an administrator would: the hub runs in its own process (started
with ``python -m jupyterhub -f jupyterhub_config.py``), starts configurable-http-proxy from ``node_modules``
(``npm ci``, done by ``scripts/_venv.sh``) and spawns real single-user servers (``jupyterhub-singleuser``, as
the user running the tests: ``SimpleLocalProcessSpawner``). JupyterHub is never imported here: the hub under test
is a process of its own, configured as an administrator would.

The fixture ``hub_factory`` (tests/conftest.py: tests/hub and tests/browser use it) starts hubs with
:class:`HubFactory`; a test module that shares one hub among its tests uses :func:`module_hub`.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from jupyter_2fa.core import Keyring, Store

from helpers.ci import skip_or_fail
from helpers.ports import free_ports
from helpers.totp import Device

REPO_ROOT = Path(__file__).resolve().parents[2]
CHP = REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"  # `npm ci` (scripts/_venv.sh) puts it there
VENV_BIN = Path(sys.executable).parent  # not resolved: .venv/bin/python is a symlink to the system's python
SINGLEUSER = VENV_BIN / "jupyterhub-singleuser"

HUB_START_SECONDS = 60
HUB_STOP_SECONDS = 20
STRAY_GRACE_SECONDS = 5
SERVER_READY_SECONDS = 60
REQUEST_SECONDS = 30
LOG_TAIL_CHARS = 8000

ADMIN_SERVICE = "test-admin"
USER_SERVICE = "test-user-service"
# Every process of one hub (the hub, the proxy, the single-user servers, their kernels) carries this variable, so
# teardown can find whatever outlived the hub, wherever it went (single-user servers get their own sessions).
MARKER_VARIABLE = "JUPYTER_2FA_TEST_HUB"
# Variables the single-user servers keep from the hub's environment: JupyterHub's own list plus the test's
# isolated Jupyter paths (tests/conftest.py) and the marker. A hub config may assign c.Spawner.env_keep again.
SPAWNER_ENV_KEEP = [
    "CONDA_DEFAULT_ENV",
    "CONDA_ROOT",
    "JUPYTERHUB_SINGLEUSER_APP",
    "LANG",
    "LC_ALL",
    "LD_LIBRARY_PATH",
    "PATH",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_DATA_DIR",
    "JUPYTER_RUNTIME_DIR",
    "IPYTHONDIR",
    MARKER_VARIABLE,
]
# The test process may itself run under a hub or next to a proxy; none of that may reach the hub under test.
_FOREIGN_VARIABLES = re.compile(r"^(JUPYTERHUB_|JPY_|CONFIGPROXY_)")
_LOGIN_ERROR = re.compile(r'<p class="login_error">(.*?)</p>', re.DOTALL)


def login_error(response: requests.Response) -> str | None:
    """The text of the hub login page's error paragraph (``<p class="login_error">``), unescaped, or None."""
    match = _LOGIN_ERROR.search(response.text)
    return html.unescape(match.group(1)).strip() if match else None


# -- the browser ------------------------------------------------------------------------------------------------


class HubBrowser:
    """A cookie-keeping HTTP client (``requests.Session``) for one hub: what a browser with JavaScript off does.

    Paths are relative to the proxy's public URL (``"/hub/login"``, ``"/user/alice/api/status"``); absolute URLs
    pass through. Requests do not follow redirects unless told to (``allow_redirects=True`` follows the
    single-user servers' OAuth dance with the hub, cookies and all). Form posts carry the hub's ``_xsrf`` token,
    received the way a browser receives it: by loading the login page.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- plumbing -------------------------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, allow_redirects: bool = False, timeout: float = REQUEST_SECONDS, **kwargs: Any
    ) -> requests.Response:
        """Send one request (``requests.Session.request`` arguments) and keep the cookies it sets."""
        return self.session.request(method, self.url(path), allow_redirects=allow_redirects, timeout=timeout, **kwargs)

    def get(self, path: str, *, allow_redirects: bool = False, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, allow_redirects=allow_redirects, **kwargs)

    def post(
        self,
        path: str,
        data: Mapping[str, str] | None = None,
        *,
        xsrf: bool = True,
        allow_redirects: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """POST a form (``application/x-www-form-urlencoded``), with the ``_xsrf`` field unless told not to."""
        fields = dict(data or {})
        if xsrf:
            fields.setdefault("_xsrf", self.ensure_xsrf())
        return self.request("POST", path, data=fields, allow_redirects=allow_redirects, **kwargs)

    def cookie(self, name: str, path: str | None = None) -> str | None:
        """The value of cookie ``name`` (the one with ``path``, if given; the most specific path otherwise).

        Several cookies may share a name: the hub's ``_xsrf`` lives on ``/hub/``, each single-user server's on
        ``/user/NAME/``.
        """
        found = [c for c in self.session.cookies if c.name == name and (path is None or c.path == path)]
        if not found:
            return None
        return max(found, key=lambda c: len(c.path or "")).value

    @property
    def cookies(self) -> dict[str, str]:
        """Every cookie held, by name (for a name set on several paths, the most specific path's value)."""
        return {name: value for name in {c.name for c in self.session.cookies} if (value := self.cookie(name))}

    # -- what a user does -----------------------------------------------------------------------------------------

    @property
    def xsrf(self) -> str | None:
        """The hub's ``_xsrf`` cookie (path ``/hub/``), which form posts to the hub must repeat."""
        return self.cookie("_xsrf", "/hub/")

    def ensure_xsrf(self) -> str:
        """Receive the hub's ``_xsrf`` cookie the way a browser does: by loading the login page."""
        if self.xsrf is None:
            self.get("/hub/login")
        token = self.xsrf
        assert token is not None, "the hub's login page did not set an _xsrf cookie"
        return token

    def login(self, username: str, password: str, otp: str | None = None, next: str | None = None) -> requests.Response:
        """Submit the hub's login form (username, password and, if given, the ``otp`` field); no redirect followed.

        A successful login answers 302 (to ``next``, or the hub's home) and sets the hub's login cookie; a refused
        one re-renders the login page (403), whose message :func:`login_error` reads.
        """
        fields = {"username": username, "password": password}
        if otp is not None:
            fields["otp"] = otp
        path = "/hub/login" + (f"?{urlencode({'next': next})}" if next is not None else "")
        return self.post(path, fields)

    def open_server(self, username: str, path: str = "lab") -> requests.Response:
        """Load a page of ``username``'s server, following redirects: its OAuth dance with the hub, if needed.

        A single-user server's API answers 403 to a browser it has not met (it never redirects API calls), so a
        browser opens a page first; afterwards it holds the server's own cookie and the API answers. A browser not
        logged in to the hub ends up on the hub's login page.
        """
        return self.get(f"/user/{username}/{path.lstrip('/')}", allow_redirects=True)

    def logout(self) -> requests.Response:
        return self.get("/hub/logout")

    def logged_in(self) -> bool:
        """Whether the hub accepts this browser's cookies (its home page answers instead of redirecting to login)."""
        return self.get("/hub/home").status_code == 200


# -- the hub ----------------------------------------------------------------------------------------------------


@dataclass
class Hub:
    """A running JupyterHub behind configurable-http-proxy, started by :class:`HubFactory`."""

    url: str  # the proxy's public URL, http://127.0.0.1:PORT
    hub_port: int  # the hub's own port on 127.0.0.1, which the proxy (and anyone on this machine) connects to
    admin_token: str = field(repr=False)  # service test-admin: admin:users, admin:servers, list:/read:users, tokens
    user_token: str = field(repr=False)  # service test-user-service: read:users:name only (not an admin)
    directory: Path  # its working directory: jupyterhub_config.py, the log, the SQLite database, the cookie secret
    config_file: Path
    log_file: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    _browsers: list[HubBrowser] = field(default_factory=list, repr=False)

    @property
    def hub_url(self) -> str:
        return f"{self.url}/hub/"

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log_text()[-chars:] or "(empty log)"

    def api(
        self, method: str, path: str, json: Any = None, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Call the REST API at ``/hub/api/<path>`` with ``token`` (the admin token when None; "" sends none)."""
        token = self.admin_token if token is None else token
        headers = {"Authorization": f"token {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        return requests.request(
            method,
            f"{self.url}/hub/api/{path.lstrip('/')}",
            json=json,
            headers=headers,
            timeout=kwargs.pop("timeout", REQUEST_SECONDS),
            allow_redirects=kwargs.pop("allow_redirects", False),
            **kwargs,
        )

    def new_browser(self) -> HubBrowser:
        """A fresh browser (no cookies) pointed at the proxy's public URL; closed when the hub stops."""
        browser = HubBrowser(self.url)
        self._browsers.append(browser)
        return browser

    def start_server(self, username: str, timeout: float = SERVER_READY_SECONDS) -> dict[str, Any]:
        """Start ``username``'s default server through the REST API (admin token); return its model once ready.

        The user must exist (a login creates it; so does ``api("POST", "users/NAME")``).
        """
        response = self.api("POST", f"users/{username}/server")
        assert response.status_code in {201, 202}, (
            f"starting {username}'s server: {response.status_code} {response.text}"
        )
        return self.wait_for_server(username, timeout)

    def wait_for_server(self, username: str, timeout: float = SERVER_READY_SECONDS) -> dict[str, Any]:
        """After a start request, poll ``GET /hub/api/users/NAME`` until the server is ready; return its model."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.api("GET", f"users/{username}")
            assert response.status_code == 200, f"reading user {username}: {response.status_code} {response.text}"
            model = response.json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return dict(server)
            if server is None and model.get("pending") is None:
                # After the POST the server is listed (pending "spawn") until ready; gone means the spawn failed.
                pytest.fail(f"{username}'s server failed to start:\n{self.log_tail()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{username}'s server was not ready in {timeout}s:\n{self.log_tail()}", pytrace=False)
            time.sleep(0.2)

    def answers(self, path: str = "/hub/health") -> bool:
        """Whether ``path`` on the proxy answers 200 (the hub's health check answers without a login)."""
        try:
            return requests.get(f"{self.url}{path}", timeout=2, allow_redirects=False).status_code == 200
        except requests.RequestException:
            return False


# -- starting and stopping hubs ---------------------------------------------------------------------------------


def base_config(
    directory: Path, *, port: int, hub_port: int, proxy_api_port: int, admin_token: str, user_token: str
) -> str:
    """The settings every test hub starts from; the test's own ``config_py`` is appended after them."""
    home = directory / "home" / "{username}"
    return textwrap.dedent(
        f"""\
        # Written by tests/helpers/hub.py: base settings of a test hub, then the test's own config.
        c = get_config()  # noqa: F821

        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {hub_port}
        c.JupyterHub.db_url = {f"sqlite:///{directory / 'jupyterhub.sqlite'}"!r}
        c.JupyterHub.cookie_secret_file = {str(directory / "jupyterhub_cookie_secret")!r}
        c.JupyterHub.cleanup_servers = True
        c.JupyterHub.cleanup_proxy = True

        c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
        c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(32)!r}
        c.ConfigurableHTTPProxy.pid_file = {str(directory / "jupyterhub-proxy.pid")!r}

        # Single-user servers run as the hub's own user (root in CI: hence --allow-root), homes in this folder.
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = {str(home)!r}
        c.Spawner.cmd = [{str(SINGLEUSER)!r}]
        c.Spawner.args = ["--allow-root"]
        c.Spawner.default_url = "/lab"
        c.Spawner.start_timeout = 60
        c.Spawner.http_timeout = 60
        c.Spawner.env_keep = {SPAWNER_ENV_KEEP!r}

        c.JupyterHub.services = [
            {{"name": {ADMIN_SERVICE!r}, "api_token": {admin_token!r}}},
            {{"name": {USER_SERVICE!r}, "api_token": {user_token!r}}},
        ]
        c.JupyterHub.load_roles = [
            {{
                "name": "test-admin-role",
                "scopes": ["admin:users", "admin:servers", "list:users", "read:users", "tokens"],
                "services": [{ADMIN_SERVICE!r}],
            }},
            {{"name": "test-user-role", "scopes": ["read:users:name"], "services": [{USER_SERVICE!r}]}},
        ]

        # -- the test's config ----------------------------------------------------------------------------------
        """
    )


def marked_processes(marker: str) -> dict[int, str]:
    """Live processes (pid -> command line) whose environment holds ``MARKER_VARIABLE=marker``."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if state != "Z":  # a zombie is dead; only its parent's wait() is missing
            found[int(entry.name)] = command
    return found


def _signal_all(pids: Mapping[int, str], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


class HubFactory:
    """Starts hubs for one test (``hub_factory(config_py, env=None)``) and stops them all afterwards."""

    def __init__(self, make_directory: Callable[[], Path]) -> None:
        self._make_directory = make_directory
        self._hubs: list[tuple[Hub, str]] = []

    def __call__(self, config_py: str, env: Mapping[str, str] | None = None) -> Hub:
        return self.start(config_py, env)

    def start(self, config_py: str, env: Mapping[str, str] | None = None, attempts: int = 3) -> Hub:
        """Write ``jupyterhub_config.py`` (base settings, then ``config_py``) into a fresh folder and start the hub.

        ``env`` is laid over the test process's environment (which carries tests/conftest.py's isolated Jupyter
        paths). Returns once ``/hub/health`` answers 200 through the proxy. A config that assigns
        ``c.JupyterHub.services`` or ``c.JupyterHub.load_roles`` replaces the test tokens; append instead.
        """
        for attempt in range(1, attempts + 1):
            hub = self._launch(config_py, env)
            outcome = self._wait_until_up(hub)
            if outcome == "up":
                return hub
            clash = "address already in use" in hub.log_text().lower()
            if outcome == "exited" and clash and attempt < attempts:
                continue  # somebody took one of the free ports meanwhile: new ports, new folder
            pytest.fail(f"JupyterHub {outcome}:\n{hub.log_tail()}", pytrace=False)
        raise AssertionError("unreachable")

    def _launch(self, config_py: str, env: Mapping[str, str] | None) -> Hub:
        directory = self._make_directory()
        port, hub_port, proxy_api_port = free_ports(3)  # a clash is retried
        admin_token, user_token = secrets.token_hex(32), secrets.token_hex(32)
        config_file = directory / "jupyterhub_config.py"
        config_file.write_text(
            base_config(
                directory,
                port=port,
                hub_port=hub_port,
                proxy_api_port=proxy_api_port,
                admin_token=admin_token,
                user_token=user_token,
            )
            + textwrap.dedent(config_py).strip()
            + "\n"
        )
        marker = secrets.token_hex(8)
        environment = {key: value for key, value in os.environ.items() if not _FOREIGN_VARIABLES.match(key)}
        environment.update(env or {})
        environment[MARKER_VARIABLE] = marker
        # The proxy script starts with `#!/usr/bin/env node`; the single-user servers are found by absolute path.
        environment["PATH"] = f"{VENV_BIN}{os.pathsep}{environment.get('PATH', os.defpath)}"
        log_file = directory / "jupyterhub.log"
        with log_file.open("wb") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config_file)],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,  # its own process group: teardown kills what it leaves behind
            )
        hub = Hub(
            url=f"http://127.0.0.1:{port}",
            hub_port=hub_port,
            admin_token=admin_token,
            user_token=user_token,
            directory=directory,
            config_file=config_file,
            log_file=log_file,
            process=process,
        )
        self._hubs.append((hub, marker))
        return hub

    @staticmethod
    def _wait_until_up(hub: Hub) -> str:
        deadline = time.monotonic() + HUB_START_SECONDS
        while not hub.answers("/hub/health"):
            if hub.process.poll() is not None:
                return "exited"
            if time.monotonic() > deadline:
                return f"did not answer /hub/health in {HUB_START_SECONDS}s"
            time.sleep(0.1)
        return "up"

    def close(self) -> None:
        """Stop every hub, newest first; fail if any left processes behind after a clean stop."""
        problems: list[str] = []
        while self._hubs:
            hub, marker = self._hubs.pop()
            problem = self._stop(hub, marker)
            if problem:
                problems.append(problem)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)

    @staticmethod
    def _stop(hub: Hub, marker: str) -> str | None:
        for browser in hub._browsers:
            browser.close()
        process = hub.process
        clean = True
        if process.poll() is None:
            # SIGTERM: the hub stops the single-user servers (cleanup_servers) and the proxy, then exits.
            process.terminate()
            try:
                process.wait(timeout=HUB_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                clean = False
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=HUB_STOP_SECONDS)
        # Whatever is still in the hub's process group (the proxy, if the hub did not stop it) goes now.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        # Single-user servers have sessions of their own: find them (and anything else of this hub) by the marker.
        deadline = time.monotonic() + STRAY_GRACE_SECONDS
        strays = marked_processes(marker)
        while strays and time.monotonic() < deadline:
            time.sleep(0.1)
            strays = marked_processes(marker)
        if strays:
            _signal_all(strays, signal.SIGKILL)
        print(f"--- JupyterHub log ({hub.log_file}), last {LOG_TAIL_CHARS} characters ---\n{hub.log_tail()}")
        if strays and clean:
            listing = "\n".join(f"  {pid}: {command}" for pid, command in sorted(strays.items()))
            return f"JupyterHub at {hub.url} exited but left processes running (now killed):\n{listing}"
        return None


@contextlib.contextmanager
def hub_factory_for(make_directory: Callable[[], Path]) -> Iterator[HubFactory]:
    factory = HubFactory(make_directory)
    try:
        yield factory
    finally:
        factory.close()


# -- the 2FA authenticator's tests (tests/hub/test_totp_*.py) -----------------------------------------------------

_MANUAL_KEY = re.compile(r'<p class="key" id="manual_key">(.*?)</p>', re.DOTALL)
_RECOVERY_CODES = re.compile(r'<ul class="codes" id="recovery_codes">(.*?)</ul>', re.DOTALL)
_LIST_ITEM = re.compile(r"<li>(.*?)</li>", re.DOTALL)
_ENROLL_MESSAGE = re.compile(r'<p class="message[^"]*" role="alert" id="enroll_message">(.*?)</p>', re.DOTALL)


def hub_tools_missing() -> str | None:
    """Why no test hub can start on this machine (the checks of the ``hub_factory`` fixture), or None."""
    import shutil

    if not os.access(CHP, os.X_OK):
        return f"{CHP} not found; run `npm ci` at the repository root (scripts/test does, given Node and npm)"
    if shutil.which("node") is None:
        return "node not found on PATH; install the Debian packages 'nodejs npm'"
    if not SINGLEUSER.is_file():
        return f"{SINGLEUSER} not found; install jupyter-2fa[test] into the venv"
    return None


def isolated_hub_env(root: Path) -> dict[str, str]:
    """Jupyter paths under ``root`` for a hub that outlives one test (tests/conftest.py isolates per test only).

    A hub started by a module-wide fixture starts before the first test's isolation applies, so it gets its own;
    a developer's ``JUPYTER_2FA_KEYS`` and extra search paths are blanked (an empty value counts as unset).
    """
    (root / "ipython").mkdir(parents=True, exist_ok=True)
    return {
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "IPYTHONDIR": str(root / "ipython"),
        "JUPYTER_CONFIG_PATH": "",
        "JUPYTER_PATH": "",
        "JUPYTER_2FA_KEYS": "",
    }


@contextlib.contextmanager
def module_hub(
    tmp_path_factory: pytest.TempPathFactory, config_py: str, env: Mapping[str, str] | None = None
) -> Iterator[Hub]:
    """One hub for a whole test module (for a ``scope="module"`` fixture), stopped and checked for strays at the
    end. Skipped when the hub's tools are missing, failed instead under CI=true, like ``hub_factory``."""
    missing = hub_tools_missing()
    if missing:
        skip_or_fail(missing, "the JupyterHub tests")
    environment = {**isolated_hub_env(tmp_path_factory.mktemp("hub-jupyter")), **(env or {})}
    with hub_factory_for(lambda: tmp_path_factory.mktemp("hub")) as factory:
        yield factory(config_py, env=environment)


def twofa_api(hub: Hub, method: str, path: str = "", token: str | None = None, **kwargs: Any) -> requests.Response:
    """Call the 2FA admin API at ``/hub/2fa/api/users/<path>`` with ``token`` (admin when None; "" sends none)."""
    token = hub.admin_token if token is None else token
    headers = {"Authorization": f"token {token}"} if token else {}
    url = f"{hub.url}/hub/2fa/api/users" + (f"/{path.lstrip('/')}" if path else "")
    return requests.request(method, url, headers=headers, timeout=REQUEST_SECONDS, allow_redirects=False, **kwargs)


def user_api(
    hub: Hub, method: str, path: str, body: Any = None, *, auth: Any = None, token: str = ""
) -> requests.Response:
    """Call the user's 2FA API at ``/hub/2fa/api/<path>`` as a kernel or script would: HTTP Basic ``auth``
    (``(username, password)``) and/or an API ``token``; a JSON ``body``."""
    headers = {"Authorization": f"token {token}"} if token else {}
    url = f"{hub.url}/hub/2fa/api/{path}"
    return requests.request(
        method, url, json=body, auth=auth, headers=headers, timeout=REQUEST_SECONDS, allow_redirects=False
    )


def new_user_token(hub: Hub, name: str) -> str:
    """A fresh API token of user ``name`` (created with the admin service), like a kernel's JUPYTERHUB_API_TOKEN."""
    headers = {"Authorization": f"token {hub.admin_token}"}
    requests.post(f"{hub.url}/hub/api/users/{name}", headers=headers, timeout=REQUEST_SECONDS)  # 201, or 409
    made = requests.post(f"{hub.url}/hub/api/users/{name}/tokens", json={}, headers=headers, timeout=REQUEST_SECONDS)
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def hub_cli(hub: Hub, *args: str) -> subprocess.CompletedProcess[str]:
    """``jupyter 2fa ARGS --config <the hub's jupyterhub_config.py>``, from another folder than the hub's."""
    return subprocess.run(
        [sys.executable, "-m", "jupyter_2fa.cli", *args, "--config", str(hub.config_file)],
        cwd=hub.directory.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def twofa_log_lines(hub: Hub, username: str) -> list[str]:
    """The hub log's 2FA decision lines about ``username`` ("2FA login success for 'alice' from …: totp")."""
    return [line for line in hub.log_text().splitlines() if "2FA " in line and f"for {username!r}" in line]


@dataclass
class EnrollmentPage:
    """What the hub's enrollment page showed: the responses of its steps, the device, the recovery codes."""

    start: requests.Response
    confirm: requests.Response | None
    device: Device | None
    recovery_codes: list[str]


def page_message(response: requests.Response) -> str | None:
    """The enrollment page's message paragraph (``id="enroll_message"``), unescaped, or None."""
    match = _ENROLL_MESSAGE.search(response.text)
    return html.unescape(match.group(1)).strip() if match else None


def manual_key(response: requests.Response) -> str | None:
    """The secret shown as the manual key (``id="manual_key"``, groups of four), spaces removed, or None."""
    match = _MANUAL_KEY.search(response.text)
    return html.unescape(match.group(1)).replace(" ", "").strip() if match else None


def recovery_codes(response: requests.Response) -> list[str]:
    match = _RECOVERY_CODES.search(response.text)
    return [html.unescape(code).strip() for code in _LIST_ITEM.findall(match.group(1))] if match else []


def enroll_on_page(browser: HubBrowser, username: str, password: str, confirm: bool = True) -> EnrollmentPage:
    """Link a device on the hub's page ``/hub/2fa/enroll``: username + password, read the manual key (as a user
    would type it into the app), then confirm with the app's current code. Returns what the steps showed."""
    start = browser.post("/hub/2fa/enroll", {"action": "start", "username": username, "password": password})
    secret = manual_key(start)
    if secret is None or not confirm:
        return EnrollmentPage(start, None, Device(secret) if secret else None, [])
    device = Device(secret)
    done = browser.post("/hub/2fa/enroll", {"action": "confirm", "username": username, "code": device.current_code()})
    return EnrollmentPage(start, done, device, recovery_codes(done))


def enrolled_device(browser: HubBrowser, username: str, password: str) -> Device:
    """:func:`enroll_on_page`, asserting every step went right; the linked device."""
    page = enroll_on_page(browser, username, password)
    assert page.start.status_code == 200, page_message(page.start) or page.start.text[-2000:]
    assert page.device is not None and page.confirm is not None
    assert page.confirm.status_code == 200, page_message(page.confirm) or page.confirm.text[-2000:]
    assert len(page.recovery_codes) == 10, page.confirm.text[-2000:]
    return page.device


def hub_store_url(hub: Hub) -> str:
    """The URL of the store a TOTPAuthenticator uses by default: ``jupyter_2fa.sqlite`` in the hub's folder."""
    return f"sqlite:///{hub.directory / 'jupyter_2fa.sqlite'}"


@contextlib.contextmanager
def hub_store(hub: Hub) -> Iterator[Store]:
    """The hub's own 2FA store (its default SQLite file and key file), opened beside the running hub."""
    store = Store(hub_store_url(hub), Keyring.from_file(hub.directory / "jupyter_2fa.key"))
    try:
        yield store
    finally:
        store.close()


def stop_hub(factory: HubFactory, hub: Hub) -> None:
    """Stop one of ``factory``'s hubs now, as its teardown would (e.g. to start another on the same store)."""
    for entry in list(factory._hubs):
        if entry[0] is hub:
            factory._hubs.remove(entry)
            problem = factory._stop(*entry)
            assert problem is None, problem
            return
    raise ValueError(f"the hub at {hub.url} was not started by this factory")
