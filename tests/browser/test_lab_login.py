"""End to end, in a real browser: JupyterLab behind the gate, first visit -> link a device -> log in with 2FA.

One test walks what a researcher does on a fresh server: the login page, the password alone leading to the
enrollment page, the QR code and key shown once, confirming a code, the recovery codes, logging out, and
logging back in with the password and the app's next code until JupyterLab's Launcher appears.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from helpers.browser import PASSWORD, LabServer

pytestmark = pytest.mark.slow

LAB_LOAD_MS = 60_000


def test_enroll_then_log_in_to_lab(page: Page, lab_server: LabServer, screenshot_dir: Path) -> None:
    try:
        _walk_through(page, lab_server.url, screenshot_dir)
    except BaseException:
        with contextlib.suppress(Exception):  # never hide the real failure behind a broken browser
            page.screenshot(path=screenshot_dir / "failure.png", full_page=True)
        raise


def _walk_through(page: Page, url: str, shots: Path) -> None:
    # 1. Lab is gated: the login page asks for the password and the code.
    page.goto(f"{url}/lab")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Flab$"))
    expect(page.locator("#password_input")).to_be_visible()
    expect(page.locator("#otp_input")).to_be_visible()
    page.screenshot(path=shots / "login.png", full_page=True)

    # 2. The password alone, with no device linked, leads to the enrollment page.
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    expect(page).to_have_url(re.compile(r"/2fa/enroll\?next=%2Flab$"))
    page.fill("#password_input", PASSWORD)
    page.click("#enroll_start")
    expect(page.locator("#enroll_qr svg"), "no QR code after the enrollment page's Continue").to_be_visible()
    key = page.locator("#manual_key").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", key), key
    page.screenshot(path=shots / "enroll-qr.png", full_page=True)

    page.fill("#code_input", pyotp.TOTP(key).now())
    page.click("#enroll_confirm")
    expect(page.locator("#enroll_done")).to_be_visible()
    codes = page.locator("#recovery_codes li")
    expect(codes).to_have_count(10)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}", code) for code in codes.all_inner_texts())
    page.screenshot(path=shots / "recovery-codes.png", full_page=True)

    # 3. Log out; Lab is gated again. The confirmation spent its time step: log in with the next one.
    logout = page.goto(f"{url}/logout")
    assert logout is not None and logout.ok, logout
    page.goto(f"{url}/lab")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Flab$"))
    page.fill("#password_input", PASSWORD)
    page.fill("#otp_input", pyotp.TOTP(key).at(time.time() + 30))
    page.click("#login_submit")
    expect(page).to_have_url(re.compile(r"/lab$"))
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=LAB_LOAD_MS)
    page.screenshot(path=shots / "lab-launcher.png")
