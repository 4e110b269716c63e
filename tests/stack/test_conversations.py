"""Conversations with the real API, worker, outbox relay and SMTP: the quiet period (one email
for a burst of messages, listing them all), replies by email through the SMTP sink (posted once,
as the person the address was made for; forged, expired and wrong-sender replies never), and
ops reading and writing in a dispute of a real workflow."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core import replies
from core.db import Thread, ThreadReader
from core.settings import Settings
from dev.harness import Inbox
from tests.conftest import Api, eventually
from tests.stack.test_api import (
    ACCEPT,
    OPS,
    POSTING,
    act,
    auth,
    employer,
    launcher,
    ok,
    post,
    until_stage,
)

Json = dict[str, Any]
POSTING_TITLE = POSTING["title"]


def messages_url(iid: str, lnc: Json) -> str:
    return f"/v1/internships/{iid}/threads/{lnc['id']}/messages"


async def say(api: Api, who: Json | dict[str, str], iid: str, lnc: Json, text: str) -> Json:
    headers = who if "Authorization" in who else auth(who["api_token"])
    sent = await api.http.post(messages_url(iid, lnc), json={"body": text}, headers=headers)
    return await ok(sent, 201)


async def thread(api: Api, who: Json, iid: str, lnc: Json) -> list[Json]:
    page = await ok(await api.http.get(messages_url(iid, lnc), headers=auth(who["api_token"])))
    found: list[Json] = page["messages"]
    return found


def message_emails(inbox: Inbox, address: str) -> list[EmailMessage]:
    return [
        m
        for m in list(inbox.messages)
        if m["To"] == address and ".messages-" in str(m["Message-ID"])
    ]


async def applied(api: Api) -> tuple[Json, Json, str]:
    emp, lnc = await employer(api), await launcher(api)
    for account in (emp, lnc):  # with the address their emails go to
        me = await ok(await api.http.get("/v1/me", headers=auth(account["api_token"])))
        account["email"] = me["email"]
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "I love pet food.", **ACCEPT})
    return emp, lnc, iid


async def test_a_burst_of_messages_is_one_email_after_the_quiet_period(
    api: Api, inbox: Inbox, sessions: sessionmaker, settings: Settings
) -> None:
    emp, lnc, iid = await applied(api)
    await say(api, lnc, iid, lnc, "A first question about the brief")

    async def first() -> list[EmailMessage]:
        return message_emails(inbox, emp["email"])

    [told] = await eventually(first)
    assert told["Subject"] == f"New message about {POSTING_TITLE} from Lin Chen"
    assert "A first question about the brief" in told.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    reply_to = replies.read_reply_address(
        told["Reply-To"],
        secret=replies.reply_secret(settings),
        domain=settings.reply_domain,
        now=datetime.now(UTC),
    )
    assert (reply_to.recipient_role, reply_to.recipient_id) == ("employer", emp["id"])

    burst = [f"Follow-up number {n}" for n in range(1, 6)]
    for text in burst:
        await say(api, lnc, iid, lnc, text)
    await _relay_passes(settings)
    assert len(message_emails(inbox, emp["email"])) == 1  # inside the quiet period: held

    # Ten minutes later (skipped: the last email is moved back by the quiet period).
    quiet = timedelta(minutes=settings.message_quiet_minutes)
    with sessions.begin() as db:
        [held] = db.scalars(
            select(ThreadReader).where(
                ThreadReader.reader_id == emp["id"], ThreadReader.email_due_at.is_not(None)
            )
        )
        assert held.last_emailed_at is not None and held.email_due_at is not None
        assert held.email_due_at == held.last_emailed_at + quiet  # held to the period's end
        held.last_emailed_at -= quiet
        held.email_due_at -= quiet

    async def second() -> list[EmailMessage]:
        found = message_emails(inbox, emp["email"])
        return found if len(found) > 1 else []

    emails = await eventually(second)
    await _relay_passes(settings)
    assert len(message_emails(inbox, emp["email"])) == 2  # five messages, one email
    digest = emails[1]
    assert digest["Subject"] == f"5 new messages about {POSTING_TITLE}"
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert all(t in text for t in burst) and "A first question" not in text
    assert message_emails(inbox, lnc["email"]) == []  # nobody hears of their own messages


async def _relay_passes(settings: Settings) -> None:
    """Long enough for the relay to have made a few passes."""
    await asyncio.sleep(3 * settings.mail_poll_seconds + 0.5)


def reply(sink_port: int, sender: str, to: str, text: str, message_id: str) -> None:
    """A reply as a mail client sends it: the new text above the quoted email."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "Re: New message"
    msg["Message-ID"] = message_id
    msg.set_content(
        f"{text}\n\nOn Mon, 7 Dec 2026 at 10:00, Micro-internships <noreply@example.com> "
        "wrote:\n> A first question about the brief\n> Reply to this email to answer\n"
    )
    with smtplib.SMTP("127.0.0.1", sink_port) as smtp:
        smtp.send_message(msg)


