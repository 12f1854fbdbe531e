"""A login burst on a real JupyterHub: TOTPAuthenticator beside its plain inner authenticator (issue 12, item 3).

    .venv/bin/python -m benchmarks.hub_burst [--users 300] [--window 60]

Two hubs run side by side, each in its own process behind configurable-http-proxy (started as the hub tests
start them, tests/helpers/hub.py): *plain* with JupyterHub's ``SharedPasswordAuthenticator`` (one shared
password, any user name), and *totp* with ``TOTPAuthenticator`` wrapped around the same class. No single-user
server is spawned: a login is the ``POST /hub/login`` that answers 302 with the hub's login cookie.

What is measured:

- **burst**: ``users`` distinct users log in once each, arrivals spread evenly over ``window`` seconds and
  served by a pool of client threads, each user with a fresh ``requests.Session`` (``GET /hub/login`` for the
  ``_xsrf`` cookie, then the form post; on the TOTP hub the code is computed with pyotp at request time).
  Meanwhile a probe thread sends ``GET /hub/health`` through the proxy every 50 ms and records its latency; the
  same probe runs on the idle hub just before. To keep the machine's drift out of the comparison, each hub's
  burst is two halves at the same arrival rate, in the order plain, totp, totp, plain. Reported per hub: logins
  accepted, errors, elapsed time, logins per second, the post's latency and the probe's median and p99.
- **double submissions**: for about one TOTP user in fifteen (20 of 300), the login form is posted twice at
  the same moment with the same code, from two browsers; each extra acceptance of one (user, time step) counts
  as a double-accepted code. The refused twin is expected and is no error.
- **flood**: afterwards, on the TOTP hub, the probe idles for a few seconds, then a few threads send
  recovery-shaped guesses (``xxxxx-xxxxx``, right password) for 20 users with ten recovery codes each, as fast
  as the hub answers; the throttle soon answers 429 (back-off) and 403 (locked). Reported: the probe's median
  and p99 idle and during the flood, guesses sent, and the statuses seen.

The TOTP users are linked before the burst straight in the hub's store (``Enrollment`` begin, reveal, confirm,
as ``jupyter 2fa enroll`` does), with the hub's key shared through ``JUPYTER_2FA_KEYS`` and one recovery code
each, so set-up costs one Argon2 hash per user; the flood's users get ten, as the hub would give them.

Measured, never asserted: nothing here runs in the test suite. ``hub_burst()`` returns the numbers as a
JSON-serialisable dict; ``main()`` prints it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
from cryptography.fernet import Fernet

from jupyter_2fa.core import Enrollment, Keyring, Settings, Store, Verifier, recovery

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test helpers start hubs behind configurable-http-proxy

from helpers.hub import (  # noqa: E402
    Hub,
    HubFactory,
    hub_store_url,
    hub_tools_missing,
    isolated_hub_env,
    login_error,
)

PASSWORD = "correct horse battery staple"  # SharedPasswordAuthenticator wants at least 8 characters
LOGIN_COOKIE = "jupyterhub-hub-login"
SHARED = f"""
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
"""
PLAIN_CONFIG = 'c.JupyterHub.authenticator_class = "shared-password"\n' + SHARED
TOTP_CONFIG = (
    'c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"\n'
    'c.TOTPAuthenticator.inner_authenticator_class = "shared-password"\n' + SHARED
)

WORKERS = 24  # client threads: enough that slow answers overlap instead of delaying later arrivals
PROBE_INTERVAL = 0.05
IDLE_SECONDS = 5.0  # idle probe per hub, split over its two halves
REQUEST_TIMEOUT = 30.0
DOUBLE_USERS = 20  # at 300 users; one in fifteen on smaller runs
FLOOD_USERS = 20
FLOOD_THREADS = 4
FLOOD_SECONDS = 12.0
FLOOD_RECOVERY_CODES = 10  # what a hub hands out by default: a guess is compared with every unused hash
SETUP_RECOVERY_CODES = 1  # the burst's users: one Argon2 hash each keeps set-up short
ERROR_SAMPLES = 5
TOTP_PERIOD = 30


# -- measuring --------------------------------------------------------------------------------------------------


def percentiles(seconds: list[float]) -> dict[str, float | int | None]:
    """Median and p99 in milliseconds (p99 as benchmarks/__main__.py takes it), and the sample count."""
    if not seconds:
        return {"median_ms": None, "p99_ms": None, "n": 0}
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return {"median_ms": round(statistics.median(ms), 2), "p99_ms": round(p99, 2), "n": len(ms)}


def ratio(numerator: float | int | None, denominator: float | int | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


class Probe:
    """``GET /hub/health`` through the proxy every ``PROBE_INTERVAL`` seconds, in a thread, until stopped.

    A slow answer is not made up for by a burst of probes afterwards: the next one goes out at the next tick.
    """

    def __init__(self, hub: Hub) -> None:
        self.url = f"{hub.url}/hub/health"
        self.samples: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with requests.Session() as session:  # keep-alive, like a monitoring agent: only the hub's time varies
            tick = time.monotonic()
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    ok = session.get(self.url, timeout=REQUEST_TIMEOUT, allow_redirects=False).status_code == 200
                except requests.RequestException:
                    ok = False
                if ok:
                    self.samples.append(time.perf_counter() - start)
                else:
                    self.errors += 1
                tick = max(tick + PROBE_INTERVAL, time.monotonic())
                self._stop.wait(tick - time.monotonic())


def idle_probe(hub: Hub, seconds: float) -> Probe:
    with Probe(hub) as probe:
        time.sleep(seconds)
    return probe


# -- logging in -------------------------------------------------------------------------------------------------


def login_session(hub: Hub) -> tuple[requests.Session, str]:
    """A fresh browser that loaded the login page: the session and its ``_xsrf`` token."""
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=REQUEST_TIMEOUT)
    return session, session.cookies.get("_xsrf", "") or ""


def post_login(
    session: requests.Session, xsrf: str, hub: Hub, username: str, otp: str | None
) -> tuple[requests.Response, float]:
    """Submit the login form (no redirect followed); the response and the post's seconds."""
    fields = {"_xsrf": xsrf, "username": username, "password": PASSWORD}
    if otp is not None:
        fields["otp"] = otp
    start = time.perf_counter()
    response = session.post(f"{hub.url}/hub/login", data=fields, timeout=REQUEST_TIMEOUT, allow_redirects=False)
    return response, time.perf_counter() - start


