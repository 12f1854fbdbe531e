"""`jupyter 2fa enroll`: the QR code and key shown once, confirmation by a code, recovery codes, refusals."""

from __future__ import annotations

import getpass
import signal
import stat
from pathlib import Path

import pyotp
import pytest

from jupyter_2fa.core import Outcome

from helpers.cli import (
    CLI,
    MANUAL_KEY_HEADING,
    PROMPT,
    console_script,
    core,
    data_dir,
    fresh_totp,
    jupyter_launcher,
    manual_key,
    recovery_codes,
    wrong_code,
)

QR_BLOCKS = ("▀", "▄", "█")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_enroll_links_the_device_once_and_refuses_a_second_enroll(cli: CLI) -> None:
    enrolled = cli.enroll("alice")
    out, err = enrolled.result.stdout, enrolled.result.stderr

    assert "Linking an authenticator app to alice" in out
    assert any(block in out for block in QR_BLOCKS), "no terminal QR code in the output"
    assert len(enrolled.secret) == 32
    assert "Done: alice now needs a code from the app at every login." in out
    assert len(enrolled.recovery_codes) == 10
    assert len(set(enrolled.recovery_codes)) == 10
    assert "not be shown again" in out
    assert enrolled.secret not in err and enrolled.manual_key not in err

    # The store and key were created private, in a private folder.
    assert _mode(data_dir()) == 0o700
    assert _mode(data_dir() / "store.sqlite") == 0o600
    assert _mode(data_dir() / "secret.key") == 0o600

    status = cli("status", "alice")
    assert status.returncode == 0, str(status)
    assert status.field("second factor").startswith("linked since ")
    assert status.field("recovery codes left") == "10"
    assert status.field("failed attempts") == "0 of 10"
    assert status.field("locked") == "no"

    again = cli("enroll", "alice")
    assert again.returncode == 1, str(again)
    assert "already has an active second factor" in again.stderr
    assert "jupyter 2fa reset alice" in again.stderr
    assert MANUAL_KEY_HEADING not in again.stdout, "a refused enroll must not show a new key"
    assert "Traceback" not in again.stderr

    # The refusal left the linked device alone.
    code, when = fresh_totp(enrolled.secret)
    with core() as enrollment:
        assert enrollment.verifier.verify("alice", code, when).outcome is Outcome.ACCEPTED


def test_three_wrong_codes_link_nothing(cli: CLI) -> None:
    with cli.interactive("enroll", "alice") as session:
        secret = manual_key(session.wait_for(PROMPT)).replace(" ", "")
        session.send("".join(wrong_code(secret) + "\n" for _ in range(3)))
        result = session.finish()

    assert result.returncode == 1, str(result)
    assert result.stderr.count("that code was not accepted") == 3
    assert "not linked: no matching code was entered" in result.stderr
    assert recovery_codes(result.stdout) == []
    assert "Traceback" not in result.stderr
    assert secret not in result.stderr

    status = cli("status", "alice")
    assert status.returncode == 0, str(status)
    assert status.field("second factor") == "not linked"
    assert "pending enrollment" not in status.stdout
    with core() as enrollment:
        account = enrollment.store.get("alice")
        assert account is not None
        assert not account.enrolled
        assert account.pending_secret is None


def test_end_of_input_cancels_the_pending_enrollment(cli: CLI) -> None:
    result = cli("enroll", "alice", input="")
    assert result.returncode == 1, str(result)
    assert MANUAL_KEY_HEADING in result.stdout
    assert "not linked" in result.stderr
    assert "Traceback" not in result.stderr

    status = cli("status", "alice")
    assert status.field("second factor") == "not linked"
    assert "pending enrollment" not in status.stdout
    with core() as enrollment:
        account = enrollment.store.get("alice")
        assert account is not None and account.pending_secret is None and not account.enrolled


def test_ctrl_c_at_the_prompt_cancels_without_a_traceback(cli: CLI) -> None:
    with cli.interactive("enroll", "alice") as session:
        session.wait_for(PROMPT)
        session.proc.send_signal(signal.SIGINT)
        result = session.finish()
    assert result.returncode == 1, str(result)
    assert "Traceback" not in result.stderr
    with core() as enrollment:
        account = enrollment.store.get("alice")
        assert account is not None and account.pending_secret is None and not account.enrolled


def test_enroll_without_user_links_the_os_user(cli: CLI) -> None:
    me = getpass.getuser()
    enrolled = cli.enroll(user=me)
    assert f"Linking an authenticator app to {me} " in enrolled.result.stdout
    assert f"Done: {me} now needs a code" in enrolled.result.stdout

    status = cli("status")
    assert status.returncode == 0, str(status)
    assert status.field("user") == me
    assert status.field("second factor").startswith("linked")
    with core() as enrollment:
        assert [account.username for account in enrollment.store.iter_accounts()] == [me]


def test_the_secret_never_reaches_stderr_logs_or_the_audit_log(cli: CLI, tmp_path: Path) -> None:
    """Even at DEBUG level, with a failed code first (a WARNING audit line) and the JSON audit log on."""
    audit_log = tmp_path / "audit.jsonl"
    config = tmp_path / "jupyter_server_config.py"
    config.write_text(f"c.TwoFactorConfig.audit_log_file = {str(audit_log)!r}\n")

    with cli.interactive("enroll", "alice", "--log-level=DEBUG", f"--config={config}") as session:
        key = manual_key(session.wait_for(PROMPT))
        secret = key.replace(" ", "")
        session.send(wrong_code(secret) + "\n")
        session.wait_for(PROMPT, count=2)  # asked again after the refusal
        session.send(pyotp.TOTP(secret).now() + "\n")
        result = session.finish()

    assert result.returncode == 0, str(result)
    assert "enrollment-confirmed failure" in result.stderr, "the audit lines should be in the log"
    assert "Looking for" in result.stderr, "DEBUG logging should be on"
    audit = audit_log.read_text()
    assert '"enrollment-confirmed"' in audit
    codes = recovery_codes(result.stdout)
    assert len(codes) == 10
    for text in (result.stderr, audit):
        for needle in (secret, key, secret.lower(), *codes):
            assert needle not in text


@pytest.mark.parametrize("launcher", [console_script, jupyter_launcher], ids=["jupyter-2fa", "jupyter 2fa"])
def test_installed_commands_run_the_cli(launcher: object) -> None:
    command = CLI(launcher())  # type: ignore[operator]
    enrolled = command.enroll("alice")
    assert len(enrolled.recovery_codes) == 10
    status = command("status", "alice")
    assert status.returncode == 0, str(status)
    assert status.field("second factor").startswith("linked")
    bad = command("bogus")
    assert bad.returncode == 2, str(bad)
    assert "bogus" in bad.stderr
