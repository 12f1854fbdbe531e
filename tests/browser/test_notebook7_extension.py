"""End to end, in a real browser: the Lab extension in Notebook 7 (`jupyter notebook`), on a server behind the gate.

The README says the extension works in Notebook 7 too, where the panel opens in the right sidebar; this test is
that claim's proof. On the file browser page (``/tree``) it opens the "Two-Factor Authentication" panel from the
Settings menu and, after closing the sidebar, from the command palette; checks the status (device linked,
recovery codes left, policy, session end), regenerates the recovery codes with the password and a fresh
authenticator code, and then has the session revoked from another client and meets the expiry dialog. Notebook 7
has no status bar, so the status bar item is nowhere (the plugin takes the status bar as optional); the session
check runs all the same. Screenshots go to ``test-output/browser/notebook7/``.

Like test_lab_extension, it runs the project's wheel (in a fresh venv without node) and links the device over
plain HTTP first.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from helpers.browser import PASSWORD, Client, LabServer, log_in, panel_codes, running_lab, write_extension_settings
from helpers.wheel import WheelInstall

pytestmark = pytest.mark.slow

NOTEBOOK_LOAD_MS = 60_000
POLL_SECONDS = 5  # the extension's session check, shortened from 30 s so the revocation shows quickly
EXPIRY_DIALOG_MS = (POLL_SECONDS * 4 + 10) * 1000
TITLE = "Two-Factor Authentication"


@pytest.fixture
def wheel_notebook(tmp_path: Path, installed_wheel: WheelInstall) -> Iterator[LabServer]:
    """`jupyter notebook` (Notebook 7) from the fresh venv the wheel went into, session check every 5 s."""
    write_extension_settings(pollIntervalSeconds=POLL_SECONDS)
    with running_lab(tmp_path, installed_wheel, app="notebook") as server:
        yield server


def test_notebook7_extension(page: Page, wheel_notebook: LabServer, screenshot_dir: Path) -> None:
    shots = screenshot_dir / "notebook7"
    shots.mkdir(exist_ok=True)
    for old in shots.glob("*.png"):  # an earlier run's (failure.png especially) must not mislead
        old.unlink()
    try:
        _walk_through(page, wheel_notebook.url, shots)
    except BaseException:
        with contextlib.suppress(Exception):  # never hide the real failure behind a broken browser
            page.screenshot(path=shots / "failure.png", full_page=True)
        raise


def _walk_through(page: Page, url: str, shots: Path) -> None:
    device, _ = Client(url).enroll()
    sidebar = page.locator("#jp-right-stack")
    panel = sidebar.locator(".jp-2fa-panel")
    field = panel.locator("dl.jp-2fa-status")

    # 1. Log in with the password and the device's next code; Notebook 7's file browser, and no status bar.
    log_in(page, url, "/tree", device.next_code())
    expect(page).to_have_url(re.compile(r"/tree$"))
    expect(page.locator(".jp-DirListing")).to_be_visible(timeout=NOTEBOOK_LOAD_MS)
    expect(page.locator(".jp-2fa-statusbar")).to_have_count(0)
    page.screenshot(path=shots / "1-tree.png")

    # 2. Settings menu -> the panel, in the right sidebar: device linked, codes left, policy, session end.
    page.click(".lm-MenuBar-itemLabel:text-is('Settings')")
    page.click(f".lm-Menu-itemLabel:text-is('{TITLE}')")
    expect(panel).to_be_visible()
    expect(field.locator("[data-field=device]")).to_have_text("linked")
    expect(field.locator("[data-field=codes-left]")).to_have_text("10")
    expect(field.locator("[data-field=policy]")).to_have_text("required")
    expect(field.locator("[data-field=expires]")).not_to_be_empty()
    page.screenshot(path=shots / "2-panel-from-settings-menu.png")

    # 3. Close the sidebar; the command palette (Ctrl+Shift+C) opens the panel again.
    sidebar.locator(".jp-SidePanel-collapse").click()
    expect(sidebar).to_be_hidden()
    page.keyboard.press("Control+Shift+C")
    page.locator("#modal-command-palette input").fill("Two-Factor")
    entry = page.locator("#modal-command-palette .lm-CommandPalette-item", has_text=TITLE)
    expect(entry).to_contain_text(TITLE)
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    page.screenshot(path=shots / "3-panel-from-command-palette.png")

    # 4. New recovery codes: the password and a fresh code (the login spent the device's previous step).
    panel.locator("[data-action=recovery]").click()
    panel.locator("input[name=password]").fill(PASSWORD)
    panel.locator("input[name=otp]").fill(device.next_code())
    panel.locator("button[type=submit]").click()
    codes = panel_codes(page)
    expect(panel.locator("input[name=password]")).to_have_count(0)
    page.screenshot(path=shots / "4-new-recovery-codes.png")
    panel.locator("[data-action=done]").click()
    expect(panel.locator(".jp-2fa-recovery-codes")).to_have_count(0)
    expect(field.locator("[data-field=codes-left]")).to_have_text("10")

    # 5. Another client logs in (with a new recovery code) and logs out: this session ends too.
    Client(url).log_in_and_out(codes[0])
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Session ended", timeout=EXPIRY_DIALOG_MS)
    expect(panel).to_contain_text("Your session has ended.")
    page.screenshot(path=shots / "5-session-ended.png")
    dialog.locator("button", has_text="Log in here").click()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Ftree"))
