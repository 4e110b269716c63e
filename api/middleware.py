"""Plain ASGI middleware around every request: metrics, JSON-only bodies, security headers,
CORS for the codec alone, and a last guard.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: no extra task or body copy per request.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.multiprocess import mark_process_dead
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from core.logs import request_id

log = logging.getLogger("api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
REQUESTS = Counter("api_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("api_request_seconds", "HTTP request latency", ["method", "route"])
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Several API processes (api/__main__.py): each counts into its own files there, and
    # /metrics adds every file up. A process that ends keeps its counts in the sum (counters
    # never go back); the live gauges it had (multiprocess_mode="live...", none so far) go.
    atexit.register(mark_process_dead, os.getpid())


class Measured:
    """Request counts and latency per route."""

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


async def send_json(
    send: Send, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    """Answer with a JSON body, from middleware (before or instead of the app)."""
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    await send_json(send, status, json.dumps(error_body(code, message)).encode())


class RequestIds:
    """Each request carries an id (the caller's X-Request-ID, or a new one), echoed in the
    answer and put on every log line written while serving it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            request_id.reset(token)


class Shedding:
    """Overload answers at once: beyond `limit` requests in flight, a 503 with Retry-After
    rather than a queue that grows until everyone times out."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            body = error_body("overloaded", "The service is busy; nothing was changed, try again")
            await send_json(send, 503, json.dumps(body).encode(), {"Retry-After": "1"})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def replay_body(body: bytes) -> Callable[[], Awaitable[Message]]:
    """A `receive` that hands the app a body already read."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class BoundedBodies:
    """A body over its limit is a 413 before anything parses it or asks who sent it: counted
    on the bytes as they arrive (a Content-Length can lie, a chunked body has none), so no
    request holds more than `limit` bytes of memory. Stripe's webhook, the codec and inbound
    mail take larger bodies (`larger_paths`), and the pages' image uploads (`uploads`, exact paths)
    larger still (`upload_limit`), and the routes that take files (`FILE_UPLOADS`: one file
    of the largest size, with a form) more (`file_limit`)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        larger: int,
        larger_paths: tuple[str, ...] = ("/v1/stripe/", "/codec/", "/v1/inbound-email"),
        uploads: tuple[str, ...] = (),
        upload_limit: int = 0,
        file_limit: int = 0,
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger
        self.larger_paths = larger_paths
        self.uploads = frozenset(uploads)
        self.upload_limit = upload_limit
        self.file_limit = file_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.larger if scope["path"].startswith(self.larger_paths) else self.limit
        if scope["path"] in self.uploads:
            limit = max(limit, self.upload_limit)
        elif FILE_UPLOADS.match(scope["path"]):
            limit = max(limit, self.file_limit)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > limit:
            await self._too_large(scope, send, limit)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        await self.app(scope, replay_body(b"".join(chunks)), send)

    @staticmethod
    async def _too_large(scope: Scope, send: Send, limit: int) -> None:
        size = f"{limit // 1024} KiB"
        if scope["path"].startswith(("/v1/", "/codec/")):
            message = f"The request body is over {size}; nothing was read or changed"
            await _send_error(send, 413, "body_too_large", message)
            return
        fix = (
            "choose smaller files or fewer at once (or share a link to them)"
            if FILE_UPLOADS.match(scope["path"])
            else "shorten what you wrote"
        )
        page = (
            '<!DOCTYPE html><html lang="en"><meta charset="utf-8"><title>Too large</title>'
            f"<h1>That form was too large to send</h1><p>It is over {size}, so nothing was "
            f"changed. Go back, {fix}, and send it again.</p></html>"
        ).encode()
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(page)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": page})


# The routes that take files (multipart/form-data): the API's uploads and messages, and the
# pages' message and submission forms.
FILE_UPLOADS = re.compile(
    r"^(/v1)?/internships/[A-Za-z0-9_-]{1,40}/"
    r"(files|threads/[A-Za-z0-9_-]{1,40}(/messages)?|submissions)$"
)


class JsonBodies:
    """The v1 API reads JSON: any other body is a 415 that says so, before anything runs.
    (Stripe's webhook and the inbound mail webhook are exempt: their bodies are whatever their
    sender signed; the routes that take files take multipart/form-data too.)"""

    def __init__(
        self,
        app: ASGIApp,
        prefix: str = "/v1/",
        exempt: tuple[str, ...] = ("/v1/stripe/", "/v1/inbound-email"),
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and scope["path"].startswith(self.prefix)
            and not scope["path"].startswith(self.exempt)
        ):
            headers = dict(scope["headers"])
            has_body = (
                headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
            )
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            is_json = media == b"application/json" or media.endswith(b"+json")
            files = media == b"multipart/form-data" and FILE_UPLOADS.match(scope["path"])
            if has_body and not (is_json or files):
                shown = media.decode("latin-1") or "none"
                await _send_error(
                    send,
                    415,
                    "unsupported_media_type",
                    f"Send the body as JSON with 'Content-Type: application/json' (got {shown})",
                )
                return
        await self.app(scope, receive, send)


class Guarded:
    """An unexpected error answers 500 in the one error shape and is logged; it is not raised
    further, so the server keeps the client's connection open for its next request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise  # half a response is out: only closing the connection is honest
            await _send_error(
                send, 500, "internal_error", "Something went wrong on our side; it has been logged"
            )


# The documentation pages FastAPI serves (Swagger UI, ReDoc): their scripts and styles come from
# a CDN and they carry inline scripts, so they get a CSP of their own (SecurityHeaders).
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def _csp(directives: dict[str, list[str]]) -> str:
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class SecurityHeaders:
    """Headers on every answer that keep a browser from being turned against its user.

    The pages run under `default-src 'self'`: no inline script or style anywhere (the one
    stylesheet is /static/app.css), nothing framed (clickjacking), no <base> rewriting, and
    forms only to this origin and to Stripe's hosted pages, where the card and payouts forms
    redirect (browsers apply form-action to a form's redirects too). Referrer-Policy keeps
    every URL (a sign-in link's token above all) out of other sites' Referer. HSTS when the
    service is served over https. /docs and /redoc load Swagger UI and ReDoc from their CDN:
    their CSP lets that CDN in and exactly the inline scripts the page carries (by hash).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        form_targets: Iterable[str] = (),
        https: bool = False,
        docs_paths: tuple[str, ...] = DOCS_PATHS,
    ) -> None:
        self.app = app
        self.docs_paths = docs_paths
        self.base: dict[str, list[str]] = {
            "default-src": ["'self'"],
            "object-src": ["'none'"],
            "frame-ancestors": ["'none'"],
            "base-uri": ["'none'"],
            "form-action": ["'self'", *form_targets],
        }
        self.csp = _csp(self.base)
        self.headers = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY",
        }
        if https:
            self.headers["Strict-Transport-Security"] = "max-age=31536000"

    def docs_csp(self, body: bytes) -> str:
        hashes = [
            "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
            for script in _INLINE_SCRIPT.findall(body)
        ]
        cdn = "https://cdn.jsdelivr.net"
        return _csp(
            self.base
            | {
                "script-src": ["'self'", cdn, *hashes],
                # ReDoc and Swagger UI set styles from script: these pages alone allow it.
                "style-src": ["'self'", cdn, "https://fonts.googleapis.com", "'unsafe-inline'"],
                "font-src": ["'self'", "https://fonts.gstatic.com"],
                "img-src": [
                    "'self'",
                    "data:",
                    "https://fastapi.tiangolo.com",
                    "https://cdn.redoc.ly",
                ],
                "worker-src": ["'self'", "blob:"],
                "connect-src": ["'self'"],
            }
        )

    def _secure(self, message: Message, csp: str) -> None:
        headers = MutableHeaders(scope=message)
        for name, value in (*self.headers.items(), ("Content-Security-Policy", csp)):
            headers.setdefault(name, value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] not in self.docs_paths:

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self._secure(message, self.csp)
                await send(message)

            await self.app(scope, receive, sending)
            return

        # A documentation page: its policy names its inline scripts, so hold the (small) page.
        start: Message | None = None
        chunks: list[bytes] = []

        async def holding(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            self._secure(start, self.docs_csp(body))
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, holding)


class CodecCors:
    """CORS for the codec alone: the Temporal UI's origins may call /codec/... from the
    browser. Every other path answers without any Access-Control-* header, so no other site's
    script reads an answer of this API, with or without its visitor's cookies."""

    def __init__(self, app: ASGIApp, origins: list[str], prefix: str = "/codec/") -> None:
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=["*"],
            allow_credentials=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
