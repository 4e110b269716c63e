"""Rate limits: how often one client may sign up, sign in, make API tokens, post and apply.

`RULES` says which requests are which action (method and path, for the API and the pages
alike). `RateLimited`, a plain ASGI middleware, counts each such request against the action's
limits (RATE_LIMIT_<ACTION>, in `limits` notation: "5/minute;30/hour") twice: per client IP
address and per account. Beyond either, the request is answered 429 with Retry-After before
anything else reads it: in the JSON error shape (`rate_limited`) under /v1, as a page that says
so (and keeps what was typed) for the web forms. Every guarded request counts, whatever its
answer: a wrong code or a refused form is an attempt too. A refused request counts for nothing.

Who is who, without the database:
- the IP address is the client address uvicorn gives (it trusts X-Forwarded-For only from
  FORWARDED_ALLOW_IPS, 127.0.0.1 by default); an IPv6 address counts by its /64, which one
  subscriber usually holds whole;
- the account is, under /v1, a hash of the bearer token; on the pages, a hash of the signed-in
  session's id as the session middleware decoded it (a visitor signed in to nothing counts by
  address alone).

Counts live in Redis when REDIS_URL is set, so every API process counts together, and in the
process's memory otherwise. The strategy is the moving window: a limit of 5 a minute means at
most 5 in any 60 seconds, with no burst of twice the limit across a window's edge (as a fixed
window allows), which matters for limits this small; Redis keeps at most `limit` timestamps
per key, and Retry-After is exactly when the oldest one leaves the window. Redis is used through
redis-py's asyncio client, so the event loop never waits on a socket. If Redis does not answer
within CHECK_SECONDS, requests are let through unchecked (fail open, with a warning log and
`api_rate_limit_unchecked_total`) and Redis is tried again after STORAGE_RETRY_SECONDS: an
outage of the counter store must not take sign-in and posting down with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.middleware import read_body, send_json
from api.web import render, session
from core.formats import plural
from core.settings import Settings

log = logging.getLogger("api.rate_limits")

ACTIONS = (
    "sign_up",
    "sign_in",
    "tokens",
    "postings",
    "applications",
    "invitations",
    "messages",
)


@dataclass(frozen=True)
class Rule:
    action: str
    method: str
    path: re.Pattern[str]

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and self.path.fullmatch(path) is not None


def _rule(action: str, method: str, path: str) -> Rule:
    return Rule(action, method, re.compile(path))


SEGMENT = r"[^/]+"

# Which request is which action. Paths as routed (no trailing slash: "/v1/internships/" is
# redirected, and counted once, when it arrives at "/v1/internships").
RULES = (
    _rule("sign_up", "POST", "/v1/employers"),
    _rule("sign_up", "POST", "/v1/launchers"),
    _rule("sign_up", "POST", f"/sign-up/{SEGMENT}"),
    # Asking for an emailed link or code, and spending one (the API's code exchange, the
    # pages' sign-in button).
    _rule("sign_in", "POST", "/sign-in"),
    _rule("sign_in", "POST", f"/sign-in/{SEGMENT}"),
    _rule("sign_in", "POST", f"/sign-in/{SEGMENT}/renew"),
    _rule("sign_in", "POST", "/v1/tokens"),
    # Spending a colleague's invitation is spending an emailed secret too.
    _rule("sign_in", "POST", "/v1/organisation/join"),
    _rule("sign_in", "POST", f"/join/{SEGMENT}"),
    _rule("tokens", "POST", "/v1/me/token"),
    _rule("tokens", "POST", "/settings/tokens"),
    _rule("postings", "POST", "/v1/internships"),
    _rule("postings", "POST", "/internships/new"),
    _rule("applications", "POST", f"/v1/internships/{SEGMENT}/applications"),
    _rule("applications", "POST", f"/internships/{SEGMENT}/applications"),
    # Each invitation emails someone: of a launcher to a posting, of a colleague to join.
    _rule("invitations", "POST", f"/v1/internships/{SEGMENT}/invitations"),
    _rule("invitations", "POST", f"/internships/{SEGMENT}/invitations"),
    _rule("invitations", "POST", f"/launchers/{SEGMENT}/invitations"),
    _rule("invitations", "POST", "/v1/organisation/invitations"),
    _rule("invitations", "POST", "/organisation/invitations"),
    # Each message may email someone; each file takes storage.
    _rule("messages", "POST", f"/v1/internships/{SEGMENT}/threads/{SEGMENT}/messages"),
    _rule("messages", "POST", f"/v1/internships/{SEGMENT}/files"),
    _rule("messages", "POST", f"/internships/{SEGMENT}/threads/{SEGMENT}"),
)


def action_for(method: str, path: str) -> str | None:
    """The guarded action a request is, if any."""
    for rule in RULES:
        if rule.matches(method, path):
            return rule.action
    return None


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the 429 on every operation a limit guards (in the error shape, with Retry-After)."""
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if action_for(method.upper(), path):
                operation["responses"]["429"] = {
                    "description": "Too many of these from this address or account: "
                    "try again after Retry-After seconds",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
    return schema


Limits = dict[str, list[RateLimitItem]]


def limits_of(settings: Settings) -> Limits:
    """Each action's limits, from RATE_LIMIT_<ACTION> (empty: no limit). A setting that can't be
    read stops the service at start rather than leaving an action unguarded."""
    found: Limits = {}
    for action in ACTIONS:
        text = str(getattr(settings, f"rate_limit_{action}")).strip()
        try:
            found[action] = parse_many(text) if text else []
        except ValueError as err:
            raise ValueError(
                f"RATE_LIMIT_{action.upper()}={text!r} is not a rate limit like "
                f"'5/minute;30/hour' ({err})"
            ) from err
    return found


# ---------------------------------------------------------------- who is asking


def _digest(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(raw).hexdigest()[:32]


def client_address(scope: Scope) -> str:
    """The client's address as uvicorn resolved it; an IPv6 address as its /64."""
    client = scope.get("client")
    host = str(client[0]) if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False).network_address) + "-64"
    return str(address)


