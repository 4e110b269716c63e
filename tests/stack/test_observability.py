"""What ops see of a running service: request ids, JSON logs, metrics, secured Temporal."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from core.logs import JsonFormatter, request_id
from core.settings import Settings
from core.temporal import _tls, connect, metrics_runtime
from dev.harness import free_port
from tests.conftest import OPS_TOKEN, Api, eventually
from tests.stack.test_api import auth, employer, post

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def test_every_answer_carries_a_request_id(api: Api) -> None:
    mine = await api.http.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    fresh = await api.http.get("/healthz", headers={"X-Request-ID": "no spaces allowed"})
    assert len(fresh.headers["x-request-id"]) == 32  # a new one rather than a hostile one


async def test_metrics_show_the_lifecycle(api: Api) -> None:
    emp = await employer(api)
    await post(api, emp)

    async def scraped() -> str | None:  # the projection records the posting within moments
        text = (await api.http.get("/metrics", headers=auth(OPS_TOKEN))).text
        return text if 'internships_by_stage{stage="posted"}' in text else None

    text = await eventually(scraped)
    for name in ("internships_overdue", "internships_escalated", "outbox_emails"):
        assert name in text
    assert "api_requests_total" in text


def test_json_logs_carry_the_request_and_the_workflow() -> None:
    record = logging.LogRecord(
        "worker", logging.WARNING, __file__, 1, "email %s failed", (7,), None
    )
    record.temporal_workflow = {"workflow_id": "internship-abc", "workflow_type": "Internship"}
    token = request_id.set("req-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "email 7 failed" and line["level"] == "WARNING"
    assert (line["request_id"], line["workflow_id"]) == ("req-1", "internship-abc")
    assert line["workflow_type"] == "Internship"


def test_secured_temporal_settings(tmp_path: Path) -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    assert _tls(plain) is False
    for name, content in (("cert", b"CERT"), ("key", b"KEY"), ("ca", b"CA")):
        (tmp_path / name).write_bytes(content)
    mtls = Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_tls_cert=str(tmp_path / "cert"),
        temporal_tls_key=str(tmp_path / "key"),
        temporal_tls_ca=str(tmp_path / "ca"),
    )
    assert _tls(mtls) == TLSConfig(
        server_root_ca_cert=b"CA", client_cert=b"CERT", client_private_key=b"KEY"
    )
    cloud = Settings(_env_file=None, temporal_api_key="key-123")  # type: ignore[call-arg]
    assert _tls(cloud) == TLSConfig()  # TLS on, the system's CAs
    with pytest.raises(ValidationError, match="together"):
        Settings(_env_file=None, temporal_tls_cert=str(tmp_path / "cert"))  # type: ignore[call-arg]


async def test_the_worker_exports_temporal_sdk_metrics(
    env: WorkflowEnvironment, settings: Settings
) -> None:
    port = free_port()
    target = env.client.service_client.config.target_host
    local = settings.model_copy(update={"temporal_address": target})
    client = await connect(local, metrics_runtime("127.0.0.1", port))
    await client.workflow_service.get_system_info(GetSystemInfoRequest())
    async with httpx.AsyncClient() as http:
        scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert scraped.status_code == 200 and "temporal_request" in scraped.text
