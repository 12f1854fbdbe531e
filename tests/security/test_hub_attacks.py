"""Attacks on a real JupyterHub (behind configurable-http-proxy) with TOTPAuthenticator: parallel code guessing,
password-only successes between guesses, a stranger trying to lock users out, names that never logged in, and
the input-abuse table on the login form and the user API.

The proxy is listed in ``trusted_proxies`` here, so each simulated attacker can come from its own address
(X-Forwarded-For, as a real proxy would pass it on); that is also how a site names its proxy.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pyotp
import pytest
import requests
import schemathesis

import jupyter_2fa.hub

from helpers import malformed
from helpers.core import secret_variants
from helpers.fuzz import fuzz
from helpers.hub import (
    Hub,
    HubBrowser,
    enroll_on_page,
    enrolled_device,
    hub_store,
    login_error,
    module_hub,
    user_api,
)

PASSWORD = "correct horse battery staple"
HELP_TEXT = "Write to hpc-help@example.org with your username and project code."
INVALID = "Invalid username or password"
ADMIN = "hub-admin"
ADMIN_PASSWORD = "an admin's own password, 32 characters or more"
CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{{ADMIN!r}}}
c.SharedPasswordAuthenticator.admin_password = {ADMIN_PASSWORD!r}
c.TwoFactorConfig.lockout_threshold = 10
c.TwoFactorConfig.backoff_free_attempts = 10
c.TwoFactorConfig.password_backoff_max_seconds = 2
c.TwoFactorConfig.trusted_proxies = ["127.0.0.1"]
c.TwoFactorConfig.help_text = {HELP_TEXT!r}
c.JupyterHub.log_level = "DEBUG"
"""

T = TypeVar("T")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, CONFIG) as started:
        yield started


