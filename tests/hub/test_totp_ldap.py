"""TOTPAuthenticator over LDAPAuthenticator (``inner_authenticator_class = "ldap"``) against a real OpenLDAP
server (the fixture ``ldap_server``: our own slapd on loopback), and the hub's jupyter_events bus carrying the
2FA decisions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.hub import Hub, enroll_on_page, enrolled_device, login_error, module_hub, page_message, twofa_log_lines
from helpers.ldap import PEOPLE_DN, LdapServer

DECISION_SCHEMA = "https://events.jupyter.org/jupyter_2fa/decision/v1"
EVENTS_FILE = "events.jsonl"  # in the hub's working directory


def ldap_hub_config(server: LdapServer) -> str:
    return f"""
from logging import FileHandler

c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "ldap"
c.LDAPAuthenticator.server_address = {server.host!r}
c.LDAPAuthenticator.server_port = {server.port}
c.LDAPAuthenticator.tls_strategy = "insecure"  # plain LDAP on loopback; a real site uses before_bind or on_connect
c.LDAPAuthenticator.bind_dn_template = ["uid={{username}},{PEOPLE_DN}"]
c.Authenticator.allow_all = True

# The hub's jupyter_events bus, written where the test can read it.
c.EventLogger.handlers = [FileHandler({EVENTS_FILE!r})]
"""


@pytest.fixture(scope="module")
def ldap_hub(tmp_path_factory: pytest.TempPathFactory, ldap_server: LdapServer) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, ldap_hub_config(ldap_server)) as started:
        yield started


def test_ldap_password_and_code_log_in_and_neither_alone_does(ldap_hub: Hub, ldap_server: LdapServer) -> None:
    name = "ldapuser"
    password = ldap_server.passwords[name]

    # The enrollment page asks LDAP: a wrong password, or a name LDAP does not know, shows no secret.
    wrong = enroll_on_page(ldap_hub.new_browser(), name, password + "x")
    assert wrong.device is None, "a wrong LDAP password must not show a secret"
    assert wrong.start.status_code in {401, 403}
    assert page_message(wrong.start) == "Invalid username, password or code"
    assert enroll_on_page(ldap_hub.new_browser(), "nobody", password).device is None

    device = enrolled_device(ldap_hub.new_browser(), name, password)
    browser = ldap_hub.new_browser()

    # Required policy: the LDAP password alone is one factor.
    alone = browser.login(name, password)
    assert alone.status_code == 403, (alone.status_code, alone.headers.get("Location"))
    assert not browser.logged_in()

    # A code the hub would accept, with a wrong LDAP password: refused (and the code is not used up) ...
    code = device.next_code()
    wrong_password = browser.login(name, password + "x", code)
    assert wrong_password.status_code == 403, (wrong_password.status_code, wrong_password.headers.get("Location"))
    assert login_error(wrong_password) == "Invalid username or password"
    assert not browser.logged_in()

    # ... which the same code with the right LDAP password then proves.
    response = browser.login(name, password, code)
    assert response.status_code == 302, login_error(response) or response.text[-2000:]
    assert browser.logged_in()
    assert ldap_hub.api("GET", f"users/{name}").status_code == 200
    assert any("2FA login success" in line for line in twofa_log_lines(ldap_hub, name))


def _events(hub: Hub) -> tuple[list[str], list[dict[str, Any]]]:
    path = hub.directory / EVENTS_FILE
    lines = path.read_text().splitlines() if path.exists() else []
    return lines, [json.loads(line) for line in lines if line.strip()]


def _strings(value: Any) -> Iterator[str]:
    """Every string in an event's data (not jupyter_events' own ``__…__`` fields, such as the timestamp)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not str(key).startswith("__"):
                yield str(key)
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_the_hub_emits_2fa_decisions_on_its_event_bus(ldap_hub: Hub, ldap_server: LdapServer) -> None:
    name = "ldapauditor"
    password = ldap_server.passwords[name]
    device = enrolled_device(ldap_hub.new_browser(), name, password)
    browser = ldap_hub.new_browser()
    wrong_code = device.wrong_code()
    assert browser.login(name, password, wrong_code).status_code == 403
    code = device.next_code()
    response = browser.login(name, password, code)
    assert response.status_code == 302, login_error(response)

    lines, events = _events(ldap_hub)
    decisions = [event for event in events if event.get("__schema__") == DECISION_SCHEMA]
    mine = [(e["action"], e["outcome"], e["reason"]) for e in decisions if e.get("username") == name]
    assert ("login", "success", "totp") in mine, f"no login decision for {name} on the event bus: {lines}"
    assert ("login", "failure", "wrong-code") in mine, mine
    assert any(action == "enrollment-confirmed" and outcome == "success" for action, outcome, _ in mine), mine

    secrets_typed = {password, password + "x", code, wrong_code, device.secret}
    for line in lines:
        assert password not in line, f"the LDAP password is on the event bus: {line}"
        assert device.secret not in line, f"the TOTP secret is on the event bus: {line}"
    for event in decisions:
        for text in _strings(event):
            assert not any(secret in text for secret in secrets_typed), f"a secret in event {event}"
