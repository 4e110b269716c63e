"""Connecting to Temporal the same way from the API, the worker, the setup job and the tests:
a local dev server in plain gRPC, or a secured cluster or Temporal Cloud (mTLS, API key)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from core.codec import data_converter
from core.settings import Settings

log = logging.getLogger("worker")


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


def metrics_runtime(host: str, port: int) -> Runtime | None:
    """A runtime whose SDK metrics (workflow task and activity latencies, failures, slots)
    Prometheus can scrape on `host:port`. Another worker on the same host may hold the port
    already: this one then serves them on a free port and says which, and never fails to start
    over its metrics (None: no metrics at all, said too)."""
    try:
        return _prometheus(host, port)
    except ValueError as err:  # the SDK's "Failed starting Prometheus exporter: ..."
        taken = err
    with socket.socket() as probe:
        probe.bind((host, 0))
        free = int(probe.getsockname()[1])
    try:
        runtime = _prometheus(host, free)
    except ValueError as err:
        log.warning(
            "worker metrics: %s:%d unusable (%s; then %s): running without them",
            host,
            port,
            taken,
            err,
        )
        return None
    log.warning(
        "worker metrics: %s:%d is taken (%s), likely by another worker on this host; serving "
        "them on %s:%d instead",
        host,
        port,
        taken,
        host,
        free,
    )
    return runtime


def _prometheus(host: str, port: int) -> Runtime:
    prometheus = PrometheusConfig(bind_address=f"{host}:{port}", durations_as_seconds=True)
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
