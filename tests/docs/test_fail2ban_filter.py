"""The fail2ban filter the package ships (``jupyter_2fa/share/fail2ban/filter.d/jupyter-2fa.conf``), which the hub
admin guide tells admins to install.

Two tests: fail2ban's own ``fail2ban-regex`` against a real audit log written by a real gate (wrong passwords and
wrong codes from a few addresses behind a listed proxy, one success), and, always, the filter's ``failregex`` and
``datepattern`` translated to Python ``re`` (with fail2ban's ``<HOST>`` and ``{EPOCH}`` expansions) over lines
written by the product's own audit writer.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

import jupyter_2fa
from jupyter_2fa.core.audit import Action, AuditEvent, JsonlAuditLog

from helpers.ci import skip_or_fail
from helpers.wheel import WheelInstall
from helpers.widgets import enroll_over_api

SHARE = Path(jupyter_2fa.__file__).parent / "share" / "fail2ban"
FILTER = SHARE / "filter.d" / "jupyter-2fa.conf"
JAIL = SHARE / "jail.d" / "jupyter-2fa.conf"

# fail2ban 1.0's expansions (fail2ban/server/failregex.py, datetemplate.py), without its DNS alternative.
IPV4 = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV6 = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)"
HOST = rf"\[?(?:(?:::f{{4,6}}:)?(?P<ip4>{IPV4})|(?P<ip6>{IPV6}))\]?"
EPOCH = r"\d{10,11}\b(?:\.\d{3,6})?"

ATTACKERS = {
    # address (sent as X-Forwarded-For by the listed proxy): (wrong passwords, wrong codes)
    "203.0.113.7": (3, 0),
    "198.51.100.23": (0, 2),
    "2001:db8::42": (1, 1),
}
USER_ADDRESS = "192.0.2.10"  # the owner, who logs in once


def definition() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()  # BasicInterpolation: %(_actions)s, as fail2ban's own reader does
    parser.read(FILTER)
    return parser["Definition"]


def python_filter() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(failregex, datepattern) as Python patterns."""
    section = definition()
    failregex = section["failregex"].strip()
    assert "\n" not in failregex, "one failregex line"
    datepattern = section["datepattern"].strip().replace("{EPOCH}", f"({EPOCH})")
    return re.compile(failregex.replace("<HOST>", HOST)), re.compile(datepattern)


def matched_host(line: str) -> str | None:
    """What fail2ban does with one line: find the date, cut it out, search the failregex; the host or None."""
    failregex, datepattern = python_filter()
    date = datepattern.search(line)
    assert date is not None, f"no date in {line!r}"
    assert abs(float(date.group(1)) - time.time()) < 3600, "the date is not the record's timestamp"
    found = failregex.search(line[: date.start()] + line[date.end() :])
    return (found.group("ip4") or found.group("ip6")) if found else None


