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

from activities.notifications import Templates
from activities.projection import Notice, Projection, Recipient, TransitionRecord
from core import errors
from core.db import SENT, OutboxEmail, TimelineEvent
from core.internship import Cancellation, Kickoff, Review, Role, Stage, Submission
from tests.conftest import World, eventually, own_clock
from tests.stack.test_lifecycle import (
    DAY,
    HOUR,
    OPS,
    emp,
    in_progress,
    in_review,
    lnc,
    matched,
    money_calls,
    reaches,
    rejected,
    state,
)
from workflows.internship import InternshipWorkflow

env, worker = own_clock()


def fail_next(
    world: World, path: str, count: int, status: int = 500, internship_id: str = ""
) -> None:
    """The next `count` requests to `path` (about one internship, if given) fail at Stripe:
    5xx is an outage, 4xx a refusal."""
    httpx.post(
        f"{world.settings.stripe_api_base}/_test/failures",
        json={
            "path_prefix": path,
            "status": status,
            "count": count,
            "idempotency_key_prefix": f"internship-{internship_id}/" if internship_id else "",
        },
    ).raise_for_status()


def idempotency_keys(world: World, path: str, internship_id: str) -> set[str]:
    log = httpx.get(
        f"{world.settings.stripe_api_base}/_test/requests", params={"path_prefix": path}
    ).json()["data"]
    return {
        e["idempotency_key"]
        for e in log
        if f"internship-{internship_id}/" in (e["idempotency_key"] or "")
    }


@pytest.fixture(autouse=True)
def no_failures_left(world: World) -> Any:
    yield
    httpx.delete(f"{world.settings.stripe_api_base}/_test/failures").raise_for_status()


async def test_charge_retried_after_stripe_errors_charges_once(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await matched(world, employer, launcher)
    iid = (await state(h)).posting.internship_id
    fail_next(world, "/v1/payment_intents", 2, internship_id=iid)
    out = await h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer)))
    assert out.money.charged_cents == 40000
    calls = money_calls(world.settings, "/v1/payment_intents", iid)
    assert len(calls) == 1


async def test_payout_retried_after_stripe_errors_pays_once(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    fail_next(world, "/v1/transfers", 2, internship_id=(await state(h)).posting.internship_id)
    await h.execute_update(InternshipWorkflow.review, Review(emp(employer), "approve"))
    s = await reaches(h, Stage.PAID)
    assert len(money_calls(world.settings, "/v1/transfers", s.posting.internship_id)) == 1
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

    async def sent() -> bool:  # the relay marks the row just after the SMTP server takes it
        with world.sessions() as db:
            row = db.scalar(
                select(OutboxEmail).where(
                    OutboxEmail.internship_id == iid, OutboxEmail.kind == "submission"
                )
            )
            return row is not None and row.status == SENT

    await eventually(sent)
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


async def test_refund_refused_by_stripe_escalates_and_waits_for_ops(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    iid = (await state(h)).posting.internship_id
    # Stripe refuses the auto-cancel's refund for good (a 400, stored under its key).
    fail_next(world, "/v1/refunds", 1, status=400, internship_id=iid)
    await world.skip(17 * DAY + HOUR)
    s = await state(h)
    assert (s.stage, s.escalation_level, s.money.refunded_cents) == (Stage.IN_PROGRESS, 2, 0)
    escalations = await world.inbox.wait_for(iid, "escalation", 2)
    assert any("refund" in plain_text(m) for m in escalations)
    # Ops fix it at Stripe and say so; the refund goes through under a fresh key, once.
    await h.signal(InternshipWorkflow.retry_payment)
    s = await reaches(h, Stage.REFUNDED)
    assert s.money.refunded_cents == 40000
    assert len(money_calls(world.settings, "/v1/refunds", iid)) == 1


async def test_payout_refused_by_stripe_waits_for_ops_then_pays_once(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    iid = (await state(h)).posting.internship_id
    fail_next(world, "/v1/transfers", 1, status=400, internship_id=iid)
    await h.execute_update(InternshipWorkflow.review, Review(emp(employer), "approve"))
    await world.inbox.wait_for(iid, "escalation")
    assert (await state(h)).stage == Stage.APPROVED
    await h.signal(InternshipWorkflow.retry_payment)
    s = await reaches(h, Stage.PAID)
    assert s.money.paid_cents == 36000
    assert len(money_calls(world.settings, "/v1/transfers", iid)) == 1


async def test_charge_after_an_outage_reuses_its_key(world: World) -> None:
    """Stripe may have charged before the answers got lost: the retry must not charge again."""
    employer, launcher = world.employer(), world.launcher()
    h = await matched(world, employer, launcher)
    posted = (await state(h)).posting
    iid = posted.internship_id
    fail_next(world, "/v1/payment_intents", 3, internship_id=iid)  # every try of the kickoff
    err = await rejected(h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer))))
    assert err.type == errors.PAYMENT_UNAVAILABLE
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer)))
    keys = idempotency_keys(world, "/v1/payment_intents", iid)
    assert keys == {f"internship-{iid}/{posted.nonce}/charge/1"}


def plain_text(msg: Any) -> str:
    body = msg.get_body(("plain",))
    return str(body.get_content()).lower() if body is not None else ""


async def test_ops_can_settle_a_refused_refund_themselves(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    iid = (await state(h)).posting.internship_id
    fail_next(world, "/v1/refunds", 1, status=400, internship_id=iid)
    await world.skip(17 * DAY + HOUR)
    assert (await state(h)).escalation_level == 2
    # Ops refunded by hand at Stripe, and close the internship without another refund.
    s = await h.execute_update(
        InternshipWorkflow.cancel, Cancellation(OPS, "Refunded by hand", refund=False)
    )
    assert s.stage == Stage.CANCELLED
    assert (await h.result()).stage == Stage.CANCELLED
    assert money_calls(world.settings, "/v1/refunds", iid) == []
