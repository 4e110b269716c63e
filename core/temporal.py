"""Connecting to Temporal the same way from the API, the worker, the setup job and the tests:
a local dev server in plain gRPC, or a secured cluster or Temporal Cloud (mTLS, API key)."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from core.codec import data_converter
from core.settings import Settings


def _tls(settings: Settings) -> TLSConfig | bool:
    """mTLS with a client certificate, a private CA, or plain TLS for an API key."""
    if not (settings.temporal_tls_cert or settings.temporal_tls_ca or settings.temporal_api_key):
        return False

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_ca),
        client_cert=read(settings.temporal_tls_cert),
        client_private_key=read(settings.temporal_tls_key),
    )


def metrics_runtime(port: int) -> Runtime:
    """A runtime whose SDK metrics (workflow task and activity latencies, failures, slots)
    Prometheus can scrape on `port`."""
    prometheus = PrometheusConfig(bind_address=f"0.0.0.0:{port}", durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=_tls(settings),
        data_converter=data_converter(settings.codec_key),
        runtime=runtime,
    )
