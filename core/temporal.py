"""Connecting to Temporal the same way from the API, the worker, the tests and the tools."""

from __future__ import annotations

from temporalio.client import Client

from core.codec import data_converter
from core.settings import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.codec_key),
    )
