"""WebAuthn (passkeys, security keys, platform authenticators) as a phishing-resistant second factor.

A TOTP code can be relayed by a fake login page within its 30 s; a WebAuthn signature cannot, because the
browser puts the page's origin into what the authenticator signs and the authenticator scopes each key to a
relying-party id. This module does the ceremony's cryptography with py_webauthn (a maintained implementation of
the W3C spec) and adds this project's policy on top: user verification is always required (the key alone is
something you have; the PIN or biometric makes it a second factor on its own), and a signature counter that goes
backwards is reported as :class:`ClonedAuthenticator` so the caller can audit it.

Pure: no web framework, no store. py_webauthn (and with it cbor2 and pyOpenSSL) is imported inside the
functions, so importing the gate stays light. Challenges are generated here and returned to the caller, which
keeps them in the store (:meth:`jupyter_2fa.core.store.Store.save_webauthn_challenge`), single-use and bound to
the session that asked, so they work across hub processes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from .errors import TwoFactorError

# 32 random bytes: the spec asks for at least 16; more costs nothing.
CHALLENGE_BYTES = 32
# How long the browser lets the user touch the key or unlock the passkey (milliseconds). The store's
# challenge lifetime should not be shorter.
CEREMONY_TIMEOUT_MS = 120_000
# The transports WebAuthn Level 3 names (AuthenticatorTransport).
_TRANSPORTS = frozenset({"usb", "nfc", "ble", "smart-card", "hybrid", "internal", "cable"})


class WebAuthnError(TwoFactorError):
    """Base of the WebAuthn errors; py_webauthn's own exceptions never leave this module."""


class BadRelyingParty(WebAuthnError, ValueError):
    """The configured relying party cannot work (an IP address as id, an origin outside the id, ...)."""


class CredentialRefused(WebAuthnError):
    """The browser's response does not prove possession of the key for this site and this challenge
    (wrong origin or relying party, wrong challenge, bad signature, malformed data)."""


class UserNotVerified(CredentialRefused):
    """The authenticator did not verify its user (no PIN, biometric or device unlock): only "something you
    have", which is not enough to stand in for the app code."""


class ClonedAuthenticator(CredentialRefused):
    """The signature counter went backwards: two copies of the key exist. The login is refused and the caller
    should audit it (an admin may want to remove the key)."""

    def __init__(self, stored: int, presented: int) -> None:
        super().__init__(
            f"the security key's signature counter went backwards ({presented} after {stored}): "
            "it may have been cloned, so it was refused"
        )
        self.stored = stored
        self.presented = presented


@dataclass(frozen=True)
class RelyingParty:
    """Who the credentials belong to: ``id`` is the host name the keys are scoped to, ``name`` what the
    browser shows, ``origin`` the exact ``scheme://host[:port]`` the login page is served from.

    >>> RelyingParty("example.org", "Example Jupyter", "https://hub.example.org").id
    'example.org'
    >>> try:
    ...     RelyingParty("127.0.0.1", "Lab", "http://127.0.0.1:8888")
    ... except BadRelyingParty as err:
    ...     print(err)
    WebAuthn needs a host name such as localhost, not an IP address ('127.0.0.1')
    """

    id: str
    name: str
    origin: str

    def __post_init__(self) -> None:
        rp_id = self.id
        if _is_ip_address(rp_id):
            raise BadRelyingParty(f"WebAuthn needs a host name such as localhost, not an IP address ({rp_id!r})")
        if not rp_id or rp_id != rp_id.lower() or any(c in rp_id for c in ":/ ") or rp_id.strip(".") != rp_id:
            raise BadRelyingParty(f"the WebAuthn relying-party id must be a lower-case host name, not {rp_id!r}")
        if not self.name:
            raise BadRelyingParty("the WebAuthn relying-party name must not be empty")
        parts = urlsplit(self.origin)
        host = parts.hostname or ""
        if parts.path or parts.query or parts.fragment or parts.username or parts.password:
            raise BadRelyingParty(f"a WebAuthn origin is scheme://host[:port] only, not {self.origin!r}")
        if _is_ip_address(host):
            raise BadRelyingParty(
                f"WebAuthn needs a host name such as localhost, not an IP address (origin {self.origin!r})"
            )
        # Browsers allow WebAuthn only in a secure context: https, or http on localhost.
        secure = parts.scheme == "https" or (
            parts.scheme == "http" and (host == "localhost" or host.endswith(".localhost"))
        )
        if not secure:
            raise BadRelyingParty(
                f"browsers allow WebAuthn only over https (or http on localhost), not on {self.origin!r}"
            )
        if host != rp_id and not host.endswith("." + rp_id):
            raise BadRelyingParty(
                f"the origin's host {host!r} must be the relying-party id {rp_id!r} or one of its subdomains"
            )


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class NewCredential:
    """A verified registration, ready to store: the credential id and COSE public key the assertions are
    checked against, the counter the authenticator started at, how the browser reached it (``transports``, a
    hint for later logins) and the AAGUID naming the authenticator's model (all zeros when it does not say)."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str


class KnownCredential(Protocol):
    """What an assertion is checked against: a stored credential (the store's record satisfies this)."""

    @property
    def credential_id(self) -> bytes: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def sign_count(self) -> int: ...


@dataclass(frozen=True)
class KeyAssertion:
    """A login's answer from a passkey or security key, with what it is checked against: the browser's
    response (``PublicKeyCredential.toJSON()``), the challenge it answers (saved in the store under
    ``challenge_id`` for the session ``bound_to``) and the relying party the page belongs to."""

    response_json: str = field(repr=False)
    challenge_id: str = field(repr=False)
    bound_to: str = field(repr=False)
    relying_party: RelyingParty

    @property
    def credential_id(self) -> bytes | None:
        """The id of the key that signed, as the response names it; None when it names none readable.

        >>> KeyAssertion('{"rawId": "AAEC"}', "c", "s", RelyingParty("localhost", "L", "http://localhost")).credential_id
        b'\\x00\\x01\\x02'
        """
        try:
            named = json.loads(self.response_json).get("rawId")
            return from_b64url(named) if isinstance(named, str) else None
        except (ValueError, AttributeError, binascii.Error, RecursionError):
            return None


def b64url(raw: bytes) -> str:
    """Bytes as WebAuthn's JSON writes them: base64url without padding (how ids are stored and shown too)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """:func:`b64url` undone; ``binascii.Error`` (a ValueError) for text that is not base64url.

    >>> from_b64url(b64url(b"\\x00\\xff")) == b"\\x00\\xff"
    True
    """
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def registration_options(
    rp: RelyingParty, username: str, existing_credential_ids: Sequence[bytes]
) -> tuple[str, bytes]:
    """Options for ``navigator.credentials.create()`` as JSON, and the challenge to keep in the store.

    User verification is required (see the module's docstring); a resident (discoverable) key is preferred, so
    a passkey can later be offered by the browser, but a security key without storage still works. The user's
    existing credentials are excluded, so the same authenticator is not registered twice. No attestation is
    asked for: the project does not restrict authenticator models, and asking makes browsers show a prompt."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    challenge = new_challenge()
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=username,
        challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=bytes(cid)) for cid in existing_credential_ids],
    )
    return options_to_json(options), challenge


