"""Every field of every form and JSON body of a real gate, fed the input-abuse table (helpers/malformed.py): each
value gets a 4xx with a message, never a 500 or a traceback, and nothing the store protects changes."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from tornado.httpclient import HTTPResponse

from jupyter_2fa.core.store import accounts, recovery_codes
from jupyter_2fa.server import TOTPIdentityProvider

from helpers import malformed
from helpers.gate import (
    CONFIRM,
    ENROLLMENT,
    PASSWORD,
    RECOVERY_CODES,
    RELINK,
    STATUS,
    Browser,
    EnrolledAccount,
    body_text,
)

# Refused values must not lock the account or make it wait, so that the last one is answered like the first.
LENIENT = {"TwoFactorConfig": {"lockout_threshold": 100, "backoff_free_attempts": 100}}

Send = Callable[[Browser, Any], Awaitable[HTTPResponse]]


def form_body(**fields: str) -> bytes:
    """URL-encoded as a browser would, lone surrogates included (as the bytes a broken client sends)."""
    return "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in fields.items()).encode()


def json_body(**fields: Any) -> bytes:
    return json.dumps(fields).encode("utf-8", "surrogatepass")


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"kernel:{password}".encode("utf-8", "surrogatepass")).decode()


async def post_form(browser: Browser, path: str, **fields: str) -> HTTPResponse:
    return await browser.post_raw(path, form_body(_xsrf=await browser.ensure_xsrf(), **fields))


async def kernel_call(browser: Browser, method: str, path: str, body: bytes | None) -> HTTPResponse:
    """A JSON call with the password as Basic credentials (no session, no XSRF), as the notebook panel makes."""
    headers = {"Authorization": basic(PASSWORD), "Content-Type": "application/json"}
    return await browser.request(path, method=method, body=body, headers=headers)


@dataclass(frozen=True)
class Field:
    send: Send
    json: bool = False  # JSON can also carry the wrong types of malformed.JSON_ONLY


def code_of(enrolled: EnrolledAccount) -> str:
    return enrolled.code_at(-10)  # a well-formed code that is no longer valid


FIELDS: dict[str, Field] = {
    "login.password": Field(lambda b, v: post_form(b, "login", password=v, otp="000000")),
    "login.otp": Field(lambda b, v: post_form(b, "login", password=PASSWORD, otp=v)),
    "enroll.action": Field(lambda b, v: post_form(b, "2fa/enroll", action=v, password=PASSWORD)),
    "enroll.password": Field(lambda b, v: post_form(b, "2fa/enroll", action="start", password=v)),
    "enroll.code": Field(lambda b, v: post_form(b, "2fa/enroll", action="confirm", code=v)),
    "recovery-codes.password": Field(
        lambda b, v: kernel_call(b, "POST", RECOVERY_CODES, json_body(password=v, otp="000000")), json=True
    ),
    "recovery-codes.otp": Field(
        lambda b, v: kernel_call(b, "POST", RECOVERY_CODES, json_body(password=PASSWORD, otp=v)), json=True
    ),
    "relink.otp": Field(lambda b, v: kernel_call(b, "POST", RELINK, json_body(password=PASSWORD, otp=v)), json=True),
    "relink.reveal": Field(
        lambda b, v: kernel_call(b, "POST", RELINK, json_body(password=PASSWORD, otp="000000", reveal=v)), json=True
    ),
    "enrollment.password": Field(lambda b, v: kernel_call(b, "POST", ENROLLMENT, json_body(password=v)), json=True),
    "confirm.code": Field(lambda b, v: kernel_call(b, "POST", CONFIRM, json_body(code=v)), json=True),
    "cancel.otp": Field(lambda b, v: kernel_call(b, "DELETE", ENROLLMENT, json_body(otp=v)), json=True),
    "basic.password": Field(
        lambda b, v: b.request(STATUS, headers={"Authorization": basic(v)}),
    ),
}


def protected_state(gate: TOTPIdentityProvider) -> tuple[Any, ...]:
    """What an attack must not change: the factor, the replay guard, sessions, pending state, recovery codes."""
    store = gate.enrollment.store
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(
                accounts.c.secret,
                accounts.c.generation,
                accounts.c.last_step,
                accounts.c.epoch,
                accounts.c.pending_secret,
            )
        ).all()
        codes = conn.execute(
            sa.select(recovery_codes.c.code_hash, recovery_codes.c.used_at).order_by(recovery_codes.c.id)
        ).all()
    return tuple(row), tuple(codes)


@pytest.mark.parametrize("gate_config", [LENIENT], indirect=True, ids=["lenient"])
@pytest.mark.parametrize("field", list(FIELDS.values()), ids=list(FIELDS))
async def test_every_malformed_value_is_a_clear_4xx_and_changes_nothing(
    new_browser: Callable[[], Browser],
    gate: TOTPIdentityProvider,
    enrolled: EnrolledAccount,
    caplog: pytest.LogCaptureFixture,
    field: Field,
) -> None:
    values: dict[str, Any] = {**malformed.TEXT, **(malformed.JSON_ONLY if field.json else {})}
    before = protected_state(gate)
    answers: dict[str, int] = {}
    for name, value in values.items():
        response = await field.send(new_browser(), value)
        answers[name] = response.code
        text = body_text(response)
        assert "Traceback" not in text and 'File "' not in text, (name, text[-300:])
    wrong = {name: code for name, code in answers.items() if not 400 <= code < 500}
    assert not wrong, f"not a 4xx: {wrong}"
    assert protected_state(gate) == before
    crashes = [r.getMessage() for r in caplog.records if r.exc_info or "Uncaught exception" in r.getMessage()]
    assert not crashes, crashes


@pytest.mark.parametrize("gate_config", [LENIENT], indirect=True, ids=["lenient"])
async def test_huge_bodies_are_refused_before_they_are_read_into_a_field(
    new_browser: Callable[[], Browser], gate: TOTPIdentityProvider, enrolled: EnrolledAccount
) -> None:
    before = protected_state(gate)
    ten_mb = "1" * (10 * 1024 * 1024)
    for send in (
        lambda b: kernel_call(b, "POST", RECOVERY_CODES, json_body(password=PASSWORD, otp=ten_mb)),
        lambda b: post_form(b, "login", password=PASSWORD, otp=ten_mb),
        lambda b: kernel_call(b, "POST", CONFIRM, b"[" * 200_000 + b"]" * 200_000),
        lambda b: kernel_call(b, "POST", CONFIRM, b'{"code": "\xff\xfe\xfd"}'),
    ):
        response = await send(new_browser())
        assert 400 <= response.code < 500, body_text(response)[-300:]
    assert protected_state(gate) == before
    # And the owner still gets in.
    login = await new_browser().login(PASSWORD, enrolled.fresh_code())
    assert login.code == 302, body_text(login)
