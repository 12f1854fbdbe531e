"""Both hosts are a ``Host``: its run-time methods are theirs, whatever password authenticator the hub wraps."""

from __future__ import annotations

import warnings

import pytest
from jupyterhub.auth import Authenticator, DummyAuthenticator, PAMAuthenticator
from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
from nativeauthenticator import NativeAuthenticator

from jupyter_2fa.hub.authenticator import TOTPAuthenticator, combined_class
from jupyter_2fa.server import TOTPIdentityProvider
from jupyter_2fa.web.host import Host

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # ldap3's use of pyasn1, at import; not ours to fix
    from ldapauthenticator import LDAPAuthenticator

# What Host defines for its hosts: an inner authenticator that had a method of the same name must not win.
HOST_METHODS = sorted(
    name
    for name, value in vars(Host).items()
    if not name.startswith("__") and (callable(value) or isinstance(value, property))
)
INNER = [PAMAuthenticator, DummyAuthenticator, SharedPasswordAuthenticator, NativeAuthenticator, LDAPAuthenticator]


def owner(cls: type, name: str) -> type:
    return next(base for base in cls.__mro__ if name in vars(base))


@pytest.mark.parametrize("inner", INNER, ids=[cls.__name__ for cls in INNER])
def test_the_hub_keeps_host_methods_over_its_inner_authenticator(inner: type[Authenticator]) -> None:
    combined = combined_class(inner)
    assert combined.__mro__.index(Host) < combined.__mro__.index(inner)
    for name in HOST_METHODS:
        assert owner(combined, name) in (Host, TOTPAuthenticator), name


def test_the_gate_keeps_host_methods() -> None:
    for name in HOST_METHODS:
        assert owner(TOTPIdentityProvider, name) in (Host, TOTPIdentityProvider), name
