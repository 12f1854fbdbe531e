"""In a real browser: the notebook panel in JupyterLab re-links a device, QR picture to recovery codes.

The user (device linked by a script beforehand) logs in with password + code, opens a notebook whose cell
creates ``EnrollmentPanel()``, runs it, and re-links: the panel shows the one-time QR picture, takes a code
from the new device and shows the recovery codes. The browser's own request for the picture is observed
(Playwright's routing) to learn the new key, as the user's phone would by scanning it.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from helpers.browser import PASSWORD, LabServer
from helpers.totp import Device
from helpers.widgets import enroll_over_api, manual_key

pytestmark = pytest.mark.slow

LAB_LOAD_MS = 90_000
KERNEL_MS = 60_000
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "panel",
            "metadata": {},
            "outputs": [],
            "source": "from jupyter_2fa.widgets import EnrollmentPanel\nEnrollmentPanel()",
        }
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_relink_from_the_panel_in_lab(page: Page, lab_server: LabServer, tmp_path: Path, screenshot_dir: Path) -> None:
    (tmp_path / "notebooks" / "panel.ipynb").write_text(json.dumps(NOTEBOOK))
    device = enroll_over_api(f"{lab_server.url}/2fa/api/")
    try:
        _walk_through(page, lab_server.url, device, screenshot_dir)
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=screenshot_dir / "panel-failure.png", full_page=True)
        raise


def _walk_through(page: Page, url: str, device: Device, shots: Path) -> None:
    pictures: list[str] = []

    def observe(route: Route) -> None:  # the phone "scans" what the browser receives
        response = route.fetch()
        pictures.append(response.text())
        route.fulfill(response=response)

    page.route(re.compile(r"/2fa/qr/"), observe)
    page.set_viewport_size({"width": 1280, "height": 1500})  # the whole panel on screen, for the screenshots

    page.goto(f"{url}/lab/tree/panel.ipynb")
    page.fill("#password_input", PASSWORD)
    page.fill("#otp_input", device.next_code())
    page.click("#login_submit")
    cell = page.locator(".jp-Notebook .jp-Cell").first
    expect(cell).to_be_visible(timeout=LAB_LOAD_MS)
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_MS)

    cell.click()
    page.keyboard.press("Control+Enter")
    expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=KERNEL_MS)
    panel = page.locator(".jp-OutputArea-output").filter(has_text="Two-factor authentication")
    expect(panel.get_by_role("button", name="Re-link a device")).to_be_visible(timeout=KERNEL_MS)
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
