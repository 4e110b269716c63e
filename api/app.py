"""The FastAPI application: routers per resource, one error shape, OpenAPI at /docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from temporalio.client import Client

from api import errors, web
from api.idempotency import Idempotent
from api.middleware import BoundedBodies, Guarded, JsonBodies, Measured, RequestIds, Shedding
from api.routers import employers, internships, launchers, me, ops, stripe_webhook, tokens
from core.codec import codec_from_key
from core.db import make_sessions
from core.settings import Settings, get_settings
from core.stripe_api import stripe_client
from core.temporal import connect

log = logging.getLogger("api")


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    """`temporal` lets tests hand in the client of their own Temporal environment."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name in ("ops_api_token", "session_secret"):
            if getattr(settings, name) == Settings.model_fields[name].default:
                log.warning("%s is the development default: set it outside development", name)
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

    # Outermost last: metrics see every answer, including the guard's 500 and the 415.
    app.add_middleware(Guarded)
    app.add_middleware(Idempotent)
    app.add_middleware(JsonBodies)
    app.add_middleware(
        BoundedBodies, limit=settings.max_body_bytes, larger=settings.max_large_body_bytes
    )
    app.add_middleware(Shedding, limit=settings.api_max_in_flight)
    app.add_middleware(Measured)
    app.add_middleware(RequestIds)

    for module in (employers, launchers, tokens, me, internships, stripe_webhook, ops):
        app.include_router(module.router)

    web.install(app, settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = errors.document_errors(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
