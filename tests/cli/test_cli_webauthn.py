"""Passkeys and security keys in `status`, `list`, `reset`, `enroll` and `recovery-codes`.

The keys are put straight into the store the CLI reads (a browser ceremony is the server tests' business); each
case names the factors an account has, and the test checks what the admin sees in a terminal.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import pytest

from jupyter_2fa.core import recovery
from jupyter_2fa.core.webauthn import NewCredential

from helpers.cli import CLI, core, enroll_in_process

ADDED = 1_700_000_000.0  # 2023-11-14 22:13 UTC
USED = 1_700_086_400.0  # a day later
ZERO_AAGUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Key:
    name: str
    credential_id: bytes
    transports: tuple[str, ...] = ("usb",)
    used: bool = False

    @property
    def encoded_id(self) -> str:
        return base64.urlsafe_b64encode(self.credential_id).decode().rstrip("=")

    @property
    def label(self) -> str:
        """The `status` field of this key: its id's first 8 base64url characters."""
        return f"key {self.encoded_id[:8]}..."


YUBIKEY = Key("YubiKey 5", bytes(range(32)), ("nfc", "usb"), used=True)
PHONE = Key("Pixel passkey", bytes(range(100, 132)), ("hybrid", "internal"))
BARE = Key("Old key", b"\xff" * 16, ())
PUBLIC_KEY = b"\xa5\x01\x02\x03&public-key-bytes"


def add_keys(user: str, *keys: Key) -> None:
    with core() as enrollment:
        store = enrollment.store
        for key in keys:
            credential = NewCredential(
                credential_id=key.credential_id,
                public_key=PUBLIC_KEY,
                sign_count=0,
                transports=key.transports,
                aaguid=ZERO_AAGUID,
            )
            assert store.add_webauthn_credential(user, credential, key.name, ADDED)
            if key.used:
                assert store.record_webauthn_use(user, key.credential_id, 0, 7, USED)


def give_recovery_codes(user: str) -> list[str]:
    """What registering a first key hands out: recovery codes (the key ceremony itself is not the CLI's)."""
    codes = recovery.new_codes(10)
    with core() as enrollment:
        enrollment.store.replace_recovery_codes(user, [recovery.hash_code(code) for code in codes])
    return codes


@dataclass(frozen=True)
class StatusCase:
    app: bool
    keys: tuple[Key, ...]
    second_factor: str  # how the `second factor` line starts
    authenticator_app: str
    key_lines: dict[str, str]  # key field -> its whole value


STATUS_CASES = {
    "app-only": StatusCase(True, (), "linked since ", "linked since ", {}),
    "keys-only": StatusCase(
        False,
        (YUBIKEY, PHONE, BARE),
        "linked since 2023-11-14 22:13 UTC",
        "not linked",
        {
            YUBIKEY.label: "'YubiKey 5', added 2023-11-14 22:13 UTC, last used 2023-11-15 22:13 UTC, "
            "transports nfc, usb",
            PHONE.label: "'Pixel passkey', added 2023-11-14 22:13 UTC, last used never, transports hybrid, internal",
            BARE.label: "'Old key', added 2023-11-14 22:13 UTC, last used never, transports not reported",
        },
    ),
    "app-and-key": StatusCase(
        True,
        (YUBIKEY,),
        "linked since 2023-11-14 22:13 UTC",  # the key is older than the app linked just now
        "linked since ",
        {YUBIKEY.label: "'YubiKey 5', added 2023-11-14 22:13 UTC, last used 2023-11-15 22:13 UTC, transports nfc, usb"},
    ),
}


@pytest.mark.parametrize("case", list(STATUS_CASES.values()), ids=list(STATUS_CASES))
def test_status_shows_the_app_and_each_key(cli: CLI, case: StatusCase) -> None:
    if case.app:
        enroll_in_process("alice")
    add_keys("alice", *case.keys)

    result = cli("status", "alice")
    assert result.returncode == 0, str(result)
    assert result.stderr == ""
    assert result.field("second factor").startswith(case.second_factor), str(result)
    assert result.field("authenticator app").startswith(case.authenticator_app), str(result)
    assert result.field("security keys") == str(len(case.keys))
    for label, value in case.key_lines.items():
        assert result.field(label) == value
    assert result.field("recovery codes left") == ("10" if case.app else "0")
    assert result.field("locked") == "no"
    for key in case.keys:  # the whole credential id and the public key never reach the screen
        assert key.encoded_id not in result.stdout
        assert key.encoded_id[:9] not in result.stdout
    assert base64.urlsafe_b64encode(PUBLIC_KEY).decode().rstrip("=") not in result.stdout
    assert PUBLIC_KEY.hex() not in result.stdout
    assert "public-key-bytes" not in result.stdout


def test_status_without_any_factor_shows_no_keys(cli: CLI) -> None:
    result = cli("status", "nobody")
    assert result.returncode == 0, str(result)
    assert result.field("second factor") == "not linked"
    assert result.field("authenticator app") == "not linked"
    assert result.field("security keys") == "0"
    assert "recovery codes left" not in result.stdout


