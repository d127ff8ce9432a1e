"""DSSE envelopes (Dead Simple Signing Envelope), signed with Ed25519.

The signature covers PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body
(lengths in bytes, decimal). A keyid is only a hint: trust comes from a
trusted key that verifies the signature, and each key counts once. The payload
is parsed from the exact bytes that were verified, never re-serialised.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ftctl.canonical import JSONError, canonical_json, strict_loads
from ftctl.errors import FtctlError
from ftctl.provenance.keys import keyid as keyid_of

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class EnvelopeError(FtctlError):
    """The envelope is malformed or its signatures do not verify; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def pae(payload_type: str, body: bytes) -> bytes:
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def sign(body: bytes, key: Ed25519PrivateKey, payload_type: str = INTOTO_PAYLOAD_TYPE) -> bytes:
    """A DSSE envelope of ``body`` as canonical JSON bytes."""
    signature = key.sign(pae(payload_type, body))
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(body).decode("ascii"),
        "signatures": [
            {
                "keyid": keyid_of(key.public_key()),
                "sig": base64.b64encode(signature).decode("ascii"),
            }
        ],
    }
    return canonical_json(envelope)


@dataclass(frozen=True)
class Verified:
    payload: bytes  # the exact bytes that were signed
    keyids: tuple[str, ...]  # trusted keys that verified, each once


@dataclass(frozen=True)
class Envelope:
    """A parsed, not yet verified envelope."""

    payload: bytes
    signatures: list[object]


def parse(envelope_bytes: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Envelope:
    """The envelope's decoded payload and its signature entries; raises EnvelopeError.

    Nothing is verified: use it to compare payloads, and :func:`verify` to trust one.
    """
    try:
        envelope = strict_loads(envelope_bytes)
    except JSONError as exc:
        raise EnvelopeError(f"the envelope is not valid JSON ({exc.reason})") from None
    if not isinstance(envelope, dict) or set(envelope) != {"payloadType", "payload", "signatures"}:
        raise EnvelopeError("not a DSSE envelope (expected payloadType, payload, signatures)")
    if envelope["payloadType"] != payload_type:
        raise EnvelopeError(
            f"payloadType is {envelope['payloadType']!r}, expected {payload_type!r}"
        )
    encoded = envelope["payload"]
    if not isinstance(encoded, str):
        raise EnvelopeError("payload is not a base64 string")
    try:
        body = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("payload is not valid base64") from None
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("the envelope has no signatures")
    return Envelope(body, signatures)


def verify(
    envelope_bytes: bytes,
    trusted: dict[str, Ed25519PublicKey],
    *,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
    threshold: int = 1,
) -> Verified:
    """Check an envelope against trusted keys; raises EnvelopeError with the reason."""
    envelope = parse(envelope_bytes, payload_type)
    body = envelope.payload
    message = pae(payload_type, body)
    accepted: list[str] = []
    for entry in envelope.signatures:
        if not isinstance(entry, dict) or not isinstance(entry.get("sig"), str):
            raise EnvelopeError("a signature entry is malformed")
        try:
            signature = base64.b64decode(entry["sig"], validate=True)
        except (binascii.Error, ValueError):
            raise EnvelopeError("a signature is not valid base64") from None
        # keyid is a hint only: try every trusted key not yet counted.
        for kid, key in trusted.items():
            if kid in accepted:
                continue
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            accepted.append(kid)
            break
    if len(accepted) < threshold:
        if not trusted:
            raise EnvelopeError("no trusted keys (add keys/*.pub or the trust list of ftctl.yaml)")
        raise EnvelopeError(
            "no signature by a trusted key"
            if not accepted
            else f"{len(accepted)} trusted signature(s), {threshold} required"
        )
    return Verified(body, tuple(accepted))
