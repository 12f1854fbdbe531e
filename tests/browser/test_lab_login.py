"""End to end, in a real browser: JupyterLab behind the gate, first visit -> link a device -> log in with 2FA.

One test walks what a researcher does on a fresh server: the login page, the password alone leading to the
enrollment page (which says why it asks for the password again), the QR code and key shown once, a wrong code
and then the right one, the recovery codes, logging out, a wrong code refused, and logging back in with the
password and the app's next code until JupyterLab's Launcher appears; then the enrollment page again, now the
re-link form. Every page of the gate passes axe-core's WCAG 2 A/AA rules on the way, and leaves a screenshot for
the docs.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from helpers.browser import PASSWORD, LabServer, assert_accessible

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
    # 1. Lab is gated: the login page asks for the password and the code, and offers the enrollment page.
    page.goto(f"{url}/lab")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Flab$"))
    expect(page.locator("#password_input")).to_be_visible()
    expect(page.locator("#otp_input")).to_be_visible()
    expect(page.get_by_role("link", name="Link your authenticator app")).to_be_visible()
    assert_accessible(page, "the login page")
    page.screenshot(path=shots / "login.png", full_page=True)

    # 2. The password alone, with no device linked, leads to the enrollment page, which says why it asks for the
    #    password again; a first link has no field for the code of a linked device.
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    expect(page).to_have_url(re.compile(r"/2fa/enroll\?next=%2Flab$"))
    expect(page.locator("#enroll_why")).to_contain_text("password is asked for again")
    expect(page.locator("#otp_input")).to_have_count(0)
    assert_accessible(page, "the enrollment page's first step")
    page.screenshot(path=shots / "enroll-start.png", full_page=True)
    page.fill("#password_input", PASSWORD)
    page.click("#enroll_start")
    expect(page.locator("#enroll_qr svg"), "no QR code after the enrollment page's Continue").to_be_visible()
    key = page.locator("#manual_key").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", key), key
    assert_accessible(page, "the enrollment page's QR code")
    page.screenshot(path=shots / "enroll-qr.png", full_page=True)

    page.fill("#code_input", wrong_code(key))
    page.click("#enroll_confirm")
    expect(page.locator("#enroll_message")).to_be_visible()
    assert_accessible(page, "the enrollment page refusing a wrong code")
    page.fill("#code_input", pyotp.TOTP(key).now())
    page.click("#enroll_confirm")
    expect(page.locator("#enroll_done")).to_be_visible()
    codes = page.locator("#recovery_codes li")
    expect(codes).to_have_count(10)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}", code) for code in codes.all_inner_texts())
    assert_accessible(page, "the enrollment page's recovery codes")
    page.screenshot(path=shots / "recovery-codes.png", full_page=True)

    # 3. Log out; Lab is gated again. A wrong code is refused on the login page, with its message.
    logout = page.goto(f"{url}/logout")
    assert logout is not None and logout.ok, logout
    page.goto(f"{url}/lab")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Flab$"))
    page.fill("#password_input", PASSWORD)
    page.fill("#otp_input", wrong_code(key))
    page.click("#login_submit")
    expect(page.locator("#login_message")).to_be_visible()
    assert_accessible(page, "the login page with a refusal")
    page.screenshot(path=shots / "login-error.png", full_page=True)

    # 4. The confirmation spent its time step: log in with the next one.
    page.fill("#password_input", PASSWORD)
    page.fill("#otp_input", pyotp.TOTP(key).at(time.time() + 30))
    page.click("#login_submit")
    expect(page).to_have_url(re.compile(r"/lab$"))
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=LAB_LOAD_MS)
    page.screenshot(path=shots / "lab-launcher.png")

    # 5. Logged in, with a device: the enrollment page is the re-link form, which asks for a current code.
    page.goto(f"{url}/2fa/enroll")
    expect(page.locator("#otp_input")).to_be_visible()
    assert_accessible(page, "the enrollment page's re-link form")
    page.screenshot(path=shots / "enroll-relink.png", full_page=True)


def wrong_code(key: str) -> str:
    """A 6-digit code that no time step near now accepts."""
    totp, now = pyotp.TOTP(key), time.time()
    near = {totp.at(now + offset) for offset in range(-150, 151, 30)}
    return next(code for code in (f"{n:06d}" for n in range(123456, 10**6)) if code not in near)
