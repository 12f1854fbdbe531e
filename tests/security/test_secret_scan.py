"""Where secrets go, on a real gate logging at DEBUG: every path that hands one out (enrollment page and API, inline
and as a one-time picture, re-link, new recovery codes, kernels' Basic credentials, wrong attempts), then a scan
of the log, the audit file, the event bus, the store file and every HTTP response.

The rule: the password reaches no output at all; a TOTP secret appears in exactly the one response that shows it;
recovery codes in the one response that creates them; session cookies only in Set-Cookie headers; time-step
codes nowhere but the requests that carry them.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from jupyter_server.serverapp import ServerApp
from tornado.httpclient import HTTPResponse

from jupyter_2fa.server import TOTPIdentityProvider

from helpers.core import secret_variants
from helpers.gate import (
    CONFIRM,
    ENROLLMENT,
    PASSWORD,
    RECOVERY_CODES,
    RELINK,
    STATUS,
    WRONG_PASSWORD,
    Browser,
    body_text,
    json_body,
    totp_for,
)


@pytest.fixture
def audit_log(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def gate_config(audit_log: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"log_level": "DEBUG"},
        "TwoFactorConfig": {"enrollment_policy": "optional", "audit_log_file": str(audit_log)},
    }


@dataclass
class Recorder:
    """Every response of the run, and which secrets each one was allowed to carry."""

    responses: list[tuple[str, HTTPResponse, set[str]]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=lambda: {PASSWORD, WRONG_PASSWORD})
    codes: set[str] = field(default_factory=set)  # 6-digit codes, matched as whole words only
    cookies: set[str] = field(default_factory=set)

    def keep(self, label: str, response: HTTPResponse, *handed_out: str) -> HTTPResponse:
        self.responses.append((label, response, secret_variants(handed_out)))
        for cookie in response.headers.get_list("Set-Cookie"):
            value = cookie.split(";", 1)[0].split("=", 1)[-1]
            if len(value) > 20:
                self.cookies.add(value)
        return response

    def found_in(self, text: str, allowed: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
        found = [s for s in secret_variants(self.secrets) | self.cookies if s in text and s not in allowed]
        found += [c for c in self.codes if re.search(rf"(?<![A-Za-z0-9]){c}(?![A-Za-z0-9])", text)]
        return sorted(set(found))


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"kernel:{password}".encode()).decode()}


async def kernel_call(browser: Browser, method: str, path: str, body: object = None) -> HTTPResponse:
    headers = {**basic(PASSWORD), "Content-Type": "application/json"}
    return await browser.request(path, method=method, body=None if body is None else json.dumps(body), headers=headers)


async def test_no_secret_reaches_a_log_an_event_the_store_or_the_wrong_response(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    jp_serverapp: ServerApp,
    audit_log: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    events = io.StringIO()
    jp_serverapp.event_logger.register_handler(logging.StreamHandler(events))
    run = Recorder()
    browser, kernel = new_browser(), new_browser()

    # A password session (optional policy), then a first device through the API, shown inline.
    run.keep("login", await browser.login(PASSWORD))
    started = run.keep("enroll", await browser.post_json(ENROLLMENT, {"password": PASSWORD}))
    first = json_body(started)
    run.secrets |= {first["secret"], first["manual_key"], first["otpauth_uri"]}
    run.responses[-1][2].update(secret_variants([first["secret"], first["manual_key"], first["otpauth_uri"]]))
    run.responses[-1][2].add(json.dumps(first["otpauth_uri"])[1:-1])  # the URI as JSON escapes it
    totp = totp_for(gate, first["secret"])
    code = totp.now()
    run.codes.add(code)
    confirmed = await browser.post_json(CONFIRM, {"code": code})
    recovery = json_body(confirmed)["recovery_codes"]
    run.secrets |= set(recovery)
    run.keep("confirm", confirmed, *recovery)

    # Wrong attempts of every kind.
    run.keep("wrong password", await new_browser().login(WRONG_PASSWORD, "000000"))
    run.keep("wrong code", await new_browser().login(PASSWORD, "000000"))
    run.keep("wrong basic", await kernel.request(STATUS, headers=basic(WRONG_PASSWORD)))

    # A kernel re-links with a one-time picture link; the browser fetches the picture and confirms.
    relink = {"password": PASSWORD, "otp": recovery[0], "reveal": "link"}
    relinked = run.keep("relink", await kernel_call(kernel, "POST", RELINK, relink))
    picture_path = str(json_body(relinked)["qr_url"]).split("/2fa/qr/", 1)[1]
    picture = await browser.get(f"2fa/qr/{picture_path}")
    second_secret = gate.enrollment.store.keyring.decrypt(gate.enrollment.store.get(gate.username).pending_secret)
    run.secrets.add(second_secret)
    run.keep("picture", picture, second_secret, " ".join(re.findall("....", second_secret)))
    second = pyotp.TOTP(second_secret)
    code = second.now()
    run.codes.add(code)
    linked = await kernel_call(kernel, "POST", CONFIRM, {"code": code})
    new_codes = json_body(linked)["recovery_codes"]
    run.secrets |= set(new_codes)
    run.keep("confirm relink", linked, *new_codes)

    # New recovery codes with a recovery code; then the status as the kernel reads it.
    regenerated = await kernel_call(kernel, "POST", RECOVERY_CODES, {"password": PASSWORD, "otp": new_codes[0]})
    newest = json_body(regenerated)["recovery_codes"]
    run.secrets |= set(newest)
    run.keep("regenerate", regenerated, *newest)
    run.keep("status", await kernel.request(STATUS, headers=basic(PASSWORD)))
    run.keep("logout", await browser.logout())

    leaks: dict[str, list[str]] = {}
    for label, response, allowed in run.responses:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.get_all() if k.lower() != "set-cookie")
        if found := run.found_in(body_text(response) + headers, allowed):
            leaks[f"response {label}"] = found
    log_text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    outputs = {
        "log": log_text,
        "audit file": audit_log.read_text(),
        "events": events.getvalue(),
        "store file": Path(str(gate.enrollment.store.url.database)).read_bytes().decode("latin-1"),
    }
    leaks |= {name: found for name, text in outputs.items() if (found := run.found_in(text))}
    assert not leaks, leaks
    assert "2FA login success" in log_text and events.getvalue(), "the scan must have had something to read"
