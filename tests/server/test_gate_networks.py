"""Trusted networks: the password alone from there; forwarding headers believed only from trusted proxies."""

from __future__ import annotations

import pytest

from jupyter_2fa.core.audit import Action, AuditEvent

from helpers.gate import PASSWORD, WRONG_PASSWORD, Browser, EnrolledAccount, login_message

LOOPBACK_TRUSTED = {"TwoFactorConfig": {"trusted_networks": ["127.0.0.0/8"]}}
TEN_TRUSTED_NO_PROXY = {"TwoFactorConfig": {"trusted_networks": ["10.0.0.0/8"]}}
TEN_TRUSTED_BEHIND_PROXY = {
    "TwoFactorConfig": {"trusted_networks": ["10.0.0.0/8"], "trusted_proxies": ["127.0.0.1/32"]}
}


def _logins(events: list[AuditEvent]) -> list[AuditEvent]:
    return [event for event in events if event.action is Action.LOGIN]


@pytest.mark.parametrize("gate_config", [LOOPBACK_TRUSTED], indirect=True, ids=["loopback-trusted"])
@pytest.mark.parametrize("device", ["no-device", "device-linked"])
async def test_password_alone_logs_in_from_a_trusted_network(
    request: pytest.FixtureRequest, browser: Browser, audit_events: list[AuditEvent], device: str
) -> None:
    if device == "device-linked":
        request.getfixturevalue("enrolled")

    response = await browser.login(PASSWORD, "")

    assert response.code == 302, login_message(response)
    assert (await browser.get("api/contents")).code == 200
    [event] = _logins(audit_events)
    assert (event.outcome, event.reason, event.remote_addr) == ("success", "trusted-network", "127.0.0.1")


@pytest.mark.parametrize("gate_config", [LOOPBACK_TRUSTED], indirect=True, ids=["loopback-trusted"])
async def test_a_trusted_network_still_needs_the_right_password(browser: Browser) -> None:
    response = await browser.login(WRONG_PASSWORD, "")
    assert response.code == 401
    assert (await browser.get("api/contents")).code == 403


FORGED_HEADERS = {
    "x-forwarded-for": {"X-Forwarded-For": "10.1.2.3"},
    "x-real-ip": {"X-Real-Ip": "10.1.2.3"},
    "both": {"X-Forwarded-For": "10.1.2.3", "X-Real-Ip": "10.1.2.3"},
}


@pytest.mark.parametrize("gate_config", [TEN_TRUSTED_NO_PROXY], indirect=True, ids=["no-trusted-proxy"])
@pytest.mark.parametrize("headers", list(FORGED_HEADERS.values()), ids=list(FORGED_HEADERS))
async def test_forwarding_headers_from_an_untrusted_peer_are_ignored(
    browser: Browser, enrolled: EnrolledAccount, audit_events: list[AuditEvent], headers: dict[str, str]
) -> None:
    response = await browser.login(PASSWORD, "", headers=headers)

    assert response.code == 401, login_message(response)
    assert browser.login_cookie() is None
    [event] = _logins(audit_events)
    assert event.remote_addr == "127.0.0.1", "the audit log believed a forged header"


PROXIED = {
    "forwarded-trusted-client": ({"X-Forwarded-For": "10.1.2.3"}, True),
    "real-ip-trusted-client": ({"X-Real-Ip": "10.1.2.3"}, True),
    "client-forged-left-of-trusted": ({"X-Forwarded-For": "192.0.2.7, 10.1.2.3"}, True),
    "right-most-untrusted": ({"X-Forwarded-For": "10.1.2.3, 192.0.2.7"}, False),
    "untrusted-client": ({"X-Forwarded-For": "192.0.2.7"}, False),
    "garbage-hop": ({"X-Forwarded-For": "10.1.2.3, not-an-ip"}, False),
    "no-header": ({}, False),
}


@pytest.mark.parametrize("gate_config", [TEN_TRUSTED_BEHIND_PROXY], indirect=True, ids=["behind-trusted-proxy"])
@pytest.mark.parametrize(("headers", "accepted"), list(PROXIED.values()), ids=list(PROXIED))
async def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client(
    browser: Browser, enrolled: EnrolledAccount, headers: dict[str, str], accepted: bool
) -> None:
    response = await browser.login(PASSWORD, "", headers=headers)

    if accepted:
        assert response.code == 302, login_message(response)
        assert (await browser.get("api/contents", headers=headers)).code == 200
    else:
        assert response.code == 401, login_message(response)
        assert browser.login_cookie() is None


SESSION_FROM = {
    "same-trusted-client": ({"X-Forwarded-For": "10.1.2.3"}, 200),
    "other-trusted-client": ({"X-Forwarded-For": "10.200.0.1"}, 200),
    "untrusted-client": ({"X-Forwarded-For": "192.0.2.7"}, 403),
    "untrusted-right-most": ({"X-Forwarded-For": "10.1.2.3, 192.0.2.7"}, 403),
    "the-proxy-itself": ({}, 403),
}


@pytest.mark.parametrize("gate_config", [TEN_TRUSTED_BEHIND_PROXY], indirect=True, ids=["behind-trusted-proxy"])
@pytest.mark.parametrize(("headers", "status"), list(SESSION_FROM.values()), ids=list(SESSION_FROM))
async def test_a_trusted_network_session_works_only_from_trusted_networks(
    browser: Browser, enrolled: EnrolledAccount, headers: dict[str, str], status: int
) -> None:
    response = await browser.login(PASSWORD, "", headers={"X-Forwarded-For": "10.1.2.3"})
    assert response.code == 302, login_message(response)

    assert (await browser.get("api/contents", headers=headers)).code == status


@pytest.mark.parametrize("gate_config", [TEN_TRUSTED_BEHIND_PROXY], indirect=True, ids=["behind-trusted-proxy"])
async def test_a_2fa_session_is_not_tied_to_the_network(browser: Browser, enrolled: EnrolledAccount) -> None:
    response = await browser.login(PASSWORD, enrolled.fresh_code(), headers={"X-Forwarded-For": "192.0.2.7"})
    assert response.code == 302, login_message(response)
    assert (await browser.get("api/contents", headers={"X-Forwarded-For": "198.51.100.9"})).code == 200
