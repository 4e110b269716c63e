"""Ops endpoints: liveness, Prometheus metrics, the Temporal payload codec, and retrying a
payment Stripe refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.api.common.v1 import Payloads
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api import lifecycle, schemas
from api.deps import (
    DbDep,
    OpsDep,
    SessionsDep,
    SettingsDep,
    TemporalDep,
    bearer,
    current_caller,
    is_ops_token,
)
from api.errors import ApiError
from api.presenters import internship_detail
from api.routers.internships import InternshipId
from core.db import Internship, OutboxEmail
from core.internship import TERMINAL_STAGES

router = APIRouter(tags=["ops"])


@router.get(
    "/healthz",
    summary="Liveness of the database and Temporal (what is down: with the ops token)",
)
async def healthz(
    sessions: SessionsDep,
    client: TemporalDep,
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
        await client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=3)
        )
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
    internship_id: InternshipId, ops: OpsDep, client: TemporalDep
) -> schemas.InternshipDetail:
    """Accepted: the workflow tries the money again under a fresh idempotency key; the
    internship's timeline shows the retry, then the payment or another refusal."""
    return internship_detail(await lifecycle.retry_payment(client, internship_id, ops), ops)


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
    """This process's request metrics, and the lifecycle as the database projection sees it
    (read at each scrape, so every API process reports the same)."""
    return Response(generate_latest() + _lifecycle(db), media_type=CONTENT_TYPE_LATEST)


def _lifecycle(db: Session) -> bytes:
    registry = CollectorRegistry()
    by_stage = Gauge("internships_by_stage", "Internships per stage", ["stage"], registry=registry)
    for stage, count in db.execute(
        select(Internship.stage, func.count()).group_by(Internship.stage)
    ):
        by_stage.labels(stage).set(count)
    open_ = Internship.stage.not_in([s.value for s in TERMINAL_STAGES])
    for name, what, where in (
        ("internships_overdue", "Open internships past their due date", Internship.overdue),
        ("internships_escalated", "Open internships with ops", Internship.escalation_level >= 2),
        ("internships_disputed", "Open internships with a dispute", Internship.disputed),
    ):
        count = db.scalar(select(func.count()).where(open_, where)) or 0
        Gauge(name, what, registry=registry).set(count)
    emails = Gauge("outbox_emails", "Emails in the outbox", ["status"], registry=registry)
    for status, count in db.execute(
        select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
    ):
        emails.labels(status).set(count)
    return generate_latest(registry)


async def _codec_access(request: Request, settings: SettingsDep, authorization: str | None) -> None:
    if is_ops_token(settings, authorization):
        return
    host = request.client.host if request.client else ""
    if settings.codec_allow_loopback and host in ("127.0.0.1", "::1"):
        return
    if bearer(authorization) is not None:
        # A known employer or launcher is signed in but not allowed (403); else 401.
        await run_in_threadpool(current_caller, request, settings, authorization)
        raise ApiError(403, "forbidden", "The codec decrypts PII: ops only")
    raise ApiError(401, "unauthorized", "The codec decrypts PII: send the ops token")


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
