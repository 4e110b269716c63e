"""Safe retries with `Idempotency-Key`, as Stripe does them.

A POST with the header is answered once: the same account (however its credential is written,
and across token rotations) sending the same key with the same request within 24 hours gets
the first answer again (status and body, with
`Idempotent-Replayed: true`), and nothing happens twice; the same key with another request is a
422. A request still running under a key answers 409 to a second one. 5xx answers are not kept,
so a retry runs again. Answers that carry a new token are not kept (see CREDENTIALS). Without
the header nothing changes.

Underneath, the endpoints pass the key on (the Temporal update id of a transition, the workflow
id of a posting), so even a retry after this process died mid-request, or after the kept answer
is gone, has no second effect: an internship id is never started twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import caller_of
from api.errors import error_body
from api.middleware import read_body, replay_body, send_json
from core.db import IdempotentRequest, utcnow

HEADER = "Idempotency-Key"
KEPT_FOR = timedelta(hours=24)
# A request this old still marked as running was lost with its process: a retry takes over.
ABANDONED_AFTER = timedelta(seconds=60)
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # visible ASCII, as Stripe accepts
_KEY = re.compile(KEY_PATTERN)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=KEY_PATTERN,
        max_length=255,
        description="Retry safely: the same key and request within 24 hours are answered once.",
    ),
]


async def idempotency_key(key: IdempotencyKey = None) -> str | None:
    return key


KeyDep = Annotated[str | None, Depends(idempotency_key)]


# Answers that carry a new credential are never kept: a replay would hand a token to whoever
# repeats the request (or a single-use dashboard login link, already used). (Sign-ups carry
# none: a repeated one sends another email.)
CREDENTIALS = frozenset({"/v1/tokens", "/v1/me/token", "/v1/launchers/me/dashboard_link"})


class Idempotent:
    def __init__(self, app: ASGIApp, prefix: str = "/v1/", exempt: str = "/v1/stripe/") -> None:
        self.app = app
        self.prefix = prefix
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].startswith(self.prefix)
            or scope["path"].startswith(self.exempt)
            or key is None
        ):
            await self.app(scope, receive, send)
            return
        if not _KEY.match(key):
            await send_json(send, 422, _invalid_key())
            return
        if scope["path"] in CREDENTIALS:
            await self.app(scope, receive, send)
            return
        sessions: sessionmaker = scope["app"].state.sessions
        settings = scope["app"].state.settings
        account = await run_in_threadpool(
            caller_of, sessions, settings, _header(scope, b"authorization")
        )
        if account is None:  # refused as unauthenticated: nothing to keep
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = account  # the endpoint needs it too
        body = await read_body(receive)  # at most BoundedBodies' limit
        caller = hashlib.sha256(f"{account.actor.role}:{account.account_id}".encode())
        request_hash = hashlib.sha256(
            b"\n".join([scope["method"].encode(), scope["path"].encode(), body])
        ).hexdigest()
        row_key = (caller.hexdigest(), key)
        earlier = await run_in_threadpool(_begin, sessions, row_key, request_hash)
        if earlier is not None:
            await send_json(send, *earlier)
            return
        # The answer is kept before the caller sees it, so a retry on receipt is replayed.
        start: Message = {"type": "http.response.start", "status": 500, "headers": []}
        chunks: list[bytes] = []

        async def keeping(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_body(body), keeping)
        finally:
            answer = b"".join(chunks)
            await run_in_threadpool(_finish, sessions, row_key, start["status"], answer)
        await send(start)
        await send({"type": "http.response.body", "body": answer})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _invalid_key() -> bytes:
    message = f"{HEADER} must be 1 to 255 visible ASCII characters (a UUID is a good choice)"
    return json.dumps(error_body("invalid_request", message, {"field": HEADER})).encode()


Answer = tuple[int, bytes, dict[str, str]]


def _begin(sessions: sessionmaker, row_key: tuple[str, str], request_hash: str) -> Answer | None:
    """Claim the key for this request, or return the answer it already has."""
    now = utcnow()
    with sessions.begin() as db:
        db.execute(delete(IdempotentRequest).where(IdempotentRequest.started_at < now - KEPT_FOR))
    try:
        with sessions.begin() as db:
            db.add(
                IdempotentRequest(
                    caller=row_key[0], key=row_key[1], request_hash=request_hash, started_at=now
                )
            )
        return None
    except IntegrityError:
        pass
    with sessions.begin() as db:
        row = db.get(IdempotentRequest, row_key)
        if row is None:  # expired and removed meanwhile: a fresh start is a retry's right
            return _conflict("was just released; retry")
        if row.request_hash != request_hash:
            message = f"This {HEADER} was used with another request; use a new key"
            return 422, json.dumps(error_body("idempotency_key_reused", message)).encode(), {}
        if row.status_code is not None:
            return row.status_code, row.response_body or b"", {"Idempotent-Replayed": "true"}
        taken = db.execute(
            update(IdempotentRequest)
            .where(
                IdempotentRequest.caller == row_key[0],
                IdempotentRequest.key == row_key[1],
                IdempotentRequest.status_code.is_(None),
                IdempotentRequest.started_at < now - ABANDONED_AFTER,
            )
            .values(started_at=now)
        ).rowcount
        return None if taken else _conflict("is still being answered; retry shortly")


def claim_once(sessions: sessionmaker, caller: str, key: str, what: str) -> bool:
    """Spend a one-time key (a page's form key): True the first time, False ever after (while
    it is kept, KEPT_FOR)."""
    try:
        with sessions.begin() as db:
            db.add(
                IdempotentRequest(
                    caller=caller,
                    key=key,
                    request_hash=hashlib.sha256(what.encode()).hexdigest(),
                    started_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    return True


def _conflict(state: str) -> Answer:
    message = f"A request with this {HEADER} {state}"
    return (
        409,
        json.dumps(error_body("idempotency_conflict", message)).encode(),
        {"Retry-After": "1"},
    )


def _finish(sessions: sessionmaker, row_key: tuple[str, str], status: int, body: bytes) -> None:
    """Keep the answer; a 5xx is not an answer (the retry runs again)."""
    row = IdempotentRequest
    mine = (row.caller == row_key[0], row.key == row_key[1], row.status_code.is_(None))
    with sessions.begin() as db:
        if status >= 500:
            db.execute(delete(row).where(*mine))
        else:
            db.execute(
                update(row)
                .where(*mine)
                .values(status_code=status, response_body=body, completed_at=utcnow())
            )
