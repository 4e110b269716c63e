"""Retries happen; money moves once and each email goes out once regardless.

Stripe failures are injected in the local Stripe server (real HTTP 500s), SMTP failures by
pointing the mailer at a port nobody listens on; activities are called again exactly as a
Temporal retry would call them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from activities.notifications import Mailer, Templates
from activities.projection import Projection
from core.db import OutboxEmail, TimelineEvent
from core.types import Notice, Recipient, Review, Role, Stage, Submission, TransitionRecord
from tests.conftest import World, free_port
from tests.test_lifecycle import emp, in_progress, in_review, lnc, money_calls, reaches, state
from workflows.internship import InternshipWorkflow


def fail_next(world: World, path: str, count: int) -> None:
    httpx.post(
        f"{world.settings.stripe_api_base}/_test/failures",
        json={"path_prefix": path, "status": 500, "count": count},
    ).raise_for_status()


@pytest.fixture(autouse=True)
def no_failures_left(world: World) -> Any:
    yield
    httpx.delete(f"{world.settings.stripe_api_base}/_test/failures").raise_for_status()


async def test_charge_retried_after_stripe_errors_charges_once(world: World) -> None:
    fail_next(world, "/v1/payment_intents", 2)
    h = await in_progress(world, world.employer(), world.launcher())
    s = await state(h)
    assert s.money.charged_cents == 40000
    calls = money_calls(world, "/v1/payment_intents", s.posting.internship_id)
    assert len(calls) == 1


async def test_payout_retried_after_stripe_errors_pays_once(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    fail_next(world, "/v1/transfers", 2)
    await h.execute_update(InternshipWorkflow.review, Review(emp(employer), "approve"))
    s = await reaches(h, Stage.PAID)
    assert len(money_calls(world, "/v1/transfers", s.posting.internship_id)) == 1
    assert s.money.paid_cents == 36000


async def test_recording_an_event_twice_queues_its_emails_once(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    await h.execute_update(
        InternshipWorkflow.submit, Submission(lnc(launcher), "https://docs.example.com/a", "v1")
    )
    s = await state(h)
    iid = s.posting.internship_id
    await world.inbox.wait_for(iid, "submission")
    # Replaying the projection activity for the last event, as a retry would.
    projection = Projection(
        world.sessions, Templates(), world.settings.public_base_url, world.settings.ops_email
    )
    record = TransitionRecord(
        s,
        s.timeline[-1],
        [
            Notice(
                "submission",
                [Recipient(Role.EMPLOYER, employer.id)],
                {"url": "https://docs.example.com/a", "note": "v1", "round": 1},
            )
        ],
    )
    again = await asyncio.to_thread(projection.record, record)
    assert again == []  # already sent: nothing left to deliver
    with world.sessions() as db:
        events = db.scalars(select(TimelineEvent).where(TimelineEvent.internship_id == iid)).all()
        assert [e.event for e in events] == [e.event for e in s.timeline]
        rows = db.scalars(
            select(OutboxEmail).where(
                OutboxEmail.internship_id == iid, OutboxEmail.kind == "submission"
            )
        ).all()
        assert len(rows) == 1
    assert len(await world.inbox.wait_for(iid, "submission")) == 1


async def test_mail_outage_retries_without_duplicates(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    iid = (await state(h)).posting.internship_id
    await world.inbox.wait_for(iid, "kickoff", 2)
    with world.sessions() as db:
        ids = list(db.scalars(select(OutboxEmail.id).where(OutboxEmail.internship_id == iid)))
        for row in db.scalars(select(OutboxEmail).where(OutboxEmail.id.in_(ids))):
            row.status = "pending"  # as if the relay had been down when they were queued
        db.commit()
    before = len(world.inbox.about(iid))
    down = Mailer(world.sessions, "127.0.0.1", free_port(), world.settings.mail_from)
    with pytest.raises(OSError):
        await asyncio.to_thread(down.deliver, ids)
    with world.sessions() as db:
        first = db.get(OutboxEmail, ids[0])
        assert first is not None and first.status == "pending" and first.last_error
    up = Mailer(world.sessions, "127.0.0.1", world.settings.smtp_port, world.settings.mail_from)
    assert await asyncio.to_thread(up.deliver, ids) == len(ids)
    assert await asyncio.to_thread(up.deliver, ids) == 0  # a retry after success sends nothing
    assert len(world.inbox.about(iid)) == before + len(ids)