def verify_registration(rp: RelyingParty, challenge: bytes, response_json: str) -> NewCredential:
    """Check the browser's answer to :func:`registration_options`; raises :class:`CredentialRefused` (or
    :class:`UserNotVerified`) instead of returning a credential that must not be stored."""
    from webauthn import verify_registration_response
    from webauthn.helpers import parse_registration_credential_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        parsed = parse_registration_credential_json(response_json)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=False,  # checked below, to say precisely what was missing
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, RecursionError) as err:
        raise CredentialRefused(f"the security key's registration was refused: {err}") from err
    if not verified.user_verified:
        raise UserNotVerified("the security key did not verify its user (PIN, biometric or device unlock)")
    transports = tuple(str(getattr(t, "value", t)) for t in (parsed.response.transports or ()))
    return NewCredential(
        credential_id=bytes(verified.credential_id),
        public_key=bytes(verified.credential_public_key),
        sign_count=verified.sign_count,
        transports=transports or _legacy_transports(response_json),
        aaguid=verified.aaguid,
    )


def _legacy_transports(response_json: str) -> tuple[str, ...]:
    """Transports where older client libraries put them (beside ``response``, not in it): only a hint for later
    logins, so anything unexpected is dropped rather than refused."""
    try:
        listed = json.loads(response_json).get("transports")
    except (ValueError, AttributeError, RecursionError):
        return ()
    if not isinstance(listed, list):
        return ()
    return tuple(t for t in listed if isinstance(t, str) and t in _TRANSPORTS)


def authentication_options(rp: RelyingParty, allowed_credential_ids: Sequence[bytes]) -> tuple[str, bytes]:
    """Options for ``navigator.credentials.get()`` as JSON, and the challenge to keep in the store.

    The user is already named (the password came first), so the allowed credentials are that user's only."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

    challenge = new_challenge()
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=[PublicKeyCredentialDescriptor(id=bytes(cid)) for cid in allowed_credential_ids],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options), challenge


def verify_assertion(rp: RelyingParty, challenge: bytes, response_json: str, credential: KnownCredential) -> int:
    """Check a login's signature with ``credential``; returns the new signature counter to store.

    Raises :class:`CredentialRefused` for a response that is not for this site, challenge or key,
    :class:`UserNotVerified` when the user was not verified, and :class:`ClonedAuthenticator` when the counter
    did not move forward (checked only after the signature, so nobody can forge that alarm)."""
    from webauthn import verify_authentication_response
    from webauthn.helpers import parse_authentication_credential_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        parsed = parse_authentication_credential_json(response_json)
        if bytes(parsed.raw_id) != bytes(credential.credential_id):
            raise CredentialRefused("the response is signed by another security key than the one expected")
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=credential.public_key,
            # 0 turns py_webauthn's counter check off: ours below raises a distinct error for it.
            credential_current_sign_count=0,
            require_user_verification=False,  # checked below, to say precisely what was missing
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, RecursionError) as err:
        raise CredentialRefused(f"the security key's signature was refused: {err}") from err
    if not verified.user_verified:
        raise UserNotVerified("the security key did not verify its user (PIN, biometric or device unlock)")
    if sign_count_went_back(credential.sign_count, verified.new_sign_count):
        raise ClonedAuthenticator(credential.sign_count, verified.new_sign_count)
    return verified.new_sign_count


def sign_count_went_back(stored: int, presented: int) -> bool:
    """Whether a signature counter shows a clone (WebAuthn §6.1.1): it must grow, unless the authenticator
    does not count at all (0 both before and after, as many passkeys do).

    >>> [sign_count_went_back(s, p) for s, p in [(0, 0), (0, 1), (5, 6), (5, 5), (5, 4), (5, 0)]]
    [False, False, False, True, True, True]
    """
    return (stored > 0 or presented > 0) and presented <= stored
