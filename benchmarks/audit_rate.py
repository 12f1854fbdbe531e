"""The audit writers under 200 logins per second, and what they cost the event loop (issue 12, item 5).

    .venv/bin/python -m benchmarks.audit_rate [--seconds 10] [--rate 200]

Three real hosts (:class:`jupyter_2fa.web.host.Host`, what the gate and the hub authenticator are) share one
SQLite store in a temporary folder, each with the audit sinks a deployment would give it:

- **a**, the application log only (``logging_sink`` into a file, as every host has);
- **b**, that and ``audit_log_file`` (a real :class:`JsonlAuditLog`);
- **c**, both and jupyter_events: an ``EventLogger`` with a ``logging.FileHandler`` (how an admin records
  events), added with ``Host.add_audit_sink`` as the server extension and the hub authenticator add theirs,
  so each event is emitted on the event loop's thread after the ``call_soon_threadsafe`` hand-off.

In one asyncio loop, each host gets ``rate`` login checks a second (``Host.login_verdict``: the core's
``Verifier.login`` in the host's worker threads, ``worker_threads`` at its default), launched on a fixed
schedule whatever the answers' pace, in turns of a second interleaved idle a b c idle a b c … until each host
had ``seconds`` (*idle*: the loop with no checks at all, for scale; each host has a warm-up turn first). A
third of the checks are right codes, a third wrong codes, a third wrong passwords, over a few hundred linked
users on a clock that moves a time step per round of users (no code is replayed), every check from a new
address, with the throttle's back-off off (``backoff_base_seconds = 0``) and its lock at the most allowed:
every check is a decision and emits one event. Meanwhile a probe on the loop sleeps 5 ms again and
again and records how late it wakes (the loop's lag). Also measured, off the loop, in tight loops: one
``JsonlAuditLog`` write (one thread, and four at once as the worker threads would), and one jupyter_events
emit, with the file handler and with no handler (jupyter_server's and JupyterHub's default, where ``emit``
returns at once).

Measured, never asserted: nothing here runs in the test suite. ``audit_rate()`` returns a JSON-serialisable
dict; ``main()`` prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyotp
from jupyter_events import EventLogger

from jupyter_2fa.core import Action, AuditEvent, JsonlAuditLog
from jupyter_2fa.core.audit import AuditSink, fan_out
from jupyter_2fa.events import event_logger_sink
from jupyter_2fa.web.host import Host, PasswordCheck

CONFIGS = {
    "idle": "no checks (the probe alone)",
    "a": "application log only",
    "b": "+ JSONL audit file",
    "c": "+ JSONL + jupyter_events",
}
USERS = 300  # linked accounts the checks go round; each gets one check per time step
TURN_SECONDS = 1.0
PROBE_INTERVAL = 0.005
START = 1_800_000_000.0  # the checks' clock (injected): a time step per round of users
HOST_SETTINGS: dict[str, Any] = {
    "recovery_code_count": 0,  # linking costs no Argon2 hashes
    "lockout_threshold": 100,
    "backoff_base_seconds": 0.0,  # no back-off: the throttle's arithmetic still runs, it never refuses
    "source_lockout_threshold": 100,
}


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {"median_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "n": 0}
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return {
        "median_ms": round(statistics.median(ms), 4),
        "p99_ms": round(p99, 4),
        "max_ms": round(ms[-1], 4),
        "n": len(ms),
    }


class Counting:
    """An audit sink that counts the events the core emitted (from any thread)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, event: AuditEvent) -> None:
        with self._lock:
            self.count += 1


class LoopClock:
    """Wraps the sink that runs on the loop's thread: how long each emit held the loop (wall time), and the
    loop thread's CPU time in it (the rest is waiting for the GIL while the worker threads run)."""

    def __init__(self, sink: AuditSink) -> None:
        self.sink = sink
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def __call__(self, event: AuditEvent) -> None:
        start, cpu = time.perf_counter(), time.thread_time()
        self.sink(event)
        self.cpu_seconds.append(time.thread_time() - cpu)
        self.seconds.append(time.perf_counter() - start)