def accepted(response: requests.Response) -> bool:
    return response.status_code == 302 and LOGIN_COOKIE in response.cookies


@dataclass
class Segment:
    """One half of one hub's burst, and the idle probe just before it."""

    idle: Probe
    probe: Probe
    elapsed: float = 0.0
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    login_seconds: list[float] = field(default_factory=list)
    start_lags: list[float] = field(default_factory=list)
    doubles: int = 0
    double_accepted: int = 0

    def add(self, outcome: Outcome) -> None:
        self.login_seconds += outcome.seconds
        self.start_lags.append(outcome.lag)
        self.errors += outcome.errors
        self.ok += int(outcome.accepted > 0)
        if outcome.double:
            self.doubles += 1
            self.double_accepted += max(0, outcome.accepted - 1)


@dataclass
class Outcome:
    """What one user's arrival came to: acceptances (two posts for a double submission), post times, errors."""

    lag: float
    done: float = 0.0  # monotonic time of its last answer
    double: bool = False
    accepted: int = 0
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def one_login(hub: Hub, username: str, device: pyotp.TOTP | None, outcome: Outcome) -> None:
    session, xsrf = login_session(hub)
    with session:
        response, seconds = post_login(session, xsrf, hub, username, device.now() if device else None)
    outcome.seconds.append(seconds)
    if accepted(response):
        outcome.accepted += 1
    else:
        outcome.errors.append(f"{username}: {response.status_code}")


def double_login(hub: Hub, username: str, device: pyotp.TOTP, outcome: Outcome) -> None:
    """The same code from two browsers at once: one acceptance expected, the twin refused as a replay."""
    outcome.double = True
    browsers = [login_session(hub) for _ in range(2)]
    code = device.now()
    gate = threading.Barrier(2)
    responses: list[requests.Response | None] = [None, None]

    def submit(i: int) -> None:
        session, xsrf = browsers[i]
        gate.wait()
        responses[i], seconds = post_login(session, xsrf, hub, username, code)
        outcome.seconds.append(seconds)

    twins = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for twin in twins:
        twin.start()
    for twin in twins:
        twin.join()
    for session, _ in browsers:
        session.close()
    for response in responses:
        if response is None:
            outcome.errors.append(f"{username} (double): no answer")
        elif accepted(response):
            outcome.accepted += 1
        elif response.status_code not in {401, 403}:  # a refused replay re-renders the login page
            outcome.errors.append(f"{username} (double): {response.status_code}")
    if outcome.accepted == 0:
        outcome.errors.append(f"{username} (double): neither submission accepted")


