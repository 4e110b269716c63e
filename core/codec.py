"""Payload encryption: names, emails, pitches and feedback never reach Temporal in clear.

AES-256-GCM over every payload the SDK sends. Search attributes are not payloads of the codec,
so ops can still filter by stage and ids; the API serves /codec/{encode,decode} so the Temporal
UI and CLI can show decrypted histories to authorised ops staff.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"


class EncryptionCodec(PayloadCodec):
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("CODEC_KEY must be base64 of exactly 32 bytes")
        self._aes = AESGCM(key)
        # Names the key in each payload so keys can be rotated without breaking old histories.
        self.key_id = hashlib.sha256(key).hexdigest()[:16].encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        nonce = os.urandom(12)
        sealed = self._aes.encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, "encryption-key-id": self.key_id},
            data=nonce + sealed,
        )

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        if payload.metadata.get("encryption-key-id") != self.key_id:
            raise ValueError("payload was encrypted with another key")
        try:
            return Payload.FromString(self._aes.decrypt(payload.data[:12], payload.data[12:], None))
        except (InvalidTag, DecodeError) as err:
            raise ValueError("payload is corrupt or was not encrypted by this codec") from err


def codec_from_key(key_b64: str | None) -> EncryptionCodec | None:
    return EncryptionCodec(base64.b64decode(key_b64)) if key_b64 else None


def data_converter(key_b64: str | None) -> DataConverter:
    """Pydantic JSON for our dataclasses, then encryption when a key is configured."""
    codec = codec_from_key(key_b64)
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