# The pages' session cookie (api/web: SessionMiddleware's `session_cookie`), and the key of the
# server-side session's id in it (api.web.session.SESSION_ID).
SESSION_COOKIE = "session"
SESSION_ID = "sid"


def account_key(scope: Scope) -> tuple[str, str] | None:
    """(kind, key) of the account a request acts for, or None when it names none."""
    headers = dict(scope["headers"])
    if scope["path"].startswith("/v1/"):
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return "token", _digest(token.strip())
        return None
    held = scope.get("session")
    if isinstance(held, dict):  # as the session middleware decoded the cookie
        if held.get(SESSION_ID):  # a server-side session (api.web.session)
            return "session", _digest(str(held[SESSION_ID]))
        if held.get("role") and held.get("id"):  # an account held in the cookie itself
            return "account", _digest(f"{held['role']}:{held['id']}")
        return None  # signed in to nothing: counted by address
    # No session middleware in front of this one: the cookie as sent.
    cookie = cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(SESSION_COOKIE)
    return ("session", _digest(cookie)) if cookie else None


# ---------------------------------------------------------------- counting

# Key prefix in Redis: several services may share one server.
KEY_PREFIX = "microinternships:rate"
# A check that takes longer than this lets the request through unchecked.
CHECK_SECONDS = 1.0
# After Redis failed to answer, requests go unchecked this long before it is tried again.
STORAGE_RETRY_SECONDS = 5.0

REFUSED = Counter("api_rate_limited_total", "Requests refused by a rate limit", ["action", "by"])
UNCHECKED = Counter(
    "api_rate_limit_unchecked_total",
    "Guarded requests let through unchecked because the rate-limit store did not answer",
)


@dataclass(frozen=True)
class Refusal:
    action: str
    by: str  # "ip", "token", "account" or "session"
    limit: RateLimitItem
    retry_after: int  # seconds


def redis_urls(url: str) -> tuple[str, str]:
    """REDIS_URL as redis-py reads it (redis://, rediss://, unix://), and as `limits` names it
    (async+redis://...)."""
    plain = url.removeprefix("async+").replace("redis+unix://", "unix://", 1)
    if plain.startswith("unix://"):
        return plain, "async+redis+unix://" + plain.removeprefix("unix://")
    return plain, "async+" + plain


