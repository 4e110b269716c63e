"""The FastAPI application: routers per resource, one error shape, OpenAPI at /docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from temporalio.client import Client
from uvicorn.config import STARTUP_FAILURE

from api import errors, rate_limits, web
from api.idempotency import Idempotent
from api.middleware import (
    BoundedBodies,
    CodecCors,
    Guarded,
    JsonBodies,
    Measured,
    RequestIds,
    SecurityHeaders,
    Shedding,
)
from api.routers import (
    conversations,
    documents,
    employers,
    inbound,
    internships,
    launchers,
    me,
    ops,
    organisation,
    stripe_webhook,
    tokens,
)
from api.service.workflows import InternshipWorkflows
from core import known_secrets
from core.codec import codec_from_key
from core.db import make_sessions
from core.files import file_store
from core.settings import Settings, get_settings
from core.stripe_api import stripe_client
from core.temporal import connect

log = logging.getLogger("api")


def stripe_pages(settings: Settings) -> list[str]:
    """Where the card and payouts forms send the browser on: Stripe's hosted pages (Checkout,
    Connect onboarding, the Express dashboard), or the local Stripe server's stand-ins for
    them."""
    pages = ["https://checkout.stripe.com", "https://connect.stripe.com"]
    base = urlsplit(settings.stripe_public_url or settings.stripe_api_base)
    if base.hostname != "api.stripe.com":
        pages.append(f"{base.scheme}://{base.netloc}")
    return pages


def create_app(
    settings: Settings | None = None,
    temporal: Client | None = None,
    workflows: InternshipWorkflows | None = None,
) -> FastAPI:
    """`temporal` lets tests hand in the client of their own Temporal environment, and
    `workflows` (the surface tests) a stand-in for every call to Temporal."""
    settings = settings or get_settings()

    try:  # off this machine, no app with a known or weak secret (warnings on loopback)
        known_secrets.enforce(settings, log)
    except known_secrets.UnsafeSecrets:
        # uvicorn's code for an app that can't start: it exits, and starts no other worker.
        raise SystemExit(STARTUP_FAILURE) from None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if workflows is None:
            client = temporal or await connect(settings)
            app.state.workflows = InternshipWorkflows(client, settings.task_queue)
        yield

    app = FastAPI(
        title="Micro-internships",
        version="1.0.0",
        description="Every micro-internship is a durable Temporal workflow: post, match, kick "
        "off, submit, review, pay. Authenticate with `Authorization: Bearer <token>`.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.workflows = workflows  # else set once Temporal is connected (lifespan)
    app.state.sessions = make_sessions(settings.database_url, **settings.pool_options())
    app.state.stripe = stripe_client(settings)
    app.state.codec = codec_from_key(settings.codec_key)
    app.state.files = file_store(settings)
    errors.install(app)
    app.add_middleware(CodecCors, origins=settings.codec_cors_origins)

    # Outermost last: metrics see every answer, including the guard's 500 and the 415.
    app.add_middleware(Guarded)
    app.add_middleware(Idempotent)
    rate_limits.install(app, settings)  # 429 beyond a rate limit, before anything acts
    app.add_middleware(JsonBodies)
    app.add_middleware(
        BoundedBodies,
        limit=settings.max_body_bytes,
        larger=settings.max_large_body_bytes,
        uploads=web.UPLOAD_PATHS,
        upload_limit=2 * settings.max_image_bytes + settings.max_body_bytes,
        file_limit=settings.max_file_bytes + settings.max_body_bytes,
    )
    app.add_middleware(Shedding, limit=settings.api_max_in_flight)
    app.add_middleware(Measured)
    app.add_middleware(RequestIds)
    app.add_middleware(
        SecurityHeaders,
        form_targets=stripe_pages(settings),
        https=settings.public_base_url.startswith("https://"),
    )

    routers = (
        employers,
        organisation,
        launchers,
        tokens,
        me,
        internships,
        conversations,
        documents,
        inbound,
        stripe_webhook,
        ops,
    )
    for module in routers:
        app.include_router(module.router)

    web.install(app, settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rate_limits.document(errors.document_errors(FastAPI.openapi(app)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