async def test_a_reply_by_email_lands_in_the_thread_once_and_forgeries_never(
    api: Api, inbox: Inbox, sink: int, settings: Settings, sessions: sessionmaker
) -> None:
    emp, lnc, iid = await applied(api)
    await say(api, lnc, iid, lnc, "A first question about the brief")

    async def told() -> list[EmailMessage]:
        return message_emails(inbox, emp["email"])

    address = str((await eventually(told))[0]["Reply-To"])
    mid = f"<{uuid.uuid4().hex}@mail.example>"
    reply(sink, emp["email"], address, "Yes, a Google Doc is fine.", mid)
    reply(sink, emp["email"], address, "Yes, a Google Doc is fine.", mid)  # delivered twice

    async def answered() -> list[Json]:
        found = await thread(api, lnc, iid, lnc)
        return found if len(found) > 1 else []

    posted = (await eventually(answered))[-1]
    assert (posted["body"], posted["via"], posted["author_role"]) == (
        "Yes, a Google Doc is fine.",
        "email",
        "employer",
    )
    forged = address.replace("reply+", "reply+a", 1)
    expired = replies.reply_address(
        _thread_id(sessions, iid, lnc),
        "employer",
        emp["id"],
        secret=replies.reply_secret(settings),
        domain=settings.reply_domain,
        now=datetime.now(UTC) - timedelta(days=settings.reply_address_days + 1),
        days=settings.reply_address_days,
    )
    for sender, to in (
        (emp["email"], forged),
        (emp["email"], expired),
        (lnc["email"], address),  # the launcher can't answer as the employer
    ):
        reply(sink, sender, to, "Not to be posted", f"<{uuid.uuid4().hex}@mail.example>")
    await _relay_passes(settings)
    bodies = [m["body"] for m in await thread(api, lnc, iid, lnc)]
    assert bodies == ["A first question about the brief", "Yes, a Google Doc is fine."]


def _thread_id(sessions: sessionmaker, iid: str, lnc: Json) -> int:
    with sessions() as db:
        found = db.scalar(
            select(Thread.id).where(Thread.internship_id == iid, Thread.launcher_id == lnc["id"])
        )
    assert found is not None
    return int(found)


async def test_ops_read_the_thread_of_a_dispute_and_post_into_it(api: Api) -> None:
    emp, lnc, iid = await applied(api)
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    await act(api, emp, iid, "kickoff", ACCEPT)
    await until_stage(api, emp, iid, "in_progress")
    await say(api, lnc, iid, lnc, "Before the dispute")
    await act(api, emp, iid, "dispute", {"reason": "Nothing was delivered"})
    await say(api, lnc, iid, lnc, "I sent it by email on Friday")
    ops_view = await ok(await api.http.get(messages_url(iid, lnc), headers=OPS))
    assert [(m["body"], m["in_dispute"]) for m in ops_view["messages"]] == [
        ("Before the dispute", False),
        ("I sent it by email on Friday", True),
    ]
    await say(api, OPS, iid, lnc, "Please attach the file here so we can decide")
    seen = await thread(api, emp, iid, lnc)
    assert (seen[-1]["author_name"], seen[-1]["in_dispute"]) == ("Ops team", True)
    # The dispute's record names both messages written during it (and not the one before).
    in_dispute = [f"Message {m['id']}" for m in seen if m["in_dispute"]]

    async def recorded() -> list[str]:
        detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=OPS))
        notes = [e["note"] for e in detail["timeline"] if e["event"] == "message_in_dispute"]
        return notes if len(notes) == 2 else []

    assert await eventually(recorded) == in_dispute