def _where(url: str) -> str:
    """A Redis URL without its password, for logs."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path


class Limiter:
    """Counts requests per action and key, in Redis or in this process's memory."""

    def __init__(self, limits: Limits, redis_url: str | None, key_prefix: str) -> None:
        self.limits = limits
        self.pool: redis.asyncio.ConnectionPool | None = None
        storage: Storage
        if redis_url:
            self.where = f"Redis at {_where(redis_url)}"
            plain, named = redis_urls(redis_url)
            # Ours, so that it is closed with the server (and bounded in time).
            self.pool = redis.asyncio.ConnectionPool.from_url(
                plain, socket_timeout=CHECK_SECONDS, socket_connect_timeout=CHECK_SECONDS
            )
            storage = RedisStorage(
                named,
                implementation="redispy",
                key_prefix=key_prefix,
                connection_pool=self.pool,  # type: ignore[arg-type]
            )
        else:
            self.where = "memory"
            storage = MemoryStorage()
        self.strategy = MovingWindowRateLimiter(storage)
        self.retry_at = 0.0  # monotonic time before which the store is not asked
        self.failing = False

    async def refusal(self, action: str, keys: dict[str, str]) -> Refusal | None:
        """Counts the request and answers why it is refused, or None to let it through."""
        if time.monotonic() < self.retry_at:
            UNCHECKED.inc()
            return None
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                found = await self._check(action, keys)
        except Exception as err:  # the store is down or slow: fail open
            UNCHECKED.inc()
            self.retry_at = time.monotonic() + STORAGE_RETRY_SECONDS
            if not self.failing:
                self.failing = True
                log.warning(
                    "rate limits are not enforced: %s did not answer (%s); requests are let "
                    "through unchecked, and it is tried again every %.0f s",
                    self.where,
                    f"{type(err).__name__}: {err}" if str(err) else type(err).__name__,
                    STORAGE_RETRY_SECONDS,
                )
            return None
        if self.failing:
            self.failing = False
            log.warning("rate limits are enforced again: %s answers", self.where)
        return found

    async def _check(self, action: str, keys: dict[str, str]) -> Refusal | None:
        counted = [(item, by, key) for by, key in keys.items() for item in self.limits[action]]
        if not counted:
            return None
        strategy = self.strategy
        # Look first, then count: a refused request uses up nothing, not even the limits it
        # was within.
        allowed = await asyncio.gather(
            *(strategy.test(item, action, by, key) for item, by, key in counted)
        )
        refused = [c for c, ok in zip(counted, allowed, strict=True) if not ok]
        if not refused:
            hits = await asyncio.gather(
                *(strategy.hit(item, action, by, key) for item, by, key in counted)
            )
            # Another request took the last place in between.
            refused = [c for c, ok in zip(counted, hits, strict=True) if not ok]
            if not refused:
                return None
        windows = await asyncio.gather(
            *(strategy.get_window_stats(item, action, by, key) for item, by, key in refused)
        )
        now = time.time()
        found = [
            Refusal(action, by, item, max(1, math.ceil(window.reset_time - now)))
            for (item, by, _), window in zip(refused, windows, strict=True)
        ]
        # The longest wait; of equal ones, the first named (the IP address before the account).
        return max(found, key=lambda r: r.retry_after)

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.disconnect()


# ---------------------------------------------------------------- what the client is told

NOUNS = {
    "sign_up": "sign-ups",
    "sign_in": "sign-in attempts",
    "tokens": "new API tokens",
    "postings": "postings",
    "applications": "applications",
    "invitations": "invitations",
    "messages": "messages and files",
}
WHERE = {
    "ip": "from your network address",
    "token": "with this API token",
    "account": "for your account",
    "session": "for your account",
}


def per(item: RateLimitItem) -> str:
    """'5 per minute', '10 per 2 hours'."""
    unit = item.GRANULARITY.name
    if item.multiples == 1:
        return f"{item.amount} per {unit}"
    return f"{item.amount} per {plural(item.multiples, unit)}"


def wait_text(seconds: int) -> str:
    """'42 seconds', '3 minutes', '2 hours': rounded up."""
    if seconds < 60:
        n, unit = seconds, "second"
    elif seconds < 3600:
        n, unit = math.ceil(seconds / 60), "minute"
    else:
        n, unit = math.ceil(seconds / 3600), "hour"
    return plural(n, unit)


def message(refusal: Refusal) -> str:
    return (
        f"Too many {NOUNS[refusal.action]} {WHERE[refusal.by]}: at most "
        f"{per(refusal.limit)}. Nothing was done; try again in {wait_text(refusal.retry_after)}."
    )


