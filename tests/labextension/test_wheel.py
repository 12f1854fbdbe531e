"""The wheel carries the Lab extension prebuilt: installed into a fresh venv with no node on PATH, JupyterLab
lists it as enabled and OK, and Python imports jupyter_2fa from that venv (not from the source tree)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers.ci import skip_or_fail
from helpers.wheel import EXTENSION_SHARE, WheelInstall

pytestmark = pytest.mark.slow

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize(
    "pattern",
    [
        r"package\.json",
        r"install\.json",
        r"static/remoteEntry\.[0-9a-f]+\.js",
        r"static/style\.js",
        r"schemas/jupyter-2fa/plugin\.json",
        r"schemas/jupyter-2fa/package\.json\.orig",
    ],
)
def test_wheel_ships_the_prebuilt_extension(installed_wheel: WheelInstall, pattern: str) -> None:
    with zipfile.ZipFile(installed_wheel.wheel) as wheel:
        names = wheel.namelist()
    prefix = re.escape(f"{EXTENSION_SHARE.as_posix()}/")
    assert any(re.fullmatch(rf"jupyter_2fa-[^/]+\.data/data/{prefix}{pattern}", name) for name in names), names


def test_installed_without_node(installed_wheel: WheelInstall) -> None:
    env = installed_wheel.env()
    assert shutil.which("node", path=env["PATH"]) is None
    assert (installed_wheel.extension / "package.json").is_file()
    assert list((installed_wheel.extension / "static").glob("remoteEntry.*.js"))

    where = installed_wheel.run("-c", "import jupyter_2fa; print(jupyter_2fa.__file__)", cwd=installed_wheel.venv)
    assert Path(where.stdout.strip()).is_relative_to(installed_wheel.venv), where

    listing = installed_wheel.run("-m", "jupyterlab.labextensions", "list", cwd=installed_wheel.venv)
    text = ANSI.sub("", listing.stdout + listing.stderr)
    assert listing.returncode == 0, text
    assert re.search(r"jupyter-2fa v\S+ enabled OK \(python, jupyter-2fa\)", text), text
    assert str(installed_wheel.venv / "share" / "jupyter" / "labextensions") in text, text


def test_yarn_lock_is_complete() -> None:
    """What CI's clean-clone build relies on: `jlpm install --immutable` accepts the committed yarn.lock."""
    if shutil.which("node") is None:
        skip_or_fail("node not found; install the Debian packages 'nodejs npm' (.ci/run does)", "Lab tests")
    done = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "jlpm"), "install", "--immutable", "--mode=skip-build"],
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