def in_parallel(count: int, attempt: Callable[[int], T]) -> list[T]:
    """``attempt(0..count-1)`` from ``count`` threads, released together."""
    start = threading.Barrier(count)

    def run(n: int) -> T:
        start.wait(timeout=60)
        return attempt(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def login_from(
    hub: Hub, source: str, username: str, password: str, otp: str, browser: HubBrowser | None = None
) -> requests.Response:
    """A login at ``source`` (as the listed proxy reports it), from ``browser`` or a fresh one."""
    browser = browser or hub.new_browser()
    browser.ensure_xsrf()
    fields = {"username": username, "password": password, "otp": otp}
    return browser.post("/hub/login", fields, headers={"X-Forwarded-For": source})


def answer(response: requests.Response) -> tuple[int, str | None]:
    return response.status_code, login_error(response)


def failures(hub: Hub, username: str) -> int:
    with hub_store(hub) as store:
        account = store.get(username)
    return account.failures if account else 0


def test_parallel_wrong_codes_lock_a_hub_user_at_the_limit(hub: Hub) -> None:
    device = enrolled_device(hub.new_browser(), "ulla", PASSWORD)
    wrong = device.wrong_code()
    answers = in_parallel(40, lambda n: answer(login_from(hub, f"203.0.113.{n}", "ulla", PASSWORD, wrong)))
    statuses = Counter(status for status, _ in answers)
    messages = Counter(message for _, message in answers)
    assert statuses == {403: 40}, statuses
    assert messages[INVALID] == 10, messages  # evaluated: the lock's threshold
    assert failures(hub, "ulla") == 10
    right = answer(login_from(hub, "198.51.100.1", "ulla", PASSWORD, device.next_code()))
    assert right == answer(login_from(hub, "198.51.100.2", "ulla", PASSWORD, wrong))
    assert right[1] is not None and HELP_TEXT in right[1]


def test_password_only_successes_between_guesses_reset_nothing(hub: Hub) -> None:
    """Defect 1 on the hub: a Basic status call (the password alone) between code guesses."""
    device = enrolled_device(hub.new_browser(), "vera", PASSWORD)
    for n in range(1, 11):
        assert answer(login_from(hub, "192.0.2.10", "vera", PASSWORD, device.wrong_code()))[0] == 403
        status = user_api(hub, "GET", "status", auth=("vera", PASSWORD))
        assert status.status_code in (200, 403), status.text
        assert failures(hub, "vera") == n
    locked = login_from(hub, "192.0.2.10", "vera", PASSWORD, device.next_code())
    assert HELP_TEXT in (login_error(locked) or "")


def test_a_stranger_cannot_lock_anyone_out_not_even_an_admin(hub: Hub) -> None:
    """Defect 2: 100 wrong passwords from 100 addresses leave no lock. The admin's browser that logged in
    before gets straight in; a new one waits at most 2 s (``password_backoff_max_seconds`` here)."""
    page = enroll_on_page(hub.new_browser(), ADMIN, ADMIN_PASSWORD)
    assert page.device is not None and len(page.recovery_codes) == 10
    known = hub.new_browser()
    assert login_from(hub, "198.51.100.60", ADMIN, ADMIN_PASSWORD, page.recovery_codes[0], known).status_code == 302
    known.logout()
    answers = in_parallel(
        25, lambda n: [answer(login_from(hub, f"10.9.{n}.{k}", ADMIN, "guess", "000000")) for k in range(4)]
    )
    assert {status for batch in answers for status, _ in batch} <= {403, 429}
    assert failures(hub, ADMIN) == 0
    again = login_from(hub, "198.51.100.60", ADMIN, ADMIN_PASSWORD, page.recovery_codes[1], known)
    assert again.status_code == 302, answer(again)
    code = page.device.next_code()  # a refused (throttled) attempt does not use it up
    for _ in range(20):  # the back-off is capped at 2 s
        response = login_from(hub, "198.51.100.50", ADMIN, ADMIN_PASSWORD, code)
        if response.status_code != 429:
            break
        time.sleep(0.5)
    assert response.status_code == 302, answer(response)


def test_names_that_never_logged_in_are_throttled_too(hub: Hub) -> None:
    """Defect 3: a hub user without a row (never logged in) gets the same back-off, and no row is made."""
    answers = [answer(login_from(hub, f"192.0.2.{n}", "never-logged-in", "guess", ""))[0] for n in range(12)]
    assert answers[:5] == [403] * 5
    assert 429 in answers[5:], answers
    with hub_store(hub) as store:
        assert store.get("never-logged-in") is None


# -- input abuse -------------------------------------------------------------------------------------------------

LOGIN_FIELDS = ["username", "password", "otp"]
API_FIELDS: list[tuple[str, str, list[str]]] = [
    ("POST", "recovery-codes", ["password", "otp"]),
    ("POST", "relink", ["password", "otp", "reveal"]),
    ("POST", "enrollment", ["password", "reveal"]),
    ("POST", "enrollment/confirm", ["code"]),
    ("DELETE", "enrollment", ["otp"]),
]


def tracebacks(hub: Hub) -> list[str]:
    return [line for line in hub.log_text().splitlines() if "Traceback" in line or "Uncaught exception" in line]


@pytest.mark.parametrize("field", LOGIN_FIELDS)
def test_every_malformed_login_field_is_a_clear_4xx(hub: Hub, field: str) -> None:
    before = len(tracebacks(hub))
    answers: dict[str, int] = {}
    for n, (name, value) in enumerate(malformed.TEXT.items()):
        fields = {"username": f"abuse-{field}", "password": PASSWORD, "otp": "000000", field: value}
        browser = hub.new_browser()
        browser.ensure_xsrf()
        encoded = {k: v.encode("utf-8", "surrogatepass") for k, v in fields.items()}
        answers[name] = browser.post("/hub/login", encoded, headers={"X-Forwarded-For": f"10.8.{n}.1"}).status_code
    assert {name: code for name, code in answers.items() if not 400 <= code < 500} == {}
    assert tracebacks(hub)[before:] == []


@pytest.mark.parametrize(("method", "path", "fields"), API_FIELDS, ids=[f"{m}-{p}" for m, p, _ in API_FIELDS])
def test_every_malformed_api_field_is_a_clear_4xx(hub: Hub, method: str, path: str, fields: list[str]) -> None:
    user = f"abuse-{path.replace('/', '-')}-{method.lower()}"
    enrolled_device(hub.new_browser(), user, PASSWORD)
    before = len(tracebacks(hub))
    values: dict[str, Any] = {**malformed.TEXT, **malformed.JSON_ONLY}
    answers: dict[str, int] = {}
    well_formed = {"password": PASSWORD, "otp": "000000", "code": "000000"}
    for field in fields:
        for n, (name, value) in enumerate(values.items()):
            body = {**{f: well_formed[f] for f in fields if f in well_formed}, field: value}
            response = requests.request(
                method,
                f"{hub.url}/hub/2fa/api/{path}",
                json=body,
                auth=(user, PASSWORD),
                headers={"X-Forwarded-For": f"10.7.{n}.{len(answers) % 250}"},
                timeout=30,
            )
            answers[f"{field}:{name}"] = response.status_code
    assert {name: code for name, code in answers.items() if not 400 <= code < 500} == {}
    assert tracebacks(hub)[before:] == []


# -- the OpenAPI document, fuzzed against the live hub ------------------------------------------------------------

HUB_SPEC = Path(jupyter_2fa.hub.__file__).parent / "openapi.yaml"
HUB_SCHEMA = schemathesis.openapi.from_path(HUB_SPEC)
HUB_OPERATIONS = [result.ok() for result in HUB_SCHEMA.get_all_operations()]


@pytest.mark.parametrize("operation", HUB_OPERATIONS, ids=[op.label for op in HUB_OPERATIONS])
@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda mode: mode.value)
def test_the_hub_answers_every_generated_request_as_documented(
    hub: Hub, operation: Any, mode: schemathesis.GenerationMode
) -> None:
    """The user API as a kernel calls it (Basic), the admin API with the admin service's token."""
    user = "fuzzed"
    if not any(a == user for a in fuzzed_users):
        enrolled_device(hub.new_browser(), user, PASSWORD)
        fuzzed_users.append(user)
    admin = "/2fa/api/users" in operation.path
    # The fuzzer's wrong passwords come from an address of their own, not the one the other tests share.
    headers = {"Authorization": f"token {hub.admin_token}"} if admin else {"X-Forwarded-For": "10.6.6.6"}
    fuzz(operation, mode, f"{hub.url}/hub", headers, None if admin else (user, PASSWORD))


