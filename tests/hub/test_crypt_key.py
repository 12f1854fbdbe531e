"""A hub whose ``JUPYTERHUB_CRYPT_KEY`` is weak refuses to start, before anyone logs in."""

from __future__ import annotations

import base64
import secrets

import pytest
from traitlets.config import Config

from jupyter_2fa.hub.authenticator import WEAK_CRYPT_KEY, TOTPAuthenticator

STRONG = {
    "hex": secrets.token_bytes(32).hex(),
    "base64": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "base64-unpadded": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="),
    "two-keys": f"{secrets.token_bytes(32).hex()};{secrets.token_bytes(32).hex()}",
    "32-characters": secrets.token_urlsafe(24),
}
WEAK = {
    "password": "hunter2",
    "16-bytes-hex-with-one-more": secrets.token_bytes(16).hex() + "0",
    "31-characters": secrets.token_urlsafe(24)[:31],
    "31-bytes-base64": base64.urlsafe_b64encode(secrets.token_bytes(31)).decode(),
    "33-bytes-base64": base64.urlsafe_b64encode(secrets.token_bytes(33)).decode(),
    "separators-only": " ; , ",
    "one-weak-of-two": f"{secrets.token_bytes(32).hex()};abc",
    "not-hex-64": "z" * 64,
}
DUMMY = Config({"TOTPAuthenticator": {"inner_authenticator_class": "dummy"}})


@pytest.mark.parametrize("key", list(STRONG.values()), ids=list(STRONG))
def test_a_32_byte_key_is_taken(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", key)
    monkeypatch.delenv("JUPYTER_2FA_KEYS", raising=False)
    assert TOTPAuthenticator(config=DUMMY).keyring().source == "$JUPYTERHUB_CRYPT_KEY"


@pytest.mark.parametrize("key", list(WEAK.values()), ids=list(WEAK))
def test_a_weak_key_stops_the_hub_at_start_up(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", key)
    monkeypatch.delenv("JUPYTER_2FA_KEYS", raising=False)
    with pytest.raises(ValueError, match="keys JupyterHub accepts") as refused:
        TOTPAuthenticator(config=DUMMY)
    assert str(refused.value) == WEAK_CRYPT_KEY
    assert key.strip(" ;,") == "" or key not in str(refused.value)  # the message never repeats the key