class Bench:
    """The three hosts over one store, the users they check, and what each turn measured."""

    def __init__(self, tmp: Path, rate: int) -> None:
        self.tmp, self.rate = tmp, rate
        self.app_log = logging.getLogger(f"benchmarks.audit_rate.{id(self)}")
        self.app_log.propagate = False
        self.app_log.setLevel(logging.INFO)
        self.app_log.addHandler(logging.FileHandler(tmp / "app.log"))
        common = {
            "db_url": f"sqlite:///{tmp / 'store' / 'store.sqlite'}",
            "key_file": str(tmp / "store" / "secret.key"),
            "log": self.app_log,
            **HOST_SETTINGS,
        }
        self.jsonl = {"b": tmp / "b-audit.jsonl", "c": tmp / "c-audit.jsonl"}
        self.events_file = tmp / "c-events.log"
        self.event_logger = EventLogger(handlers=[logging.FileHandler(self.events_file)])
        self.hosts = {
            "a": Host(**common),
            "b": Host(**common, audit_log_file=str(self.jsonl["b"])),
            "c": Host(**common, audit_log_file=str(self.jsonl["c"])),
        }
        self.loop_clock = LoopClock(event_logger_sink(self.event_logger))
        self.hosts["c"].add_audit_sink(self.loop_clock)
        self.counted = {name: Counting() for name in self.hosts}
        for name, host in self.hosts.items():
            verifier = host.enrollment.verifier  # opens the store now, off the clock
            verifier.audit = fan_out(verifier.audit, self.counted[name])
        self.users = [f"bench-{n}" for n in range(USERS)]
        self.apps = [self._link(user) for user in self.users]
        self.next_check = 0
        self.turns: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}

    def _link(self, user: str) -> pyotp.TOTP:
        enrollment = self.hosts["a"].enrollment
        enrollment.begin(user, START)
        app = pyotp.parse_uri(enrollment.reveal(user, START).uri)
        assert isinstance(app, pyotp.TOTP)
        enrollment.confirm(user, app.at(START), START)
        return app

    async def check(self, host: Host, n: int) -> str:
        """The ``n``-th check: user ``n % USERS`` at its round's time step; a right code, a wrong code or a
        wrong password in turn (rotating per round, so each user gets each kind)."""
        index, round_ = n % USERS, n // USERS + 1
        now = START + 30 * round_ + 1
        right = self.apps[index].at(now)
        kind = (n + round_) % 3
        code = right if kind != 1 else str((int(right) + 1) % 1_000_000).zfill(6)
        address = f"198.{18 + (n >> 16) % 2}.{(n >> 8) % 256}.{n % 256}"
        verdict = await host.login_verdict(PasswordCheck(self.users[index], kind != 2), code, address, now)
        return verdict.reason

    async def turn(self, name: str, seconds: float) -> dict[str, Any]:
        """``rate`` checks a second on host ``name`` for ``seconds``, launched on schedule, the probe running
        (``idle``: the probe alone)."""
        loop = asyncio.get_running_loop()
        host, counted = self.hosts.get(name), self.counted.get(name, Counting())
        events_before, loop_before = counted.count, len(self.loop_clock.seconds)
        lags: list[float] = []
        latencies: list[float] = []
        reasons: Counter[str] = Counter()
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                asked = loop.time()
                await asyncio.sleep(PROBE_INTERVAL)
                lags.append(loop.time() - asked - PROBE_INTERVAL)

        async def timed_check(host: Host, n: int, due: float) -> None:
            reasons[await self.check(host, n)] += 1
            latencies.append(loop.time() - due)

        probing = asyncio.create_task(probe())
        start = loop.time()
        checks = []
        launched = 0.0
        if host is None:
            await asyncio.sleep(seconds)
        else:
            for i in range(int(seconds * self.rate)):
                due = start + i / self.rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                checks.append(asyncio.create_task(timed_check(host, self.next_check, due)))
                self.next_check += 1
            launched = loop.time() - start + 1 / self.rate  # the schedule kept, to the end of the last slot
            await asyncio.gather(*checks)
        elapsed = loop.time() - start
        done.set()
        await probing
        await asyncio.sleep(0.05)  # the last hand-offs to the loop run before the next turn counts
        events = counted.count - events_before
        return {
            "checks": len(checks),
            "launch_seconds": launched,
            "elapsed_seconds": elapsed,
            "events": events,
            "lags": lags,
            "latencies": latencies,
            "reasons": reasons,
            "loop_emits": self.loop_clock.seconds[loop_before:],
            "loop_emits_cpu": self.loop_clock.cpu_seconds[loop_before:],
        }

    async def run(self, seconds: float) -> None:
        for name in self.hosts:  # warm-up: worker threads started, schemas' validators built; not counted
            await self.turn(name, 1.0)
        turns = max(1, round(seconds / TURN_SECONDS))
        for _ in range(turns):
            for name in CONFIGS:
                self.turns[name].append(await self.turn(name, seconds / turns))

    def close(self) -> None:
        for host in self.hosts.values():
            host.close_store()
        for handler in [*self.app_log.handlers, *self.event_logger.handlers]:
            handler.close()