fuzzed_users: list[str] = []


# -- secrets -------------------------------------------------------------------------------------------------------


def test_no_secret_reaches_the_hubs_debug_log_or_its_store(hub: Hub) -> None:
    """The hub runs at DEBUG here. Link a device on the page, log in, re-link and confirm through the API, make
    new recovery codes, fail a few times; then neither the log nor the store file holds a secret of it."""
    page = enroll_on_page(hub.new_browser(), "sid", PASSWORD)
    assert page.device is not None and page.recovery_codes
    secrets = {PASSWORD, "sid's wrong password", page.device.secret, *page.recovery_codes}
    code = page.device.next_code()
    assert hub.new_browser().login("sid", PASSWORD, code).status_code == 302
    codes = {code}
    hub.new_browser().login("sid", "sid's wrong password", page.device.wrong_code())
    relink = {"password": PASSWORD, "otp": page.recovery_codes[0]}
    relinked = user_api(hub, "POST", "relink", relink, auth=("sid", PASSWORD))
    assert relinked.status_code == 201, relinked.text
    new_secret = relinked.json()["secret"]
    secrets.add(new_secret)
    new_code = pyotp.TOTP(new_secret).now()
    codes.add(new_code)
    confirmed = user_api(hub, "POST", "enrollment/confirm", {"code": new_code}, auth=("sid", PASSWORD))
    assert confirmed.status_code == 200, confirmed.text
    secrets |= set(confirmed.json()["recovery_codes"])

    outputs = {
        "log": hub.log_text(),
        "store": (hub.directory / "jupyter_2fa.sqlite").read_bytes().decode("latin-1"),
    }
    assert "2FA login success for 'sid'" in outputs["log"] and "[D " in outputs["log"]
    variants = secret_variants(secrets)
    leaks = {
        name: sorted(
            {s for s in variants if s in text}
            | {c for c in codes if re.search(rf"(?<![A-Za-z0-9]){c}(?![A-Za-z0-9])", text)}
        )
        for name, text in outputs.items()
    }
    assert leaks == {"log": [], "store": []}
