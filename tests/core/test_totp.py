"""TOTP arithmetic against the RFCs' own test vectors, otpauth URIs, code normalisation and window edges."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from jupyter_2fa.core import InvalidCode, TOTPParameters
from jupyter_2fa.core.totp import (
    looks_like_totp,
    matching_step,
    new_secret,
    normalize_code,
    provisioning_uri,
)

from helpers.core import BAD_CODE_IDS, BAD_CODES, hotp

# -- RFC 6238 Appendix B ---------------------------------------------------------------------------------------------

SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}

# (Unix time, algorithm, 8-digit TOTP) exactly as printed in RFC 6238, Appendix B.
RFC6238_VECTORS = [
    (59, "sha1", "94287082"),
    (59, "sha256", "46119246"),
    (59, "sha512", "90693936"),
    (1111111109, "sha1", "07081804"),
    (1111111109, "sha256", "68084774"),
    (1111111109, "sha512", "25091201"),
    (1111111111, "sha1", "14050471"),
    (1111111111, "sha256", "67062674"),
    (1111111111, "sha512", "99943326"),
    (1234567890, "sha1", "89005924"),
    (1234567890, "sha256", "91819424"),
    (1234567890, "sha512", "93441116"),
    (2000000000, "sha1", "69279037"),
    (2000000000, "sha256", "90698825"),
    (2000000000, "sha512", "38618901"),
    (20000000000, "sha1", "65353130"),
    (20000000000, "sha256", "77737706"),
    (20000000000, "sha512", "47863826"),
]


def b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode("ascii")


@pytest.mark.parametrize(
    ("now", "algorithm", "code"),
    RFC6238_VECTORS,
    ids=[f"{algorithm}-t{now}" for now, algorithm, _ in RFC6238_VECTORS],
)
def test_rfc6238_appendix_b(now: int, algorithm: str, code: str) -> None:
    params = TOTPParameters(digits=8, algorithm=algorithm)
    secret = b32(SEEDS[algorithm])
    assert matching_step(secret, code, now, window=0, params=params) == now // 30
    # One digit off is not the same code.
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert matching_step(secret, wrong, now, window=0, params=params) is None


@pytest.mark.parametrize("algorithm", sorted(SEEDS), ids=sorted(SEEDS))
def test_rfc6238_seed_without_base32_padding(algorithm: str) -> None:
    """The 32- and 64-byte seeds need '=' padding in Base32; the unpadded form must work the same."""
    params = TOTPParameters(digits=8, algorithm=algorithm)
    padded = b32(SEEDS[algorithm])
    code = {a: c for t, a, c in RFC6238_VECTORS if t == 1234567890}[algorithm]
    assert matching_step(padded.rstrip("="), code, 1234567890, window=0, params=params) == 41152263


# -- RFC 4226 Appendix D ---------------------------------------------------------------------------------------------

RFC4226_CODES = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]


@pytest.mark.parametrize(("counter", "code"), list(enumerate(RFC4226_CODES)), ids=[f"count-{n}" for n in range(10)])
def test_rfc4226_appendix_d(counter: int, code: str) -> None:
    """HOTP(counter) is TOTP at time counter * period: the same pyotp generate_otp matching_step uses."""
    secret = b32(SEEDS["sha1"])
    params = TOTPParameters(period=30)
    assert hotp(secret, counter) == code
    assert matching_step(secret, code, counter * 30, window=0, params=params) == counter
    assert matching_step(secret, code, counter * 30 + 29.99, window=0, params=params) == counter


# -- parameters ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "step"),
    [(0, 0), (29.999, 0), (30, 1), (59, 1), (1111111109, 37037036), (20000000000, 666666666)],
    ids=["epoch", "end-of-first", "second", "rfc-59", "rfc-1111111109", "year-2603"],
)
def test_step(now: float, step: int) -> None:
    assert TOTPParameters().step(now) == step


@pytest.mark.parametrize(
    "kwargs",
    [
        {"digits": 5},
        {"digits": 9},
        {"period": 9},
        {"period": 301},
        {"algorithm": "md5"},
        {"algorithm": "sha3_256"},
    ],
    ids=["digits-5", "digits-9", "period-9", "period-301", "md5", "sha3"],
)
def test_parameters_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TOTPParameters(**kwargs)  # type: ignore[arg-type]


# -- otpauth URIs ----------------------------------------------------------------------------------------------------

URI_CASES = [
    ("Example HPC", "ada", TOTPParameters()),
    ("Jupyter", "ada.lovelace@example.org", TOTPParameters(digits=8)),
    ("Université de Paris", "Ada Lovelace", TOTPParameters(period=60)),
    ("Hub", "ada", TOTPParameters(digits=7, period=45, algorithm="sha256")),
    ("Hub", "ada", TOTPParameters(digits=8, period=30, algorithm="sha512")),
]


@pytest.mark.parametrize(
    ("issuer", "account", "params"),
    URI_CASES,
    ids=["defaults", "email-8-digits", "unicode-60s", "sha256-7-digits-45s", "sha512-8-digits"],
)
def test_uri_round_trips_through_pyotp(issuer: str, account: str, params: TOTPParameters) -> None:
    secret = new_secret()
    uri = provisioning_uri(secret, account, issuer, params)
    assert uri.startswith("otpauth://totp/")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == secret
    assert parsed.issuer == issuer
    assert parsed.name == account
    assert parsed.digits == params.digits
    assert parsed.interval == params.period
    assert parsed.digest().name == params.algorithm
    # The app built from the URI produces codes the server accepts.
    now = 1_800_000_000
    code = parsed.generate_otp(now // params.period)
    assert matching_step(secret, code, now, window=0, params=params) == now // params.period


def test_uri_defaults_are_omitted_for_google_authenticator() -> None:
    query = parse_qs(urlsplit(provisioning_uri(new_secret(), "ada", "Hub")).query)
    assert set(query) == {"secret", "issuer"}


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (b32(b"1234567890123456"), "GEZDGNBVGY3TQOJQGEZDGNBVGY"),
        ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
        (b32(SEEDS["sha256"]), None),
    ],
    ids=["padded-128-bit", "unpadded", "rfc-32-byte-seed"],
)
def test_uri_secret_is_unpadded(secret: str, expected: str | None) -> None:
    uri = provisioning_uri(secret, "ada", "Hub")
    (value,) = parse_qs(urlsplit(uri).query)["secret"]
    assert "=" not in value
    assert "%3D" not in uri.upper()
    assert value == (expected or secret.rstrip("="))
    assert pyotp.parse_uri(uri).byte_secret() == base64.b32decode(secret)


@pytest.mark.parametrize("issuer", ["Example:HPC", ":", "HPC:"], ids=["inside", "only-colon", "trailing"])
def test_uri_refuses_colon_in_issuer(issuer: str) -> None:
    with pytest.raises(ValueError, match="':'"):
        provisioning_uri(new_secret(), "ada", issuer)


@pytest.mark.parametrize(
    ("account", "name"),
    [("a:da", "ada"), ("ada:", "ada"), (":ada:", "ada"), ("domain:ada", "domainada")],
    ids=["inside", "trailing", "both-ends", "domain-prefix"],
)
def test_uri_strips_colon_from_account(account: str, name: str) -> None:
    uri = provisioning_uri(new_secret(), account, "Hub")
    label = urlsplit(uri).path.removeprefix("/")
    assert label == f"Hub:{name}"
    assert pyotp.parse_uri(uri).name == name


@pytest.mark.parametrize(
    ("account", "issuer"),
    [("", "Hub"), ("   ", "Hub"), (":", "Hub"), ("ada", ""), ("ada", "   ")],
    ids=["empty-account", "blank-account", "colon-only-account", "empty-issuer", "blank-issuer"],
)
def test_uri_refuses_empty_names(account: str, issuer: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        provisioning_uri(new_secret(), account, issuer)


def test_new_secrets_are_160_bits_base32_and_distinct() -> None:
    secrets = [new_secret() for _ in range(500)]
    assert len(set(secrets)) == len(secrets)
    for secret in secrets:
        assert re.fullmatch(r"[A-Z2-7]+", secret), secret
        assert len(secret) * 5 >= 160
        assert len(base64.b32decode(secret)) >= 20
    # Every Base32 symbol turns up: the secrets are not drawn from a narrow alphabet.
    assert set("".join(secrets)) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


# -- normalize_code --------------------------------------------------------------------------------------------------

GOOD_CODES = [
    ("123456", 6, "123456"),
    (" 123 456 ", 6, "123456"),
    ("000000", 6, "000000"),
    ("12 34 56", 6, "123456"),
    ("1234 5678", 8, "12345678"),
    ("1234567", 7, "1234567"),
]


@pytest.mark.parametrize(
    ("raw", "digits", "expected"),
    GOOD_CODES,
    ids=["plain", "spaced", "zeros", "pairs", "8-digits", "7-digits"],
)
def test_normalize_code_accepts(raw: str, digits: int, expected: str) -> None:
    assert normalize_code(raw, digits) == expected
    assert looks_like_totp(raw, digits)


@pytest.mark.parametrize(("raw", "reason"), BAD_CODES, ids=BAD_CODE_IDS)
def test_normalize_code_refuses(raw: object, reason: str) -> None:
    with pytest.raises(InvalidCode) as caught:
        normalize_code(raw, 6)
    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)
    if isinstance(raw, str):
        assert not looks_like_totp(raw, 6)


# -- the matching window ---------------------------------------------------------------------------------------------

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_800_000_010.0  # 10 s into step 60_000_000
CURRENT = 60_000_000


@pytest.mark.parametrize(
    ("offset", "window", "matches"),
    [
        (-2, 1, False),
        (-1, 1, True),
        (0, 1, True),
        (1, 1, True),
        (2, 1, False),
        (-1, 0, False),
        (0, 0, True),
        (1, 0, False),
        (-3, 3, True),
        (3, 3, True),
        (4, 3, False),
    ],
    ids=[
        "t-2/w1",
        "t-1/w1",
        "t/w1",
        "t+1/w1",
        "t+2/w1",
        "t-1/w0",
        "t/w0",
        "t+1/w0",
        "t-3/w3",
        "t+3/w3",
        "t+4/w3",
    ],
)
def test_window(offset: int, window: int, matches: bool) -> None:
    code = hotp(SECRET, CURRENT + offset)
    expected = CURRENT + offset if matches else None
    assert matching_step(SECRET, code, NOW, window=window) == expected


@pytest.mark.parametrize(
    ("generated", "verified"),
    [
        (1_800_000_029.9, 1_800_000_030.1),
        (1_800_000_029.9, 1_800_000_059.9),
        (1_800_000_000.0, 1_799_999_999.9),
    ],
    ids=["29.9s-then-0.2s-later", "29.9s-then-a-full-step-later", "fast-client-clock"],
)
def test_code_across_a_step_boundary(generated: float, verified: float) -> None:
    code = hotp(SECRET, int(generated) // 30)
    assert int(generated) // 30 != int(verified) // 30
    assert matching_step(SECRET, code, verified, window=1) == int(generated) // 30
    assert matching_step(SECRET, code, verified, window=0) is None


def test_no_negative_steps_near_the_epoch() -> None:
    assert matching_step(SECRET, hotp(SECRET, 0), 10, window=1) == 0
    assert matching_step(SECRET, hotp(SECRET, 1), 10, window=1) == 1
