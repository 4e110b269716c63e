"""The FastAPI application: routers per resource, one error shape, OpenAPI at /docs."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from api import errors
from api.routers import employers, internships, launchers, ops, stripe_webhook
from core.codec import codec_from_key
from core.db import make_sessions
from core.settings import Settings, get_settings
from core.stripe_api import stripe_client
from core.temporal import connect

log = logging.getLogger("api")
REQUESTS = Counter("api_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("api_request_seconds", "HTTP request latency", ["method", "route"])


class Measured:
    """Request counts and latency per route, as plain ASGI (no per-request task or copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - start)


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    """`temporal` lets tests hand in the client of their own Temporal environment."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.ops_api_token == Settings.model_fields["ops_api_token"].default:
            log.warning("OPS_API_TOKEN is the development default: set it outside development")
        app.state.temporal = temporal or await connect(settings)
        yield

    app = FastAPI(
        title="Micro-internships",
        version="1.0.0",
        description="Every micro-internship is a durable Temporal workflow: post, match, kick "
        "off, submit, review, pay. Authenticate with `Authorization: Bearer <token>`.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sessions = make_sessions(settings.database_url, **settings.pool_options())
    app.state.stripe = stripe_client(settings)
    app.state.codec = codec_from_key(settings.codec_key)
    errors.install(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.codec_cors_origins,
        allow_methods=["POST", "GET"],
        allow_headers=["*"],
        allow_credentials=True,
    )

    app.add_middleware(Measured)

    for module in (employers, launchers, internships, stripe_webhook, ops):
        app.include_router(module.router)

    @app.get("/onboarding/complete", include_in_schema=False)
    def onboarding_complete() -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><title>Payout account ready</title>"
            "<h1>Thanks: your payout account is set up.</h1>"
            "<p>You can close this page; payments will reach you.</p>"
        )

    return app
