"""Ops endpoints: liveness, Prometheus metrics, the Temporal payload codec, and retrying a
payment Stripe refused."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.api.common.v1 import Payloads

from api import schemas
from api.deps import (
    DbDep,
    OpsDep,
    SessionsDep,
    SettingsDep,
    WorkflowsDep,
    bearer,
    current_caller,
    is_ops_token,
)
from api.errors import ApiError
from api.routers.internships import QUERY_NAMES, Criteria, Cursor, InternshipId, Limit
from api.service import internships, reads, search
from api.service.views import internship_view
from api.web.session import SESSION_ID, maybe_viewer
from core.internship import Role

router = APIRouter(tags=["ops"])


@router.get(
    "/healthz",
    summary="Liveness of the database and Temporal (what is down: with the ops token)",
)
async def healthz(
    sessions: SessionsDep,
    workflows: WorkflowsDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(_ping, sessions)
        checks["database"] = "ok"
    except Exception as err:  # noqa: BLE001 - any failure means "down", reported as such
        checks["database"] = f"down: {type(err).__name__}"
    try:
        await workflows.reachable()
        checks["temporal"] = "ok"
    except Exception as err:  # noqa: BLE001
        checks["temporal"] = f"down: {type(err).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "degraded"}
    if is_ops_token(settings, authorization):
        body |= checks  # which part is down, and how, is for ops
    return JSONResponse(body, 200 if healthy else 503)


@router.post(
    "/v1/internships/{internship_id}/payment-retry",
    status_code=202,
    response_model=schemas.InternshipDetail,
    summary="Retry a refund or payout Stripe refused, once it is fixed at Stripe (ops)",
)
async def payment_retry(
    internship_id: InternshipId, ops: OpsDep, workflows: WorkflowsDep
) -> schemas.InternshipDetail:
    """Accepted: the workflow tries the money again under a fresh idempotency key; the
    internship's timeline shows the retry, then the payment or another refusal."""
    return internship_view(await internships.retry_payment(workflows, internship_id, ops), ops)


@router.get(
    "/v1/ops/internships",
    response_model=schemas.InternshipPage,
    summary="Search every internship by id, title, a party's name or email (ops)",
)
def search_internships(
    ops: OpsDep,
    db: DbDep,
    wanted: Criteria,
    q: Annotated[
        str | None,
        Query(
            max_length=320,
            description="An internship's id, words of its title or description, or part of"
            " the employer's or launcher's name or email (or the company's name)",
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> schemas.InternshipPage:
    """Newest first, narrowed by the same filters as `GET /v1/internships`."""
    wanted = search.checked(replace(wanted, anything=q or ""), QUERY_NAMES)
    return search.internship_page(db, ops, wanted, limit, cursor)


def _ping(sessions: sessionmaker) -> None:
    with sessions() as db:
        db.execute(text("SELECT 1"))


@router.get(
    "/metrics",
    summary="Prometheus metrics (ops token)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(_: OpsDep, db: DbDep) -> Response:
    """The request metrics of every API process on this address, added up (whichever process
    answers the scrape), and the lifecycle as the database projection sees it (read at each
    scrape, so every process reports the same)."""
    return Response(_requests() + _lifecycle(db), media_type=CONTENT_TYPE_LATEST)


def _requests() -> bytes:
    """Several processes (`python -m api` with API_WORKERS > 1 sets PROMETHEUS_MULTIPROC_DIR):
    each writes its counts to a file there, and any of them adds up every file, those of
    processes gone included, so a counter never goes back. One process: its own registry
    (with its process_* and python_* metrics, which multiprocess mode has not)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _lifecycle(db: Session) -> bytes:
    """Metric families made at each scrape, not Gauge objects: in multiprocess mode a Gauge
    writes to a file of its process, and its value would come back a second time, per pid,
    from the other processes' files."""
    counts = reads.lifecycle_counts(db)
    by_stage = GaugeMetricFamily("internships_by_stage", "Internships per stage", labels=["stage"])
    for stage, count in counts.by_stage.items():
        by_stage.add_metric([stage], count)
    families: list[Metric] = [by_stage]
    for name, what, value in (
        ("internships_overdue", "Open internships past their due date", counts.overdue),
        ("internships_escalated", "Open internships with ops", counts.escalated),
        ("internships_disputed", "Open internships with a dispute", counts.disputed),
    ):
        families.append(GaugeMetricFamily(name, what, value=value))
    emails = GaugeMetricFamily("outbox_emails", "Emails in the outbox", labels=["status"])
    for status, count in counts.outbox.items():
        emails.add_metric([status], count)
    families.append(emails)
    registry = CollectorRegistry()
    registry.register(_Families(families))
    return generate_latest(registry)


async def _codec_access(request: Request, settings: SettingsDep, authorization: str | None) -> None:
    """Ops only, proven by the ops token (the CLI, scripts), by this machine under `make run`,
    or by the browser's ops web session (the Temporal UI, which sends cookies with its codec
    calls: TEMPORAL_CODEC_INCLUDE_CREDENTIALS). A session counts only on a request from one of
    the UI's origins (CODEC_CORS_ORIGINS): any other page a signed-in ops' browser opens gets
    nothing for its cookie here, and CORS keeps it from reading any answer."""
    if is_ops_token(settings, authorization):
        return
    host = request.client.host if request.client else ""
    if settings.codec_allow_loopback and host in ("127.0.0.1", "::1"):
        return
    if bearer(authorization) is not None:
        # A known employer or launcher is signed in but not allowed (403); else 401.
        await current_caller(request, settings, authorization)
        raise ApiError(403, "forbidden", "The codec decrypts PII: ops only")
    if "session" in request.scope and request.session.get(SESSION_ID):
        origin = request.headers.get("origin")
        if origin not in settings.codec_cors_origins:
            # Checked before the session is even looked up: a browser always names the page
            # that sends a POST (Fetch: the Origin header), so this is another site's page.
            raise ApiError(
                403,
                "forbidden",
                "A signed-in browser may use the codec only from the Temporal UI "
                "(CODEC_CORS_ORIGINS)",
            )
        viewer = await run_in_threadpool(maybe_viewer, request)
        if viewer is not None and viewer.actor.role == Role.OPS:
            return
        if viewer is not None:
            raise ApiError(403, "forbidden", "The codec decrypts PII: ops only")
    raise ApiError(
        401,
        "unauthorized",
        "The codec decrypts PII: send the ops token, or sign in to this site as ops in this "
        "browser",
    )


async def _codec(
    request: Request, settings: SettingsDep, authorization: str | None, decode: bool
) -> dict[str, Any]:
    await _codec_access(request, settings, authorization)
    codec = request.app.state.codec
    if codec is None:
        raise ApiError(404, "not_found", "No CODEC_KEY is configured: payloads are not encrypted")
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as err:
        raise ApiError(
            422, "invalid_request", f'body must be {{"payloads": [...]}}: {err}'
        ) from err
    try:
        out = await (codec.decode if decode else codec.encode)(payloads.payloads)
    except ValueError as err:
        raise ApiError(422, "invalid_request", f"cannot decode payload: {err}") from err
    return json_format.MessageToDict(Payloads(payloads=out))


@router.post("/codec/decode", summary="Temporal remote codec: decrypt payloads (ops)")
async def codec_decode(
    request: Request, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    return await _codec(request, settings, authorization, decode=True)


@router.post("/codec/encode", summary="Temporal remote codec: encrypt payloads (ops)")
async def codec_encode(
    request: Request, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    return await _codec(request, settings, authorization, decode=False)