def config_result(turns: list[dict[str, Any]]) -> dict[str, Any]:
    checks = sum(t["checks"] for t in turns)
    events = sum(t["events"] for t in turns)
    elapsed = sum(t["elapsed_seconds"] for t in turns)
    loop_emits = sorted(s for t in turns for s in t["loop_emits"])
    loop_cpu = [s for t in turns for s in t["loop_emits_cpu"]]
    launched = sum(t["launch_seconds"] for t in turns)
    reasons: Counter[str] = sum((t["reasons"] for t in turns), Counter())
    return {
        "checks": checks,
        "events": events,
        "seconds": round(elapsed, 3),
        "launched_per_s": round(checks / launched, 1) if launched else 0.0,
        "checks_per_s": round(checks / elapsed, 1) if elapsed else 0.0,
        "events_per_s": round(events / elapsed, 1) if elapsed else 0.0,
        "lag": summary_ms([lag for t in turns for lag in t["lags"]]),
        "check_latency": summary_ms([s for t in turns for s in t["latencies"]]),
        "reasons": dict(reasons),
        "loop_emit": {
            "events": len(loop_emits),
            "median_us": round(statistics.median(loop_emits) * 1e6, 1) if loop_emits else 0.0,
            "p99_us": round(loop_emits[int(0.99 * len(loop_emits))] * 1e6, 1) if loop_emits else 0.0,
            "cpu_median_us": round(statistics.median(loop_cpu) * 1e6, 1) if loop_cpu else 0.0,
            "loop_share": round(sum(loop_emits) / elapsed, 5) if elapsed else 0.0,
            "loop_cpu_share": round(sum(loop_cpu) / elapsed, 5) if elapsed else 0.0,
        },
    }


