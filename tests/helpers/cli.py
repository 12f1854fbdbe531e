"""Helpers for running `jupyter 2fa` as a real subprocess, the way an administrator or a user runs it.

The ``cli`` fixture (a :class:`CLI`) lives in tests/cli/conftest.py.

Every command gets an explicit copy of ``os.environ`` taken when it starts, so the JUPYTER_* folders the autouse
``isolated_jupyter_paths`` fixture put into the environment reach the child. ``cli`` runs one command to the end;
``cli.enroll`` drives the interactive enrollment (read the manual key from the screen, answer with a code from it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyotp

from jupyter_2fa.config import TwoFactorConfig
from jupyter_2fa.core import Enrollment

TIMEOUT = 60  # seconds for one command; a hung prompt must fail the test, not the whole session
PROMPT = "Enter the 6-digit code"
MANUAL_KEY_HEADING = "Or type this key by hand"
MANUAL_KEY = re.compile(r"^[A-Z2-7]{4}(?: [A-Z2-7]{4})*$")
RECOVERY_CODE = re.compile(r"^\s+([0-9a-z]{5}-[0-9a-z]{5})$", re.MULTILINE)
BIN = Path(sys.executable).parent

MODULE = (sys.executable, "-m", "jupyter_2fa.cli")


def console_script() -> tuple[str, ...]:
    """The installed `jupyter-2fa` entry point: next to the interpreter (the venv), else on PATH."""
    script = BIN / "jupyter-2fa"
    found = str(script) if script.is_file() else shutil.which("jupyter-2fa")
    assert found, "the jupyter-2fa console script is not installed"
    return (found,)


def jupyter_launcher() -> tuple[str, ...]:
    """`jupyter 2fa`: jupyter_core's launcher, which finds `jupyter-2fa` next to itself."""
    launcher = BIN / "jupyter"
    found = str(launcher) if launcher.is_file() else shutil.which("jupyter")
    assert found, "the jupyter launcher is not installed"
    return (found, "2fa")


@dataclass
class Result:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"{' '.join(self.args)} -> {self.returncode}\n--- stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}"

    def field(self, name: str) -> str:
        """The value of a `status` line such as ``locked:              no``."""
        for line in self.stdout.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == name:
                return value.strip()
        raise AssertionError(f"no {name!r} line in:\n{self}")


@dataclass
class Enrolled:
    """What a successful `enroll` showed: the secret (manual key without spaces) and the recovery codes."""

    user: str
    secret: str
    manual_key: str
    recovery_codes: list[str]
    result: Result = field(repr=False)


