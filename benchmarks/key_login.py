"""A login with a passkey or security key beside a login with a code (issue 14), in the core and through the gate.

    .venv/bin/python -m benchmarks.key_login [--rounds 200]

- **the core's check**, on one store, interleaved each round: a right code (:meth:`Verifier.login`); the key's
  challenge (:meth:`Passkeys.login_options`: the password's throttle, one transaction that stores the challenge);
  a right key (:meth:`Verifier.login` with a :class:`KeyAssertion`: one transaction that takes the challenge,
  reads the key and stores its counter, and an ECDSA P-256 verify). The runner measures SQLite and PostgreSQL.
- **a login through the gate**: stock jupyter_server and the gated one side by side (the servers of
  :mod:`benchmarks.gate_requests`), interleaved each round: stock's password login (``POST login``); the gate's
  code login (``POST login`` with ``otp``); the gate's key login (``POST 2fa/api/webauthn/login-options`` with the
  password, then ``POST login`` with the key's answer in ``webauthn``). Each login is a new browser session whose
  ``GET login`` (for ``_xsrf``) is not timed; neither is the authenticator's signing, which a browser does with the
  user's touch between the two requests.

The key is the software authenticator of the tests (``tests/helpers/webauthn.py``, ``SoftKey``), linked through
the 2FA page as a browser links one. A code is accepted once per time step, so between rounds, outside the timed
calls, the gated server's store forgets the step it accepted (``last_step``, the replay guard), and the core's
clock moves on a step. Measured, never asserted. ``key_login()`` returns a JSON-serialisable dict; ``main()``
prints it.
"""

from __future__ import annotations

import argparse
import base64
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from functools import partial
from pathlib import Path
from typing import Any

import pyotp
import requests
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from jupyter_2fa.core import Enrollment, Keyring, Settings, Store, ThrottlePolicy, Verifier
from jupyter_2fa.core.webauthn import KeyAssertion, RelyingParty

from .gate_requests import PASSWORD, link_app, server, summary

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' software authenticator plays the browser's

from helpers.webauthn import SoftKey  # noqa: E402

# As the login check's: refused attempts never happen here, but the throttle's arithmetic is not what is measured.
SETTINGS = Settings(recovery_code_count=1, throttle=ThrottlePolicy(lockout_threshold=100, free_attempts=100))
RELYING_PARTY = RelyingParty("localhost", "Benchmark", "http://localhost:8888")
SESSION = "benchmark-session"
STOCK_LOGIN, CODE_LOGIN = "stock: password", "gated: password and code"
KEY_LOGIN, KEY_OPTIONS = "gated: password and key (both requests)", "gated: the key's login-options request"
KEY_CHALLENGE = "key's challenge (login options)"
WARM_UP = 20


