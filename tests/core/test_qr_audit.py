"""QR rendering, and the audit trail: one event per decision, never a secret in it, a private JSONL file."""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from jupyter_2fa.core import Action, AuditEvent, JsonlAuditLog, Settings, ThrottlePolicy
from jupyter_2fa.core.audit import discard, fan_out, logging_sink
from jupyter_2fa.core.enrollment import Provisioning
from jupyter_2fa.core.files import UnsafeFile
from jupyter_2fa.core.qr import qr_svg, qr_terminal
from jupyter_2fa.core.totp import new_secret, provisioning_uri

from helpers.core import PERIOD, T0, USER, App, Harness, HarnessFactory, mode, secret_variants, umask, wrong_code

# -- QR --------------------------------------------------------------------------------------------------------------

URIS = [
    provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "ada", "Example HPC"),
    provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ", "ada", "Example HPC"),
    provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "grace", "Example HPC"),
    provisioning_uri(new_secret(), "a.very.long.user.name@some.example.org" * 3, "Université de Paris"),
]
URI_IDS = ["ada", "secret-differs-by-one-char", "grace", "long-unicode"]


@pytest.mark.parametrize("uri", URIS, ids=URI_IDS)
def test_qr_svg_is_a_standalone_svg_document(uri: str) -> None:
    svg = qr_svg(uri)
    assert re.match(r"\s*(<\?xml[^>]*\?>\s*)?<svg\b", svg)
    assert svg.rstrip().endswith("</svg>")
    root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    assert root.findall(".//{http://www.w3.org/2000/svg}path") or root.findall(".//path")
    for forbidden in ("<script", "href", "<image", "<foreignObject"):
        assert forbidden not in svg
    assert qr_svg(uri) == svg  # deterministic


@pytest.mark.parametrize("invert", [False, True], ids=["normal", "inverted"])
@pytest.mark.parametrize("uri", URIS, ids=URI_IDS)
def test_qr_terminal_is_block_characters(uri: str, invert: bool) -> None:
    text = qr_terminal(uri, invert=invert)
    assert set(text) <= {" ", "\xa0", "█", "▀", "▄", "\n"}
    assert set(text) & {"█", "▀", "▄"}
    lines = text.rstrip("\n").split("\n")
    assert len({len(line) for line in lines}) == 1  # a rectangle
    assert len(lines) > 10
    assert qr_terminal(uri, invert=invert) == text
    assert qr_terminal(uri, invert=not invert) != text


def test_qr_differs_per_uri() -> None:
    assert len({qr_svg(uri) for uri in URIS}) == len(URIS)
    assert len({qr_terminal(uri) for uri in URIS}) == len(URIS)


def test_provisioning_repr_hides_the_secret() -> None:
    secret = new_secret()
    provisioning = Provisioning(secret, provisioning_uri(secret, USER, "Hub"))
    assert repr(provisioning) == "Provisioning(secret=<hidden>, uri=<hidden>)"
    for text in (str(provisioning), repr(provisioning), repr([provisioning]), repr({"p": provisioning})):
        assert secret not in text


# -- the audit trail -------------------------------------------------------------------------------------------------

ADDR = "192.0.2.7"
REASONS = {
    "started",
    "shown",
    "confirmed",
    "relinked",
    "cancelled",
    "already-enrolled",
    "totp",
    "recovery-code",
    "replayed-code",
    "wrong-code",
    "malformed-code",
    "wrong-password",
    "not-enrolled",
    "locked",
    "throttled",
    "too-many-failures",
    "regenerated",
    "admin",
    "expired",
    "store-unavailable",
}


