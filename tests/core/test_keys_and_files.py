"""Encryption keys (parsing, files, rotation) and the private-file rules every 2FA file follows."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from jupyter_2fa.core import KeyProblem, Keyring, StoreError, WrongKey
from jupyter_2fa.core.files import (
    UnsafeFile,
    check_private_file,
    create_private_file,
    ensure_private_dir,
)
from jupyter_2fa.core.keys import BadKeyMaterial, new_key, parse_keys, write_key_file

from helpers.core import mode, umask

# -- parsing ---------------------------------------------------------------------------------------------------------

K1, K2, K3 = (Fernet.generate_key() for _ in range(3))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (K1.decode(), [K1]),
        (f"{K1.decode()};{K2.decode()}", [K1, K2]),
        (f"{K1.decode()},{K2.decode()}", [K1, K2]),
        (f"{K1.decode()}\n{K2.decode()}\n{K3.decode()}\n", [K1, K2, K3]),
        (f"  {K1.decode()} ; ;\n\n{K2.decode()}  ", [K1, K2]),
    ],
    ids=["one", "semicolon", "comma", "lines", "blanks-and-spaces"],
)
def test_parse_keys(text: str, expected: list[bytes]) -> None:
    assert parse_keys(text, "test") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no encryption key found in test"),
        (" ;\n, ", "no encryption key found in test"),
        ("not-a-key", "not a Fernet key"),
        (f"{K1.decode()};short", "not a Fernet key"),
    ],
    ids=["empty", "only-separators", "garbage", "one-bad-of-two"],
)
def test_parse_keys_refuses(text: str, message: str) -> None:
    with pytest.raises(BadKeyMaterial, match=message) as caught:
        parse_keys(text, "test")
    assert isinstance(caught.value, KeyProblem)
    assert isinstance(caught.value, StoreError)
    # The bad value itself is never echoed into a log line.
    assert "short" not in str(caught.value)


def test_keyring_needs_a_key() -> None:
    with pytest.raises(BadKeyMaterial, match="no encryption key found in nowhere"):
        Keyring([], "nowhere")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("   ", None), (f"{K1.decode()};{K2.decode()}", [K1, K2])],
    ids=["unset", "empty", "blank", "two-keys"],
)
def test_keyring_from_env(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: list[bytes] | None) -> None:
    if value is None:
        monkeypatch.delenv("TEST_2FA_KEYS", raising=False)
    else:
        monkeypatch.setenv("TEST_2FA_KEYS", value)
    keyring = Keyring.from_env("TEST_2FA_KEYS")
    assert (keyring.keys if keyring else None) == expected
    if keyring:
        assert keyring.source == "$TEST_2FA_KEYS"


def test_keyring_from_env_refuses_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_2FA_KEYS", "hunter2")
    with pytest.raises(BadKeyMaterial, match=r"\$TEST_2FA_KEYS"):
        Keyring.from_env("TEST_2FA_KEYS")


# -- encryption ------------------------------------------------------------------------------------------------------


def test_encrypt_decrypt_and_rotate() -> None:
    old, new = Keyring([K1], "old"), Keyring([K2, K1], "new")
    token = old.encrypt("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in token
    assert old.encrypt("JBSWY3DPEHPK3PXP") != token  # random IV
    assert new.decrypt(token) == "JBSWY3DPEHPK3PXP"
    rotated = new.rotate(token)
    assert Keyring([K2], "only new").decrypt(rotated) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(WrongKey):
        old.decrypt(rotated)


@pytest.mark.parametrize(
    "token",
    [Keyring([K3], "other").encrypt("secret"), "not-a-token", "", "gAAAAA" + "x" * 80, "ünïcode"],
    ids=["other-key", "garbage", "empty", "truncated", "non-ascii"],
)
def test_decrypt_with_wrong_key_is_wrong_key(token: str) -> None:
    keyring = Keyring([K1, K2], "$JUPYTER_2FA_KEYS")
    with pytest.raises(WrongKey, match=r"cannot be decrypted with the keys from \$JUPYTER_2FA_KEYS"):
        keyring.decrypt(token)


def test_rotate_with_wrong_key_is_wrong_key() -> None:
    with pytest.raises(WrongKey, match="cannot be decrypted"):
        Keyring([K1], "k1").rotate(Keyring([K2], "k2").encrypt("x"))


# -- key files -------------------------------------------------------------------------------------------------------


def test_key_file_created_private_even_with_a_lax_umask(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "deeper" / "2fa.key"
    with umask(0o022):
        keyring = Keyring.from_file(path)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert len(keyring.keys) == 1
    assert keyring.source == str(path)
    # Opening again reads the same key instead of making a new one.
    assert Keyring.from_file(path).keys == keyring.keys


def test_key_file_not_created_when_create_is_false(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFile, match="does not exist"):
        Keyring.from_file(tmp_path / "missing.key", create=False)
    assert not (tmp_path / "missing.key").exists()


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-key", "dangling"])
def test_symlinked_key_file_refused(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "real.key"
    if not dangling:
        create_private_file(target, K1 + b"\n")
    link = tmp_path / "2fa.key"
    link.symlink_to(target)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        Keyring.from_file(link)
    assert dangling != target.exists()  # nothing was created through the dangling link


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660], ids=oct)
def test_key_file_readable_by_others_refused(tmp_path: Path, file_mode: int) -> None:
    path = tmp_path / "2fa.key"
    path.write_bytes(K1 + b"\n")
    path.chmod(file_mode)
    with pytest.raises(UnsafeFile, match=f"chmod 600 {path}") as caught:
        Keyring.from_file(path)
    assert f"{file_mode:04o}" in str(caught.value)


def test_write_key_file_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "2fa.key"
    Keyring.from_file(path)
    (tmp_path / "2fa.key.new").write_text("left over from a crash")
    with umask(0o022):
        write_key_file(path, [K2, K1])
    assert mode(path) == 0o600
    assert Keyring.from_file(path).keys == [K2, K1]
    assert not (tmp_path / "2fa.key.new").exists()
    assert Fernet(new_key())  # new_key() is a valid Fernet key


# -- private files ---------------------------------------------------------------------------------------------------


def test_private_file_and_folder_modes(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "file"
    with umask(0o000):
        create_private_file(path, b"data")
    assert path.read_bytes() == b"data"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    check_private_file(path, what="test file")


def test_create_private_file_never_overwrites_or_follows(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.write_bytes(b"keep")
    with pytest.raises(StoreError, match="cannot create the 2FA file"):
        create_private_file(existing, b"overwrite")
    assert existing.read_bytes() == b"keep"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="cannot create the 2FA file"):
        create_private_file(link, b"through the link")
    assert not (tmp_path / "elsewhere").exists()


def _parent_is_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plain-file").write_text("")
    return tmp_path / "plain-file" / "2fa.key"


def _folder_under_a_file(tmp_path: Path) -> Path:
    # A key folder that cannot be created because its parent is a file (fails as root too, unlike chmod 0500).
    (tmp_path / "plain-file").write_text("")
    return tmp_path / "plain-file" / "keys" / "2fa.key"


def _binary_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "2fa.key"
    create_private_file(path, b"\xff\xfe binary \x00")
    return path


@pytest.mark.parametrize(
    ("make_path", "error", "words"),
    [
        (_parent_is_a_file, StoreError, "cannot create the 2FA file"),
        (_folder_under_a_file, StoreError, "cannot create the 2FA folder"),
        (_binary_key_file, BadKeyMaterial, "is not text"),
    ],
    ids=["parent-is-a-file", "folder-cannot-be-made", "binary-content"],
)
def test_unusable_key_file_is_a_clear_store_error(
    tmp_path: Path, make_path: Callable[[Path], Path], error: type[StoreError], words: str
) -> None:
    path = make_path(tmp_path)
    with pytest.raises(error, match=words) as caught:
        Keyring.from_file(path)
    assert str(path.parent if "folder" in words else path) in str(caught.value)


def test_symlinked_private_dir_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafeFile, match="symbolic link"):
        ensure_private_dir(tmp_path / "link")


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_check_private_file_refuses_non_regular_files(tmp_path: Path, kind: str) -> None:
    path = tmp_path / kind
    if kind == "directory":
        path.mkdir(mode=0o700)
    else:
        os.mkfifo(path, 0o600)
    with pytest.raises(UnsafeFile, match="not a regular file"):
        check_private_file(path, what="store")


def test_check_private_file_missing(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFile, match="does not exist"):
        check_private_file(tmp_path / "nope", what="store")


def test_concurrent_first_use_of_a_key_file_agrees_on_one_key(tmp_path: Path) -> None:
    """Two servers (or a server and the CLI) starting together on a fresh install must end up with one key.

    Keyring.from_file checks "missing?" and then creates the file exclusively; a second process in between gets
    "File exists" (or reads the file before the key is written) instead of simply reading the winner's key.
    """
    path = tmp_path / "keys" / "2fa.key"
    barrier = threading.Barrier(8)
    results: list[object] = []

    def load() -> None:
        barrier.wait(timeout=30)
        try:
            results.append(Keyring.from_file(path).keys)
        except Exception as err:  # the assertion below shows it
            results.append(err)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"concurrent Keyring.from_file failed: {errors!r}"
    assert len({tuple(keys) for keys in results if isinstance(keys, list)}) == 1
