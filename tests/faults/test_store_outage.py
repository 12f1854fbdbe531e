"""The store goes away under a running gate and comes back: another process holds SQLite's lock longer than the
store waits, or the PostgreSQL server stops and starts again.

While it is away every way in answers 503 with a message that says so (never a session, never a 500); once it
is back the same gate lets the user in, without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shlex
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from helpers.core import held_exclusively
from helpers.gate import PASSWORD, STATUS, Browser, EnrolledAccount, body_text, json_body, login_message
from helpers.postgres import (
    POSTGRES_SUPERUSER,
    LocalCluster,
    PostgresServer,
    find_postgres_bindir,
    postgres_skip_or_fail,
)

SQLITE_WAIT_SECONDS = 1  # the store's busy timeout here, set by its URL (?timeout=): the default would be 5 s
UNAVAILABLE = "unavailable"  # what every refusal of a store outage says (jupyter_2fa.messages)


# -- the outages ----------------------------------------------------------------------------------------------


@dataclass
class Outage:
    """A store (``url``) and a way to take it away for the duration of a ``with`` block."""

    url: str
    down: Callable[[], contextlib.AbstractContextManager[None]]
    longest_wait: float  # how long one refused request may take while the store is away


class StoppableCluster(LocalCluster):
    """A throw-away PostgreSQL (helpers/postgres.py) of this test alone, which it stops and starts again on the
    same port, so that the gate's URL stays right. The suite's shared server is never disturbed."""

    def stop_now(self) -> None:
        """Stop as an administrator's restart or a failover does: clients are disconnected at once."""
        self._run("pg_ctl", "stop", "--wait", "--mode=fast", "--pgdata", str(self.data))

    def start_again(self) -> None:
        """Start with the options of the last run (postmaster.opts, as ``pg_ctl restart`` reads them)."""
        argv = shlex.split((self.data / "postmaster.opts").read_text())  # the postgres binary, -D <data>, -c ...
        data = argv.index("-D")
        self.pg_ctl_start(argv[1:data] + argv[data + 2 :])  # pg_ctl gives -D itself


@pytest.fixture
def stoppable_postgres() -> Iterator[tuple[StoppableCluster, PostgresServer]]:
    bindir = find_postgres_bindir()
    if bindir is None:
        postgres_skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) not found: the outage needs its own server")
    cluster = StoppableCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster, PostgresServer("127.0.0.1", cluster.port, POSTGRES_SUPERUSER, cluster.password)
    finally:
        cluster.stop()
        cluster.remove()


@contextlib.contextmanager
def stopped(cluster: StoppableCluster) -> Iterator[None]:
    cluster.stop_now()
    try:
        yield
    finally:
        cluster.start_again()


@pytest.fixture(
    params=["sqlite-locked", pytest.param("postgresql-stopped", marks=pytest.mark.postgres)],
)
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Outage:
    if request.param == "sqlite-locked":
        store = tmp_path / "2fa" / "store.sqlite"
        return Outage(
            f"sqlite:///{store}?timeout={SQLITE_WAIT_SECONDS}",
            lambda: held_exclusively(store),
            longest_wait=SQLITE_WAIT_SECONDS + 4,
        )
    cluster, server = request.getfixturevalue("stoppable_postgres")
    return Outage(server.create_database(), lambda: stopped(cluster), longest_wait=4)


@pytest.fixture
def gate_config(outage: Outage) -> dict[str, Any]:
    return {"TwoFactorConfig": {"db_url": outage.url}}


# -- the ways in that touch the store ---------------------------------------------------------------------------


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"kernel:{password}".encode()).decode()


def refusal_text(response: HTTPResponse) -> str:
    """The message a refused page or API call shows."""
    if response.headers.get("Content-Type", "").startswith("application/json"):
        return str(json_body(response).get("message", ""))
    return login_message(response) or body_text(response)


Send = Callable[[Browser, str], Awaitable[HTTPResponse]]

WAYS_IN: list[tuple[str, Send]] = [
    ("login form", lambda browser, code: browser.login(PASSWORD, code)),
    (
        "enrollment page",  # a device is linked: starting over (a re-link) needs the password and a code
        lambda browser, code: browser.post_form("2fa/enroll", {"action": "start", "password": PASSWORD, "otp": code}),
    ),
    ("API with the password", lambda browser, code: browser.get(STATUS, headers={"Authorization": basic(PASSWORD)})),
]


async def new_login(browser: Browser, code: str) -> HTTPResponse:
    """The same code from a second browser (no cookies): a replay."""
    other = Browser(browser.fetch, base_url=browser.base_url, referer=browser.referer)
    return await other.login(PASSWORD, code)


async def test_store_outage_fails_closed_and_the_gate_recovers_without_a_restart(
    outage: Outage, browser: Browser, enrolled: EnrolledAccount
) -> None:
    """If the store is unreachable, login fails closed with a clear message: SQLite locked by another process
    beyond the store's busy timeout (the URL's ``?timeout=``, not a 30 s hang), or PostgreSQL stopped. Every way
    in answers 503 "unavailable", none a session or a 500; when the store is back, the same gate process lets
    the password and a code in."""
    code = enrolled.fresh_code()
    await browser.ensure_xsrf()
    with outage.down():
        for way, send in WAYS_IN:
            started = time.monotonic()
            response = await send(browser, code)
            waited = time.monotonic() - started
            assert response.code == 503, (way, body_text(response))
            assert UNAVAILABLE in refusal_text(response), way
            assert waited < outage.longest_wait, f"{way} waited {waited:.1f}s"
        assert browser.login_cookie() is None
        assert (await browser.get("api/contents")).code == 403

    # The code was refused, never accepted, so it still opens exactly one session.
    logged_in = await browser.login(PASSWORD, code)
    assert logged_in.code == 302, login_message(logged_in)
    assert (await browser.get("api/contents")).code == 200
    assert (await new_login(browser, code)).code == 401


@pytest.mark.parametrize("outage", ["sqlite-locked"], indirect=True)
async def test_the_server_keeps_answering_while_a_login_waits_on_the_store(
    outage: Outage, browser: Browser, enrolled: EnrolledAccount
) -> None:
    """The store's wait happens in the host's worker threads, never on the event loop: while a login waits out
    SQLite's lock, the same server (this test shares its loop) still answers another request. Were the store
    called on the loop, the login would have ended, 503, before the other request could even be sent."""
    code = enrolled.fresh_code()
    await browser.ensure_xsrf()
    with outage.down():
        login = asyncio.ensure_future(browser.login(PASSWORD, code))
        await asyncio.sleep(0.1)  # the login is in the store's wait now
        other = await Browser(browser.fetch, base_url=browser.base_url, referer=browser.referer).get("login")
        assert other.code == 200
        assert not login.done(), "the login ended before the other request was answered"
        assert (await login).code == 503