EVIL_NAME = 'x", "remote_addr": "9.9.9.9", "outcome": "failure'
CASES = [
    # (id, action, outcome, reason, address, username, counted)
    ("wrong-password", Action.LOGIN, "failure", "wrong-password", "203.0.113.7", "alice", True),
    ("wrong-code", Action.LOGIN, "failure", "wrong-code", "203.0.113.7", "alice", True),
    ("malformed-code", Action.LOGIN, "failure", "malformed-code", "203.0.113.7", "alice", True),
    ("wrong-password-ipv6", Action.LOGIN, "failure", "wrong-password", "2001:db8::42", "alice", True),
    ("enrollment-page-password", Action.PASSWORD_CHECK, "failure", "wrong-password", "198.51.100.1", "bob", True),
    ("relink-wrong-code", Action.RELINK, "failure", "wrong-code", "198.51.100.1", "bob", True),
    ("new-codes-wrong-code", Action.RECOVERY_CODES_REGENERATED, "failure", "wrong-code", "198.51.100.1", "bob", True),
    ("cancel-wrong-code", Action.ENROLLMENT_CANCELLED, "failure", "wrong-code", "198.51.100.1", "bob", True),
    ("a-name-cannot-inject-an-address", Action.LOGIN, "failure", "wrong-password", "203.0.113.7", EVIL_NAME, True),
    ("success", Action.LOGIN, "success", "totp", "203.0.113.7", "alice", False),
    ("recovery-code-success", Action.RECOVERY_CODE_USED, "success", "recovery-code", "203.0.113.7", "alice", False),
    ("trusted-network", Action.LOGIN, "success", "trusted-network", "10.0.0.5", "alice", False),
    ("replayed-code", Action.LOGIN, "failure", "replayed-code", "203.0.113.7", "alice", False),
    ("throttled", Action.LOGIN, "failure", "throttled", "203.0.113.7", "alice", False),
    ("locked", Action.LOGIN, "failure", "locked", "203.0.113.7", "alice", False),
    ("not-enrolled", Action.LOGIN, "failure", "not-enrolled", "203.0.113.7", "alice", False),
    ("store-unavailable", Action.LOGIN, "failure", "store-unavailable", "203.0.113.7", "alice", False),
    ("enrollment-confirm-typo", Action.ENROLLMENT_CONFIRMED, "failure", "wrong-code", "203.0.113.7", "alice", False),
    ("lock", Action.LOCK, "failure", "too-many-failures", "203.0.113.7", "alice", False),
    ("unlock", Action.UNLOCK, "success", "admin", None, "alice", False),
    ("reset", Action.RESET, "success", "admin", None, "alice", False),
    ("no-address", Action.LOGIN, "failure", "wrong-password", None, "alice", False),
    ("name-only-looks-like-one", Action.LOGIN, "success", "totp", "192.0.2.1", EVIL_NAME, False),
]