def burst(
    hub: Hub, names: list[str], window: float, devices: dict[str, pyotp.TOTP] | None, doubles: set[str]
) -> Segment:
    """``names`` log in once each, arrivals evenly spread over ``window`` seconds, the probe running."""
    segment = Segment(idle=idle_probe(hub, IDLE_SECONDS / 2), probe=Probe(hub))
    interval = window / len(names)

    def arrive(i: int, username: str) -> Outcome:
        wait = start + i * interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        outcome = Outcome(lag=max(0.0, -wait))
        device = devices[username] if devices is not None else None
        try:
            if device is not None and username in doubles:
                double_login(hub, username, device, outcome)
            else:
                one_login(hub, username, device, outcome)
        except requests.RequestException as err:
            outcome.errors.append(f"{username}: {type(err).__name__}")
        outcome.done = time.monotonic()
        return outcome

    with segment.probe, ThreadPoolExecutor(WORKERS) as pool:
        start = time.monotonic() + 0.2  # every worker is up before the first arrival
        outcomes = list(pool.map(arrive, range(len(names)), names))
    for outcome in outcomes:
        segment.add(outcome)
    segment.elapsed = max(o.done for o in outcomes) - start
    return segment


def hub_summary(segments: list[Segment], with_codes: bool) -> dict[str, Any]:
    ok = sum(s.ok for s in segments)
    elapsed = sum(s.elapsed for s in segments)
    errors = [e for s in segments for e in s.errors]
    summary: dict[str, Any] = {
        "logins_ok": ok,
        "errors": len(errors),
        "error_samples": errors[:ERROR_SAMPLES],
        "elapsed_s": round(elapsed, 2),
        "logins_per_s": round(ok / elapsed, 3) if elapsed else None,
        "login_post": percentiles([t for s in segments for t in s.login_seconds]),
        "max_start_lag_s": round(max((lag for s in segments for lag in s.start_lags), default=0.0), 3),
        "probe": {
            **percentiles([t for s in segments for t in s.probe.samples]),
            "errors": sum(s.probe.errors for s in segments),
        },
        "idle_probe": {
            **percentiles([t for s in segments for t in s.idle.samples]),
            "errors": sum(s.idle.errors for s in segments),
        },
    }
    if with_codes:
        summary["double_submissions"] = sum(s.doubles for s in segments)
        summary["double_accepted"] = sum(s.double_accepted for s in segments)
    return summary


# -- the flood --------------------------------------------------------------------------------------------------


def refusal_kind(response: requests.Response) -> str:
    """What the login page's message says a refusal was (JupyterHub answers 403 to a wrong factor too)."""
    message = login_error(response) or ""
    for needle, kind in (("locked", "locked"), ("Too many", "throttled"), ("Invalid", "invalid")):
        if needle in message:
            return kind
    return "accepted" if accepted(response) else "other"