def options_challenge(options: str) -> bytes:
    """The challenge of ``navigator.credentials.get()`` options (their JSON), as the authenticator signs it."""
    text = json.loads(options)["challenge"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def core_check(db_url: str, rounds: int) -> dict[str, Any]:
    """A right code, the key's challenge and a right key on one store, interleaved; medians and ratios."""
    store = Store(db_url, Keyring([Fernet.generate_key()], "benchmark"))
    enrollment = Enrollment(Verifier(store, SETTINGS))
    verifier, passkeys = enrollment.verifier, enrollment.passkeys
    user, start = f"bench-{time.time_ns()}", 1_800_000_000.0
    enrollment.begin(user, start)
    totp = pyotp.parse_uri(enrollment.reveal(user, start).uri)
    assert isinstance(totp, pyotp.TOTP)
    enrollment.confirm(user, totp.at(start), start)
    key = SoftKey(counter=1)
    # A key beside the app: registering it needs the app's code, as on the 2FA page.
    options, challenge_id = passkeys.registration_options(
        user, RELYING_PARTY, SESSION, start + 30, first_factor_ok=True, code=totp.at(start + 30)
    )
    created = key.register(RELYING_PARTY.id, RELYING_PARTY.origin, options_challenge(options))
    passkeys.register(user, RELYING_PARTY, challenge_id, SESSION, created, "benchmark key", start + 30)

    def login(factor: object, now: float) -> None:
        verdict = verifier.login(user, factor, now, first_factor_ok=True, remote_addr="192.0.2.1")
        if not verdict.ok:
            raise SystemExit(f"the core refused a right factor: {verdict.reason}")

    challenge: dict[str, str] = {}

    def ask(now: float) -> None:
        options, challenge["id"] = passkeys.login_options(
            user, RELYING_PARTY, SESSION, now, first_factor_ok=True, remote_addr="192.0.2.1"
        )
        challenge["options"] = options

    samples: dict[str, list[float]] = {"right code": [], KEY_CHALLENGE: [], "right key": []}
    for n in range(WARM_UP + rounds):
        now = start + 30 * (n + 2)
        code_time = timed(partial(login, totp.at(now), now))
        options_time = timed(partial(ask, now + 1))
        key.counter += 1
        signed = key.sign(RELYING_PARTY.id, RELYING_PARTY.origin, options_challenge(challenge["options"]))
        assertion = KeyAssertion(signed, challenge["id"], SESSION, RELYING_PARTY)
        key_time = timed(partial(login, assertion, now + 2))
        if n >= WARM_UP:
            for name, seconds in zip(samples, (code_time, options_time, key_time), strict=True):
                samples[name].append(seconds)
    backend = store.url.get_backend_name()
    store.close()
    results = {name: summary(values) for name, values in samples.items()}
    base = results["right code"]["median_ms"]
    for result in results.values():
        result["ratio_to_code"] = result["median_ms"] / base
    both = results[KEY_CHALLENGE]["median_ms"] + results["right key"]["median_ms"]
    return {"store": backend, "rounds": rounds, "results": results, "key_login_ratio_to_code": both / base}


def ecdsa_verify(rounds: int) -> dict[str, float]:
    """One ECDSA P-256 (SHA-256) signature check alone, with cryptography: what a key's check adds in mathematics."""
    private = ec.generate_private_key(ec.SECP256R1())
    public, message = private.public_key(), b"authenticator data and the client data's hash"
    signature = private.sign(message, ec.ECDSA(hashes.SHA256()))
    check = partial(public.verify, signature, message, ec.ECDSA(hashes.SHA256()))
    for _ in range(WARM_UP):
        check()
    return summary([timed(check) for _ in range(rounds)])


class Browser:
    """A fresh browser session on one server (``requests``), opened with ``GET login`` for its ``_xsrf`` cookie.
    On the gated server it names the host ``localhost``: WebAuthn needs a host name, never an IP address."""

    def __init__(self, url: str, host: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers.update({"Host": host, "Referer": f"http://{host}/"})
        self.session.get(url + "login")
        self.xsrf = self.session.cookies.get("_xsrf") or ""

    def post_login(self, **fields: str) -> None:
        reply = self.session.post(
            self.url + "login", data={"password": PASSWORD, **fields, "_xsrf": self.xsrf}, allow_redirects=False
        )
        if reply.status_code != 302:
            raise SystemExit(f"a login to {self.url} failed: {reply.status_code} {reply.text[:200]}")

    def post_json(self, path: str, body: dict[str, str]) -> Any:
        reply = self.session.post(self.url + path, json=body, headers={"X-XSRFToken": self.xsrf})
        if reply.status_code != 200:
            raise SystemExit(f"{path}: {reply.status_code} {reply.text[:200]}")
        return reply.json()


def link_key(url: str, host: str, totp: pyotp.TOTP, key: SoftKey) -> None:
    """The 2FA page's "add a key", as its script does: options after the password and the app's code, the
    authenticator's answer, then the page's form."""
    browser = Browser(url, host)
    answer = browser.post_json("2fa/api/webauthn/registration-options", {"password": PASSWORD, "otp": totp.now()})
    created = key.register("localhost", f"http://{host}", options_challenge(json.dumps(answer["options"])))
    fields = {"action": "add-key", "credential": created, "key_name": "benchmark key", "password": PASSWORD}
    page = browser.session.post(url + "2fa/enroll", data={**fields, "_xsrf": browser.xsrf})
    if page.status_code != 200 or "benchmark key" not in page.text:
        raise SystemExit(f"linking the key failed: {page.status_code}")


def forget_accepted_step(store_file: Path) -> None:
    """Let the current code be accepted again: clear the replay guard in the gated server's store (its own
    SQLite file), outside the timed calls."""
    with closing(sqlite3.connect(store_file)) as db, db:
        db.execute("UPDATE jupyter_2fa_accounts SET last_step = NULL")


def gate_logins(rounds: int) -> dict[str, Any]:
    """Stock's password login, the gate's code login and its key login, interleaved; medians and ratios."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        stock = stack.enter_context(server(tmp / "stock", gated=False))
        gated = stack.enter_context(server(tmp / "gated", gated=True))
        store_file = tmp / "gated" / "data" / "jupyter_2fa" / "store.sqlite"
        stock_host, gated_host = (f"localhost:{s.url.rsplit(':', 1)[1].strip('/')}" for s in (stock, gated))
        totp = link_app(gated.url)
        forget_accepted_step(store_file)
        key = SoftKey(counter=1)
        link_key(gated.url, gated_host, totp, key)

        def stock_login() -> float:
            browser = Browser(stock.url, stock_host)
            return timed(browser.post_login)

        def code_login() -> float:
            forget_accepted_step(store_file)
            browser = Browser(gated.url, gated_host)
            return timed(partial(browser.post_login, otp=totp.now()))

        def key_login() -> tuple[float, float]:
            browser = Browser(gated.url, gated_host)
            start = time.perf_counter()
            answer = browser.post_json("2fa/api/webauthn/login-options", {"password": PASSWORD})
            options_seconds = time.perf_counter() - start
            key.counter += 1  # the authenticator's signing is the browser's time, not the server's
            signed = key.sign("localhost", f"http://{gated_host}", options_challenge(json.dumps(answer["options"])))
            return options_seconds, options_seconds + timed(partial(browser.post_login, otp="", webauthn=signed))

        samples: dict[str, list[float]] = {STOCK_LOGIN: [], CODE_LOGIN: [], KEY_LOGIN: [], KEY_OPTIONS: []}
        for n in range(WARM_UP + rounds):
            stock_seconds, code_seconds, (options_seconds, key_seconds) = stock_login(), code_login(), key_login()
            if n >= WARM_UP:
                for name, seconds in zip(
                    samples, (stock_seconds, code_seconds, key_seconds, options_seconds), strict=True
                ):
                    samples[name].append(seconds)
    results = {name: summary(values) for name, values in samples.items()}
    stock_ms, code_ms = results[STOCK_LOGIN]["median_ms"], results[CODE_LOGIN]["median_ms"]
    for result in results.values():
        result["ratio_to_stock"] = result["median_ms"] / stock_ms
        result["ratio_to_code"] = result["median_ms"] / code_ms
    return {"rounds": rounds, "results": results}


def key_login(core_urls: list[str], rounds: int) -> dict[str, Any]:
    """The core's checks on each of ``core_urls`` (each store its own), then the logins through the gate."""
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "core": [core_check(url, rounds) for url in core_urls],
        "ecdsa_p256_verify": ecdsa_verify(rounds * 5),
        "gate": gate_logins(rounds),
    }


def key_login_markdown(result: dict[str, Any]) -> list[str]:
    gate, rows = result["gate"], result["gate"]["results"]
    key_ms, code_ms = rows[KEY_LOGIN]["median_ms"], rows[CODE_LOGIN]["median_ms"]
    options_ms, stock_ms = rows[KEY_OPTIONS]["median_ms"], rows[STOCK_LOGIN]["median_ms"]
    core = {run["store"]: run for run in result["core"]}
    lines = [
        "",
        "## A login with a passkey or security key, beside a login with a code",
        "",
        f"Measured {result['when']}. Through the servers (stock jupyter_server and the gated one,"
        f" {gate['rounds']} logins of each kind, interleaved; a new browser session each, its `GET login` not"
        " timed, nor the authenticator's signing between the key's two requests):",
        "",
        "| login | / stock password | / gated code | median / p95 |",
        "|---|---|---|---|",
    ]
    for name, row in gate["results"].items():
        lines.append(
            f"| {name} | {row['ratio_to_stock']:.2f}x | {row['ratio_to_code']:.2f}x |"
            f" {row['median_ms']:.2f} / {row['p95_ms']:.2f} ms |"
        )
    lines += [
        "",
        "In the core, on one store (a key's check and its challenge beside a right code's check, interleaved):",
        "",
        "| store | check | / right code | median / p95 |",
        "|---|---|---|---|",
    ]
    for run in result["core"]:
        for name, row in run["results"].items():
            lines.append(
                f"| {run['store']} | {name} | {row['ratio_to_code']:.2f}x |"
                f" {row['median_ms']:.2f} / {row['p95_ms']:.2f} ms |"
            )
    core_words = "; ".join(
        f"on {store} {run['results']['right key']['ratio_to_code']:.2f}x a code's check"
        f" ({run['results']['right key']['median_ms'] - run['results']['right code']['median_ms']:+.2f} ms),"
        f" and its challenge another {run['results'][KEY_CHALLENGE]['median_ms']:.2f} ms"
        for store, run in core.items()
    )
    lines += [
        "",
        f"**What a key login costs beyond a code login: {key_ms / code_ms:.2f}x, {key_ms - code_ms:.0f} ms"
        f" more ({key_ms / stock_ms:.2f}x stock's password login).** It is two requests where a code login is one,"
        " and each checks jupyter_server's Argon2 password hash: the key's options are handed out only after the"
        " password (throttled like a login's), so a stranger can neither learn which keys an account has nor fill"
        f" the store with challenges. That request alone takes {options_ms:.0f} ms, about a whole code login;"
        " the second password check is nearly all of the difference. The key itself is cheap: in the core, a"
        f" right key's check costs {core_words}. A key's check is one transaction, as a code's is (it takes the"
        " session's challenge, reads the key and stores its new signature counter under the account's lock), plus"
        " py_webauthn's parsing of the browser's answer and one ECDSA P-256 verify"
        f" ({result['ecdsa_p256_verify']['median_ms']:.3f} ms alone); the challenge has transactions of its own"
        " (the password's throttled check, then the challenge's insert) and a read of the account's keys.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="logins of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = key_login([f"sqlite:///{Path(tmp) / 'store.sqlite'}"], args.rounds)
    print(json.dumps(result, indent=2))
    print("\n".join(key_login_markdown(result)))


if __name__ == "__main__":
    main()