def manual_key(stdout: str) -> str:
    """The key printed after "Or type this key by hand", groups of four Base32 characters."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if MANUAL_KEY_HEADING in line:
            following = [candidate.strip() for candidate in lines[index + 1 :] if candidate.strip()]
            assert following, f"nothing after the manual key heading:\n{stdout}"
            key = following[0]
            assert MANUAL_KEY.fullmatch(key), f"not a grouped Base32 key: {key!r}"
            return key
    raise AssertionError(f"no manual key in:\n{stdout}")


def recovery_codes(stdout: str) -> list[str]:
    return RECOVERY_CODE.findall(stdout)


def wrong_code(secret: str, now: float | None = None) -> str:
    """A 6-digit code that is certainly not accepted around ``now`` (not in the +-1 step window, nor the next)."""
    now = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    taken = {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}
    candidate = int(totp.at(now))
    while f"{candidate:06d}" in taken:
        candidate = (candidate + 1) % 1_000_000
    return f"{candidate:06d}"


class Interactive:
    """A running command whose stdout is read as it arrives, so the test can answer a prompt it has seen."""

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self.args = list(command)
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self._cond = threading.Condition()
        self._out = bytearray()
        self._err = bytearray()
        self._open = 2
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: object, buffer: bytearray) -> None:
        # read1 returns whatever the pipe holds (the prompt has no newline), b"" only at end of file.
        read1 = stream.read1  # type: ignore[attr-defined]
        try:
            while chunk := read1(4096):
                with self._cond:
                    buffer.extend(chunk)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._open -= 1
                self._cond.notify_all()

    def _decoded(self) -> tuple[str, str]:
        return self._out.decode("utf-8", "replace"), self._err.decode("utf-8", "replace")

    def wait_for(self, text: str, count: int = 1, timeout: float = TIMEOUT) -> str:
        """Block until ``text`` is on stdout ``count`` times; returns stdout so far. Fails on exit or timeout."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._out.count(wanted) < count:
                remaining = deadline - time.monotonic()
                if self._open == 0 or remaining <= 0:
                    out, err = self._decoded()
                    raise AssertionError(f"{text!r} never appeared\n--- stdout:\n{out}\n--- stderr:\n{err}")
                self._cond.wait(remaining)
            return self._out.decode("utf-8", "replace")

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def finish(self, timeout: float = TIMEOUT) -> Result:
        """Close stdin (EOF), wait for the exit, and return everything the command wrote."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        returncode = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        out, err = self._decoded()
        return Result(self.args, returncode, out, err)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        for thread in self._threads:
            thread.join(TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class CLI:
    """Runs `jupyter 2fa` subcommands; ``launcher`` picks python -m, the console script, or `jupyter 2fa`."""

    def __init__(self, launcher: Sequence[str] = MODULE) -> None:
        self.launcher = tuple(launcher)

    def env(self, **overrides: str | None) -> dict[str, str]:
        """A copy of the current environment (with the fixture's JUPYTER_* paths), plus ``overrides``."""
        env = dict(os.environ)
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = TIMEOUT
    ) -> Result:
        command = [*self.launcher, *args]
        proc = subprocess.run(
            command,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=self.env() if env is None else env,
            timeout=timeout,
            check=False,
        )
        return Result(command, proc.returncode, proc.stdout, proc.stderr)

    @contextlib.contextmanager
    def interactive(self, *args: str, env: dict[str, str] | None = None) -> Iterator[Interactive]:
        session = Interactive([*self.launcher, *args], self.env() if env is None else env)
        try:
            yield session
        finally:
            session.close()

    def enroll(self, *args: str, env: dict[str, str] | None = None, user: str | None = None) -> Enrolled:
        """Run `enroll ARGS`, read the manual key, answer the prompt with the current code; must succeed."""
        with self.interactive("enroll", *args, env=env) as session:
            shown = session.wait_for(PROMPT)
            key = manual_key(shown)
            secret = key.replace(" ", "")
            session.send(pyotp.TOTP(secret).now() + "\n")
            result = session.finish()
        assert result.returncode == 0, str(result)
        assert "Traceback" not in result.stderr, str(result)
        name = user if user is not None else (args[0] if args else "")
        return Enrolled(name, secret, key, recovery_codes(result.stdout), result)


@contextlib.contextmanager
def core() -> Iterator[Enrollment]:
    """The same store the CLI uses, opened in this process (the fixture's environment is already set here)."""
    enrollment = TwoFactorConfig().open_enrollment()
    try:
        yield enrollment
    finally:
        enrollment.store.close()


def enroll_in_process(user: str) -> tuple[str, list[str]]:
    """Link ``user`` through the core directly (quicker than the CLI where enrollment is only the set-up)."""
    now = time.time()
    with core() as enrollment:
        enrollment.begin(user, now)
        secret = enrollment.reveal(user, now).secret
        codes = enrollment.confirm(user, pyotp.TOTP(secret).at(now), now)
    return secret, codes


def data_dir() -> Path:
    """JUPYTER_DATA_DIR/jupyter_2fa, where the default store and key file live."""
    return Path(os.environ["JUPYTER_DATA_DIR"]) / "jupyter_2fa"


def fresh_totp(secret: str) -> tuple[str, float]:
    """A code and the time to check it at, an hour ahead: newer than any step a test used before."""
    when = time.time() + 3600
    return pyotp.TOTP(secret).at(when), when
