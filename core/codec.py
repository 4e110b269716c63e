"""How payloads are written: Pydantic JSON, then encryption, so names, emails, pitches and
feedback never reach Temporal in clear.

AES-256-GCM over every payload the SDK sends. Search attributes are not payloads of the codec,
so ops can still filter by stage and ids; the API serves /codec/{encode,decode} so the Temporal
UI and CLI can show decrypted histories to authorised ops staff.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadCodec,
)

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


# One cache of type adapters for the whole process (bounded, as the SDK's per converter is).
_TYPE_ADAPTERS: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(maxsize=1024)(
    TypeAdapter
)


class _PydanticJSON(PydanticJSONPlainPayloadConverter):
    """The SDK's Pydantic JSON, sharing `_TYPE_ADAPTERS`. The worker makes a payload converter
    for each workflow run, and with a cache of its own each run built its adapters again (8 ms
    of CPU for the state's alone, more the first time)."""

    def __init__(self) -> None:
        super().__init__()
        self._type_adapter = _TYPE_ADAPTERS


class PayloadConverter(CompositePayloadConverter):
    """The SDK's default converters, with `_PydanticJSON` for JSON (as its
    `PydanticPayloadConverter`, but sharing the adapters)."""

    def __init__(self) -> None:
        pydantic_json = _PydanticJSON()
        super().__init__(
            *(
                pydantic_json if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


def data_converter(key_b64: str | None) -> DataConverter:
    """Pydantic JSON for our dataclasses, then encryption when a key is configured."""
    return DataConverter(
        payload_converter_class=PayloadConverter, payload_codec=codec_from_key(key_b64)
    )


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
