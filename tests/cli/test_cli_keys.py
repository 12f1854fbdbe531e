"""`rotate-key` with the key file and with JUPYTER_2FA_KEYS, and what a wrong key does to every command."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from jupyter_2fa.core import Keyring, Outcome, WrongKey

from helpers.cli import CLI, core, data_dir, fresh_totp


def test_rotate_key_replaces_the_key_file(cli: CLI) -> None:
    enrolled = cli.enroll("alice")
    key_file = data_dir() / "secret.key"
    before = key_file.read_bytes()

    result = cli("rotate-key")
    assert result.returncode == 0, str(result)
    assert "Re-encrypted 1 account(s) under a new key" in result.stdout
    assert "Traceback" not in result.stderr

    after = key_file.read_bytes()
    assert after != before
    keys = after.decode().split()
    assert len(keys) == 1
    Fernet(keys[0])  # a valid key
    assert keys[0].encode() not in before
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(path.name for path in data_dir().iterdir()) == ["secret.key", "store.sqlite"]

    status = cli("status", "alice")
    assert status.returncode == 0, str(status)
    assert status.field("second factor").startswith("linked")
    assert status.field("recovery codes left") == "10"

    code, when = fresh_totp(enrolled.secret)
    with core() as enrollment:
        assert enrollment.verifier.verify("alice", code, when).outcome is Outcome.ACCEPTED
    # Everything was really re-encrypted: the retired key reads neither the key check nor the secret.
    with contextlib.closing(sqlite3.connect(data_dir() / "store.sqlite")) as db:
        tokens = [
            *db.execute("SELECT value FROM jupyter_2fa_meta WHERE key = 'key_check'"),
            *db.execute("SELECT secret FROM jupyter_2fa_accounts"),
        ]
    assert len(tokens) == 2
    retired, current = Keyring([before.strip()], "old key"), Keyring([after.strip()], "new key")
    for (token,) in tokens:
        current.decrypt(token)
        with pytest.raises(WrongKey):
            retired.decrypt(token)


def test_rotate_key_with_keys_in_the_environment(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    enrolled = cli.enroll("alice", env=cli.env(JUPYTER_2FA_KEYS=old))

    result = cli("rotate-key", env=cli.env(JUPYTER_2FA_KEYS=f"{new};{old}"))
    assert result.returncode == 0, str(result)
    assert "Re-encrypted 1 account(s) under the first key in $JUPYTER_2FA_KEYS" in result.stdout
    assert old not in result.stdout + result.stderr and new not in result.stdout + result.stderr

    status = cli("status", "alice", env=cli.env(JUPYTER_2FA_KEYS=new))
    assert status.returncode == 0, str(status)
    assert status.field("second factor").startswith("linked")

    stale = cli("status", "alice", env=cli.env(JUPYTER_2FA_KEYS=old))
    assert stale.returncode == 1, str(stale)
    assert "cannot be decrypted" in stale.stderr

    assert not (data_dir() / "secret.key").exists(), "keys from the environment must not create a key file"
    monkeypatch.setenv("JUPYTER_2FA_KEYS", new)
    code, when = fresh_totp(enrolled.secret)
    with core() as enrollment:
        assert enrollment.verifier.verify("alice", code, when).outcome is Outcome.ACCEPTED


def test_a_replaced_key_file_fails_closed_with_a_clear_message(cli: CLI) -> None:
    cli.enroll("alice")
    key_file = data_dir() / "secret.key"
    key_file.write_bytes(Fernet.generate_key() + b"\n")
    key_file.chmod(0o600)

    for args in (("status", "alice"), ("enroll", "bob"), ("list",)):
        result = cli(*args)
        assert result.returncode == 1, str(result)
        assert "cannot be decrypted" in result.stderr
        assert "Traceback" not in result.stderr
        assert "Linking" not in result.stdout


def test_rotate_key_with_a_hubs_crypt_key(cli: CLI, tmp_path: Path) -> None:
    """A hub whose 2FA keys derive from JUPYTERHUB_CRYPT_KEY rotates within it ("new;old", then "new"); the
    command used to write a key file the hub never reads and leave the store unreadable to the hub."""
    hub_config = tmp_path / "hub" / "jupyterhub_config.py"
    hub_config.parent.mkdir()
    hub_config.write_text('c.JupyterHub.authenticator_class = "totp"\n')
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    enrolled = cli.enroll("alice", "--config", str(hub_config), env=cli.env(JUPYTERHUB_CRYPT_KEY=old), user="alice")

    result = cli("rotate-key", "--config", str(hub_config), env=cli.env(JUPYTERHUB_CRYPT_KEY=f"{new};{old}"))
    assert result.returncode == 0, str(result)
    assert "under the first key in $JUPYTERHUB_CRYPT_KEY" in result.stdout
    assert not (hub_config.parent / "jupyter_2fa.key").exists(), "the hub reads no key file with a crypt key"

    status = cli("status", "alice", "--config", str(hub_config), env=cli.env(JUPYTERHUB_CRYPT_KEY=new))
    assert status.returncode == 0, str(status)
    assert status.field("second factor").startswith("linked")
    stale = cli("status", "alice", "--config", str(hub_config), env=cli.env(JUPYTERHUB_CRYPT_KEY=old))
    assert stale.returncode == 1, str(stale)
    assert enrolled.secret not in result.stdout + stale.stderr
