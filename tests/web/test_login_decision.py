"""The login decision of both hosts (``Host.login_verdict``), as one table, in-process.

Each row: what the user has (a device or not), the policy, where they log in from, whether the password was
right and which code they typed; the verdict the core must reach. The gate and the hub both call this one
decision; their end-to-end tests (tests/server/test_gate_login.py, test_gate_policies.py,
test_gate_networks.py, tests/hub/test_totp_login.py, test_totp_networks.py) check the wiring around it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from jupyter_2fa.core import Outcome, Verdict
from jupyter_2fa.web.host import Host, PasswordCheck

USER = "ada"
NOW = 1_800_000_010.0  # 10 s into a time step
TRUSTED = "10.1.2.3"
OUTSIDE = "192.0.2.9"
PAST, FUTURE = "2001-01-01", "2999-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class Case:
    outcome: Outcome
    reason: str
    enrolled: bool = True
    policy: str = "required"
    optional_until: str = ""
    address: str = OUTSIDE
    password_ok: bool = True
    code: str = "current"  # current | wrong | replayed | recovery | none


TABLE = {
    "totp": Case(Outcome.ACCEPTED, "totp"),
    "recovery-code": Case(Outcome.ACCEPTED, "recovery-code", code="recovery"),
    "wrong-code": Case(Outcome.INVALID, "wrong-code", code="wrong"),
    "replayed-code": Case(Outcome.INVALID, "replayed-code", code="replayed"),
    "no-code": Case(Outcome.INVALID, "malformed-code", code="none"),
    "wrong-password-right-code": Case(Outcome.INVALID, "wrong-password", password_ok=False),
    "trusted-network": Case(Outcome.ACCEPTED, "trusted-network", address=TRUSTED, code="none"),
    "trusted-network-wrong-password": Case(Outcome.INVALID, "wrong-password", address=TRUSTED, password_ok=False),
    "trusted-network-no-device": Case(Outcome.ACCEPTED, "trusted-network", enrolled=False, address=TRUSTED),
    "no-device": Case(Outcome.NOT_ENROLLED, "not-enrolled", enrolled=False, code="none"),
    "no-device-wrong-password": Case(Outcome.INVALID, "wrong-password", enrolled=False, password_ok=False),
    "optional-no-device": Case(Outcome.ACCEPTED, "optional-policy", enrolled=False, policy="optional"),
    "optional-before-deadline": Case(
        Outcome.ACCEPTED, "optional-policy", enrolled=False, policy="optional", optional_until=FUTURE
    ),
    "optional-past-deadline": Case(
        Outcome.NOT_ENROLLED, "not-enrolled", enrolled=False, policy="optional", optional_until=PAST
    ),
    "optional-no-device-wrong-password": Case(
        Outcome.INVALID, "wrong-password", enrolled=False, policy="optional", password_ok=False
    ),
    "optional-with-device-needs-code": Case(Outcome.INVALID, "malformed-code", policy="optional", code="none"),
    "optional-with-device-totp": Case(Outcome.ACCEPTED, "totp", policy="optional"),
    "cli-only-no-device": Case(Outcome.NOT_ENROLLED, "not-enrolled", enrolled=False, policy="cli-only"),
}


def make_host(tmp_path: Path, **settings: object) -> Host:
    defaults = {"db_url": f"sqlite:///{tmp_path / 'store.sqlite'}", "key_file": str(tmp_path / "secret.key")}
    return Host(trusted_networks=["10.0.0.0/8"], recovery_code_count=1, **{**defaults, **settings})


def decide(host: Host, check: PasswordCheck, code: str, address: str) -> Verdict:
    """The host's decision, reached as its handlers reach it: awaited, the core in its worker threads."""
    return asyncio.run(host.login_verdict(check, code, address, NOW))


@pytest.mark.parametrize("case", list(TABLE.values()), ids=list(TABLE))
def test_login_decision(tmp_path: Path, case: Case) -> None:
    host = make_host(tmp_path, enrollment_policy=case.policy, optional_until=case.optional_until)
    enrollment = host.enrollment
    enrollment.store.ensure_account(USER)
    app: pyotp.TOTP | None = None
    recovery_codes: list[str] = []
    if case.enrolled:
        enrollment.begin(USER, NOW)
        app = pyotp.TOTP(enrollment.reveal(USER, NOW).secret)
        recovery_codes = enrollment.confirm(USER, app.at(NOW - 30), NOW)  # the step before: "now" stays fresh
    code = {
        "current": app.at(NOW) if app else "123456",
        "replayed": app.at(NOW) if app else "",
        "wrong": str((int(app.at(NOW)) + 1) % 1_000_000).zfill(6) if app else "",
        "recovery": recovery_codes[0] if recovery_codes else "",
        "none": "",
    }[case.code]
    if case.code == "replayed":
        assert decide(host, PasswordCheck(USER, True), code, case.address).ok

    verdict = decide(host, PasswordCheck(USER, case.password_ok), code, case.address)

    assert (verdict.outcome, verdict.reason) == (case.outcome, case.reason)


def test_store_down_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    host = make_host(tmp_path, db_url=f"sqlite:///{tmp_path / 'not-a-folder' / 'store.sqlite'}")
    verdict = decide(host, PasswordCheck(USER, True), "123456", OUTSIDE)
    assert verdict.outcome is Outcome.UNAVAILABLE
    assert host.refusal(verdict).status == 503
