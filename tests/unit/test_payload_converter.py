"""The payload converter (core/codec.py): what a workflow run's converter reads back is what was
written, and the worker's converters share their type adapters (the SDK makes one converter for
each workflow run; building a run's adapters again cost about 20 ms of CPU per lifecycle)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter

from core.codec import PayloadConverter, data_converter, new_key
from core.internship import Posting
from tests.unit.harness import posting


def _json(converter: PayloadConverter) -> PydanticJSONPlainPayloadConverter:
    found = converter.converters[b"json/plain"]
    assert isinstance(found, PydanticJSONPlainPayloadConverter)
    return found


def test_a_runs_converter_reads_back_what_another_wrote() -> None:
    wanted = posting()
    written = PayloadConverter().to_payloads([wanted, [1, 2], datetime(2026, 12, 6, tzinfo=UTC)])
    read = PayloadConverter().from_payloads(written, [Posting, list[int], datetime])
    assert read == [wanted, [1, 2], datetime(2026, 12, 6, tzinfo=UTC)]


def test_each_runs_converter_reuses_the_type_adapters_built_before() -> None:
    first, second = PayloadConverter(), PayloadConverter()
    assert first is not second
    adapter = _json(first)._type_adapter(Posting)
    assert _json(second)._type_adapter(Posting) is adapter


def test_the_worker_and_clients_use_it_with_encryption() -> None:
    converter = data_converter(new_key())
    assert converter.payload_converter_class is PayloadConverter
    assert converter.payload_codec is not None
