"""In a real browser: the notebook panel in JupyterLab re-links a device, QR picture to recovery codes; and a
notebook saved with its widget state ("Save Widget State Automatically") never holds the password typed into it.

The user (device linked by a script beforehand) logs in with password + code, opens a notebook whose cell
creates ``EnrollmentPanel()``, runs it, and re-links: the panel shows the one-time QR picture, takes a code
from the new device and shows the recovery codes. The browser's own request for the picture is observed
(Playwright's routing) to learn the new key, as the user's phone would by scanning it.

The password tests read each saved .ipynb (and its checkpoint) from disk. The window that ipywidgets leaves
(between the field losing focus and the kernel's reply) is measured from the kernel websocket's frames and
shown by saving inside it; docs/security.md, "The notebook panel's password", quotes the numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from jupyter_2fa.widgets.panel import HELD

from helpers.browser import PASSWORD, LabServer
from helpers.totp import Device
from helpers.widgets import enroll_over_api, manual_key

pytestmark = pytest.mark.slow

LAB_LOAD_MS = 90_000
KERNEL_MS = 60_000
PANEL_CELL = "from jupyter_2fa.widgets import EnrollmentPanel\nEnrollmentPanel()"
# Keeps the kernel busy until the test creates the file "release" beside the notebook (the kernel's cwd).
BUSY_CELL = "import pathlib, time\nwhile not pathlib.Path('release').exists():\n    time.sleep(0.05)"


def notebook(*sources: str) -> str:
    cells = [
        {"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [], "source": src}
        for i, src in enumerate(sources)
    ]
    kernelspec = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return json.dumps({"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5})


def test_relink_from_the_panel_in_lab(page: Page, lab_server: LabServer, tmp_path: Path, screenshot_dir: Path) -> None:
    (tmp_path / "notebooks" / "panel.ipynb").write_text(notebook(PANEL_CELL))
    device = enroll_over_api(f"{lab_server.url}/2fa/api/")
    try:
        _walk_through(page, lab_server.url, device, screenshot_dir)
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=screenshot_dir / "panel-failure.png", full_page=True)
        raise


def open_panel(page: Page, url: str, device: Device) -> Locator:
    """Log in, open panel.ipynb, run its first cell: the panel, showing its menu."""
    page.goto(f"{url}/lab/tree/panel.ipynb")
    page.fill("#password_input", PASSWORD)
    page.fill("#otp_input", device.next_code())
    page.click("#login_submit")
    cell = page.locator(".jp-Notebook .jp-Cell").first
    expect(cell).to_be_visible(timeout=LAB_LOAD_MS)
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_MS)

    run_cell(page, cell)
    panel = page.locator(".jp-OutputArea-output").filter(has_text="Two-factor authentication")
    expect(panel.get_by_role("button", name="Re-link a device")).to_be_visible(timeout=KERNEL_MS)
    return panel


def run_cell(page: Page, cell: Locator, wait: bool = True) -> None:
    cell.click()
    page.keyboard.press("Control+Enter")
    if wait:
        expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=KERNEL_MS)


def _walk_through(page: Page, url: str, device: Device, shots: Path) -> None:
    pictures: list[str] = []

    def observe(route: Route) -> None:  # the phone "scans" what the browser receives
        response = route.fetch()
        pictures.append(response.text())
        route.fulfill(response=response)

    page.route(re.compile(r"/2fa/qr/"), observe)
    page.set_viewport_size({"width": 1280, "height": 1500})  # the whole panel on screen, for the screenshots

    panel = open_panel(page, url, device)
    expect(panel).to_contain_text("Device linked")
    page.screenshot(path=shots / "panel-status.png")

    panel.get_by_role("button", name="Re-link a device").click()
    panel.locator("input[type=password]").fill(PASSWORD)
    panel.get_by_placeholder("code from the app, or a recovery code").fill(device.next_code())
    panel.get_by_role("button", name="Continue").click()
    picture = panel.get_by_role("img", name=re.compile("QR code"))
    expect(picture).to_be_visible(timeout=KERNEL_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    assert len(pictures) == 1, "the browser fetched the picture once"
    panel.screenshot(path=shots / "panel-qr.png")

    new_device = Device(manual_key(pictures[0]))
    panel.get_by_placeholder("6-digit code from the app").fill(new_device.next_code())
    panel.get_by_role("button", name="Confirm").click()
    codes = panel.locator("ol li code")
    expect(codes).to_have_count(10, timeout=KERNEL_MS)
    expect(panel).to_contain_text("Store these recovery codes now")
    expect(picture).to_have_count(0)
    panel.screenshot(path=shots / "panel-recovery-codes.png")

    panel.get_by_role("button", name="I have stored them").click()
    expect(codes).to_have_count(0, timeout=KERNEL_MS)
    expect(panel.get_by_role("button", name="Re-link a device")).to_be_visible()


# -- the password never in a saved notebook ------------------------------------------------------------------

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
HELD_PASSWORD = HELD.format("password")
TOOLBAR_SAVE = '.jp-NotebookPanel-toolbar [data-jp-item-name="save"]'
# Ctrl+S sent to the page itself: Lab's key binding runs the same save as the toolbar button, and the focus stays
# in the field, as when autosave saves while the user types. (A Ctrl+S typed inside the field never reaches Lab:
# ipywidgets stops the field's key presses.)
SAVE_KEEPING_FOCUS_JS = """() => {
  const key = {key: "s", code: "KeyS", keyCode: 83, ctrlKey: true, bubbles: true, cancelable: true};
  document.body.dispatchEvent(new KeyboardEvent("keydown", key));
}"""
# Before Lab's own handlers: the time (performance.now(), ms) and text of every comm message on the kernel
# websocket, either way (Lab speaks the binary v1 protocol; its JSON parts decode as UTF-8).
FRAMES_JS = """(() => {
  const frames = (window.__commFrames = []);
  const text = d => (typeof d === "string" ? d : new TextDecoder().decode(d));
  const keep = (way, d) => {
    const t = text(d);
    if (t.includes('"comm_msg"')) frames.push([performance.now(), way, t]);
  };
  const Native = window.WebSocket;
  const send = Native.prototype.send;
  Native.prototype.send = function (d) { keep("sent", d); return send.call(this, d); };
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); this.addEventListener("message", e => keep("received", e.data)); }
  };
})();"""
IDLE_ROUNDS = 10
IDLE_WINDOW_MS = 1_000  # far above the tens of ms measured on a 2-core CI machine: a hang, not a slow run


def write_user_settings(plugin: str, values: dict[str, Any]) -> None:
    """Lab user settings of ``plugin`` ("package:name"), as the Settings menu writes them; read as Lab loads."""
    package, name = plugin.split(":")
    folder = Path(os.environ["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / package
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jupyterlab-settings").write_text(json.dumps(values))


def save_widget_state() -> None:
    """Turn "Save Widget State Automatically" on."""
    write_user_settings("@jupyter-widgets/jupyterlab-manager:plugin", {"saveState": True})


def save(page: Page, path: Path, *, keep_focus: bool = False) -> str:
    """Save (the toolbar's button, or Ctrl+S keeping the focus) and return the file on disk plus its checkpoint.

    Lab's save makes a checkpoint once the file is written: waiting for it also keeps two saves from overlapping
    (Lab ignores a save while one runs)."""
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith("/checkpoints")):
        if keep_focus:
            page.evaluate(SAVE_KEEPING_FOCUS_JS)
        else:
            page.locator(TOOLBAR_SAVE).click()
    checkpoint = path.parent / ".ipynb_checkpoints" / f"{path.stem}-checkpoint.ipynb"
    return path.read_text() + checkpoint.read_text()


def saved_widgets(path: Path) -> list[dict[str, Any]]:
    """The saved widget models (model_name, state); a KeyError if the widget state was not saved at all."""
    models = json.loads(path.read_text())["metadata"]["widgets"][WIDGET_STATE]["state"]
    return list(models.values())


def comm_windows(page: Page, password: str) -> list[float]:
    """For each message that took the password to the kernel: ms until the kernel's update of that widget (the
    one that empties the field) reached the browser. Fails if any message from the kernel carries the password."""
    windows: list[float] = []
    sent: tuple[float, str] | None = None
    for at, way, text in page.evaluate("window.__commFrames"):
        if way == "received":
            assert password not in text, "the kernel sent the password back (an ipywidgets echo?)"
        comm = re.search(r'"comm_id":\s*"([^"]+)"', text)
        if way == "sent" and password in text and comm:
            sent = (at, comm.group(1))
        elif sent and way == "received" and comm and comm.group(1) == sent[1] and re.search(r'"value":\s*""', text):
            windows.append(at - sent[0])
            sent = None
    return windows


@contextlib.contextmanager
def screenshot_on_failure(page: Page, shot: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=shot, full_page=True)
        raise


def test_a_saved_notebook_never_holds_the_panels_password(
    page: Page, lab_server: LabServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    save_widget_state()
    path = tmp_path / "notebooks" / "panel.ipynb"
    path.write_text(notebook(PANEL_CELL))
    device = enroll_over_api(f"{lab_server.url}/2fa/api/")
    saves: dict[str, str] = {}
    with screenshot_on_failure(page, screenshot_dir / "panel-password-failure.png"):
        panel = open_panel(page, lab_server.url, device)
        panel.get_by_role("button", name="Re-link a device").click()
        field = panel.locator("input[type=password]")
        field.fill(PASSWORD)
        saves["while it was typed"] = save(page, path, keep_focus=True)

        field.press("Tab")  # the field loses focus: ipywidgets sends what was typed to the kernel
        expect(field).to_have_attribute("placeholder", HELD_PASSWORD)  # the kernel's reply, emptying the field
        expect(field).to_have_value("")
        saves["after the field lost focus"] = save(page, path)
        fields = [model["state"] for model in saved_widgets(path) if model["model_name"] == "PasswordModel"]
        assert [state.get("placeholder") for state in fields] == [HELD_PASSWORD], "the state saved is the reply's"

        otp = device.next_code()
        panel.get_by_placeholder("code from the app, or a recovery code").fill(otp)
        panel.get_by_role("button", name="Continue").click()
        expect(panel.get_by_role("img", name=re.compile("QR code"))).to_be_visible(timeout=KERNEL_MS)
        saves["after Continue (the kernel had used it)"] = save(page, path)
        page.screenshot(path=screenshot_dir / "panel-password-saved.png")

    for moment, saved in saves.items():
        assert PASSWORD not in saved, f"the password was in the notebook saved {moment}"
    # A 6-digit code may occur by chance in a model id: compare it with the saved values instead.
    assert otp not in [model["state"].get("value") for model in saved_widgets(path)]


@pytest.mark.parametrize("comms", ["perCommTarget", "disabled"], ids=["comms-in-subshells", "comms-in-main-shell"])
def test_the_residual_window_in_a_real_browser(
    comms: str, page: Page, lab_server: LabServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    """What ipywidgets leaves: the browser's model of the field holds the password from the moment the field
    loses focus until the kernel's reply arrives. Measured on an idle kernel; shown by a save inside it (the
    toolbar's Save button clicked straight from the field takes the focus and saves on the same mouse press);
    and measured while another cell keeps the kernel busy, where Lab's "Kernel Comms over subshells" setting
    (default: a subshell per comm target, with ipykernel >= 7) decides whether the reply waits for that cell.
    """
    save_widget_state()
    write_user_settings("@jupyterlab/apputils-extension:kernels-settings", {"commsOverSubshells": comms})
    in_subshells = comms != "disabled"
    path = tmp_path / "notebooks" / "panel.ipynb"
    path.write_text(notebook(PANEL_CELL, BUSY_CELL))
    device = enroll_over_api(f"{lab_server.url}/2fa/api/")
    page.add_init_script(FRAMES_JS)
    with screenshot_on_failure(page, screenshot_dir / f"panel-window-{comms}-failure.png"):
        panel = open_panel(page, lab_server.url, device)
        panel.get_by_role("button", name="Re-link a device").click()
        field = panel.locator("input[type=password]")
        for _ in range(IDLE_ROUNDS):
            field.fill(PASSWORD)
            field.press("Tab")
            expect(field).to_have_value("")

        field.fill(PASSWORD)
        from_the_field = save(page, path)
        expect(field).to_have_value("")
        after_its_reply = save(page, path)

        busy_cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        run_cell(page, busy_cell, wait=False)
        expect(busy_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\*\]"), timeout=KERNEL_MS)
        field.fill(PASSWORD)
        field.press("Tab")
        if in_subshells:
            expect(field).to_have_value("")  # the reply came from a subshell ...
            expect(busy_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\*\]"))  # ... mid-cell
        while_busy = save(page, path)
        (path.parent / "release").touch()
        expect(field).to_have_value("", timeout=KERNEL_MS)
        after_busy = save(page, path)
        windows = comm_windows(page, PASSWORD)

    assert len(windows) == IDLE_ROUNDS + 2, windows
    idle, toolbar, busy = windows[:IDLE_ROUNDS], windows[IDLE_ROUNDS], windows[IDLE_ROUNDS + 1]
    measured = {
        "comms_over_subshells": comms,
        "idle_ms": [round(ms, 1) for ms in idle],
        "idle_median_ms": round(statistics.median(idle), 1),
        "toolbar_save_ms": round(toolbar, 1),
        "busy_ms": round(busy, 1),
    }
    (screenshot_dir / f"panel-password-window-{comms}.json").write_text(json.dumps(measured, indent=1))
    print(f"how long the browser's widget model held the password: {measured}")
    assert max(idle) < IDLE_WINDOW_MS, measured
    assert PASSWORD in from_the_field, "the toolbar's Save, straight from the field, saves inside the window"
    assert (PASSWORD in while_busy) is not in_subshells, "in the main shell, the reply waits for the busy cell"
    assert PASSWORD not in after_its_reply and PASSWORD not in after_busy
