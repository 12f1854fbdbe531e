"""Passkeys and security keys on the gate, over HTTP: the 2FA page links a key as the first factor, the login form
takes a key's signature instead of a code, the JSON API lists, adds, renames and removes keys. The browser's
WebAuthn API is played by the software authenticator of ``helpers.webauthn`` (the real-browser tests use
Chromium's virtual authenticator); the server is real and nothing in it is patched.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from traitlets import TraitError

from jupyter_2fa.config import TwoFactorConfig
from jupyter_2fa.core import BadRelyingParty
from jupyter_2fa.server import TOTPIdentityProvider

from helpers.gate import (
    PASSWORD,
    STATUS,
    WRONG_PASSWORD,
    Browser,
    EnrolledAccount,
    body_text,
    json_body,
    login_message,
    parse_form,
)
from helpers.webauthn import SoftKey

LOGIN_OPTIONS = "2fa/api/webauthn/login-options"
REGISTRATION_OPTIONS = "2fa/api/webauthn/registration-options"
CREDENTIALS = "2fa/api/webauthn/credentials"


@pytest.fixture
def key_browser(new_browser: Callable[[], Browser], jp_http_port: int, jp_base_url: str) -> Callable[[], Browser]:
    """Browsers that open the server as ``http://localhost:PORT``: WebAuthn needs a host name."""

    def make() -> Browser:
        browser = new_browser()
        browser.extra_headers["Host"] = f"localhost:{jp_http_port}"
        browser.referer = f"http://localhost:{jp_http_port}{jp_base_url}"
        return browser

    return make


@pytest.fixture
def origin(jp_http_port: int) -> str:
    return f"http://localhost:{jp_http_port}"


