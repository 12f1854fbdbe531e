"""Helpers of the browser tests: Debian's Chromium settings, a real `jupyter lab` (or Notebook 7) behind the 2FA
gate, a second client that links a device over plain HTTP, and axe-core's accessibility check of a page. The
fixtures are in tests/browser/conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import requests
from playwright.sync_api import Page, expect

from helpers.ci import skip_or_fail
from helpers.ports import free_port
from helpers.processes import log_tail, running, server_options
from helpers.totp import Device
from helpers.wheel import WheelInstall

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

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"  # package.json; `npm ci` (scripts/_venv.sh)
# The rules every page the project renders must pass: WCAG 2.0 and 2.1, levels A and AA.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

PASSWORD = "correct horse battery staple"
HTTP_SECONDS = 20
RECOVERY_CODE = re.compile(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}")

App = Literal["lab", "notebook"]
APP_MODULES: dict[App, str] = {"lab": "jupyterlab", "notebook": "notebook"}  # `python -m` them: `jupyter <app>`


@dataclass
class LabServer:
    """A running `jupyter lab` (or `jupyter notebook`) whose only way in is the 2FA gate, with :data:`PASSWORD`."""

    url: str
    log: Path

    def log_tail(self) -> str:
        return log_tail(self.log)


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


def write_extension_settings(**values: int) -> None:
    """The Lab extension's user settings (schema/plugin.json), where both Lab and Notebook 7 read them."""
    settings = Path(os.environ["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "jupyter-2fa"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps(values))


@contextlib.contextmanager
def running_lab(workdir: Path, installed: WheelInstall | None = None, app: App = "lab") -> Iterator[LabServer]:
    """`jupyter lab` (``app="notebook"``: Notebook 7) on a free loopback port, configured through the JUPYTER_*
    dirs in ``os.environ``.

    By default from the project's venv; with ``installed``, from the fresh venv the built wheel went into
    (started in ``workdir``, so the source tree is not on its path). Its output goes to a log file in
    ``workdir`` (no pipes to leave open); the tail is printed when it stops, which pytest shows when the test
    failed. The server is always terminated, and killed if it does not stop.
    """
    write_server_config(Path(os.environ["JUPYTER_CONFIG_DIR"]))
    notebooks = workdir / "notebooks"
    notebooks.mkdir()
    port = free_port()
    # The wheel's venv has no `jupyter-lab` script on its PATH (its dependencies come through a .pth): `python -m`.
    launcher = [str(installed.python), "-m", APP_MODULES[app]] if installed else [sys.executable, "-m", "jupyter", app]
    server = LabServer(url=f"http://127.0.0.1:{port}", log=workdir / f"jupyter-{app}.log")
    env = installed.env() if installed else os.environ
    with running(
        [*launcher, *server_options(port, notebooks)],
        server.log,
        f"{server.url}/login",
        env,
        cwd=workdir if installed else None,
    ):
        yield server


class Client:
    """A second client (plain HTTP, its own cookies): the gate's forms with their XSRF field."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.get(f"{url}/login", timeout=HTTP_SECONDS).raise_for_status()

    def post(self, path: str, **fields: str) -> requests.Response:
        data = {"_xsrf": self.http.cookies["_xsrf"], **fields}
        response = self.http.post(f"{self.url}{path}", data=data, timeout=HTTP_SECONDS)
        response.raise_for_status()
        return response

    def enroll(self) -> tuple[Device, list[str]]:
        """Link a first device (the enrollment page is test_lab_login's subject); returns it and the recovery codes.

        Its first code, the link's, is of the previous time step, which leaves the current and the next one for a
        login and a change in the panel without waiting for the clock."""
        page = self.post("/2fa/enroll", action="start", password=PASSWORD).text
        key = re.search(r'id="manual_key">([A-Z2-7 ]+)<', page)
        assert key, page
        device = Device(key.group(1).replace(" ", ""), previous_step_first=True)
        done = self.post("/2fa/enroll", action="confirm", code=device.next_code()).text
        codes = re.findall(rf"<li>({RECOVERY_CODE.pattern})</li>", done)
        assert len(codes) == 10, done
        return device, codes

    def log_in_and_out(self, otp: str) -> None:
        """Log in, then out: logging out moves the account's epoch, which ends every session, everywhere."""
        self.post("/login", password=PASSWORD, otp=otp)
        self.http.get(f"{self.url}/logout", timeout=HTTP_SECONDS).raise_for_status()


def log_in(page: Page, url: str, path: str, otp: str) -> None:
    """Open ``path``, meet the gate's login page (``next`` kept) and log in with the password and ``otp``."""
    page.goto(f"{url}{path}")
    expect(page).to_have_url(re.compile(rf"/login\?next={re.escape(path.replace('/', '%2F'))}$"))
    page.fill("#password_input", PASSWORD)
    page.fill("#otp_input", otp)
    page.click("#login_submit")


def panel_codes(page: Page) -> list[str]:
    """The recovery codes the extension's panel shows (ten, well-formed)."""
    codes = page.locator(".jp-2fa-recovery-codes li")
    expect(codes).to_have_count(10)
    texts = codes.all_inner_texts()
    assert all(RECOVERY_CODE.fullmatch(code) for code in texts), texts
    return texts


def assert_accessible(page: Page, name: str, exclude: Sequence[str] = ()) -> None:
    """axe-core's WCAG 2 A/AA rules (:data:`AXE_TAGS`) find no violation on ``page`` as it is now.

    ``name`` says which page failed; each violation is listed with its rule id, help and the CSS targets of its
    elements. ``exclude`` holds selectors of elements the project does not render (a host's own chrome), each to
    be justified where it is passed.
    """
    if not AXE.is_file():
        skip_or_fail(f"{AXE} not found; run `npm ci` at the repository root (scripts/_venv.sh does)", "axe checks")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate(
        """([exclude, tags]) => axe.run(
            exclude.length ? {include: [document], exclude: exclude.map((selector) => [selector])} : document,
            {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']},
        )""",
        [list(exclude), AXE_TAGS],
    )
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]\n"
        + "\n".join(f"    {node['target']}: {node['failureSummary']}" for node in v["nodes"])
        for v in results["violations"]
    ]
    assert not violations, f"axe-core: {len(violations)} WCAG violation(s) on {name} ({page.url}):\n" + "\n".join(
        violations
    )