HOSTILE_NAMES = {
    # name in the store -> the value of its key field, as the terminal shows it
    "clear-screen": ("Yubi\x1b[2J\x1b[HKey", "'Yubi\\x1b[2J\\x1b[HKey'"),
    "forged-line": ("x\nlocked:              no", "'x\\nlocked:              no'"),
    "bidi-override": ("key\u202egnp.exe", "'key\\u202egnp.exe'"),
    "c1-csi": ("a\x9b31mred", "'a\\x9b31mred'"),
    "quotes": ('My "work" key\'s', "'My \"work\" key\\'s'"),
    "long": ("k" * 200, repr("k" * 61 + "...")),
}


@pytest.mark.parametrize(("name", "shown"), list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_a_key_name_cannot_take_over_the_terminal(cli: CLI, name: str, shown: str) -> None:
    key = Key(name, b"\x42" * 20)
    add_keys("mallory", key)
    result = cli("status", "mallory")
    assert result.returncode == 0, str(result)
    assert result.field(key.label) == f"{shown}, added 2023-11-14 22:13 UTC, last used never, transports usb"
    lines = result.stdout.splitlines()
    assert len(lines) == 8, str(result)  # one line per field: the name added none
    assert [line.partition(":")[0].strip() for line in lines].count("locked") == 1
    assert all(ch.isprintable() for line in lines for ch in line), str(result)


@dataclass(frozen=True)
class ListCase:
    setup: tuple[str, ...]  # "app", "keys", "pending"
    row: tuple[str, str, str]  # LINKED, KEYS, APP


LIST_CASES = {
    "app": ListCase(("app",), ("yes", "0", "yes")),
    "keys": ListCase(("keys",), ("yes", "2", "no")),
    "app-and-keys": ListCase(("app", "keys"), ("yes", "2", "yes")),
    "pending-app": ListCase(("pending",), ("no", "0", "no")),
}


def test_list_has_a_keys_column_and_counts_keys_as_a_second_factor(cli: CLI) -> None:
    for user, case in LIST_CASES.items():
        if "app" in case.setup:
            enroll_in_process(user)
        if "keys" in case.setup:
            add_keys(user, Key("one", user.encode() + b"-1" * 8), Key("two", user.encode() + b"-2" * 8))
        if "pending" in case.setup:
            with core() as enrollment:
                enrollment.begin(user, time.time())

    listed = cli("list")
    assert listed.returncode == 0, str(listed)
    header, *lines = listed.stdout.strip().splitlines()
    assert header.split() == ["USER", "LINKED", "KEYS", "APP", "SINCE", "CODES", "FAILS", "LOCKED", "PENDING"]
    rows = {line.split()[0]: line.split() for line in lines}
    assert sorted(rows) == sorted(LIST_CASES)
    for user, case in LIST_CASES.items():
        _user, linked, keys, app, *_since, _codes, _fails, _locked, pending = rows[user]
        assert (linked, keys, app) == case.row, rows[user]
        assert pending == ("yes" if "pending" in case.setup else "no"), rows[user]
        assert (rows[user][4] == "-") is ("app" not in case.setup), rows[user]


@pytest.mark.parametrize("app", [True, False], ids=["app-and-keys", "keys-only"])
def test_reset_removes_the_app_every_key_and_the_recovery_codes(cli: CLI, app: bool) -> None:
    if app:
        enroll_in_process("alice")
    else:
        give_recovery_codes("alice")
    add_keys("alice", YUBIKEY, PHONE)

    reset = cli("reset", "alice")
    assert reset.returncode == 0, str(reset)
    assert reset.stdout.startswith("Reset alice: ")
    for removed in ("authenticator app", "every passkey and security key", "recovery codes"):
        assert removed in reset.stdout

    status = cli("status", "alice")
    assert status.field("second factor") == "not linked"
    assert status.field("authenticator app") == "not linked"
    assert status.field("security keys") == "0"
    assert "recovery codes left" not in status.stdout
    with core() as enrollment:
        assert enrollment.store.webauthn_credentials("alice") == []
    assert "every passkey and security key" in " ".join(cli("reset", "--help").stdout.split())  # help is re-wrapped


def test_enroll_refuses_an_account_that_has_only_keys(cli: CLI) -> None:
    add_keys("alice", YUBIKEY)
    result = cli("enroll", "alice")
    assert result.returncode == 1, str(result)
    assert "alice already has an active second factor (1 passkey or security key)" in result.stderr
    assert "jupyter 2fa reset alice" in result.stderr
    assert "Or type this key by hand" not in result.stdout
    with core() as enrollment:
        account = enrollment.store.get("alice")
    assert account is not None and account.pending_secret is None and not account.enrolled


def test_recovery_codes_of_a_keys_only_account_take_a_recovery_code(cli: CLI) -> None:
    old = give_recovery_codes("alice")
    add_keys("alice", YUBIKEY)

    result = cli("recovery-codes", "alice", input=old[0] + "\n")
    assert result.returncode == 0, str(result)
    assert "Enter an unused recovery code" in result.stdout
    with core() as enrollment:
        assert not enrollment.verifier.verify("alice", old[1], time.time()).ok
    assert cli("status", "alice").field("recovery codes left") == "10"

    no_factor = cli("recovery-codes", "bob", input="")
    assert no_factor.returncode == 1, str(no_factor)
    assert "bob has no linked device" in no_factor.stderr
