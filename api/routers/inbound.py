"""Replies by email: the endpoint a mail provider's inbound webhook calls with each email sent
to the reply domain (the raw message as the body, `message/rfc822`, signed with
INBOUND_EMAIL_SECRET in `X-Inbound-Signature`, as `core.replies` describes). Under `make run`
the SMTP sink calls it for mail to REPLY_DOMAIN, so replying from a local mail client works.

A reply is posted into the thread its address names, as the person it was made for, when that
person's address sent it; anything else is refused (422 `reply_refused`, with the reason) and
never posted. A webhook delivered twice posts once (the email's Message-ID).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import SessionsDep, SettingsDep, WorkflowsDep
from api.errors import ApiError
from api.service import conversations
from core import replies

router = APIRouter(tags=["conversations"])


@router.post(
    replies.INBOUND_PATH,
    status_code=202,
    summary="An email to the reply domain, from the mail provider's inbound webhook",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def inbound_email(
    request: Request, settings: SettingsDep, workflows: WorkflowsDep, sessions: SessionsDep
) -> JSONResponse:
    body = await request.body()
    try:
        replies.verify_inbound(
            body,
            request.headers.get(replies.SIGNATURE_HEADER),
            settings.inbound_email_secret,
            int(time.time()),
        )
    except replies.ReplyRefused as err:
        raise ApiError(400, "bad_signature", str(err)) from err
    try:
        posted = await conversations.post_reply(workflows, sessions, settings, body)
    except replies.ReplyRefused as err:
        raise ApiError(422, "reply_refused", str(err), {"reason": err.reason}) from err
    return JSONResponse(
        {"posted": posted is not None, "message_id": posted.id if posted else None}, 202
    )
