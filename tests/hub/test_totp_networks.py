"""Trusted networks on the hub: the password alone from there, and no way in by forging forwarding headers.

The browser talks to configurable-http-proxy, which appends the address it sees (127.0.0.1 here) to
``X-Forwarded-For`` before the hub reads it; whatever the client wrote to the left of that is its own invention.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.hub import Hub, HubBrowser, HubFactory, enrolled_device, login_error, module_hub, twofa_log_lines

PASSWORD = "correct horse battery staple"

CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
"""

FORGED = {
    "x-real-ip": {"X-Real-Ip": "10.1.2.3"},
    "x-forwarded-for": {"X-Forwarded-For": "10.1.2.3"},
    "both": {"X-Real-Ip": "10.1.2.3", "X-Forwarded-For": "10.1.2.3"},
}


@pytest.fixture(scope="module")
def forged_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    config = CONFIG + 'c.TwoFactorConfig.trusted_networks = ["10.0.0.0/8"]\n'
    with module_hub(tmp_path_factory, config) as started:
        yield started


@pytest.mark.parametrize("enrolled", [True, False], ids=["enrolled", "not-enrolled"])
@pytest.mark.parametrize("forged", list(FORGED))
def test_forged_forwarding_headers_do_not_put_a_client_in_a_trusted_network(
    forged_hub: Hub, forged: str, enrolled: bool
) -> None:
    hub = forged_hub
    username = f"mallory-{forged}-{'enrolled' if enrolled else 'new'}"
    if enrolled:
        enrolled_device(hub.new_browser(), username, PASSWORD)
    browser = hub.new_browser()
    # The login page with the same headers: JupyterHub ties an anonymous _xsrf token to tornado's remote_ip,
    # which believes X-Real-Ip; an attacker loads the form the same way.
    assert browser.get("/hub/login", headers=FORGED[forged]).status_code == 200
    response = browser.post("/hub/login", {"username": username, "password": PASSWORD}, headers=FORGED[forged])
    decisions = [line for line in twofa_log_lines(hub, username) if "2FA login" in line]
    assert len(decisions) == 1, decisions
    assert response.status_code == 403, (response.headers.get("Location"), decisions)
    assert login_error(response) is not None
    assert not browser.logged_in()
    assert "2FA login failure" in decisions[0]
    assert "trusted-network" not in decisions[0]
    assert " from 127.0.0.1:" in decisions[0]  # the address the proxy saw, not the forged one


def test_code_on_the_hubs_machine_cannot_forge_its_address_at_the_hubs_own_port(forged_hub: Hub) -> None:
    """User code on the hub's machine (a kernel, a batch job) can skip the proxy and connect to the hub's own
    port from loopback. No peer is a proxy unless listed in trusted_proxies, so its X-Forwarded-For is only
    words: no trusted network, and the audit log records the real peer (fail2ban cannot be aimed elsewhere)."""
    browser = HubBrowser(f"http://127.0.0.1:{forged_hub.hub_port}")
    forged = {"X-Forwarded-For": "10.1.2.3"}
    try:
        assert browser.get("/hub/login", headers=forged).status_code == 200
        response = browser.post("/hub/login", {"username": "mallory-local", "password": PASSWORD}, headers=forged)
    finally:
        browser.close()
    decisions = [line for line in twofa_log_lines(forged_hub, "mallory-local") if "2FA login" in line]
    assert response.status_code == 403, (response.headers.get("Location"), decisions)
    assert len(decisions) == 1 and "2FA login failure" in decisions[0], decisions
    assert " from 127.0.0.1:" in decisions[0] and "10.1.2.3" not in decisions[0]


def test_the_password_alone_logs_in_from_a_trusted_network(hub_factory: HubFactory) -> None:
    hub = hub_factory(CONFIG + 'c.TwoFactorConfig.trusted_networks = ["127.0.0.0/8"]\n')
    browser = hub.new_browser()
    response = browser.login("trudy", PASSWORD)
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()
    assert any(
        "2FA login success" in line and line.endswith("from 127.0.0.1: trusted-network")
        for line in twofa_log_lines(hub, "trudy")
    ), hub.log_tail()

    # The password is still checked.
    refused = hub.new_browser().login("trudy", "not the password")
    assert refused.status_code == 403
    assert login_error(refused) == "Invalid username or password"