def per_call_us(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def jsonl_cost(tmp: Path, n: int = 5000, threads: int = 4) -> dict[str, float]:
    """One JsonlAuditLog write in a tight loop: µs per event from one thread, and per event (wall) when
    ``threads`` threads write ``n`` events together, as the worker threads of a busy host would."""
    log = JsonlAuditLog(tmp / "tight-audit.jsonl")
    event = AuditEvent(Action.LOGIN, "bench-0", "failure", "wrong-code", START, "198.18.0.1")
    one = min(per_call_us(lambda: log(event), n) for _ in range(3))

    def write_many() -> None:
        for _ in range(n // threads):
            log(event)

    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        for future in [pool.submit(write_many) for _ in range(threads)]:
            future.result()
        together = (time.perf_counter() - start) / (n // threads * threads) * 1e6
    lines = len((tmp / "tight-audit.jsonl").read_text().splitlines())
    return {"one_thread_us": round(one, 2), f"{threads}_threads_us": round(together, 2), "lines": lines}


def emit_cost(tmp: Path, n: int = 5000) -> dict[str, float]:
    """One jupyter_events emit of a decision in a tight loop (µs): with a file handler, and with no handler."""
    event = AuditEvent(Action.LOGIN, "bench-0", "failure", "wrong-code", START, "198.18.0.1")
    with_file = EventLogger(handlers=[logging.FileHandler(tmp / "tight-events.log")])
    bare = EventLogger()
    costs = {
        "file_handler_us": min(per_call_us(lambda: event_logger_sink(with_file)(event), n) for _ in range(3)),
        "no_handler_us": min(per_call_us(lambda: event_logger_sink(bare)(event), n) for _ in range(3)),
    }
    for handler in with_file.handlers:
        handler.close()
    return {key: round(value, 2) for key, value in costs.items()}


def audit_rate(seconds: float = 10.0, rate: int = 200) -> dict[str, Any]:
    """Each host's ``rate`` login checks a second for ``seconds`` (interleaved turns), the loop's lag meanwhile,
    and the writers' own costs; see the module's docstring."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(tmp, rate)
        try:
            asyncio.run(bench.run(seconds))
        finally:
            bench.close()
        configs = {name: config_result(turns) for name, turns in bench.turns.items()}
        for name, path in bench.jsonl.items():
            lines = path.read_text().splitlines()
            emitted = bench.counted[name].count  # warm-up included: the file has its lines too
            configs[name]["jsonl"] = {
                "lines": len(lines),
                "events_emitted": emitted,
                "all_written": len(lines) == emitted and all(json.loads(line) for line in lines),
            }
        events_lines = len(bench.events_file.read_text().splitlines())
        configs["c"]["jupyter_events_lines"] = events_lines
        configs["c"]["jupyter_events_all_written"] = events_lines == bench.counted["c"].count
        base = configs["a"]["lag"]
        for result in configs.values():
            result["lag_ratio"] = {
                "median": round(result["lag"]["median_ms"] / max(base["median_ms"], 1e-9), 2),
                "p99": round(result["lag"]["p99_ms"] / max(base["p99_ms"], 1e-9), 2),
            }
        return {
            "rate": rate,
            "seconds_per_config": seconds,
            "turn_seconds": seconds / max(1, round(seconds / TURN_SECONDS)),
            "users": USERS,
            "probe_interval_ms": PROBE_INTERVAL * 1000,
            "configs": configs,
            "jsonl_writer": jsonl_cost(tmp),
            "jupyter_events_emit": emit_cost(tmp),
        }


def audit_rate_markdown(result: dict[str, Any]) -> list[str]:
    configs, writer, emit = result["configs"], result["jsonl_writer"], result["jupyter_events_emit"]
    lines = [
        "",
        f"## The audit writers under {result['rate']} logins/s: the event loop's lag",
        "",
        "| sinks | lag median, ratio to a | lag p99, ratio to a | lag median, p99 | checks/s launched, done |"
        " events/s | check latency median, p99 | loop time per event: wall (CPU), share of the loop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, config in configs.items():
        on_loop = config["loop_emit"]
        loop_cell = (
            f"{on_loop['median_us']:.0f} µs ({on_loop['cpu_median_us']:.0f} µs), {on_loop['loop_share'] * 100:.1f} %"
            f" ({on_loop['loop_cpu_share'] * 100:.1f} %)"
            if on_loop["events"]
            else "none"
        )
        busy = name != "idle"
        lines.append(
            f"| {name}: {CONFIGS[name]} | {config['lag_ratio']['median']:.2f}x | {config['lag_ratio']['p99']:.2f}x |"
            f" {config['lag']['median_ms']:.2f} ms, {config['lag']['p99_ms']:.2f} ms |"
            + (
                f" {config['launched_per_s']:.0f}, {config['checks_per_s']:.0f} | {config['events_per_s']:.0f} |"
                f" {config['check_latency']['median_ms']:.1f} ms, {config['check_latency']['p99_ms']:.0f} ms |"
                if busy
                else " | | |"
            )
            + f" {loop_cell} |"
        )
    written = ", ".join(
        f"{name} {configs[name]['jsonl']['lines']} lines for {configs[name]['jsonl']['events_emitted']} events"
        + ("" if configs[name]["jsonl"]["all_written"] else " (**lines lost**)")
        for name in ("b", "c")
    )
    threads = next(key for key in writer if key.endswith("_threads_us"))
    lines += [
        "",
        f"In a tight loop, one JSONL write costs {writer['one_thread_us']:.0f} µs of a worker thread (record to JSON,"
        f" open, append, close; {writer[threads]:.0f} µs of wall time per event with {threads.split('_')[0]} threads"
        f" writing at once), and one jupyter_events emit {emit['file_handler_us']:.0f} µs of the loop with a file"
        f" handler, {emit['no_handler_us']:.0f} µs with none (jupyter_server's and JupyterHub's default). Audit"
        f" files: {written}; the jupyter_events file {configs['c']['jupyter_events_lines']} lines.",
        "",
        f"How: three real hosts (`Host`, the gate's and the hub's base) over one SQLite store, each sent"
        f" {result['rate']} login checks a second on a fixed schedule (thirds right codes, wrong codes and wrong"
        f" passwords; `Host.login_verdict`, the core in the default 4 worker threads) in {result['turn_seconds']:.0f}"
        f" s turns interleaved idle a b c … for {result['seconds_per_config']:.0f} s each, while a coroutine on the"
        f" same loop slept {result['probe_interval_ms']:.0f} ms again and again and recorded how late it woke;"
        " checks done per second count each turn until its last answer.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="login checks per configuration, in seconds")
    parser.add_argument("--rate", type=int, default=200, help="login checks per second")
    args = parser.parse_args()
    print(json.dumps(audit_rate(args.seconds, args.rate), indent=2))


if __name__ == "__main__":
    main()