def challenge_of(answer: Any) -> bytes:
    text = answer["options"]["challenge"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def register_on_page(browser: Browser, key: SoftKey, origin: str, otp: str = "") -> Any:
    """The 2FA page's "add a key", as its script does: options after the password, then the page's form."""
    page = await browser.get("2fa/enroll")
    form = parse_form(body_text(page), "key_add_form")
    answer = await browser.post_json(REGISTRATION_OPTIONS, {"password": PASSWORD, "otp": otp})
    assert answer.code == 200, body_text(answer)
    credential = key.register("localhost", origin, challenge_of(json_body(answer)))
    return await browser.submit(form, {"credential": credential, "key_name": "YubiKey 5C", "password": PASSWORD})


async def log_in_with_key(browser: Browser, key: SoftKey, origin: str, password: str = PASSWORD) -> Any:
    answer = await browser.post_json(LOGIN_OPTIONS, {"password": password})
    assert answer.code == 200, body_text(answer)
    key.counter += 1
    assertion = key.sign("localhost", origin, challenge_of(json_body(answer)))
    return await browser.post_form("login", {"password": password, "otp": "", "webauthn": assertion})


async def test_a_key_as_the_first_factor(
    key_browser: Callable[[], Browser], origin: str, gate: TOTPIdentityProvider
) -> None:
    key = SoftKey(counter=1)
    linking = key_browser()
    done = await register_on_page(linking, key, origin)
    assert done.code == 200, body_text(done)
    assert "YubiKey 5C" in body_text(done) and 'id="recovery_codes"' in body_text(done)
    account = gate.enrollment.store.get(gate.username)
    assert account is not None and (account.enrolled, account.webauthn_keys) == (False, 1)

    other = key_browser()
    assert (await other.login(PASSWORD, "123456")).code == 401  # no app: no code is right
    logged_in = await log_in_with_key(other, key, origin)
    assert logged_in.code == 302, login_message(logged_in)
    status = json_body(await other.get(STATUS))
    assert (status["session_factor"], status["webauthn_keys"], status["enrolled"]) == ("webauthn", 1, False)


async def test_login_options_need_the_password_and_a_host_name(
    key_browser: Callable[[], Browser], browser: Browser, origin: str
) -> None:
    named = key_browser()
    await register_on_page(named, SoftKey(), origin)
    wrong = await key_browser().post_json(LOGIN_OPTIONS, {"password": WRONG_PASSWORD})
    assert wrong.code == 403
    on_an_ip_address = await browser.post_json(LOGIN_OPTIONS, {"password": PASSWORD})
    assert on_an_ip_address.code == 400
    assert "host name such as localhost" in json_body(on_an_ip_address)["message"]


async def test_a_signature_without_this_browsers_challenge_is_refused(
    key_browser: Callable[[], Browser], origin: str, gate: TOTPIdentityProvider
) -> None:
    key = SoftKey(counter=1)
    await register_on_page(key_browser(), key, origin)
    victim, attacker = key_browser(), key_browser()
    answer = await victim.post_json(LOGIN_OPTIONS, {"password": PASSWORD})
    key.counter += 1
    stolen = key.sign("localhost", origin, challenge_of(json_body(answer)))
    refused = await attacker.post_form("login", {"password": PASSWORD, "webauthn": stolen})
    assert refused.code == 401
    # and the victim's own answer, after the attacker burnt nothing of it, still works once
    accepted = await victim.post_form("login", {"password": PASSWORD, "webauthn": stolen})
    assert accepted.code == 302
    replayed = await victim.post_form("login", {"password": PASSWORD, "webauthn": stolen})
    assert replayed.code == 401


async def test_keys_api_list_add_rename_remove(
    key_browser: Callable[[], Browser], origin: str, gate: TOTPIdentityProvider
) -> None:
    first = SoftKey(b"first-key", counter=1)
    await register_on_page(key_browser(), first, origin)
    browser = key_browser()
    assert (await log_in_with_key(browser, first, origin)).code == 302

    # a session opened with a key adds another without a code
    answer = await browser.post_json(REGISTRATION_OPTIONS, {"password": PASSWORD})
    assert answer.code == 200, body_text(answer)
    second = SoftKey(b"second-key")
    created = json.loads(second.register("localhost", origin, challenge_of(json_body(answer))))
    added = await browser.post_json(CREDENTIALS, {"name": "phone", "credential": created})
    assert added.code == 201, body_text(added)
    assert json_body(added)["recovery_codes"] == []
    second_id = json_body(added)["credential"]["id"]

    listed = json_body(await browser.get(CREDENTIALS))["credentials"]
    assert [k["name"] for k in listed] == ["YubiKey 5C", "phone"]
    assert set(listed[0]) == {"id", "name", "created_at", "last_used_at", "transports", "aaguid"}

    renamed = await browser.post_json(f"{CREDENTIALS}/{second_id}", {"name": "work phone"}, method="PATCH")
    assert json_body(renamed)["credential"]["name"] == "work phone"
    removed = await browser.post_json(f"{CREDENTIALS}/{second_id}", {"password": PASSWORD}, method="DELETE")
    assert removed.code == 204
    last_id = listed[0]["id"]
    last = await browser.post_json(f"{CREDENTIALS}/{last_id}", {"password": PASSWORD}, method="DELETE")
    assert last.code == 409 and "only second factor" in json_body(last)["message"]
    gone = await browser.post_json(f"{CREDENTIALS}/{second_id}", {"password": PASSWORD}, method="DELETE")
    assert gone.code == 404


async def test_a_key_beside_the_app_needs_its_code(
    key_browser: Callable[[], Browser], origin: str, enrolled: EnrolledAccount
) -> None:
    browser = key_browser()
    assert (await browser.login(PASSWORD, enrolled.fresh_code())).code == 302
    refused = await browser.post_json(REGISTRATION_OPTIONS, {"password": PASSWORD})
    assert refused.code == 403
    done = await register_on_page(browser, SoftKey(), origin, otp=enrolled.fresh_code())
    assert done.code == 200, body_text(done)
    assert 'id="recovery_codes"' not in body_text(done)  # not the first factor: the app's codes stay


async def test_keys_only_account_cannot_add_the_app_with_the_password_alone(
    key_browser: Callable[[], Browser], origin: str, gate: TOTPIdentityProvider
) -> None:
    await register_on_page(key_browser(), SoftKey(), origin)
    stranger_with_the_password = key_browser()
    page = await stranger_with_the_password.post_form("2fa/enroll", {"action": "start", "password": PASSWORD})
    assert page.code == 401 and 'id="enroll_qr"' not in body_text(page)
    account = gate.enrollment.store.get(gate.username)
    assert account is not None and account.pending_secret is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"name": "x", "credential": "not an object"}, 400, id="credential-not-an-object"),
        pytest.param({"name": 5, "credential": {}}, 400, id="name-not-a-string"),
        pytest.param({"name": "x" * 65, "credential": {}}, 400, id="name-too-long"),
        pytest.param({"name": "x", "credential": {"id": "\u0000"}}, 400, id="credential-without-a-ceremony"),
        pytest.param({"name": "x", "credential": {"a": "b" * 20_000}}, 400, id="credential-too-large"),
    ],
)
async def test_bad_registration_bodies(
    key_browser: Callable[[], Browser], origin: str, body: dict[str, Any], status: int
) -> None:
    key = SoftKey(counter=1)
    await register_on_page(key_browser(), key, origin)
    browser = key_browser()
    assert (await log_in_with_key(browser, key, origin)).code == 302
    answer = await browser.post_json(CREDENTIALS, body)
    assert answer.code == status, body_text(answer)
    assert "message" in json_body(answer)


