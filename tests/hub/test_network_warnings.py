"""The hub says at start-up when its trusted networks cannot work as meant behind a proxy on its machine."""

from __future__ import annotations

import logging

import pytest
from traitlets.config import Config

from jupyter_2fa.hub.authenticator import TOTPAuthenticator

CASES = {
    "loopback-without-proxies": (["127.0.0.0/8"], [], logging.CRITICAL, "every login skips the code"),
    "ipv6-loopback-without-proxies": (["::1/128"], [], logging.CRITICAL, "every login skips the code"),
    "networks-without-proxies": (["10.0.0.0/8"], [], logging.WARNING, "match only clients that connect"),
    "networks-with-a-proxy": (["10.0.0.0/8"], ["127.0.0.1"], None, ""),
    "no-networks": ([], [], None, ""),
}


@pytest.mark.parametrize(("networks", "proxies", "level", "words"), list(CASES.values()), ids=list(CASES))
def test_start_up_warnings(
    caplog: pytest.LogCaptureFixture, networks: list[str], proxies: list[str], level: int | None, words: str
) -> None:
    settings = {"trusted_networks": networks, "trusted_proxies": proxies}
    config = Config({"TOTPAuthenticator": {"inner_authenticator_class": "dummy"}, "TwoFactorConfig": settings})
    with caplog.at_level(logging.WARNING):
        TOTPAuthenticator(config=config, log=logging.getLogger("hub-under-test"))
    said = [record for record in caplog.records if record.name == "hub-under-test"]
    if level is None:
        assert said == []
    else:
        assert [record.levelno for record in said] == [level]
        assert words in said[0].getMessage()
