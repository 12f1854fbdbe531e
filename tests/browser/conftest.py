"""Fixtures of the browser test: a real `jupyter lab` behind the 2FA gate, and Debian's Chromium driven by Playwright.

Playwright's own browser download is never used (the machine has no network): the test drives the Debian
package's ``/usr/bin/chromium``, which ``.ci/run`` installs when it is missing. Without it the test is skipped
on a developer machine and fails under ``CI=true``. The Lab extension's test runs ``jupyter lab`` from the
project's wheel, installed into a fresh venv without node (``installed_wheel``, tests/conftest.py).
Screenshots go to ``test-output/browser/`` at the repository root (gitignored); the run's summary says where.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from helpers.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOT_DIR, LabServer, running_lab
from helpers.ci import skip_or_fail

_SCREENSHOTS_TAKEN = pytest.StashKey[Path]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say where the screenshots are, when the browser test ran."""
    folder = config.stash.get(_SCREENSHOTS_TAKEN, None)
    if folder is not None:
        terminalreporter.write_line(f"Browser test screenshots: {folder}")


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    """``test-output/browser/``, emptied once per run of an earlier run's screenshots so none can mislead."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    if _SCREENSHOTS_TAKEN not in request.config.stash:
        for old in SCREENSHOT_DIR.glob("*.png"):
            old.unlink()
    request.config.stash[_SCREENSHOTS_TAKEN] = SCREENSHOT_DIR
    print(f"screenshots: {SCREENSHOT_DIR}")
    return SCREENSHOT_DIR


@pytest.fixture
def chromium(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Debian's Chromium, headless, with a fresh profile (Playwright makes a throw-away user-data dir)."""
    if not CHROMIUM.is_file():
        skip_or_fail(f"{CHROMIUM} not found; install the Debian package 'chromium' (.ci/run does)", "browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies), 1280x800 so the screenshots show Lab's whole layout."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def lab_server(tmp_path: Path) -> Iterator[LabServer]:
    """A real `jupyter lab` with the gate on, in this test's isolated Jupyter dirs (see helpers/browser.py)."""
    with running_lab(tmp_path) as server:
        yield server