def json_answer(refusal: Refusal) -> tuple[bytes, dict[str, str]]:
    details = {
        "action": refusal.action,
        "limit": per(refusal.limit),
        "retry_after_seconds": refusal.retry_after,
    }
    body = json.dumps(error_body("rate_limited", message(refusal), details)).encode()
    return body, {"Retry-After": str(refusal.retry_after)}


def _resend(request: Request, body: bytes) -> dict[str, Any] | None:
    """The form as it was sent, to show again with a fresh CSRF token and form key: only when
    it came from this session's own page (its CSRF token matches), so a forged post never
    turns into a ready-filled form."""
    if "session" not in request.scope:
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return None
    try:
        sent = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return None
    try:
        session.check_csrf(request, dict(sent).get(session.CSRF_FIELD))
    except session.CsrfRejected:
        return None
    hidden, fields = [], []
    for name, value in sent:
        if name in (session.CSRF_FIELD, "form_key"):
            continue
        if name == session.NEXT:
            hidden.append((name, value))
        else:
            label = name.replace("_", " ").capitalize()
            kind = "textarea" if "\n" in value or len(value) > 80 else "text"
            fields.append((name, label, value, "email" if name == "email" else kind))
    return {"action": request.url.path, "hidden": hidden, "fields": fields}


@dataclass(frozen=True)
class TooManyRequestsPage(render.PageContext):
    """A page's form refused for too many attempts: why (`message`), how long to wait (`wait`,
    `until`), and the form as it was sent, to send again later (`resend`, see `_resend`)."""

    template: ClassVar[str] = "too_many_requests.html"
    message: str
    wait: str
    until: datetime
    resend: dict[str, Any] | None


async def page_answer(scope: Scope, receive: Receive, refusal: Refusal) -> Response:
    """The pages' answer: what happened and when to try again, in plain words, with the form
    as it was sent."""
    request = Request(scope, receive)
    body = await read_body(receive)
    context: dict[str, Any] = {
        "message": message(refusal),
        "wait": wait_text(refusal.retry_after),
        "until": datetime.now(UTC) + timedelta(seconds=refusal.retry_after),
    }
    response: Response
    try:
        resend = _resend(request, body)
        viewer = (
            await run_in_threadpool(session.maybe_viewer, request) if "session" in scope else None
        )
        too_many = TooManyRequestsPage(resend=resend, **context)
        response = render.page(request, viewer, too_many, 429)
    except Exception:  # the page is a courtesy: never a 500 instead of the 429
        log.exception("the too-many-requests page could not be rendered")
        response = HTMLResponse(
            render.ENV.get_template("web/too_many_requests.html").render(
                request=request,
                viewer=None,
                nav=[],
                signed_in_as="",
                flashes=[],
                resend=None,
                **context,
            ),
            429,
        )
    response.headers["Retry-After"] = str(refusal.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- the middleware


class RateLimited:
    """Answers a guarded request beyond its limits with 429 before the app reads it."""

    def __init__(
        self, app: ASGIApp, limits: Limits, redis_url: str | None, key_prefix: str
    ) -> None:
        self.app = app
        self.limiter = Limiter(limits, redis_url, key_prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing(send))
            return
        action = action_for(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if action is None:
            await self.app(scope, receive, send)
            return
        keys = {"ip": client_address(scope)}
        if account := account_key(scope):
            keys[account[0]] = account[1]
        refusal = await self.limiter.refusal(action, keys)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        REFUSED.labels(action, refusal.by).inc()
        if scope["path"].startswith("/v1/"):
            body, headers = json_answer(refusal)
            await send_json(send, 429, body, headers)
        else:
            await (await page_answer(scope, receive, refusal))(scope, receive, send)

    def _closing(self, send: Send) -> Send:
        """Closes the Redis connections when the server shuts down."""

        async def sending(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.limiter.aclose()
            await send(message)

        return sending


def install(app: FastAPI, settings: Settings, key_prefix: str | None = None) -> None:
    """Adds the middleware where this is called in the middleware stack. The limits are read
    now, so a setting that can't be read fails the start."""
    app.add_middleware(
        RateLimited,
        limits=limits_of(settings),
        redis_url=settings.redis_url,
        key_prefix=key_prefix or KEY_PREFIX,
    )
