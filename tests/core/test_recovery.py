"""Recovery codes: format, normalisation of what people type, and Argon2 hashes that only match once typed right."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from jupyter_2fa.core import InvalidCode, recovery

from helpers.core import RECOVERY_CODE_FORMAT


def test_new_codes_format_and_uniqueness() -> None:
    codes = recovery.new_codes(200)
    assert len(codes) == 200
    assert len(set(codes)) == 200
    for code in codes:
        assert RECOVERY_CODE_FORMAT.fullmatch(code), code
        assert recovery.normalize(code) == code.replace("-", "")
    assert not set("".join(codes)) & set("ilou")


@pytest.mark.parametrize("count", [0, 1, 10], ids=["none", "one", "ten"])
def test_new_codes_count(count: int) -> None:
    assert len(recovery.new_codes(count)) == count


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("7gk2q-x9m4d", "7gk2qx9m4d"),
        ("7GK2Q-X9M4D", "7gk2qx9m4d"),
        (" 7GK2Q-X9M4D ", "7gk2qx9m4d"),
        ("7gk2qx9m4d", "7gk2qx9m4d"),
        ("7gk2q x9m4d", "7gk2qx9m4d"),
        ("7g-k2-q-x9-m4d", "7gk2qx9m4d"),
        ("abcdo-lli00", "abcd011100"),
        ("ABCDO-LLI00", "abcd011100"),
        ("12345-67890", "1234567890"),
    ],
    ids=[
        "as-shown",
        "upper",
        "padded",
        "no-dash",
        "space-for-dash",
        "extra-dashes",
        "confusable-letters",
        "confusable-upper",
        "all-digits",
    ],
)
def test_normalize_accepts(typed: str, normalized: str) -> None:
    assert recovery.normalize(typed) == normalized


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("7gk2q-x9m4", "not a recovery code"),
        ("7gk2q-x9m4dd", "not a recovery code"),
        ("7gk2q-x9m4u", "not a recovery code"),
        ("7gk2q_x9m4d", "not a recovery code"),
        ("\uff17gk2q-x9m4d", "not a recovery code"),  # full-width 7
        ("7gk2q-x9m4d\x00", "not a recovery code"),
        ("", "not a recovery code"),
        ("a" * 65, "too long"),
        (None, "text"),
        (b"7gk2q-x9m4d", "text"),
        (1234567890, "text"),
    ],
    ids=[
        "short",
        "long",
        "letter-u",
        "underscore",
        "full-width",
        "nul",
        "empty",
        "65-chars",
        "none",
        "bytes",
        "int",
    ],
)
def test_normalize_refuses(typed: object, reason: str) -> None:
    with pytest.raises(InvalidCode, match=reason):
        recovery.normalize(typed)


def test_hash_is_salted_argon2id_and_matches_any_typed_form() -> None:
    code = recovery.new_codes(1)[0]
    first, second = recovery.hash_code(code), recovery.hash_code(code.upper())
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    for stored in (first, second):
        assert code not in stored
        assert recovery.normalize(code) not in stored
        assert recovery.matches(recovery.normalize(code), stored)
        assert recovery.matches(recovery.normalize(code.upper().replace("-", "")), stored)


@pytest.mark.parametrize(
    "stored",
    ["", "not a hash", "$argon2id$v=19$m=19456,t=2,p=1$garbage$garbage"],
    ids=["empty", "text", "mangled-argon2"],
)
def test_corrupt_hash_never_matches(stored: str) -> None:
    assert recovery.matches("7gk2qx9m4d", stored) is False


def test_other_code_does_not_match() -> None:
    mine, other = recovery.new_codes(2)
    assert not recovery.matches(recovery.normalize(other), recovery.hash_code(mine))


def test_hashes_run_only_in_the_hashing_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id runs in at most half the CPUs' worth of its own threads, whoever asks: a flood cannot take every
    core, and only those threads' malloc arenas keep its 19 MiB (with one arena per worker, four workers kept
    77 MiB on this machine where one thread keeps 20)."""
    code = recovery.new_codes(1)[0]
    stored = recovery.hash_code(code)
    real = recovery._hasher()
    threads: list[str] = []

    class Spy:
        def verify(self, code_hash: str, typed: str) -> bool:
            threads.append(threading.current_thread().name)
            return real.verify(code_hash, typed)

    monkeypatch.setattr(recovery, "_hasher", Spy)
    with ThreadPoolExecutor(8) as callers:
        assert all(callers.map(lambda _: recovery.matches(recovery.normalize(code), stored), range(16)))
    assert len(threads) == 16
    assert all(name.startswith("jupyter-2fa-argon2") for name in threads), threads
    assert len(set(threads)) <= max(1, (os.cpu_count() or 2) // 2)
