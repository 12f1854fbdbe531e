"""The Lab extension's `jlpm test`: prettier --check, then Jest (API client, panel state machine, view, session).

Run from pytest so that `./scripts/test` (and CI) runs it, and a failure shows Jest's own report.
scripts/_venv.sh installs the Node dependencies (immutable under CI=true) and builds the extension first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from helpers.ci import skip_or_fail

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"
JLPM = Path(sys.prefix) / "bin" / "jlpm"
JEST_SECONDS = 240


def test_jest_suite() -> None:
    if shutil.which("node") is None or not (LABEXTENSION / "node_modules" / ".bin" / "jest").exists():
        skip_or_fail("node or the Lab extension's node_modules missing (scripts/_venv.sh installs them)", "Jest tests")
    done = subprocess.run(
        [str(JLPM), "test", "--ci", "--colors=false"],
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        timeout=JEST_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