def flood(hub: Hub, users: list[str]) -> dict[str, Any]:
    """Recovery-shaped guesses with the right password for ``users``, from a few threads, the probe running."""
    idle = idle_probe(hub, IDLE_SECONDS)
    statuses: Counter[str] = Counter()
    seconds: list[float] = []
    lock = threading.Lock()

    def guesser(k: int) -> None:
        session, xsrf = login_session(hub)  # a refused login sets no cookie: one token serves every guess
        with session:
            for username in itertools.islice(itertools.cycle(users), k, None, FLOOD_THREADS):
                if time.monotonic() >= stop:
                    return
                try:
                    response, took = post_login(session, xsrf, hub, username, recovery.new_codes(1)[0])
                    status = f"{response.status_code} {refusal_kind(response)}"
                except requests.RequestException as err:
                    status, took = type(err).__name__, 0.0
                with lock:
                    statuses[status] += 1
                    if took:
                        seconds.append(took)

    with Probe(hub) as probe:
        stop = time.monotonic() + FLOOD_SECONDS
        threads = [threading.Thread(target=guesser, args=(k,)) for k in range(FLOOD_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    idle_summary = {**percentiles(idle.samples), "errors": idle.errors}
    flood_summary = {**percentiles(probe.samples), "errors": probe.errors}
    return {
        "users": len(users),
        "recovery_codes_each": FLOOD_RECOVERY_CODES,
        "threads": FLOOD_THREADS,
        "seconds": FLOOD_SECONDS,
        "guesses": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "guess_post": percentiles(seconds),
        "idle_probe": idle_summary,
        "flood_probe": flood_summary,
        "probe_p99_ratio": ratio(flood_summary["p99_ms"], idle_summary["p99_ms"]),
    }


# -- set-up -----------------------------------------------------------------------------------------------------


def enroll(hub: Hub, key: bytes, users: list[str], recovery_codes: int) -> dict[str, pyotp.TOTP]:
    """Link a device for each user straight in the hub's store, as ``jupyter 2fa enroll`` would."""
    store = Store(hub_store_url(hub), Keyring([key], "benchmark"))
    devices: dict[str, pyotp.TOTP] = {}
    try:
        enrollment = Enrollment(Verifier(store, Settings(recovery_code_count=recovery_codes)))
        # Confirmed two steps back: confirming spends its step, and every login of the burst uses a later one.
        then = time.time() - 2 * TOTP_PERIOD
        for user in users:
            enrollment.begin(user, then)
            device = pyotp.TOTP(enrollment.reveal(user, then).secret)
            enrollment.confirm(user, device.at(then), then)
            devices[user] = device
    finally:
        store.close()
    return devices


@contextlib.contextmanager
def running_hubs(root: Path) -> Iterator[Callable[[str, dict[str, str]], Hub]]:
    """Start hubs (config, environment) in folders under ``root``; stop them all on the way out, errors or not."""
    counter = itertools.count()

    def make_directory() -> Path:
        directory = root / f"hub-{next(counter)}"
        directory.mkdir()
        return directory

    factory = HubFactory(make_directory)

    def start(config_py: str, env: dict[str, str]) -> Hub:
        try:
            return factory.start(config_py, env)
        except pytest.fail.Exception as err:  # the helper fails a test; here it is an error like any other
            raise RuntimeError(str(err)) from None

    try:
        yield start
    finally:
        tails = io.StringIO()
        try:
            with contextlib.redirect_stdout(tails):  # each hub's stop prints its log's tail: keep stdout JSON
                factory.close()
        except pytest.fail.Exception as err:
            print(f"hub_burst: stopping the hubs: {err}", file=sys.stderr)


def warm_up(hub: Hub, username: str, device: pyotp.TOTP | None) -> None:
    """One login first, so that templates, imports and the store's first connection stay out of the burst."""
    outcome = Outcome(lag=0.0)
    one_login(hub, username, device, outcome)
    if outcome.errors:
        raise RuntimeError(f"warm-up login to {hub.url} failed: {outcome.errors}\n{hub.log_tail()}")


def log(message: str) -> None:
    print(f"hub_burst: {message}", file=sys.stderr, flush=True)


# -- the benchmark ----------------------------------------------------------------------------------------------


def hub_burst(users: int = 300, window: float = 60.0) -> dict[str, Any]:
    """Run the burst, the double submissions and the flood (see the module's docstring); return the numbers."""
    if users < 2 or window <= 0:
        raise ValueError("hub_burst needs at least 2 users and a positive window")
    missing = hub_tools_missing()
    if missing:
        raise RuntimeError(f"cannot start a hub here: {missing}")
    names = [f"user-{i:04d}" for i in range(users)]
    halves = [names[: users // 2], names[users // 2 :]]
    double_count = min(DOUBLE_USERS, max(1, users // 15))
    doubles = set(names[:: max(1, users // double_count)][:double_count])  # spread over both halves
    flooders = [f"flood-{i:02d}" for i in range(FLOOD_USERS)]
    key = Fernet.generate_key()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hub-burst-") as tmp, running_hubs(Path(tmp)) as start:
        root = Path(tmp)
        # The key reaches the hub the way a deployment's secret would; this process opens the store with it.
        env = {**isolated_hub_env(root / "jupyter"), "JUPYTER_2FA_KEYS": key.decode()}
        log("starting the hubs")
        hubs = {"plain": start(PLAIN_CONFIG, env), "totp": start(TOTP_CONFIG, env)}
        started = time.monotonic()
        log(f"linking {users} + {FLOOD_USERS} devices in the TOTP hub's store")
        devices = enroll(hubs["totp"], key, ["warm-up", *names], SETUP_RECOVERY_CODES)
        flood_devices = enroll(hubs["totp"], key, flooders, FLOOD_RECOVERY_CODES)
        enrolled = time.monotonic()
        warm_up(hubs["plain"], "warm-up", None)
        warm_up(hubs["totp"], "warm-up", devices["warm-up"])
        segments: dict[str, list[Segment]] = {"plain": [], "totp": []}
        # ABBA: whatever drifts on the machine during the run weighs on both hubs alike.
        for label, half in (("plain", 0), ("totp", 0), ("totp", 1), ("plain", 1)):
            part = halves[half]
            log(f"{label}: {len(part)} logins over {window * len(part) / users:.1f} s")
            segments[label].append(
                burst(
                    hubs[label],
                    part,
                    window * len(part) / users,
                    devices if label == "totp" else None,
                    doubles if label == "totp" else set(),
                )
            )
        log(f"flood: {FLOOD_USERS} users, {FLOOD_THREADS} threads, {FLOOD_SECONDS:.0f} s")
        flooded = flood(hubs["totp"], list(flood_devices))
    plain, totp = hub_summary(segments["plain"], False), hub_summary(segments["totp"], True)
    ratios = {
        "throughput": ratio(totp["logins_per_s"], plain["logins_per_s"]),
        "probe_p99": ratio(totp["probe"]["p99_ms"], plain["probe"]["p99_ms"]),
        "probe_median": ratio(totp["probe"]["median_ms"], plain["probe"]["median_ms"]),
        "login_post_median": ratio(totp["login_post"]["median_ms"], plain["login_post"]["median_ms"]),
        "flood_probe_p99_to_idle": flooded["probe_p99_ratio"],
    }
    errors = plain["errors"] + totp["errors"] + plain["probe"]["errors"] + totp["probe"]["errors"]
    return {
        "users": users,
        "window_s": window,
        "plain": plain,
        "totp": totp,
        "flood": flooded,
        "ratios": ratios,
        "targets": {
            "throughput": (ratios["throughput"] or 0) >= 0.9,
            "probe_p99": ratios["probe_p99"] is not None and ratios["probe_p99"] <= 1.2,
            "no_errors": errors == 0 and plain["logins_ok"] == totp["logins_ok"] == users,
            "no_double_accepted": totp["double_accepted"] == 0,
            "flood_probe_p99": flooded["probe_p99_ratio"] is not None and flooded["probe_p99_ratio"] <= 2.0,
        },
        "setup_s": {
            "hubs": round(started - began, 1),
            "enrollment": round(enrolled - started, 1),
            "total": round(time.monotonic() - began, 1),
        },
        "notes": (
            "Two hubs, each its own process behind configurable-http-proxy on this machine: plain "
            "SharedPasswordAuthenticator, and TOTPAuthenticator over it; no single-user servers. Each hub's burst is "
            f"two halves at the same arrival rate ({users / window:.2f} logins/s, evenly spaced, {WORKERS} client "
            "threads), run plain, totp, totp, plain; every user logs in once with a fresh session (GET /hub/login "
            "for _xsrf, then POST; 302 with the login cookie is a login). The probe is GET /hub/health through "
            f"the proxy every {PROBE_INTERVAL * 1000:.0f} ms on a keep-alive session, idle ({IDLE_SECONDS / 2:.1f} s) "
            f"before each half and during it. {double_count} TOTP users post the same code from two browsers "
            "at once; double_accepted counts acceptances beyond the first. TOTP devices were linked in the store "
            f"before the burst ({SETUP_RECOVERY_CODES} recovery code each). Flood: {FLOOD_THREADS} threads send "
            f"recovery-shaped guesses with the right password for {FLOOD_USERS} users holding "
            f"{FLOOD_RECOVERY_CODES} recovery codes each, for {FLOOD_SECONDS:.0f} s after {IDLE_SECONDS:.0f} s "
            "of idle probing. Client and hubs share the machine's CPUs."
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300, help="distinct users logging in, per hub")
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which their arrivals spread")
    args = parser.parse_args()
    print(json.dumps(hub_burst(args.users, args.window), indent=2))


if __name__ == "__main__":
    main()
