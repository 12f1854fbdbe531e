"""WebAuthn in the core (jupyter_2fa.core.webauthn and the store's credentials and challenges).

Two sources of responses: recorded ones, from real browsers and authenticators, copied from py_webauthn's own
tests (https://github.com/duo-labs/py_webauthn, tests/test_verify_registration_response.py,
tests/test_verify_registration_response_fido_u2f.py and tests/test_verify_authentication_response.py, at commit
b4bf63ffe3332b70414cb7bf4a892ee6877e9f7f, BSD-3-Clause) with their challenges, origins and relying-party ids;
and a small software authenticator (:class:`SoftKey`, below: a P-256 key, CBOR and SHA-256, the boundary fake)
for what the recordings do not cover, such as a counter of 0 and a full register-then-login round trip.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import pytest
import sqlalchemy as sa

from jupyter_2fa.core import Keyring, Store
from jupyter_2fa.core.store import SCHEMA_VERSION
from jupyter_2fa.core.webauthn import (
    BadRelyingParty,
    ClonedAuthenticator,
    CredentialRefused,
    NewCredential,
    RelyingParty,
    UserNotVerified,
    WebAuthnError,
    authentication_options,
    registration_options,
    verify_assertion,
    verify_registration,
)

from helpers.core import FAST_SETTINGS, T0, USER, Harness, HarnessFactory, scratch_engine
from helpers.webauthn import SoftKey, b64s


def b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- recorded vectors (py_webauthn's tests; see the module docstring) -------------------------------------

RECORDED_RP = RelyingParty("localhost", "py_webauthn tests", "http://localhost:5000")

# A "none" attestation with user verification (flags UP|UV|AT), counter 23, over NFC or USB.
REGISTRATION_UV = json.dumps(
    {
        "id": "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w",
        "rawId": "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w",
        "response": {
            "attestationObject": "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVjESZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2NFAAAAFwAAAAAAAAAAAAAAAAAAAAAAQPctcQPE5oNRRJk_nO_371mf7qE7qIodzr0eOf6ACvnMB1oQG165dqutoi1U44shGezu5_gkTjmOPeJO0N8a7P-lAQIDJiABIVggSFbUJF-42Ug3pdM8rDRFu_N5oiVEysPDB6n66r_7dZAiWCDUVnB39FlGypL-qAoIO9xWHtJygo2jfDmHl-_eKFRLDA",  # noqa: E501
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiVHdON240V1R5R0tMYzRaWS1xR3NGcUtuSE00bmdscXN5VjBJQ0psTjJUTzlYaVJ5RnRya2FEd1V2c3FsLWdrTEpYUDZmbkYxTWxyWjUzTW00UjdDdnciLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9",  # noqa: E501
        },
        "type": "public-key",
        "clientExtensionResults": {},
        "transports": ["nfc", "usb"],
    }
)
REGISTRATION_UV_CHALLENGE = b64(
    "TwN7n4WTyGKLc4ZY-qGsFqKnHM4nglqsyV0ICJlN2TO9XiRyFtrkaDwUvsql-gkLJXP6fnF1MlrZ53Mm4R7Cvw"
)

# A YubiKey in Firefox, FIDO U2F attestation: user present, never verified (flags UP|AT).
REGISTRATION_NO_UV = json.dumps(
    {
        "id": "lrjqbPdLbWXTJ2sFIreka9aWd2ED-SDx_VAgBAh4XmCJgjCjudEjoi42pGQd-_Bi6nNPQ3T7-xOEgty2I3m7cw",
        "rawId": "lrjqbPdLbWXTJ2sFIreka9aWd2ED-SDx_VAgBAh4XmCJgjCjudEjoi42pGQd-_Bi6nNPQ3T7-xOEgty2I3m7cw",
        "response": {
            "attestationObject": "o2NmbXRoZmlkby11MmZnYXR0U3RtdKJjc2lnWEcwRQIhAIJO_x-FicMO0XDFwnVfXWyF-Dp7GW7oL43QfZyUjKU0AiAxQBUFu17l9rmKmqAWnHL6F1dDaIu54WYc9Mi_jtdNL2N4NWOBWQLBMIICvTCCAaWgAwIBAgIEKudiYzANBgkqhkiG9w0BAQsFADAuMSwwKgYDVQQDEyNZdWJpY28gVTJGIFJvb3QgQ0EgU2VyaWFsIDQ1NzIwMDYzMTAgFw0xNDA4MDEwMDAwMDBaGA8yMDUwMDkwNDAwMDAwMFowbjELMAkGA1UEBhMCU0UxEjAQBgNVBAoMCVl1YmljbyBBQjEiMCAGA1UECwwZQXV0aGVudGljYXRvciBBdHRlc3RhdGlvbjEnMCUGA1UEAwweWXViaWNvIFUyRiBFRSBTZXJpYWwgNzE5ODA3MDc1MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKgOGXmBD2Z4R_xCqJVRXhL8Jr45rHjsyFykhb1USGozZENOZ3cdovf5Ke8fj2rxi5tJGn_VnW4_6iQzKdIaeP6NsMGowIgYJKwYBBAGCxAoCBBUxLjMuNi4xLjQuMS40MTQ4Mi4xLjEwEwYLKwYBBAGC5RwCAQEEBAMCBDAwIQYLKwYBBAGC5RwBAQQEEgQQbUS6m_bsLkm5MAyP6SDLczAMBgNVHRMBAf8EAjAAMA0GCSqGSIb3DQEBCwUAA4IBAQByV9A83MPhFWmEkNb4DvlbUwcjc9nmRzJjKxHc3HeK7GvVkm0H4XucVDB4jeMvTke0WHb_jFUiApvpOHh5VyMx5ydwFoKKcRs5x0_WwSWL0eTZ5WbVcHkDR9pSNcA_D_5AsUKOBcbpF5nkdVRxaQHuuIuwV4k1iK2IqtMNcU8vL6w21U261xCcWwJ6sMq4zzVO8QCKCQhsoIaWrwz828GDmPzfAjFsJiLJXuYivdHACkeJ5KHMt0mjVLpfJ2BCML7_rgbmvwL7wBW80VHfNdcKmKjkLcpEiPzwcQQhiN_qHV90t-p4iyr5xRSpurlP5zic2hlRkLKxMH2_kRjhqSn4aGF1dGhEYXRhWMRJlg3liA6MaHQ0Fw9kdmBbj-SuuaKGMseZXPO6gx2XY0EAAAAAAAAAAAAAAAAAAAAAAAAAAABAlrjqbPdLbWXTJ2sFIreka9aWd2ED-SDx_VAgBAh4XmCJgjCjudEjoi42pGQd-_Bi6nNPQ3T7-xOEgty2I3m7c6UBAgMmIAEhWCDpQmUwrGnn3mk-T27A6awwL4HJG62Plj8Hz-lL0KltuiJYILwFIu48iEB8Ov6mEAqtCxn3mQOoaGIG4eidiWyLRg05",  # noqa: E501
            "clientDataJSON": "eyJjaGFsbGVuZ2UiOiJaSlZObG1Pclh3d2dRa2QxZ0RNbHk4QklpSU1WNElRRERzQ3I2S1BiQ0lIY09aNXdhS0htLU1adHVZNzQ4U0NxZy1OWlZwUnJZRnlGcmMzNmdRb0Z0dyIsImNsaWVudEV4dGVuc2lvbnMiOnt9LCJoYXNoQWxnb3JpdGhtIjoiU0hBLTI1NiIsIm9yaWdpbiI6Imh0dHA6Ly9sb2NhbGhvc3Q6NTAwMCIsInR5cGUiOiJ3ZWJhdXRobi5jcmVhdGUifQ",  # noqa: E501
        },
        "type": "public-key",
        "clientExtensionResults": {},
    }
)
REGISTRATION_NO_UV_CHALLENGE = b64(
    "ZJVNlmOrXwwgQkd1gDMly8BIiIMV4IQDDsCr6KPbCIHcOZ5waKHm-MZtuY748SCqg-NZVpRrYFyFrc36gQoFtw"
)


@dataclass(frozen=True)
class Known:
    """A stored credential as verify_assertion sees it."""

    credential_id: bytes
    public_key: bytes
    sign_count: int


# An RSA key's login with user verification (flags UP|UV), counter 1.
ASSERTION_UV = json.dumps(
    {
        "id": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
        "rawId": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
        "response": {
            "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiaVBtQWkxUHAxWEw2b0FncTNQV1p0WlBuWmExekZVRG9HYmFRMF9LdlZHMWxGMnMzUnRfM280dVN6Y2N5MHRtY1RJcFRUVDRCVTFULUk0bWFhdm5kalEiLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9",  # noqa: E501
            "signature": "iOHKX3erU5_OYP_r_9HLZ-CexCE4bQRrxM8WmuoKTDdhAnZSeTP0sjECjvjfeS8MJzN1ArmvV0H0C3yy_FdRFfcpUPZzdZ7bBcmPh1XPdxRwY747OrIzcTLTFQUPdn1U-izCZtP_78VGw9pCpdMsv4CUzZdJbEcRtQuRS03qUjqDaovoJhOqEBmxJn9Wu8tBi_Qx7A33RbYjlfyLm_EDqimzDZhyietyop6XUcpKarKqVH0M6mMrM5zTjp8xf3W7odFCadXEJg-ERZqFM0-9Uup6kJNLbr6C5J4NDYmSm3HCSA6lp2iEiMPKU8Ii7QZ61kybXLxsX4w4Dm3fOLjmDw",  # noqa: E501
            "userHandle": "T1RWa1l6VXdPRFV0WW1NNVlTMDBOVEkxTFRnd056Z3RabVZpWVdZNFpEVm1ZMk5p",
        },
        "type": "public-key",
        "clientExtensionResults": {},
    }
)
ASSERTION_UV_CHALLENGE = b64("iPmAi1Pp1XL6oAgq3PWZtZPnZa1zFUDoGbaQ0_KvVG1lF2s3Rt_3o4uSzccy0tmcTIpTTT4BU1T-I4maavndjQ")
RSA_KEY = Known(
    credential_id=b64("ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s"),
    public_key=b64(
        "pAEDAzkBACBZAQDfV20epzvQP-HtcdDpX-cGzdOxy73WQEvsU7Dnr9UWJophEfpngouvgnRLXaEUn_d8HGkp_HIx8rrpkx4BVs6X_B6ZjhLlezjIdJbLbVeb92BaEsmNn1HW2N9Xj2QM8cH-yx28_vCjf82ahQ9gyAr552Bn96G22n8jqFRQKdVpO-f-bvpvaP3IQ9F5LCX7CUaxptgbog1SFO6FI6ob5SlVVB00lVXsaYg8cIDZxCkkENkGiFPgwEaZ7995SCbiyCpUJbMqToLMgojPkAhWeyktu7TlK6UBWdJMHc3FPAIs0lH_2_2hKS-mGI1uZAFVAfW1X-mzKL0czUm2P1UlUox7IUMBAAE"
    ),
    sign_count=0,
)

# An EC2 key's login without user verification (flags UP), counter 78.
ASSERTION_NO_UV = json.dumps(
    {
        "id": "EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q",
        "rawId": "EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q",
        "response": {
            "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MBAAAATg",
            "clientDataJSON": "eyJjaGFsbGVuZ2UiOiJ4aTMwR1BHQUZZUnhWRHBZMXNNMTBEYUx6VlFHNjZudi1fN1JVYXpIMHZJMll2RzhMWWdERW52TjVmWlpOVnV2RUR1TWk5dGUzVkxxYjQyTjBma0xHQSIsImNsaWVudEV4dGVuc2lvbnMiOnt9LCJoYXNoQWxnb3JpdGhtIjoiU0hBLTI1NiIsIm9yaWdpbiI6Imh0dHA6Ly9sb2NhbGhvc3Q6NTAwMCIsInR5cGUiOiJ3ZWJhdXRobi5nZXQifQ",  # noqa: E501
            "signature": "MEUCIGisVZOBapCWbnJJvjelIzwpixxIwkjCCb5aCHafQu68AiEA88v-2pJNNApPFwAKFiNuf82-2hBxYW5kGwVweeoxCwo",  # noqa: E501
        },
        "type": "public-key",
        "clientExtensionResults": {},
    }
)
ASSERTION_NO_UV_CHALLENGE = b64(
    "xi30GPGAFYRxVDpY1sM10DaLzVQG66nv-_7RUazH0vI2YvG8LYgDEnvN5fZZNVuvEDuMi9te3VLqb42N0fkLGA"
)
EC2_KEY = Known(
    credential_id=b64("EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q"),
    public_key=b64(
        "pQECAyYgASFYIIeDTe-gN8A-zQclHoRnGFWN8ehM1b7yAsa8I8KIvmplIlgg4nFGT5px8o6gpPZZhO01wdy9crDSA_Ngtkx0vGpvPHI"
    ),
    sign_count=77,
)


LAB = RelyingParty("localhost", "Jupyter", "http://localhost:8888")


# -- relying party ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rp_id", "origin", "message"),
    [
        pytest.param("127.0.0.1", "http://localhost:8888", "not an IP address", id="ipv4-id"),
        pytest.param("::1", "http://localhost:8888", "not an IP address", id="ipv6-id"),
        pytest.param("[::1]", "http://localhost:8888", "not an IP address", id="bracketed-ipv6-id"),
        pytest.param("localhost", "http://127.0.0.1:8888", "not an IP address", id="ip-origin"),
        pytest.param("example.org", "https://example.org.evil.test", "subdomains", id="suffix-trick"),
        pytest.param("example.org", "https://badexample.org", "subdomains", id="not-a-subdomain"),
        pytest.param("hub.example.org", "https://example.org", "subdomains", id="parent-of-id"),
        pytest.param("example.org", "http://example.org", "https", id="plain-http"),
        pytest.param("example.org", "https://example.org/hub/login", "scheme://host", id="origin-with-path"),
        pytest.param("Example.org", "https://example.org", "lower-case", id="upper-case-id"),
        pytest.param("example.org:443", "https://example.org", "lower-case", id="port-in-id"),
        pytest.param("", "https://example.org", "lower-case", id="empty-id"),
    ],
)
def test_relying_party_refused(rp_id: str, origin: str, message: str) -> None:
    with pytest.raises(BadRelyingParty, match=message) as caught:
        RelyingParty(rp_id, "Jupyter", origin)
    assert isinstance(caught.value, WebAuthnError)


def test_ip_address_message_names_localhost() -> None:
    with pytest.raises(BadRelyingParty) as caught:
        RelyingParty("10.0.0.5", "Jupyter", "https://10.0.0.5")
    assert "WebAuthn needs a host name such as localhost, not an IP address" in str(caught.value)


@pytest.mark.parametrize(
    ("rp_id", "origin"),
    [
        pytest.param("localhost", "http://localhost:8888", id="http-localhost"),
        pytest.param("example.org", "https://example.org", id="same-host"),
        pytest.param("example.org", "https://hub.example.org:8443", id="subdomain-with-port"),
    ],
)
def test_relying_party_accepted(rp_id: str, origin: str) -> None:
    assert RelyingParty(rp_id, "Jupyter", origin).origin == origin


# -- options ----------------------------------------------------------------------------------------------


def test_registration_options_require_user_verification_and_exclude_existing_keys() -> None:
    existing = [b"key-one", b"key-two"]
    options_json, challenge = registration_options(LAB, USER, existing)
    options = json.loads(options_json)
    assert options["challenge"] == b64s(challenge) and len(challenge) >= 16
    assert options["rp"] == {"id": "localhost", "name": "Jupyter"}
    assert options["user"]["name"] == USER
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert [b64(c["id"]) for c in options["excludeCredentials"]] == existing
    assert registration_options(LAB, USER, existing)[1] != challenge


def test_authentication_options_allow_only_the_users_keys() -> None:
    options_json, challenge = authentication_options(LAB, [b"key-one"])
    options = json.loads(options_json)
    assert options["challenge"] == b64s(challenge)
    assert options["rpId"] == "localhost"
    assert options["userVerification"] == "required"
    assert [b64(c["id"]) for c in options["allowCredentials"]] == [b"key-one"]


# -- registration -----------------------------------------------------------------------------------------


def test_recorded_registration_is_accepted() -> None:
    new = verify_registration(RECORDED_RP, REGISTRATION_UV_CHALLENGE, REGISTRATION_UV)
    assert new.credential_id == b64(
        "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w"
    )
    assert new.public_key == b64(
        "pQECAyYgASFYIEhW1CRfuNlIN6XTPKw0RbvzeaIlRMrDwwep-uq_-3WQIlgg1FZwd_RZRsqS_qgKCDvcVh7ScoKNo3w5h5fv3ihUSww"
    )
    assert new.sign_count == 23
    assert new.transports == ("nfc", "usb")
    assert new.aaguid == "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("rp", "challenge", "response", "error"),
    [
        pytest.param(RECORDED_RP, REGISTRATION_NO_UV_CHALLENGE, REGISTRATION_NO_UV, UserNotVerified, id="no-uv"),
        pytest.param(
            RelyingParty("localhost", "Jupyter", "http://localhost:8888"),
            REGISTRATION_UV_CHALLENGE,
            REGISTRATION_UV,
            CredentialRefused,
            id="other-origin",
        ),
        pytest.param(
            RelyingParty("example.org", "Jupyter", "https://example.org"),
            REGISTRATION_UV_CHALLENGE,
            REGISTRATION_UV,
            CredentialRefused,
            id="other-relying-party",
        ),
        pytest.param(RECORDED_RP, b"another challenge", REGISTRATION_UV, CredentialRefused, id="other-challenge"),
        pytest.param(RECORDED_RP, REGISTRATION_UV_CHALLENGE, "{not json", CredentialRefused, id="malformed"),
        pytest.param(RECORDED_RP, REGISTRATION_UV_CHALLENGE, ASSERTION_UV, CredentialRefused, id="an-assertion"),
    ],
)
def test_registration_refused(rp: RelyingParty, challenge: bytes, response: str, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        verify_registration(rp, challenge, response)
    assert isinstance(caught.value, WebAuthnError)
    assert not isinstance(caught.value, ClonedAuthenticator)
    if error is CredentialRefused:
        assert not isinstance(caught.value, UserNotVerified)


def test_soft_key_registration_without_user_verification_refused() -> None:
    key = SoftKey()
    challenge = b"c" * 32
    assert verify_registration(LAB, challenge, key.register(LAB.id, LAB.origin, challenge)).transports == (
        "internal",
        "hybrid",
    )
    with pytest.raises(UserNotVerified):
        verify_registration(LAB, challenge, key.register(LAB.id, LAB.origin, challenge, uv=False))


# -- assertion --------------------------------------------------------------------------------------------


def test_recorded_assertion_is_accepted() -> None:
    assert verify_assertion(RECORDED_RP, ASSERTION_UV_CHALLENGE, ASSERTION_UV, RSA_KEY) == 1


@pytest.mark.parametrize(
    ("rp", "challenge", "response", "credential", "error"),
    [
        pytest.param(RECORDED_RP, ASSERTION_NO_UV_CHALLENGE, ASSERTION_NO_UV, EC2_KEY, UserNotVerified, id="no-uv"),
        pytest.param(LAB, ASSERTION_UV_CHALLENGE, ASSERTION_UV, RSA_KEY, CredentialRefused, id="phishing-page-origin"),
        pytest.param(RECORDED_RP, b"x" * 32, ASSERTION_UV, RSA_KEY, CredentialRefused, id="other-challenge"),
        pytest.param(
            RECORDED_RP,
            ASSERTION_UV_CHALLENGE,
            ASSERTION_UV,
            replace(RSA_KEY, public_key=EC2_KEY.public_key),
            CredentialRefused,
            id="other-public-key",
        ),
        pytest.param(
            RECORDED_RP,
            ASSERTION_UV_CHALLENGE,
            ASSERTION_UV,
            replace(RSA_KEY, credential_id=EC2_KEY.credential_id),
            CredentialRefused,
            id="other-credential-id",
        ),
        pytest.param(
            RECORDED_RP,
            ASSERTION_UV_CHALLENGE,
            ASSERTION_UV.replace('"type": "public-key"', '"type": "password"'),
            RSA_KEY,
            CredentialRefused,
            id="wrong-type",
        ),
        pytest.param(RECORDED_RP, ASSERTION_UV_CHALLENGE, "[]", RSA_KEY, CredentialRefused, id="malformed"),
        pytest.param(
            RECORDED_RP,
            ASSERTION_UV_CHALLENGE,
            ASSERTION_UV,
            replace(RSA_KEY, sign_count=1),
            ClonedAuthenticator,
            id="counter-repeated",
        ),
        pytest.param(
            RECORDED_RP,
            ASSERTION_UV_CHALLENGE,
            ASSERTION_UV,
            replace(RSA_KEY, sign_count=9),
            ClonedAuthenticator,
            id="counter-went-back",
        ),
    ],
)
def test_assertion_refused(
    rp: RelyingParty, challenge: bytes, response: str, credential: Known, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        verify_assertion(rp, challenge, response, credential)
    assert isinstance(caught.value, CredentialRefused)
    if error is CredentialRefused:
        assert not isinstance(caught.value, (UserNotVerified, ClonedAuthenticator))


def test_cloned_error_says_both_counters() -> None:
    with pytest.raises(ClonedAuthenticator) as caught:
        verify_assertion(RECORDED_RP, ASSERTION_UV_CHALLENGE, ASSERTION_UV, replace(RSA_KEY, sign_count=9))
    assert (caught.value.stored, caught.value.presented) == (9, 1)


def test_wrong_relying_party_id_refused() -> None:
    """The origin matches but the authenticator signed for another relying-party id (a subdomain's key)."""
    key = SoftKey()
    rp = RelyingParty("example.org", "Jupyter", "https://hub.example.org")
    challenge = b"c" * 32
    known = Known(key.credential_id, key.cose_key(), 0)
    with pytest.raises(CredentialRefused, match="RP ID"):
        verify_assertion(rp, challenge, key.sign("hub.example.org", rp.origin, challenge), known)


@pytest.mark.parametrize(
    ("stored", "presented", "accepted"),
    [
        pytest.param(0, 0, True, id="0-0-does-not-count"),
        pytest.param(0, 1, True, id="0-1"),
        pytest.param(5, 6, True, id="5-6"),
        pytest.param(5, 5, False, id="5-5-repeated"),
        pytest.param(5, 0, False, id="5-0-went-back-to-zero"),
        pytest.param(5, 4, False, id="5-4-went-back"),
    ],
)
def test_soft_key_counter(stored: int, presented: int, accepted: bool) -> None:
    key = SoftKey(counter=presented)
    known = Known(key.credential_id, key.cose_key(), stored)
    challenge = b"k" * 32
    response = key.sign(LAB.id, LAB.origin, challenge)
    if accepted:
        assert verify_assertion(LAB, challenge, response, known) == presented
    else:
        with pytest.raises(ClonedAuthenticator):
            verify_assertion(LAB, challenge, response, known)


def test_signature_checked_before_the_counter() -> None:
    """A forged response with a low counter must not raise the clone alarm (and so the audit) at will."""
    key, other = SoftKey(counter=1), SoftKey(counter=1)
    known = Known(key.credential_id, other.cose_key(), 7)
    challenge = b"k" * 32
    with pytest.raises(CredentialRefused) as caught:
        verify_assertion(LAB, challenge, key.sign(LAB.id, LAB.origin, challenge), known)
    assert not isinstance(caught.value, ClonedAuthenticator)


# -- the store --------------------------------------------------------------------------------------------


def new_credential(cid: bytes = b"cred-1", count: int = 0) -> NewCredential:
    return NewCredential(cid, b"cose public key", count, ("usb", "nfc"), "00000000-0000-0000-0000-000000000000")


def test_register_then_log_in_through_the_store(harness: Harness) -> None:
    store = harness.store
    key = SoftKey(counter=0)
    options_json, challenge = registration_options(
        LAB, USER, [c.credential_id for c in store.webauthn_credentials(USER)]
    )
    challenge_id = store.save_webauthn_challenge(USER, "register", challenge, "session-1", T0 + 120, T0)
    taken = store.take_webauthn_challenge(challenge_id, USER, "register", "session-1", T0 + 5)
    assert taken == challenge
    new = verify_registration(LAB, taken, key.register(LAB.id, LAB.origin, taken))
    assert store.add_webauthn_credential(USER, new, "laptop", T0 + 5)

    _, challenge = authentication_options(LAB, [c.credential_id for c in store.webauthn_credentials(USER)])
    challenge_id = store.save_webauthn_challenge(USER, "authenticate", challenge, "session-2", T0 + 200, T0 + 60)
    taken = store.take_webauthn_challenge(challenge_id, USER, "authenticate", "session-2", T0 + 61)
    assert taken is not None
    (stored,) = store.webauthn_credentials(USER)
    key.counter = 0  # a passkey that does not count
    count = verify_assertion(LAB, taken, key.sign(LAB.id, LAB.origin, taken), stored)
    assert store.record_webauthn_use(USER, stored.credential_id, stored.sign_count, count, T0 + 61)
    (used,) = store.webauthn_credentials(USER)
    assert (used.name, used.sign_count, used.last_used_at, used.transports) == ("laptop", 0, T0 + 61, new.transports)
    assert json.loads(options_json)["user"]["name"] == USER


def test_credentials_per_user(harness: Harness) -> None:
    store = harness.store
    assert store.webauthn_credentials(USER) == []
    assert store.add_webauthn_credential(USER, new_credential(b"one"), "laptop", T0)
    assert store.add_webauthn_credential(USER, new_credential(b"two"), "yubikey", T0 + 1)
    assert store.add_webauthn_credential("grace", new_credential(b"three"), "phone", T0)
    # A credential id names one key: nobody can register it a second time.
    assert not store.add_webauthn_credential("grace", new_credential(b"one"), "stolen", T0)
    assert [(c.credential_id, c.name) for c in store.webauthn_credentials(USER)] == [
        (b"one", "laptop"),
        (b"two", "yubikey"),
    ]
    assert store.rename_webauthn_credential(USER, b"two", "blue key")
    assert not store.rename_webauthn_credential("grace", b"two", "not hers")
    assert not store.remove_webauthn_credential("grace", b"one")
    assert store.remove_webauthn_credential(USER, b"one")
    assert not store.remove_webauthn_credential(USER, b"one")
    assert [(c.credential_id, c.name) for c in store.webauthn_credentials(USER)] == [(b"two", "blue key")]
    assert [c.credential_id for c in store.webauthn_credentials("grace")] == [b"three"]
    assert "public_key" not in repr(store.webauthn_credentials(USER)[0])


def test_counter_update_is_conditional(harness: Harness) -> None:
    store = harness.store
    store.add_webauthn_credential(USER, new_credential(b"k", count=5), "key", T0)
    # Two logins checked against counter 5: the first to store wins, the second cannot move it back.
    assert store.record_webauthn_use(USER, b"k", 5, 7, T0 + 1)
    assert not store.record_webauthn_use(USER, b"k", 5, 6, T0 + 2)
    assert not store.record_webauthn_use("grace", b"k", 7, 8, T0 + 3)
    (key,) = store.webauthn_credentials(USER)
    assert (key.sign_count, key.last_used_at) == (7, T0 + 1)


CHALLENGE = b"\x01" * 32


@pytest.mark.parametrize(
    ("username", "purpose", "bound_to", "at"),
    [
        pytest.param("grace", "authenticate", "session-1", T0 + 1, id="other-user"),
        pytest.param(USER, "register", "session-1", T0 + 1, id="other-purpose"),
        pytest.param(USER, "authenticate", "session-2", T0 + 1, id="other-session"),
        pytest.param(USER, "authenticate", "session-1", T0 + 120, id="expired"),
        pytest.param(USER, "authenticate", "session-1", T0 + 500, id="long-expired"),
    ],
)
def test_challenge_refused_and_used_up(harness: Harness, username: str, purpose: str, bound_to: str, at: float) -> None:
    store = harness.store
    challenge_id = store.save_webauthn_challenge(USER, "authenticate", CHALLENGE, "session-1", T0 + 120, T0)
    assert store.take_webauthn_challenge(challenge_id, username, purpose, bound_to, at) is None
    # The mismatched attempt burned it: the rightful owner has to ask again.
    assert store.take_webauthn_challenge(challenge_id, USER, "authenticate", "session-1", T0 + 1) is None


def test_challenge_is_single_use(harness: Harness, make_harness: HarnessFactory) -> None:
    store = harness.store
    other_process = make_harness().store
    challenge_id = store.save_webauthn_challenge(USER, "authenticate", CHALLENGE, "session-1", T0 + 120, T0)
    assert store.take_webauthn_challenge("no-such-id", USER, "authenticate", "session-1", T0 + 1) is None
    assert other_process.take_webauthn_challenge(challenge_id, USER, "authenticate", "session-1", T0 + 1) == CHALLENGE
    assert store.take_webauthn_challenge(challenge_id, USER, "authenticate", "session-1", T0 + 1) is None


def test_expired_challenges_are_pruned(harness: Harness, store_url: str) -> None:
    store = harness.store
    store.save_webauthn_challenge(USER, "register", CHALLENGE, "s", T0 + 10, T0)
    store.save_webauthn_challenge(USER, "register", CHALLENGE, "s", T0 + 100, T0 + 50)
    with scratch_engine(store_url) as engine, engine.connect() as conn:
        left = conn.execute(sa.text("SELECT expires_at FROM jupyter_2fa_webauthn_challenges")).scalars().all()
    assert left == [T0 + 100]


RACERS = 4
ROUNDS = 10


def test_racing_stores_take_a_challenge_once(make_harness: HarnessFactory) -> None:
    """Separate stores (own engines and connections, as separate processes or hub replicas have) all try to take
    one challenge at once, and all try to move one counter from the same old value: one wins each time."""
    stores = [make_harness().store for _ in range(RACERS)]
    stores[0].add_webauthn_credential(USER, new_credential(b"k"), "key", T0)
    barrier = threading.Barrier(RACERS)
    with ThreadPoolExecutor(RACERS) as pool:
        for round_ in range(ROUNDS):
            challenge_id = stores[0].save_webauthn_challenge(USER, "authenticate", CHALLENGE, "s", T0 + 120, T0)

            def take(store: Store, challenge_id: str = challenge_id) -> bytes | None:
                barrier.wait(timeout=30)
                return store.take_webauthn_challenge(challenge_id, USER, "authenticate", "s", T0 + 1)

            def count(store: Store, old: int = round_) -> bool:
                barrier.wait(timeout=30)
                return store.record_webauthn_use(USER, b"k", old, old + 1, T0 + 1)

            assert sorted(map(bool, pool.map(take, stores))) == [False] * (RACERS - 1) + [True]
            assert sorted(pool.map(count, stores)) == [False] * (RACERS - 1) + [True]
    assert stores[0].webauthn_credentials(USER)[0].sign_count == ROUNDS


@pytest.mark.parametrize(
    ("purpose", "bound_to"),
    [pytest.param("login", "s", id="unknown-purpose"), pytest.param("register", "", id="unbound")],
)
def test_challenge_arguments_checked(harness: Harness, purpose: str, bound_to: str) -> None:
    with pytest.raises(ValueError):
        harness.store.save_webauthn_challenge(USER, purpose, CHALLENGE, bound_to, T0 + 10, T0)


def test_reset_removes_keys_and_challenges(harness: Harness) -> None:
    harness.enroll()
    store = harness.store
    store.add_webauthn_credential(USER, new_credential(b"one"), "laptop", T0)
    store.add_webauthn_credential("grace", new_credential(b"two"), "phone", T0)
    challenge_id = store.save_webauthn_challenge(USER, "authenticate", CHALLENGE, "s", T0 + 120, T0)
    epoch = store.epoch(USER)
    assert store.reset(USER)
    assert store.webauthn_credentials(USER) == []
    assert store.take_webauthn_challenge(challenge_id, USER, "authenticate", "s", T0 + 1) is None
    assert store.epoch(USER) == epoch + 1
    assert [c.credential_id for c in store.webauthn_credentials("grace")] == [b"two"]


def test_a_version_2_store_is_upgraded_in_place(store_url: str, keyring: Keyring) -> None:
    """Stores made before WebAuthn gain its tables on open, keeping every account and factor."""
    harness = Harness(Store(store_url, keyring), FAST_SETTINGS)
    enrolled = harness.enroll()
    harness.store.close()
    with scratch_engine(store_url) as engine, engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE jupyter_2fa_webauthn_credentials"))
        conn.execute(sa.text("DROP TABLE jupyter_2fa_webauthn_challenges"))
        conn.execute(sa.text("UPDATE jupyter_2fa_meta SET value = '2' WHERE key = 'schema_version'"))
    upgraded = Harness(Store(store_url, keyring), FAST_SETTINGS)
    try:
        assert upgraded.store.schema_version() == SCHEMA_VERSION == 3
        now = T0 + 60
        assert upgraded.verifier.verify(USER, enrolled.app.code(now), now).ok
        assert upgraded.store.add_webauthn_credential(USER, new_credential(), "laptop", now)
        assert [c.name for c in upgraded.store.webauthn_credentials(USER)] == ["laptop"]
    finally:
        upgraded.store.close()
