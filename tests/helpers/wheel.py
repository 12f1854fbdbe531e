"""The project as a user gets it: its wheel, built once per test run and installed into a fresh venv without node.

Used by tests/labextension (the prebuilt Lab extension is in the wheel) and tests/browser (the Lab extension's
browser test runs against that install), through the session fixture ``installed_wheel`` (tests/conftest.py).
The fresh venv holds only the wheel; its dependencies (JupyterLab, jupyter_server, ...) come from the project's
venv through a ``.pth`` path entry, so nothing is downloaded, and the project's own editable install is not on
that path (the editable hook's ``.pth`` is not processed there). Nothing runs with the repository as working
directory, which would put the source tree first on ``sys.path``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_VENV = Path(sys.prefix)
EXTENSION_SHARE = Path("share", "jupyter", "labextensions", "jupyter-2fa")
BUILD_SECONDS = 300


@dataclass(frozen=True)
class WheelInstall:
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def extension(self) -> Path:
        return self.venv / EXTENSION_SHARE

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default ``os.environ``) with only the fresh venv on PATH: no node, no project venv."""
        env = dict(os.environ if base is None else base)
        env.pop("VIRTUAL_ENV", None)
        env["PATH"] = str(self.venv / "bin")
        # JupyterLab's own application files, from the jupyterlab wheel in the project venv (a dependency).
        env["JUPYTERLAB_DIR"] = str(PROJECT_VENV / "share" / "jupyter" / "lab")
        return env

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
            check=False,
        )


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=BUILD_SECONDS, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


@functools.cache
def built_wheel_install() -> WheelInstall:
    """Build the wheel from the working tree (its Lab extension prebuilt by scripts/_venv.sh) and install it.

    The build needs no node: hatch-jupyter-builder skips the JavaScript build when the assets exist, exactly as
    when a wheel is built from the sdist.
    """
    root = Path(tempfile.mkdtemp(prefix="jupyter-2fa-wheel-"))
    dist = root / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(REPO_ROOT),
        ],
        cwd=root,
    )
    (wheel,) = dist.glob("jupyter_2fa-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    installed = WheelInstall(wheel=wheel, venv=venv)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(installed.python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=root,
    )
    purelib = subprocess.run(
        [str(installed.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return installed


def lab_extension_built() -> bool:
    """Whether scripts/_venv.sh built the Lab extension into the source tree (it does when node is installed)."""
    return (REPO_ROOT / "jupyter_2fa" / "labextension" / "package.json").is_file()


def remove_built_wheel_install() -> None:
    """Delete the install (the end of the test run), if one was made."""
    if built_wheel_install.cache_info().currsize:
        shutil.rmtree(built_wheel_install().venv.parent, ignore_errors=True)
        built_wheel_install.cache_clear()