@pytest.mark.parametrize(
    ("action", "outcome", "reason", "address", "username", "counted"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_the_failregex_counts_wrong_guesses_only(
    tmp_path: Path, action: Action, outcome: str, reason: str, address: str | None, username: str, counted: bool
) -> None:
    log = tmp_path / "audit.jsonl"
    JsonlAuditLog(log)(AuditEvent(action, username, outcome, reason, time.time(), address))
    line = log.read_text().rstrip("\n")
    assert matched_host(line) == (address if counted else None), line


def fail2ban_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin")  # Debian's
    if found is None:
        skip_or_fail(f"{name} not found; install the Debian package 'fail2ban' (.ci/run does)", "the fail2ban tests")
    return found


def test_fail2ban_reads_the_jail_example(tmp_path: Path) -> None:
    """fail2ban's own configuration reader (``fail2ban-client -t``, ``-d``: read, never start) takes the shipped
    jail and filter: the machine's configuration, without its other jails, plus ours pointed at a log file."""
    client = fail2ban_tool("fail2ban-client")
    conf = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf)
    for other in (conf / "jail.d").iterdir():
        other.unlink()  # Debian's defaults-debian.conf turns on sshd, whose log this machine may not have
    shutil.copy(FILTER, conf / "filter.d")
    log = tmp_path / "audit.jsonl"
    log.touch()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(JAIL)
    jail = parser["jupyter-2fa"]
    assert jail["filter"] == FILTER.stem
    jail["logpath"] = str(log)
    with (conf / "jail.d" / JAIL.name).open("w") as out:
        parser.write(out)
    tested = subprocess.run([client, "-c", str(conf), "-t"], capture_output=True, text=True, timeout=60, check=False)
    assert tested.returncode == 0 and "configuration test is successful" in tested.stdout + tested.stderr, (
        tested.stdout + tested.stderr
    )
    dumped = subprocess.run([client, "-c", str(conf), "-d"], capture_output=True, text=True, timeout=60, check=False)
    assert dumped.returncode == 0, dumped.stdout + dumped.stderr
    assert "['add', 'jupyter-2fa', 'auto']" in dumped.stdout
    assert f"['set', 'jupyter-2fa', 'addlogpath', '{log}', 'head']" in dumped.stdout
    assert "['set', 'jupyter-2fa', 'datepattern', '\"timestamp\": {EPOCH}']" in dumped.stdout
    assert "['set', 'jupyter-2fa', 'maxretry', 10]" in dumped.stdout


AUDIT_CONFIG = """
c.TwoFactorConfig.audit_log_file = {path!r}
# the test client plays a reverse proxy on loopback that forwards its clients' addresses
c.TwoFactorConfig.trusted_proxies = ["127.0.0.1/32"]
# every guess below is answered (none waits), so each one is an audit record of its own
c.TwoFactorConfig.password_backoff_free_attempts = 50
c.TwoFactorConfig.backoff_free_attempts = 50
"""


@pytest.mark.slow
def test_fail2ban_regex_finds_the_guessers_in_a_real_gates_audit_log(reader: Any, tmp_path: Path) -> None:
    tool = fail2ban_tool("fail2ban-regex")
    log = tmp_path / "audit" / "audit.jsonl"
    reader.jupyter_2fa("enable")
    reader.write_config(AUDIT_CONFIG.format(path=str(log)))
    with reader.server() as server:
        device = enroll_over_api(server.api_url)
        for address, (wrong_passwords, wrong_codes) in ATTACKERS.items():
            browser = server.browser()
            browser.session.headers["X-Forwarded-For"] = address
            for _ in range(wrong_passwords):
                assert browser.login(device.wrong_code(), password="not the password").status_code != 302
            for _ in range(wrong_codes):
                assert browser.login(device.wrong_code()).status_code != 302
        owner = server.browser()
        owner.session.headers["X-Forwarded-For"] = USER_ADDRESS
        assert owner.login(device.next_code()).status_code == 302

    records = [json.loads(line) for line in log.read_text().splitlines()]
    failures = [r for r in records if r["action"] == "login" and r["outcome"] == "failure"]
    assert sorted({r["remote_addr"] for r in failures}) == sorted(ATTACKERS)
    assert {
        (r["remote_addr"], r["reason"]) for r in records if r["outcome"] == "success" and r["action"] == "login"
    } == {(USER_ADDRESS, "totp")}

    result = subprocess.run([tool, "--out", "ip", str(log), str(FILTER)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    found = result.stdout.split()
    expected = [address for address, counts in ATTACKERS.items() for _ in range(sum(counts))]
    assert sorted(found) == sorted(expected), result.stdout + result.stderr

    summary = subprocess.run([tool, str(log), str(FILTER)], capture_output=True, text=True, check=False)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert f"Lines: {len(records)} lines, 0 ignored, {len(expected)} matched" in summary.stdout, summary.stdout
    assert f'[{len(records)}] "timestamp": {{EPOCH}}' in summary.stdout, summary.stdout  # every line has its date
    # The same log through the Python translation gives the same addresses.
    in_python = [host for line in log.read_text().splitlines() if (host := matched_host(line))]
    assert sorted(in_python) == sorted(expected)


# The hub admin guide's way to find the files in an installed package.
FIND_SHARE = "import jupyter_2fa, pathlib; print(pathlib.Path(jupyter_2fa.__file__).parent / 'share/fail2ban')"


def test_the_wheel_ships_the_filter_where_the_guide_finds_it(installed_wheel: WheelInstall, tmp_path: Path) -> None:
    relative = [path.relative_to(SHARE.parents[2]).as_posix() for path in (FILTER, JAIL)]
    with zipfile.ZipFile(installed_wheel.wheel) as wheel:
        assert set(relative) <= set(wheel.namelist()), relative
    found = installed_wheel.run("-c", FIND_SHARE, cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    share = Path(found.stdout.strip())
    assert (share / "filter.d" / FILTER.name).read_text() == FILTER.read_text()
    assert (share / "jail.d" / JAIL.name).read_text() == JAIL.read_text()
