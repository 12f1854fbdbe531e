"""Drive `jupyter 2fa` the way a researcher would, with pyotp standing in for the phone.

Run through ./scripts/demo, which sets up the venv and a private Jupyter data dir.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pyotp

from jupyter_2fa.config import TwoFactorConfig

USER = "demo"
JUPYTER_2FA = [sys.executable, "-m", "jupyter_2fa.cli"]
PROMPT = "-digit code from the app: "


def enroll() -> str:
    """Run `jupyter 2fa enroll demo`, echo what a user sees, answer with the code a phone would show."""
    print(f"$ jupyter 2fa enroll {USER}")
    proc = subprocess.Popen([*JUPYTER_2FA, "enroll", USER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout
    seen = ""
    while not seen.endswith(PROMPT):
        char = proc.stdout.read(1)
        if not char:
            sys.exit("jupyter 2fa enroll stopped before asking for a code")
        seen += char
        sys.stdout.write(char)
    key = re.search(r"type this key by hand.*\n\s*\n\s+([A-Z2-7 ]+)\n", seen)
    if key is None:
        sys.exit("no manual key in the output")
    secret = key.group(1).replace(" ", "")
    code = pyotp.TOTP(secret).now()
    print(f"{code}    <- typed from the (simulated) phone")
    rest, _ = proc.communicate(code + "\n", timeout=60)
    print(rest, end="")
    if proc.returncode != 0:
        sys.exit(proc.returncode)
    return secret


def login(secret: str) -> None:
    """Check a login's second factor through the same core the server gate will use."""
    verifier = TwoFactorConfig().open_enrollment().verifier
    # The code typed at enrollment is spent (a step is accepted once), so the phone's next code is used.
    later = time.time() + 30
    code = pyotp.TOTP(secret).at(later)
    for label, attempt in (("next code", code), ("same code again", code)):
        verdict = verifier.verify(USER, attempt, later)
        print(f"login with the {label}: {verdict.outcome.value} ({verdict.reason})")


def main() -> None:
    secret = enroll()
    print()
    login(secret)
    print()
    print(f"$ jupyter 2fa status {USER}")
    subprocess.run([*JUPYTER_2FA, "status", USER], check=True)
    print()
    print("To link your own phone: .venv/bin/jupyter 2fa enroll")


if __name__ == "__main__":
    main()