@pytest.mark.parametrize(
    "webauthn",
    [
        pytest.param("{}", id="empty-object"),
        pytest.param("not json", id="not-json"),
        pytest.param('{"rawId": "@@@"}', id="bad-base64"),
        pytest.param("[" * 5000, id="deep"),
    ],
)
async def test_malformed_key_answers_are_refused_not_crashed(
    key_browser: Callable[[], Browser], origin: str, webauthn: str
) -> None:
    await register_on_page(key_browser(), SoftKey(), origin)
    browser = key_browser()
    assert (await browser.post_json(LOGIN_OPTIONS, {"password": PASSWORD})).code == 200
    answer = await browser.post_form("login", {"password": PASSWORD, "webauthn": webauthn})
    assert answer.code == 401


@pytest.mark.parametrize("gate_config", [{"TwoFactorConfig": {"factors": ["totp"]}}], indirect=True, ids=["totp-only"])
async def test_keys_can_be_turned_off(key_browser: Callable[[], Browser]) -> None:
    browser = key_browser()
    assert 'id="key_login"' not in body_text(await browser.get("login"))
    assert (await browser.post_json(LOGIN_OPTIONS, {"password": PASSWORD})).code == 404


@pytest.mark.parametrize(
    "gate_config", [{"TwoFactorConfig": {"webauthn_required_for": "everyone"}}], indirect=True, ids=["keys-required"]
)
async def test_a_required_key_refuses_the_app_code(
    key_browser: Callable[[], Browser], origin: str, enrolled: EnrolledAccount
) -> None:
    browser = key_browser()
    refused = await browser.login(PASSWORD, enrolled.fresh_code())
    assert refused.code == 403 and "passkey or security key" in (login_message(refused) or "")
    done = await register_on_page(browser, SoftKey(counter=1), origin, otp=enrolled.fresh_code())
    assert done.code == 200, body_text(done)


@pytest.mark.parametrize(
    "gate_config", [{"TwoFactorConfig": {"factors": ["webauthn"]}}], indirect=True, ids=["keys-only-site"]
)
async def test_a_keys_only_site_links_no_app(key_browser: Callable[[], Browser]) -> None:
    page = await key_browser().post_form("2fa/enroll", {"action": "start", "password": PASSWORD})
    assert page.code == 403 and 'id="enroll_qr"' not in body_text(page)
    assert "passkeys and security keys only" in body_text(page)


@pytest.mark.parametrize(
    "gate_config", [{"TwoFactorConfig": {"webauthn_required_for": "admins"}}], indirect=True, ids=["admins"]
)
async def test_the_gates_one_user_is_its_admin(
    key_browser: Callable[[], Browser], origin: str, enrolled: EnrolledAccount
) -> None:
    refused = await key_browser().login(PASSWORD, enrolled.fresh_code())
    assert refused.code == 403 and "passkey or security key" in (login_message(refused) or "")


