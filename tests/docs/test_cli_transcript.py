"""The researcher guide's terminal transcript: `jupyter 2fa enroll` run for real, its screen saved for the docs
(``test-output/browser/cli-enroll.console``, copied with the screenshots to ``docs/_screenshots/``), and a login with
the device it linked.

The transcript shows a test secret and test recovery codes (the docs say so): nothing in it opens anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers.cli import CLI, PROMPT, jupyter_launcher, manual_key, recovery_codes
from helpers.totp import Device

REPO_ROOT = Path(__file__).resolve().parents[2]
# Not .txt: docs/_ext/screenshots.py copies test-output/browser/ into the site without *.txt files.
TRANSCRIPT = REPO_ROOT / "test-output" / "browser" / "cli-enroll.console"
USER = "alice"  # the account `jupyter 2fa enroll` links without USER: the OS user's (getpass reads LOGNAME first)


def test_terminal_enrollment_transcript(reader: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", USER)
    monkeypatch.setenv("USER", USER)
    reader.jupyter_2fa("enable")
    reader.write_config("")
    cli = CLI(jupyter_launcher())
    with cli.interactive("enroll") as session:
        shown = session.wait_for(PROMPT)
        device = Device(manual_key(shown).replace(" ", ""))  # the key typed into the app by hand
        code = device.current_code()  # spends the current step: the login below waits for the next one
        session.send(code + "\n")
        result = session.finish()
    assert result.returncode == 0, str(result)
    assert result.stderr == "", result.stderr
    before, prompt, after = result.stdout.partition(PROMPT)
    typed_at = after.index(": ") + 2  # the prompt ends with ": "; the terminal echoes what was typed, then Enter
    # What the terminal showed: the command, its output, and the code the user typed after the prompt.
    transcript = f"$ jupyter 2fa enroll\n{before}{prompt}{after[:typed_at]}{code}\n{after[typed_at:]}"
    assert f"Linking an authenticator app to {USER}" in transcript
    assert "shown only this once" in transcript
    assert len(recovery_codes(result.stdout)) == 10
    TRANSCRIPT.parent.mkdir(parents=True, exist_ok=True)
    TRANSCRIPT.write_text(transcript)

    # The device linked in the terminal opens the server started afterwards, as the guide says.
    with reader.server() as server:
        browser = server.browser()
        answer = browser.login(device.next_code())
        assert answer.status_code == 302, (answer.status_code, server.log.read_text()[-3000:])
        assert browser.logged_in()