def run_audited_life(harness: Harness) -> tuple[list[tuple[Action, str, str]], set[str]]:
    """Enroll, log in, fail, get locked, get unlocked, re-link, reset; return the expected events and secrets."""
    en, ver = harness.enrollment, harness.verifier
    expected: list[tuple[Action, str, str]] = []
    secrets: set[str] = set()

    def expect(*events: tuple[Action, str, str]) -> None:
        expected.extend(events)

    now = T0
    en.begin(USER, now, remote_addr=ADDR)
    expect((Action.ENROLLMENT_STARTED, "success", "started"))
    app = App(en.reveal(USER, now, remote_addr=ADDR).uri)
    expect((Action.ENROLLMENT_SHOWN, "success", "shown"))
    wrong = wrong_code(app.secret, now)
    with pytest.raises(Exception, match="does not match"):
        en.confirm(USER, wrong, now, remote_addr=ADDR)
    expect((Action.ENROLLMENT_CONFIRMED, "failure", "wrong-code"))
    codes = en.confirm(USER, app.code(now), now, remote_addr=ADDR)
    expect((Action.ENROLLMENT_CONFIRMED, "success", "confirmed"))
    secrets |= {app.secret, app.code(now), wrong, *codes}
    with pytest.raises(Exception, match="already has"):
        en.begin(USER, now, remote_addr=ADDR)
    expect((Action.ENROLLMENT_STARTED, "failure", "already-enrolled"))

    now += PERIOD
    code = app.code(now)
    secrets.add(code)
    assert ver.verify(USER, code, now, remote_addr=ADDR).ok
    expect((Action.LOGIN, "success", "totp"))
    assert not ver.verify(USER, code, now, remote_addr=ADDR).ok
    expect((Action.LOGIN, "failure", "replayed-code"))
    assert ver.verify(USER, codes[0].upper(), now, remote_addr=ADDR).ok
    expect((Action.RECOVERY_CODE_USED, "success", "recovery-code"), (Action.LOGIN, "success", "recovery-code"))
    assert not ver.verify(USER, codes[0], now, remote_addr=ADDR).ok
    expect((Action.LOGIN, "failure", "wrong-code"))

    # A wrong password does not count toward the lock; three second-factor failures (threshold 3) do.
    harness.enrollment.unlock(USER, now)
    expect((Action.UNLOCK, "success", "admin"))
    assert not ver.verify(USER, app.code(now), now, first_factor_ok=False, remote_addr=ADDR).ok
    expect((Action.LOGIN, "failure", "wrong-password"))
    assert not ver.verify(USER, "12_345", now, remote_addr=ADDR).ok
    expect((Action.LOGIN, "failure", "malformed-code"))
    assert not ver.verify(USER, "Z" * 7, now, remote_addr=ADDR).ok
    expect((Action.LOGIN, "failure", "malformed-code"))
    wrong = wrong_code(app.secret, now)
    secrets.add(wrong)
    assert not ver.verify(USER, wrong, now, remote_addr=ADDR).ok
    expect((Action.LOCK, "failure", "too-many-failures"), (Action.LOGIN, "failure", "wrong-code"))
    now += PERIOD
    assert not ver.verify(USER, app.code(now), now, remote_addr=ADDR).ok
    expect((Action.LOGIN, "failure", "locked"))
    assert harness.enrollment.unlock(USER, now)
    expect((Action.UNLOCK, "success", "admin"))

    # Re-link: refused with a wrong code, then regenerate codes, then a real re-link that is cancelled.
    with pytest.raises(Exception, match="not accepted"):
        en.begin_relink(USER, wrong_code(app.secret, now), now, remote_addr=ADDR)
    expect((Action.LOGIN, "failure", "wrong-code"), (Action.RELINK, "failure", "wrong-code"))
    new_codes = en.regenerate_recovery_codes(USER, app.code(now), now, remote_addr=ADDR)
    secrets |= {app.code(now), *new_codes}
    expect((Action.LOGIN, "success", "totp"), (Action.RECOVERY_CODES_REGENERATED, "success", "regenerated"))
    now += PERIOD
    en.begin_relink(USER, app.code(now), now, remote_addr=ADDR)
    secrets.add(app.code(now))
    expect((Action.LOGIN, "success", "totp"), (Action.RELINK, "success", "started"))
    pending = App(en.reveal(USER, now, remote_addr=ADDR).uri)
    secrets |= {pending.secret, pending.code(now)}
    expect((Action.ENROLLMENT_SHOWN, "success", "shown"))
    assert en.cancel(USER, now, remote_addr=ADDR)
    expect((Action.ENROLLMENT_CANCELLED, "success", "cancelled"))

    # The admin resets the account: the user is not enrolled any more.
    assert en.reset(USER, now)
    expect((Action.RESET, "success", "admin"))
    now += PERIOD
    assert not ver.verify(USER, app.code(now), now, remote_addr=ADDR).ok
    secrets.add(app.code(now))
    expect((Action.LOGIN, "failure", "not-enrolled"))
    return expected, secrets


