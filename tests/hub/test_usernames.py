"""Unknown and known hub users are refused alike, also where the inner authenticator looks names up.

``PAMAuthenticator.pam_normalize_username`` maps a name through the system's user database, and raises for a
name that is not there: an unknown user was a 500 where a known one with a wrong password was a 403.
"""

from __future__ import annotations

import asyncio

import pytest
from traitlets.config import Config

from jupyter_2fa.hub.authenticator import TOTPAuthenticator

UNKNOWN = "no-such-user-jupyter-2fa"
PAM_NORMALIZING = Config(
    {"TOTPAuthenticator": {"inner_authenticator_class": "pam"}, "PAMAuthenticator": {"pam_normalize_username": True}}
)


@pytest.mark.parametrize("name", [UNKNOWN, "root"], ids=["unknown", "known"])
def test_a_wrong_password_is_a_plain_refusal(name: str) -> None:
    authenticator = TOTPAuthenticator(config=PAM_NORMALIZING)
    check = asyncio.run(authenticator.check_password(None, name, "not the password"))  # type: ignore[arg-type]
    assert check.ok is False
    assert check.name == name
    assert authenticator.account_named(name) == name
