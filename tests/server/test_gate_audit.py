"""Audit through HTTP: one event per decision, with the client's address, and never a secret in it."""

from __future__ import annotations

import html
import json
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest

from jupyter_2fa.core.audit import AuditEvent
from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import PASSWORD, WRONG_PASSWORD, Browser, body_text, login_message

MANUAL_KEY = re.compile(r'id="manual_key">\s*([^<]*?)\s*</p>')
RECOVERY_LIST = re.compile(r'id="recovery_codes">(.*?)</ul>', re.DOTALL)
LIST_ITEM = re.compile(r"<li>\s*([^<]*?)\s*</li>")


@pytest.fixture
def audit_log(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def gate_config(audit_log: Path) -> dict[str, Any]:
    return {
        "TwoFactorConfig": {"lockout_threshold": 2, "backoff_free_attempts": 10, "audit_log_file": str(audit_log)},
    }


class Secrets:
    """Everything the sequence typed or received that must never reach an audit record."""

    def __init__(self) -> None:
        self.values: set[str] = {PASSWORD, WRONG_PASSWORD}
        self.recovery_codes: list[str] = []

    def add(self, *values: str) -> None:
        self.values.update(value for value in values if value)

    def found_in(self, text: str) -> list[str]:
        return sorted(value for value in self.values if value in text)


async def _enroll_through_the_page(browser: Browser, gate: TOTPIdentityProvider, secrets: Secrets) -> pyotp.TOTP:
    scan = await browser.post_form("2fa/enroll", {"action": "start", "password": PASSWORD})
    assert scan.code == 200, body_text(scan)
    match = MANUAL_KEY.search(body_text(scan))
    assert match is not None, "no manual key on the scan page"
    manual_key = html.unescape(match.group(1))
    secret = manual_key.replace(" ", "")
    settings = gate.enrollment.settings.totp
    totp = pyotp.TOTP(secret, digits=settings.digits, interval=settings.period, digest=settings.algorithm)
    code = totp.at(time.time() - settings.period)  # the previous step: the current and next stay fresh
    done = await browser.post_form("2fa/enroll", {"action": "confirm", "code": code})
    assert done.code == 200, body_text(done)
    listing = RECOVERY_LIST.search(body_text(done))
    assert listing is not None, "no recovery codes on the done page"
    codes = [html.unescape(item) for item in LIST_ITEM.findall(listing.group(1))]
    assert codes
    secrets.add(secret, manual_key, code, *codes)
    secrets.recovery_codes = codes
    return totp


def _remember_cookies(browser: Browser, secrets: Secrets) -> None:
    secrets.add(*browser.cookies.values())
    for cookie in browser.set_cookies:
        secrets.add(cookie.value)


Triple = tuple[str, str, str]

EXPECTED_SEQUENCE: list[Triple] = [
    # enrollment through the page
    ("password-check", "success", "enrollment"),
    ("enrollment-started", "success", "started"),
    ("enrollment-shown", "success", "shown"),
    ("enrollment-confirmed", "success", "confirmed"),
    # logout of the session the enrollment opened
    ("logout", "success", "logout"),
    # a failed login, then a successful one
    ("login", "failure", "wrong-code"),
    ("login", "success", "totp"),
    # a wrong password is logged but does not count toward the lock; two wrong codes with the right password
    # lock the account (threshold 2; the lock is written while the second is decided, just before its login
    # event); the right factors are then refused
    ("login", "failure", "wrong-password"),
    ("login", "failure", "wrong-code"),
    ("lock", "failure", "too-many-failures"),
    ("login", "failure", "wrong-code"),
    ("login", "failure", "locked"),
    # an admin unlocks (core, not HTTP), then a recovery code logs in, then logout
    ("unlock", "success", "admin"),
    ("recovery-code-used", "success", "recovery-code"),
    ("login", "success", "recovery-code"),
    ("logout", "success", "logout"),
]
NOT_HTTP = {"unlock"}


async def test_every_decision_is_audited_without_secrets(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    audit_events: list[AuditEvent],
    audit_log: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = Secrets()
    browser = new_browser()

    totp = await _enroll_through_the_page(browser, gate, secrets)
    _remember_cookies(browser, secrets)
    assert (await browser.logout()).code == 200

    reachable = {totp.at(time.time() + 30 * k) for k in range(-2, 3)}
    wrong = next(code for n in range(10) if (code := str(n) * 6) not in reachable)
    secrets.add(wrong)
    assert (await browser.login(PASSWORD, wrong)).code == 401
    fresh = totp.at(time.time())
    secrets.add(fresh)
    assert (await browser.login(PASSWORD, fresh)).code == 302
    _remember_cookies(browser, secrets)

    other = new_browser()
    next_code = totp.at(time.time() + 30)
    secrets.add(next_code)
    assert (await other.login(WRONG_PASSWORD, next_code)).code == 401
    for _ in range(2):
        assert (await other.login(PASSWORD, wrong)).code == 401
    locked = await other.login(PASSWORD, next_code)
    assert locked.code == 403, login_message(locked)

    assert gate.enrollment.unlock(gate.username, time.time())
    recovery = secrets.recovery_codes[0]
    response = await other.login(PASSWORD, recovery)
    assert response.code == 302, login_message(response)
    _remember_cookies(other, secrets)
    assert (await other.logout()).code == 200

    observed = [(event.action.value, event.outcome, event.reason) for event in audit_events]
    assert observed == EXPECTED_SEQUENCE

    for event in audit_events:
        assert event.username == gate.username
        if event.action.value in NOT_HTTP:
            assert event.remote_addr is None, event
        else:
            assert event.remote_addr == "127.0.0.1", event

    records = [json.dumps(event.as_dict()) for event in audit_events]
    leaks = {record: secrets.found_in(record) for record in records if secrets.found_in(record)}
    assert not leaks, f"secrets in audit events: {leaks}"

    # The JSON-lines file got the same records, privately.
    lines = audit_log.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [event.as_dict() for event in audit_events]
    assert stat.S_IMODE(audit_log.stat().st_mode) == 0o600
    assert not secrets.found_in(audit_log.read_text())

    # Nor does the server's own log carry them (the audit sink also logs every decision there).
    log_text = "\n".join(record.getMessage() for record in caplog.records)
    assert "2FA login success" in log_text
    assert not secrets.found_in(log_text), secrets.found_in(log_text)