AUDIT_SETTINGS = Settings(recovery_code_count=2, throttle=ThrottlePolicy(lockout_threshold=3, free_attempts=3))


def test_every_decision_is_audited(make_harness: HarnessFactory) -> None:
    harness = make_harness(AUDIT_SETTINGS)
    expected, _ = run_audited_life(harness)
    got = [(event.action, event.outcome, event.reason) for event in harness.events]
    assert got == expected
    for event in harness.events:
        assert event.username == USER
        assert event.reason in REASONS
        assert event.outcome in ("success", "failure")
        assert isinstance(event.timestamp, float) and T0 <= event.timestamp <= T0 + 10 * PERIOD
        admin_action = event.action in (Action.RESET, Action.UNLOCK)
        assert event.remote_addr == (None if admin_action else ADDR)


def test_no_secret_or_code_in_any_event(make_harness: HarnessFactory) -> None:
    harness = make_harness(AUDIT_SETTINGS)
    _, secrets = run_audited_life(harness)
    assert len(secrets) > 10
    forms = secret_variants(secrets)
    for event in harness.events:
        record = event.as_dict()
        assert set(record) == {"action", "username", "outcome", "reason", "timestamp", "remote_addr"}
        # Codes are digits: compare against the text fields only, not the (numeric) timestamp.
        text = json.dumps({key: value for key, value in record.items() if key != "timestamp"})
        shown = repr(event).replace(repr(event.timestamp), "")
        for secret in forms:
            assert secret not in text, (event, secret)
            assert secret not in shown, (event, secret)


def test_jsonl_audit_log(tmp_path: Path, make_harness: HarnessFactory) -> None:
    path = tmp_path / "logs" / "2fa-audit.jsonl"
    with umask(0o022):
        log = JsonlAuditLog(path)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    harness = make_harness(AUDIT_SETTINGS)
    harness.verifier.audit = fan_out(harness.events.append, log)
    run_audited_life(harness)
    lines = path.read_text().splitlines()
    assert len(lines) == len(harness.events)
    assert [json.loads(line) for line in lines] == [event.as_dict() for event in harness.events]
    assert json.loads(lines[0])["action"] == "enrollment-started"
    # Reopening appends instead of truncating.
    JsonlAuditLog(path)(AuditEvent(Action.KEY_ROTATED, "admin", "success", "admin", T0))
    assert len(path.read_text().splitlines()) == len(lines) + 1
    assert mode(path) == 0o600


@pytest.mark.parametrize("file_mode", [0o644, 0o640], ids=oct)
def test_jsonl_audit_log_refuses_a_readable_file(tmp_path: Path, file_mode: int) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(file_mode)
    with pytest.raises(UnsafeFile, match="chmod 600"):
        JsonlAuditLog(path)


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_jsonl_audit_log_refuses_a_symlink(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "elsewhere.jsonl"
    if not dangling:
        target.write_text("")
        target.chmod(0o600)
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        JsonlAuditLog(link)
    assert dangling != target.exists()


def test_logging_sink_levels(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("jupyter_2fa.test")
    sink = logging_sink(logger)
    with caplog.at_level(logging.INFO, logger="jupyter_2fa.test"):
        sink(AuditEvent(Action.LOGIN, USER, "success", "totp", T0, ADDR))
        sink(AuditEvent(Action.LOGIN, USER, "failure", "wrong-code", T0, None))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, f"2FA login success for 'ada' from {ADDR}: totp"),
        (logging.WARNING, "2FA login failure for 'ada' from -: wrong-code"),
    ]


def test_fan_out_reaches_every_sink_in_order() -> None:
    first: list[AuditEvent] = []
    second: list[AuditEvent] = []
    event = AuditEvent(Action.LOGIN, USER, "success", "totp", T0)
    fan_out(first.append, discard, second.append)(event)
    assert first == second == [event]
