"""End to end, in a real browser: the Lab extension from the built wheel, on a server behind the gate.

One test walks what a researcher does with the extension: log in with the password and an authenticator code,
see the status bar item, open the "Two-Factor Authentication" panel from the command palette (it is in the
Settings menu too), re-link the device (password + recovery code -> QR code and key once -> new code ->
recovery codes once), regenerate the recovery codes, and then have the session revoked from another client
(a second login that logs out, which ends every session of the account) and meet the expiry dialog, which
leads to the login page with ``next`` set to where the user was. Each step leaves a screenshot in
``test-output/browser/lab-extension/``.

The device is first linked over plain HTTP (the enrollment page is test_lab_login's subject, not this one's).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from helpers.browser import PASSWORD, Client, LabServer, log_in, panel_codes, running_lab, write_extension_settings
from helpers.wheel import WheelInstall

pytestmark = pytest.mark.slow

LAB_LOAD_MS = 60_000
POLL_SECONDS = 5  # the extension's session check, shortened from 30 s so the revocation shows quickly
EXPIRY_DIALOG_MS = (POLL_SECONDS * 4 + 10) * 1000


@pytest.fixture
def wheel_lab(tmp_path: Path, installed_wheel: WheelInstall) -> Iterator[LabServer]:
    """`jupyter lab` from the fresh venv the wheel went into, with the extension's session check every 5 s."""
    write_extension_settings(pollIntervalSeconds=POLL_SECONDS)
    with running_lab(tmp_path, installed_wheel) as server:
        yield server


def test_lab_extension(page: Page, wheel_lab: LabServer, screenshot_dir: Path) -> None:
    shots = screenshot_dir / "lab-extension"
    shots.mkdir(exist_ok=True)
    for old in shots.glob("*.png"):  # an earlier run's (failure.png especially) must not mislead
        old.unlink()
    try:
        _walk_through(page, wheel_lab.url, shots)
    except BaseException:
        with contextlib.suppress(Exception):  # never hide the real failure behind a broken browser
            page.screenshot(path=shots / "failure.png", full_page=True)
        raise


def _walk_through(page: Page, url: str, shots: Path) -> None:
    device, codes = Client(url).enroll()
    panel = page.locator(".jp-2fa-panel")
    field = panel.locator("dl.jp-2fa-status")

    # 1. Log in with the password and the device's next code (the enrollment spent an earlier one).
    log_in(page, url, "/lab", device.next_code())
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=LAB_LOAD_MS)

    # 2. The status bar item: 2FA on, and the session's time left (12 hours by default).
    item = page.locator(".jp-2fa-statusbar")
    expect(item).to_have_text(re.compile(r"^2FA: on · (11 h \d+|12 h 0) min left$"))
    page.screenshot(path=shots / "1-status-bar.png")

    # 3. The Settings menu lists the panel; open it from the command palette.
    page.click(".lm-MenuBar-itemLabel:text-is('Settings')")
    expect(page.locator(".lm-Menu-itemLabel:text-is('Two-Factor Authentication')")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")
    page.locator("#modal-command-palette input").fill("Two-Factor")
    entry = page.locator("#modal-command-palette .lm-CommandPalette-item", has_text="Two-Factor Authentication")
    expect(entry).to_contain_text("Two-Factor Authentication")
    page.keyboard.press("Enter")
    expect(field.locator("[data-field=device]")).to_have_text("linked")
    expect(field.locator("[data-field=codes-left]")).to_have_text("10")
    expect(field.locator("[data-field=expires]")).not_to_be_empty()
    page.screenshot(path=shots / "2-panel.png")

    # 4. Re-link: password + a recovery code -> the QR code and key -> the new device's code -> new codes.
    # (Codes of the old device are spent up to the login's time step: a recovery code needs no waiting.)
    panel.locator("[data-action=relink]").click()
    panel.locator("input[name=password]").fill(PASSWORD)
    panel.locator("input[name=otp]").fill(codes[0])
    panel.locator("button[type=submit]").click()
    expect(panel.locator(".jp-2fa-qr svg")).to_be_visible()
    key = panel.locator(".jp-2fa-key").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", key), key
    page.screenshot(path=shots / "3-relink-qr.png")

    new_device = pyotp.TOTP(key)
    panel.locator("input[name=code]").fill(new_device.now())
    panel.locator("button[type=submit]").click()
    codes = panel_codes(page)
    expect(panel.locator(".jp-2fa-qr")).to_have_count(0)  # the QR code and key left the page with the step
    assert key not in page.content()
    page.screenshot(path=shots / "4-relink-recovery-codes.png")
    panel.locator("[data-action=done]").click()
    expect(panel.locator(".jp-2fa-recovery-codes")).to_have_count(0)

    # 5. Regenerate the recovery codes (password + one of the codes just shown: the confirmation spent the
    # new device's code of this time step).
    panel.locator("[data-action=recovery]").click()
    panel.locator("input[name=password]").fill(PASSWORD)
    panel.locator("input[name=otp]").fill(codes[0])
    panel.locator("button[type=submit]").click()
    fresh = panel_codes(page)
    expect(panel.locator("input[name=password]")).to_have_count(0)
    page.screenshot(path=shots / "5-new-recovery-codes.png")
    panel.locator("[data-action=done]").click()
    expect(field.locator("[data-field=codes-left]")).to_have_text("10")

    # 6. Another client logs in (with a recovery code) and logs out: this session ends too.
    Client(url).log_in_and_out(fresh[0])
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Session ended", timeout=EXPIRY_DIALOG_MS)
    expect(item).to_have_text("2FA: session ended")
    page.screenshot(path=shots / "6-session-ended.png")
    dialog.locator("button", has_text="Log in here").click()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Flab"))
    page.screenshot(path=shots / "7-login-again.png")