@pytest.mark.parametrize(
    "gate_config", [{"TwoFactorConfig": {"webauthn_required_for": "everyone"}}], indirect=True, ids=["keys-required"]
)
async def test_a_relayed_code_cannot_add_a_key_once_keys_are_required(
    key_browser: Callable[[], Browser], origin: str, enrolled: EnrolledAccount
) -> None:
    key = SoftKey(counter=1)
    assert (await register_on_page(key_browser(), key, origin, otp=enrolled.fresh_code())).code == 200
    phisher = key_browser()  # has the password and a code relayed from the user's screen
    answer = await phisher.post_json(REGISTRATION_OPTIONS, {"password": PASSWORD, "otp": enrolled.fresh_code()})
    assert answer.code == 400 and "log in with one" in json_body(answer)["message"]
    owner = key_browser()
    assert (await log_in_with_key(owner, key, origin)).code == 302
    more = await owner.post_json(REGISTRATION_OPTIONS, {"password": PASSWORD})
    assert more.code == 200, body_text(more)


@pytest.mark.parametrize(
    ("trait", "value", "words"),
    [
        pytest.param("webauthn_rp_id", "127.0.0.1", "not an IP address", id="ip-id"),
        pytest.param("webauthn_rp_id", "Hub.Example.org", "lower-case", id="upper-case-id"),
        pytest.param("webauthn_origin", "http://hub.example.org", "https", id="plain-http-origin"),
        pytest.param("webauthn_origin", "https://hub.example.org/hub/", "scheme://host", id="origin-with-path"),
    ],
)
def test_a_relying_party_that_cannot_work_stops_the_start(trait: str, value: str, words: str) -> None:
    with pytest.raises(TraitError, match=words):
        TwoFactorConfig(**{trait: value})


async def test_the_password_alone_removes_no_key(
    key_browser: Callable[[], Browser], origin: str, gate: TOTPIdentityProvider
) -> None:
    """Whoever has the password (a kernel's Basic credentials included) must not strip the account's keys."""
    key = SoftKey(b"only-key", counter=1)
    assert (await register_on_page(key_browser(), key, origin)).code == 200
    second = SoftKey(b"second-key")
    owner = key_browser()
    assert (await log_in_with_key(owner, key, origin)).code == 302
    answer = await owner.post_json(REGISTRATION_OPTIONS, {"password": PASSWORD})
    created = json.loads(second.register("localhost", origin, challenge_of(json_body(answer))))
    assert (await owner.post_json(CREDENTIALS, {"name": "spare", "credential": created})).code == 201
    basic = base64.b64encode(f"x:{PASSWORD}".encode()).decode()
    removed = await key_browser().request(
        f"{CREDENTIALS}/{base64.urlsafe_b64encode(b'second-key').rstrip(b'=').decode()}",
        method="DELETE",
        body=json.dumps({"password": PASSWORD}),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"},
    )
    assert removed.code == 403, body_text(removed)
    assert gate.enrollment.store.get(gate.username).webauthn_keys == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("settings", "host", "allowed"),
    [
        pytest.param({}, "localhost:8888", True, id="default-the-request's-host"),
        pytest.param({"webauthn_rp_id": "example.org"}, "example.org", True, id="the-id's-own-host"),
        pytest.param({"webauthn_rp_id": "example.org"}, "alice.example.org", False, id="a-host-below-the-id"),
        pytest.param(
            {"webauthn_rp_id": "example.org", "webauthn_origin": "https://hub.example.org"},
            "alice.example.org",
            True,
            id="a-configured-origin",
        ),
    ],
)
def test_an_origin_below_the_id_must_be_configured(settings: dict[str, str], host: str, allowed: bool) -> None:
    """A user's server on a subdomain (JupyterHub's subdomain_host) could otherwise relay signatures."""
    config = TwoFactorConfig(**settings)
    scheme = "http" if host.startswith("localhost") else "https"
    if allowed:
        assert config.relying_party(scheme, host).id == (settings.get("webauthn_rp_id") or "localhost")
    else:
        with pytest.raises(BadRelyingParty, match="webauthn_origin"):
            config.relying_party(scheme, host)
