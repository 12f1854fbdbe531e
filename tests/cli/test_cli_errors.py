"""Wrong command lines and unusable stores: a clear message and a non-zero exit, never a traceback.

Exit 2 means the command line itself was wrong (like argparse); exit 1 means it was understood but refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from jupyter_2fa.cli import TwoFactorApp

from helpers.cli import CLI, core, data_dir

Prepare = Callable[[Path], dict[str, str]]  # gets tmp_path, returns environment overrides


def _no_setup(_tmp: Path) -> dict[str, str]:
    return {}


def _regular_file(tmp: Path) -> dict[str, str]:
    (tmp / "afile").write_text("not a folder\n")
    return {}


def _data_dir_under_a_file(tmp: Path) -> dict[str, str]:
    _regular_file(tmp)
    return {"JUPYTER_DATA_DIR": str(tmp / "afile" / "data")}


def _default_store() -> None:
    with core():  # creates the default store and key file, both 0600
        pass


def _loose(name: str) -> Prepare:
    def prepare(_tmp: Path) -> dict[str, str]:
        _default_store()
        (data_dir() / name).chmod(0o644)
        return {}

    return prepare


def _key_file(content: bytes) -> Prepare:
    def prepare(_tmp: Path) -> dict[str, str]:
        _default_store()
        key_file = data_dir() / "secret.key"
        key_file.write_bytes(content)
        key_file.chmod(0o600)
        return {}

    return prepare


def _keys_env(_tmp: Path) -> dict[str, str]:
    return {"JUPYTER_2FA_KEYS": "not-a-fernet-key"}


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    exit: int | None  # None: any non-zero exit
    message: str | None  # expected in stderr ("{tmp}" is replaced by tmp_path)
    prepare: Prepare = _no_setup


CASES = [
    pytest.param(Case(("bogus",), 2, "'bogus'"), id="unknown-subcommand"),
    pytest.param(Case((), 2, "No subcommand given"), id="no-subcommand"),
    pytest.param(Case(("status", "a", "b"), 2, "too many arguments: a b"), id="status-two-users"),
    pytest.param(Case(("--bogus",), None, "bogus"), id="unknown-option"),
    pytest.param(Case(("status", "--bogus"), None, "bogus"), id="unknown-option-after-subcommand"),
    pytest.param(Case(("reset", ""), 2, "USER must be a non-empty"), id="reset-empty-user"),
    pytest.param(Case(("reset",), 2, "USER is required"), id="reset-without-user"),
    pytest.param(Case(("unlock",), 2, "USER is required"), id="unlock-without-user"),
    pytest.param(Case(("list", "extra-arg"), 2, "extra-arg"), id="list-extra-arg"),
    pytest.param(Case(("rotate-key", "x"), 2, "takes no arguments"), id="rotate-key-extra-arg"),
    pytest.param(Case(("reset", "nobody"), 1, "nobody is not in the 2FA store"), id="reset-unknown-user"),
    pytest.param(Case(("unlock", "nobody"), 1, "nobody is not in the 2FA store"), id="unlock-unknown-user"),
    pytest.param(Case(("recovery-codes", "nobody"), 1, "nobody has no linked device"), id="recovery-codes-unenrolled"),
    pytest.param(Case(("status", "--db-url", "nosuchdb://x"), 1, "nosuchdb"), id="db-url-unknown-scheme"),
    # BUG (cli.py, TwoFactorApp): options before the subcommand are not accepted at all.
    pytest.param(Case(("--db-url", "nosuchdb://x", "status"), 1, "nosuchdb"), id="db-url-before-subcommand"),
    # BUG (core/store.py _prepare_sqlite_file): the OSError of creating the file escapes as a traceback.
    pytest.param(
        Case(("status", "--db-url", "sqlite:///{tmp}/afile/store.sqlite"), 1, "{tmp}/afile", _regular_file),
        id="store-parent-is-a-file",
    ),
    # BUG (core/keys.py Keyring.from_file): same for the key file, when the data dir cannot be created.
    pytest.param(Case(("status",), 1, "{tmp}/afile", _data_dir_under_a_file), id="data-dir-under-a-file"),
    pytest.param(Case(("status",), 1, "chmod 600", _loose("store.sqlite")), id="store-file-0644"),
    pytest.param(Case(("status",), 1, "chmod 600", _loose("secret.key")), id="key-file-0644"),
    pytest.param(Case(("status",), 1, "not a Fernet key", _key_file(b"not a key\n")), id="key-file-not-a-key"),
    # BUG (core/keys.py Keyring.from_file): read_text() raises UnicodeDecodeError, not a KeyProblem.
    pytest.param(Case(("status",), 1, "secret.key", _key_file(b"\xff\xfe\x00\n")), id="key-file-binary"),
    pytest.param(Case(("status",), 1, "$JUPYTER_2FA_KEYS", _keys_env), id="keys-env-not-a-key"),
    # BUG (cli.py TwoFactorCommand.two_factor): a TraitError from TwoFactorConfig's validators escapes.
    pytest.param(
        Case(("status", "--TwoFactorConfig.window=99"), None, "window must be between 0 and 10"),
        id="setting-out-of-range",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_invocations_fail_cleanly(cli: CLI, tmp_path: Path, case: Case) -> None:
    env = cli.env(**case.prepare(tmp_path))
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in case.args]
    result = cli(*args, env=env)
    assert "Traceback" not in result.stderr, str(result)
    if case.exit is None:
        assert result.returncode != 0, str(result)
    else:
        assert result.returncode == case.exit, str(result)
    assert result.stderr.strip(), str(result)
    if case.message is not None:
        assert case.message.replace("{tmp}", str(tmp_path)) in result.stderr, str(result)


@pytest.mark.parametrize("subcommand", [None, *sorted(TwoFactorApp.subcommands)])
def test_help(cli: CLI, subcommand: str | None) -> None:
    result = cli(*([subcommand] if subcommand else []), "--help")
    assert result.returncode == 0, str(result)
    assert "Traceback" not in result.stderr
    if subcommand is None:
        for name in TwoFactorApp.subcommands:
            assert name in result.stdout
    else:
        assert TwoFactorApp.subcommands[subcommand][1].split()[0] in result.stdout
