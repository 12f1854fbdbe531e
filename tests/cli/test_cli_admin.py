"""`status`, `list`, `reset`, `unlock` and `recovery-codes`, each against a store the test prepared."""

from __future__ import annotations

import time

import pyotp

from jupyter_2fa.core import Outcome

from helpers.cli import CLI, core, enroll_in_process, fresh_totp, recovery_codes, wrong_code


def test_status_of_an_unknown_user_says_not_linked(cli: CLI) -> None:
    result = cli("status", "nobody")
    assert result.returncode == 0, str(result)
    assert result.field("user") == "nobody"
    assert result.field("second factor") == "not linked"
    assert result.field("failed attempts") == "0 of 10"
    assert result.field("locked") == "no"
    assert "recovery codes left" not in result.stdout
    assert result.stderr == ""


def test_list_shows_every_account(cli: CLI) -> None:
    empty = cli("list")
    assert empty.returncode == 0, str(empty)
    assert empty.stdout.strip() == "No accounts in the 2FA store."

    cli.enroll("bob")
    enroll_in_process("alice")
    listed = cli("list")
    assert listed.returncode == 0, str(listed)
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split() == ["USER", "LINKED", "KEYS", "APP", "SINCE", "CODES", "FAILS", "LOCKED", "PENDING"]
    assert [row.split()[0] for row in rows] == ["alice", "bob"]
    for row in rows:
        _user, linked, keys, app, *_since, codes, fails, locked, pending = row.split()
        assert (linked, keys, app, codes, fails, locked, pending) == ("yes", "0", "yes", "10", "0", "no", "no"), row


def test_reset_unlinks_so_the_user_can_enroll_again(cli: CLI) -> None:
    first = cli.enroll("alice")

    reset = cli("reset", "alice")
    assert reset.returncode == 0, str(reset)
    assert "Reset alice" in reset.stdout

    status = cli("status", "alice")
    assert status.field("second factor") == "not linked"
    assert "recovery codes left" not in status.stdout
    code, when = fresh_totp(first.secret)
    with core() as enrollment:
        assert enrollment.verifier.verify("alice", code, when).outcome is Outcome.NOT_ENROLLED
        assert enrollment.verifier.verify("alice", first.recovery_codes[0], when).outcome is Outcome.NOT_ENROLLED

    second = cli.enroll("alice")
    assert second.secret != first.secret
    assert set(second.recovery_codes).isdisjoint(first.recovery_codes)
    assert cli("status", "alice").field("second factor").startswith("linked")


def test_unlock_clears_a_lock(cli: CLI) -> None:
    secret, _ = enroll_in_process("alice")
    start = time.time()
    with core() as enrollment:
        for attempt in range(10):  # 10000 s apart: past every back-off, straight to the lock
            now = start + attempt * 10_000
            verdict = enrollment.verifier.verify("alice", wrong_code(secret, now), now)
            assert verdict.outcome is Outcome.INVALID, verdict
        later = start + 10 * 10_000
        right = pyotp.TOTP(secret).at(later)
        assert enrollment.verifier.verify("alice", right, later).outcome is Outcome.LOCKED

    locked = cli("status", "alice")
    assert locked.field("failed attempts") == "10 of 10"
    assert locked.field("locked") == "yes"
    assert "alice" in cli("list").stdout

    unlock = cli("unlock", "alice")
    assert unlock.returncode == 0, str(unlock)
    assert "Unlocked alice." in unlock.stdout

    status = cli("status", "alice")
    assert status.field("failed attempts") == "0 of 10"
    assert status.field("locked") == "no"
    assert status.field("second factor").startswith("linked")
    code, when = fresh_totp(secret)
    with core() as enrollment:
        assert enrollment.verifier.verify("alice", code, when).outcome is Outcome.ACCEPTED


def test_recovery_codes_are_replaced_after_a_current_code(cli: CLI) -> None:
    enrolled = cli.enroll("alice")
    old = enrolled.recovery_codes

    # The enrollment used this step's code, and a code is accepted once: answer with the next step's code.
    result = cli("recovery-codes", "alice", input=pyotp.TOTP(enrolled.secret).at(time.time() + 30) + "\n")
    assert result.returncode == 0, str(result)
    assert "Enter the current 6-digit code" in result.stdout
    new = recovery_codes(result.stdout)
    assert len(new) == 10
    assert set(new).isdisjoint(old)
    assert "not be shown again" in result.stdout
    assert "Traceback" not in result.stderr

    now = time.time()
    with core() as enrollment:
        assert not enrollment.verifier.verify("alice", old[0], now).ok
        assert enrollment.verifier.verify("alice", new[0], now).outcome is Outcome.ACCEPTED
    assert cli("status", "alice").field("recovery codes left") == "9"


def test_recovery_codes_with_a_wrong_code_change_nothing(cli: CLI) -> None:
    enrolled = cli.enroll("alice")

    wrong = cli("recovery-codes", "alice", input=wrong_code(enrolled.secret) + "\n")
    assert wrong.returncode == 1, str(wrong)
    assert "not accepted" in wrong.stderr
    assert "the old recovery codes still work" in wrong.stderr
    assert recovery_codes(wrong.stdout) == []
    assert "Traceback" not in wrong.stderr

    nothing = cli("recovery-codes", "alice", input="")
    assert nothing.returncode == 1, str(nothing)
    assert "no code entered" in nothing.stderr

    with core() as enrollment:
        verdict = enrollment.verifier.verify("alice", enrolled.recovery_codes[0], time.time())
        assert verdict.outcome is Outcome.ACCEPTED
        assert verdict.recovery_codes_left == 9
