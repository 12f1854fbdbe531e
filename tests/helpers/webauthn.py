"""A software WebAuthn authenticator for core tests: a P-256 credential that answers ceremonies the way a
browser and an authenticator together would (the boundary fake; the browser tests use Chromium's virtual
authenticator instead)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64s(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


ZERO_AAGUID = bytes(16)


class SoftKey:
    """A P-256 credential that answers ceremonies the way a browser and an authenticator together would."""

    def __init__(self, credential_id: bytes = b"soft-key-1", counter: int = 0) -> None:
        self.credential_id = credential_id
        self.counter = counter
        self._key = ec.generate_private_key(ec.SECP256R1())

    def cose_key(self) -> bytes:
        numbers = self._key.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        return bytes(cbor2.dumps({1: 2, 3: -7, -1: 1, -2: x, -3: y}))

    def _auth_data(self, rp_id: str, uv: bool, attested: bool) -> bytes:
        flags = 0x01 | (0x04 if uv else 0) | (0x40 if attested else 0)
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.counter)
        if attested:
            cid = self.credential_id
            data += ZERO_AAGUID + struct.pack(">H", len(cid)) + cid + self.cose_key()
        return data

    @staticmethod
    def _client_data(kind: str, challenge: bytes, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": b64s(challenge), "origin": origin}).encode()

    def register(self, rp_id: str, origin: str, challenge: bytes, uv: bool = True) -> str:
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": self._auth_data(rp_id, uv, True)})
        return json.dumps(
            {
                "id": b64s(self.credential_id),
                "rawId": b64s(self.credential_id),
                "response": {
                    "attestationObject": b64s(attestation),
                    "clientDataJSON": b64s(self._client_data("webauthn.create", challenge, origin)),
                    "transports": ["internal", "hybrid"],
                },
                "type": "public-key",
                "clientExtensionResults": {},
            }
        )

    def sign(self, rp_id: str, origin: str, challenge: bytes, uv: bool = True) -> str:
        auth_data = self._auth_data(rp_id, uv, False)
        client_data = self._client_data("webauthn.get", challenge, origin)
        signature = self._key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64s(self.credential_id),
                "rawId": b64s(self.credential_id),
                "response": {
                    "authenticatorData": b64s(auth_data),
                    "clientDataJSON": b64s(client_data),
                    "signature": b64s(signature),
                },
                "type": "public-key",
                "clientExtensionResults": {},
            }
        )
