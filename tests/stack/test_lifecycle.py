"""Every row and side exit of the lifecycle table, on the time-skipping test server.

Timers are exercised by skipping time (`world.skip`), never by sleeping. Money is checked in the
local Stripe server through the SDK, emails in the real SMTP listener, and the projection in
the database.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core import errors, search_attributes
from core.accounts import actor_of, new_id
from core.db import (
    SENT,
    Employer,
    Internship,
    InternshipInvitation,
    Member,
    OutboxEmail,
    TimelineEvent,
)
from core.formats import when
from core.internship import (
    Actor,
    Application,
    Cancellation,
    Declination,
    Dispute,
    DisputeMessage,
    Extension,
    Feedback,
    InternshipState,
    Invitation,
    Kickoff,
    MemberRole,
    Resolution,
    Review,
    Role,
    Selection,
    Stage,
    Submission,
    UpcomingDeadline,
    Withdrawal,
)
from core.settings import Settings
from core.terms import terms_in
from tests.conftest import Party, World, complete_onboarding, eventually, own_clock, unique_email
from workflows.internship import InternshipWorkflow

env, worker = own_clock()

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
Handle = WorkflowHandle[InternshipWorkflow, Any]


def emp(p: Party) -> Actor:
    return Actor(Role.EMPLOYER, p.id)


def lnc(p: Party) -> Actor:
    return Actor(Role.LAUNCHER, p.id)


OPS = Actor(Role.OPS, "ops")


async def state(h: Handle) -> InternshipState:
    return await h.query(InternshipWorkflow.state)


async def reaches(h: Handle, stage: Stage) -> InternshipState:
    """Wait for work the workflow does on its own (a payout after approval), not for a timer."""

    async def probe() -> InternshipState | None:
        s = await state(h)
        return s if s.stage == stage else None

    return await eventually(probe)


async def rejected(call: Any) -> ApplicationError:
    """The update was refused; returns the refusal (its type is the API's status)."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def matched(world: World, employer: Party, launcher: Party, **posting: Any) -> Handle:
    h = await world.start(world.posting(employer, **posting))
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(launcher), "I write well"))
    await h.execute_update(InternshipWorkflow.select, Selection(emp(employer), launcher.id))
    return h


async def in_progress(world: World, employer: Party, launcher: Party, **posting: Any) -> Handle:
    h = await matched(world, employer, launcher, **posting)
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer)))
    return h


async def in_review(world: World, employer: Party, launcher: Party) -> Handle:
    h = await in_progress(world, employer, launcher)
    await h.execute_update(
        InternshipWorkflow.submit, Submission(lnc(launcher), "https://docs.test/article", "Draft 1")
    )
    return h


def transfers(world: World, internship_id: str) -> list[Any]:
    group = f"internship-{internship_id}"
    return list(world.stripe.v1.transfers.list(params={"transfer_group": group}).data)


def money_calls(settings: Settings, path: str, internship_id: str) -> list[dict[str, Any]]:
    """Requests that moved money at Stripe for one internship (replays excluded)."""
    log = httpx.get(
        f"{settings.stripe_api_base}/_test/requests", params={"path_prefix": path}
    ).json()["data"]
    return [
        e
        for e in log
        if (e["idempotency_key"] or "").startswith(f"internship-{internship_id}/")
        and e["status"] == 200
        and not e["replayed"]
    ]


def charge_of(world: World, s: InternshipState) -> Any:
    assert s.money.payment_intent_id
    return world.stripe.v1.payment_intents.retrieve(s.money.payment_intent_id)


async def test_happy_path_posting_to_completed(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    s = await h.execute_update(InternshipWorkflow.review, Review(emp(employer), "approve", "Great"))
    assert s.stage == Stage.APPROVED
    await reaches(h, Stage.PAID)
    await h.execute_update(InternshipWorkflow.feedback, Feedback(emp(employer), 5, "Superb"))
    s = await h.execute_update(
        InternshipWorkflow.feedback, Feedback(lnc(launcher), 4, "Clear brief")
    )
    assert s.stage == Stage.COMPLETED
    result = await h.result()
    iid = result.posting.internship_id
    assert [e.event for e in result.timeline] == [
        "posted",
        "applied",
        "selected",
        "kickoff",
        "submitted",
        "approved",
        "paid",
        "feedback",
        "feedback",
        "completed",
    ]

    # Money: charged once, 90% transferred once to the launcher, in one transfer group.
    intent = charge_of(world, result)
    assert (intent.status, intent.amount, intent.transfer_group) == (
        "succeeded",
        40000,
        f"internship-{iid}",
    )
    [transfer] = transfers(world, iid)
    assert transfer.amount == 36000
    assert result.money.paid_cents == 36000 and result.money.refunded_cents == 0

    # Emails: each event once, to the right people.
    await world.inbox.wait_for(iid, "completed", 2)
    kinds = world.inbox.kinds(iid)
    assert sorted(kinds) == sorted(
        [
            ("applied", "employer"),
            ("selected", "launcher"),
            ("kickoff", "launcher"),
            ("kickoff", "employer"),
            ("submission", "employer"),
            ("approved", "launcher"),
            ("paid", "launcher"),
            ("feedback_requested", "employer"),
            ("feedback_requested", "launcher"),
            ("completed", "employer"),
            ("completed", "launcher"),
        ]
    )

    # The projection caught up with the workflow.
    with world.sessions() as db:
        row = db.get(Internship, iid)
        assert row is not None
        assert (row.stage, row.launcher_id, row.paid_cents) == ("completed", launcher.id, 36000)
        assert (row.employer_rating, row.launcher_rating) == (5, 4)
        assert db.query(TimelineEvent).filter_by(internship_id=iid).count() == 10

    async def all_marked_sent() -> bool:  # the relay marks each row just after SMTP takes it
        with world.sessions() as db:
            rows = db.query(OutboxEmail).filter_by(internship_id=iid).all()
            return len(rows) == len(kinds) and all(r.status == SENT for r in rows)

    assert await eventually(all_marked_sent)


async def test_terms_accepted_when_applying_and_kicking_off_are_on_the_record(
    world: World,
) -> None:
    """Both parties accept the terms pinned at posting (their hash, as the API sends it): the
    timeline's application and kickoff carry it, and the kickoff email lists the terms."""
    employer, launcher = world.employer(), world.launcher()
    h = await world.start(world.posting(employer))
    accepted = terms_in(await state(h)).hash
    ref = f"Accepted the terms sha256:{accepted[:16]}"
    await h.execute_update(
        InternshipWorkflow.apply, Application(lnc(launcher), "I write well", accepted)
    )
    await h.execute_update(InternshipWorkflow.select, Selection(emp(employer), launcher.id))
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer), accepted))
    await h.execute_update(
        InternshipWorkflow.submit, Submission(lnc(launcher), "https://docs.test/article", "v1")
    )
    await h.execute_update(InternshipWorkflow.review, Review(emp(employer), "approve", "Great"))
    await reaches(h, Stage.PAID)
    await h.execute_update(InternshipWorkflow.feedback, Feedback(emp(employer), 5, "Superb"))
    s = await h.execute_update(InternshipWorkflow.feedback, Feedback(lnc(launcher), 5, "Clear"))
    assert s.stage == Stage.COMPLETED
    result = await h.result()
    iid = result.posting.internship_id
    notes = {e.event: e.note for e in result.timeline}
    assert (notes["applied"], notes["kickoff"]) == (ref, ref)
    with world.sessions() as db:  # the projection's timeline too
        kept = db.scalars(
            select(TimelineEvent.note).where(
                TimelineEvent.internship_id == iid,
                TimelineEvent.event.in_(("applied", "kickoff")),
            )
        ).all()
    assert kept == [ref, ref]
    terms = terms_in(result)
    for mail in await world.inbox.wait_for(iid, "kickoff", 2):  # the launcher and the employer
        body = mail.get_body(("plain",))
        assert body is not None
        text = str(body.get_content()).lower()
        assert "the terms of this internship" in text and f"terms ref. {terms.ref}" in text
        for label, sentence in terms.lines():
            assert f"- {label}: {sentence}".lower() in text


async def test_posted_reminds_employer_then_expires(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await world.start(world.posting(employer))
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(launcher), "Pick me"))
    await world.skip(7 * DAY + HOUR)
    s = await state(h)
    assert (s.stage, s.escalation_level) == (Stage.POSTED, 1)
    iid = s.posting.internship_id
    [reminder] = await world.inbox.wait_for(iid, "reminder")
    assert "applicant" in reminder["Subject"].lower()
    await world.skip(7 * DAY)
    s = await state(h)
    assert s.stage == Stage.EXPIRED
    assert await world.inbox.wait_for(iid, "expired")


async def test_posted_without_applicants_expires_without_reminder(world: World) -> None:
    h = await world.start(world.posting(world.employer()))
    await world.skip(14 * DAY + HOUR)
    s = await h.result()
    assert s.stage == Stage.EXPIRED and s.escalation_level == 0
    await world.inbox.wait_for(s.posting.internship_id, "expired")
    assert [k for k, _ in world.inbox.kinds(s.posting.internship_id)] == ["expired"]


async def test_matched_reminds_then_escalates_to_ops(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await matched(world, employer, launcher)
    await world.skip(5 * DAY + HOUR)
    assert (await state(h)).escalation_level == 1
    await world.skip(5 * DAY)
    s = await state(h)
    assert (s.stage, s.escalation_level) == (Stage.MATCHED, 2)
    [ops] = await world.inbox.wait_for(s.posting.internship_id, "escalation")
    assert ops["To"] == world.settings.ops_email
    # Still kick-off-able after escalation.
    out = await h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer)))
    assert (out.stage, out.escalation_level) == (Stage.IN_PROGRESS, 0)


async def test_overdue_escalates_then_auto_cancels_with_refund(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    await world.skip(5 * DAY + HOUR)  # 48 h before the 7-day due date
    s = await state(h)
    assert (s.escalation_level, s.overdue) == (1, False)
    iid = s.posting.internship_id
    assert await world.inbox.wait_for(iid, "reminder")
    await world.skip(2 * DAY)
    s = await state(h)
    assert s.overdue and s.stage == Stage.IN_PROGRESS
    overdue = await world.inbox.wait_for(iid, "overdue", 3)
    assert {m["To"] for m in overdue} >= {world.settings.ops_email}
    await world.skip(3 * DAY)
    assert (await state(h)).escalation_level == 2
    await world.skip(7 * DAY)
    s = await h.result()
    assert s.stage == Stage.REFUNDED
    intent = charge_of(world, s)
    charge = world.stripe.v1.charges.retrieve(intent.latest_charge)
    assert charge.amount_refunded == 40000
    assert transfers(world, iid) == []
    assert await world.inbox.wait_for(iid, "cancelled", 2)


async def test_extension_moves_the_due_date_within_bounds(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    s = await state(h)
    assert s.due_at
    too_late = s.due_at + 15 * DAY
    err = await rejected(
        h.execute_update(InternshipWorkflow.extend, Extension(emp(employer), too_late))
    )
    assert err.type == errors.INVALID
    earlier = s.due_at - DAY
    err = await rejected(
        h.execute_update(InternshipWorkflow.extend, Extension(emp(employer), earlier))
    )
    assert err.type == errors.INVALID
    err = await rejected(
        h.execute_update(InternshipWorkflow.extend, Extension(lnc(launcher), s.due_at + DAY))
    )
    assert err.type == errors.FORBIDDEN
    await h.execute_update(InternshipWorkflow.extend, Extension(OPS, s.due_at + 7 * DAY))
    # Both parties hear of it: the employer's calendar moves the due date too.
    extended = await world.inbox.wait_for(s.posting.internship_id, "extended", 2)
    assert sorted(m["To"][:4] for m in extended) == ["ada-", "lin-"]
    assert all("New due date" in m["Subject"] for m in extended)
    await world.skip(8 * DAY)  # past the old due date, not the new one
    s = await state(h)
    assert not s.overdue and s.stage == Stage.IN_PROGRESS
    await world.skip(7 * DAY)
    assert (await state(h)).overdue


async def test_review_reminds_then_auto_approves_and_pays(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    await world.skip(5 * DAY + HOUR)
    assert (await state(h)).escalation_level == 1
    await world.skip(2 * DAY)
    s = await state(h)
    assert s.stage == Stage.PAID
    approved = [e for e in s.timeline if e.event == "approved"]
    assert approved[0].actor_role == Role.SYSTEM
    assert [t.amount for t in transfers(world, s.posting.internship_id)] == [36000]


async def test_two_revision_rounds_then_ops(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    for round_ in (1, 2):
        out = await h.execute_update(
            InternshipWorkflow.review, Review(emp(employer), "request_revision", f"Fix {round_}")
        )
        assert (out.stage, out.revision_rounds) == (Stage.IN_PROGRESS, round_)
        await h.execute_update(
            InternshipWorkflow.submit,
            Submission(lnc(launcher), "https://docs.test/v2", f"Round {round_}"),
        )
    out = await h.execute_update(
        InternshipWorkflow.review, Review(emp(employer), "request_revision", "Still not right")
    )
    assert out.dispute and out.dispute.reason.startswith("revision limit reached")
    assert (out.stage, out.escalation_level) == (Stage.IN_REVIEW, 2)
    iid = (await state(h)).posting.internship_id
    await world.skip(6 * DAY)  # the review window is paused while ops decide
    assert (await state(h)).stage == Stage.IN_REVIEW
    err = await rejected(
        h.execute_update(InternshipWorkflow.review, Review(emp(employer), "approve"))
    )
    assert err.type == errors.CONFLICT
    # An open dispute is for ops: the employer may do nothing until it is settled.
    assert err.details[0]["allowed_actions"] == []
    # Ops and both parties are told by when it is decided and what happens by default.
    assert await world.inbox.wait_for(iid, "dispute_opened", 3)
    # Ops did not decide in 7 days: the delivered work is paid for, as the email said.
    await world.skip(2 * DAY)
    s = await reaches(h, Stage.RESOLVED)
    assert s.dispute and s.dispute.outcome == "pay_launcher"
    assert [t.amount for t in transfers(world, s.posting.internship_id)] == [36000]


async def test_payout_waits_for_onboarding_with_reminders(world: World) -> None:
    employer, launcher = world.employer(), world.launcher(onboard=False)
    h = await in_review(world, employer, launcher)
    await h.execute_update(InternshipWorkflow.review, Review(emp(employer), "approve"))
    s = await state(h)
    iid = s.posting.internship_id
    assert s.stage == Stage.APPROVED and transfers(world, iid) == []
    [waiting] = await world.inbox.wait_for(iid, "payout_waiting")
    # Waiting, it is findable as approved (the approval's upsert is made only when it waits).
    described = await h.describe()
    assert described.typed_search_attributes.get(search_attributes.STAGE) == "approved"
    # Approved work is owed: not even ops can cancel it into a refund now.
    err = await rejected(h.execute_update(InternshipWorkflow.cancel, Cancellation(OPS, "x")))
    assert err.type == errors.CONFLICT
    await world.skip(3 * DAY + HOUR)
    [reminder] = await world.inbox.wait_for(iid, "reminder")
    # It links to the payouts page, which asks Stripe for a fresh onboarding link when pressed.
    payouts = f"{world.settings.public_base_url}/payouts"
    assert payouts in reminder.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert (await state(h)).stage == Stage.APPROVED
    # The launcher finishes onboarding, but Stripe's webhook is lost (here nobody signals):
    # the next reminder round asks Stripe again and pays.
    await asyncio.to_thread(complete_onboarding, launcher.onboarding_url)
    await world.skip(3 * DAY + HOUR)
    s = await reaches(h, Stage.PAID)
    assert [t.amount for t in transfers(world, iid)] == [36000]


async def test_feedback_window_completes_with_one_rating(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    await h.execute_update(InternshipWorkflow.review, Review(emp(employer), "approve"))
    await reaches(h, Stage.PAID)
    await h.execute_update(InternshipWorkflow.feedback, Feedback(lnc(launcher), 5, "Kind"))
    err = await rejected(
        h.execute_update(InternshipWorkflow.feedback, Feedback(lnc(launcher), 4, "again"))
    )
    assert err.type == errors.CONFLICT
    err = await rejected(
        h.execute_update(InternshipWorkflow.feedback, Feedback(emp(employer), 6, "too high"))
    )
    assert err.type == errors.INVALID
    await world.skip(14 * DAY + HOUR)
    s = await h.result()
    assert s.stage == Stage.COMPLETED and list(s.ratings) == ["launcher"]


async def test_cancel_before_kickoff_is_free(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await matched(world, employer, launcher)
    out = await h.execute_update(
        InternshipWorkflow.cancel, Cancellation(emp(employer), "Budget cut")
    )
    assert out.stage == Stage.CANCELLED and out.money.payment_intent_id is None
    await world.inbox.wait_for((await state(h)).posting.internship_id, "cancelled", 2)


async def test_cancel_after_kickoff_refunds_once(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    out = await h.execute_update(
        InternshipWorkflow.cancel, Cancellation(emp(employer), "Changed plans")
    )
    assert out.stage == Stage.REFUNDED and out.money.refunded_cents == 40000
    charge = world.stripe.v1.charges.retrieve(charge_of(world, out).latest_charge)
    assert charge.amount_refunded == 40000
    # The workflow has finished: Temporal itself refuses (the API answers 409).
    with pytest.raises(RPCError) as closed:
        await h.execute_update(InternshipWorkflow.cancel, Cancellation(emp(employer), "again"))
    assert closed.value.status == RPCStatusCode.NOT_FOUND
    iid = (await state(h)).posting.internship_id
    assert len(money_calls(world.settings, "/v1/refunds", iid)) == 1


async def test_ops_cancel_without_refund_keeps_the_charge(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    err = await rejected(
        h.execute_update(InternshipWorkflow.cancel, Cancellation(emp(employer), "x", refund=False))
    )
    assert err.type == errors.FORBIDDEN
    s = await h.execute_update(InternshipWorkflow.cancel, Cancellation(OPS, "Terms breach", False))
    assert s.stage == Stage.CANCELLED and s.money.refunded_cents == 0


async def test_withdrawal_rematches_without_charging_twice(world: World) -> None:
    employer, first, second = world.employer(), world.launcher(), world.launcher()
    h = await world.start(world.posting(employer))
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(first), "First"))
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(second), "Second"))
    # An applicant may withdraw their application; it cannot then be selected or re-sent.
    await h.execute_update(InternshipWorkflow.withdraw, Withdrawal(lnc(second)))
    err = await rejected(
        h.execute_update(InternshipWorkflow.select, Selection(emp(employer), second.id))
    )
    assert err.type == errors.INVALID
    err = await rejected(
        h.execute_update(InternshipWorkflow.apply, Application(lnc(second), "Again"))
    )
    assert err.type == errors.CONFLICT

    await h.execute_update(InternshipWorkflow.select, Selection(emp(employer), first.id))
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer)))
    s = await h.execute_update(InternshipWorkflow.withdraw, Withdrawal(lnc(first)))
    assert (s.stage, s.launcher_id, s.due_at) == (Stage.POSTED, None, None)
    third = world.launcher()
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(third), "Third"))
    await h.execute_update(InternshipWorkflow.select, Selection(emp(employer), third.id))
    out = await h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer)))
    assert out.stage == Stage.IN_PROGRESS and out.due_at
    iid = (await state(h)).posting.internship_id
    assert len(money_calls(world.settings, "/v1/payment_intents", iid)) == 1
    assert await world.inbox.wait_for(iid, "launcher_withdrew")


@pytest.mark.parametrize(
    ("outcome", "percent", "paid", "refunded", "stage"),
    [
        ("pay_launcher", 0, 36000, 0, Stage.RESOLVED),
        ("split", 50, 18000, 20000, Stage.RESOLVED),
        ("refund", 0, 0, 40000, Stage.RESOLVED),
    ],
)
async def test_dispute_resolutions_move_money_once(
    world: World, outcome: str, percent: int, paid: int, refunded: int, stage: Stage
) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    err = await rejected(
        h.execute_update(InternshipWorkflow.resolve, Resolution(OPS, outcome, percent))
    )
    assert err.type == errors.CONFLICT
    s = await h.execute_update(
        InternshipWorkflow.open_dispute, Dispute(lnc(launcher), "Scope keeps growing")
    )
    assert s.escalation_level == 2
    err = await rejected(
        h.execute_update(InternshipWorkflow.resolve, Resolution(emp(employer), outcome, percent))
    )
    assert err.type == errors.FORBIDDEN
    await h.execute_update(InternshipWorkflow.resolve, Resolution(OPS, outcome, percent, "Settled"))
    s = await h.result()
    assert (s.stage, s.money.paid_cents, s.money.refunded_cents) == (stage, paid, refunded)
    iid = s.posting.internship_id
    assert sum(t.amount for t in transfers(world, iid)) == paid
    assert await world.inbox.wait_for(iid, "dispute_resolved", 2)


async def test_declined_card_escalates_to_ops(world: World) -> None:
    employer, launcher = world.employer(card="pm_card_chargeDeclined"), world.launcher()
    h = await matched(world, employer, launcher)
    err = await rejected(h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer))))
    assert err.type == errors.PAYMENT_DECLINED
    s = await state(h)
    assert (s.stage, s.escalation_level, s.money.payment_intent_id) == (Stage.MATCHED, 2, None)
    [ops] = await world.inbox.wait_for(s.posting.internship_id, "escalation")
    body = ops.get_body(("plain",))
    assert body is not None and "declined" in body.get_content()


async def test_who_may_do_what(world: World) -> None:
    employer, other_employer, launcher = world.employer(), world.employer(), world.launcher()
    outsider = world.launcher()
    h = await world.start(world.posting(employer))
    # Another employer's internship does not exist for them.
    err = await rejected(
        h.execute_update(InternshipWorkflow.select, Selection(emp(other_employer), launcher.id))
    )
    assert err.type == errors.NOT_FOUND
    # A launcher cannot select; an employer cannot apply.
    err = await rejected(
        h.execute_update(InternshipWorkflow.select, Selection(lnc(launcher), launcher.id))
    )
    assert err.type == errors.FORBIDDEN
    err = await rejected(
        h.execute_update(InternshipWorkflow.apply, Application(emp(employer), "me"))
    )
    assert err.type == errors.FORBIDDEN
    # Wrong stage: 409 with the stage and what is allowed.
    err = await rejected(h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp(employer))))
    assert err.type == errors.CONFLICT
    assert err.details[0] == {
        "stage": "posted",
        "allowed_actions": ["selection", "cancellation", "invitations"],  # what the employer may do
    }
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(launcher), "Hi"))
    await h.execute_update(InternshipWorkflow.select, Selection(emp(employer), launcher.id))
    # Once matched, the internship is no longer visible to launchers who did not apply.
    err = await rejected(h.execute_update(InternshipWorkflow.withdraw, Withdrawal(lnc(outsider))))
    assert err.type == errors.NOT_FOUND
    # Rejected updates leave no trace in the history: only accepted transitions are there.
    history = await h.fetch_history()
    updates = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert len(updates) == 2


async def test_an_open_dispute_is_for_ops_to_settle(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    await h.execute_update(InternshipWorkflow.open_dispute, Dispute(lnc(launcher), "Unpaid scope"))
    err = await rejected(
        h.execute_update(InternshipWorkflow.cancel, Cancellation(emp(employer), "Never mind"))
    )
    assert err.type == errors.FORBIDDEN
    s = await h.execute_update(InternshipWorkflow.cancel, Cancellation(OPS, "Fraud check"))
    assert s.stage == Stage.REFUNDED and s.dispute and s.dispute.outcome == "cancelled"


async def test_work_as_files_and_messages_in_a_dispute_are_on_the_record(world: World) -> None:
    """A submission's files (attachment ids; the bytes are in the file store) stay with the
    work; a message written while the dispute is open is named on the timeline, one written
    before or after is not (its text stays in the database, never in the history)."""
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    await h.signal(InternshipWorkflow.message_in_dispute, DisputeMessage(lnc(launcher), 11))
    s = await h.execute_update(
        InternshipWorkflow.submit, Submission(lnc(launcher), "", "Both files", [41, 42])
    )
    assert [(x.url, x.files) for x in s.submissions] == [("", [41, 42])]
    await h.execute_update(InternshipWorkflow.open_dispute, Dispute(emp(employer), "Incomplete"))
    await h.signal(InternshipWorkflow.message_in_dispute, DisputeMessage(lnc(launcher), 12))
    await h.signal(InternshipWorkflow.message_in_dispute, DisputeMessage(OPS, 13))

    async def noted() -> list[tuple[str, str]]:
        entries = (await state(h)).timeline
        found = [(e.actor_role.value, e.note) for e in entries if e.event == "message_in_dispute"]
        return found if len(found) == 2 else []

    assert await eventually(noted) == [("launcher", "Message 12"), ("ops", "Message 13")]
    s = await h.execute_update(InternshipWorkflow.cancel, Cancellation(OPS, "Settled by phone"))
    assert s.stage == Stage.REFUNDED


async def test_overdue_work_cannot_be_extended_into_the_past(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    await world.skip(9 * DAY)  # two days overdue
    s = await state(h)
    assert s.overdue and s.due_at
    err = await rejected(
        h.execute_update(InternshipWorkflow.extend, Extension(emp(employer), s.due_at + DAY))
    )
    assert err.type == errors.INVALID and "future" in err.message
    later = s.due_at + 5 * DAY
    out = await h.execute_update(InternshipWorkflow.extend, Extension(emp(employer), later))
    assert (out.overdue, out.escalation_level, out.due_at) == (False, 0, later)


async def test_submitted_work_cannot_be_walked_away_from(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    await h.execute_update(
        InternshipWorkflow.review, Review(emp(employer), "request_revision", "More sources")
    )
    err = await rejected(h.execute_update(InternshipWorkflow.withdraw, Withdrawal(lnc(launcher))))
    assert err.type == errors.CONFLICT
    assert err.details[0] == {
        "stage": "in_progress",
        "allowed_actions": ["submissions", "dispute"],  # what the launcher may do now
    }


# ---------------------------------------------------------------- organisations and invitations


def colleague(world: World, employer: Party, role: MemberRole, own_only: bool = False) -> Actor:
    """A member of `employer`'s organisation, as the API names them to the workflow."""
    member = Member(
        id=new_id(),
        employer_id=employer.id,
        name=f"Sam {role.value}",
        email=unique_email("sam"),
        role=role.value,
        all_internships=not own_only,
    )
    with world.sessions.begin() as db:
        db.add(member)
    return actor_of(member)


async def test_colleagues_invite_act_and_hear_by_name(world: World) -> None:
    """An invitation-only posting by a hiring manager: only the invited see it; one declines,
    one accepts by applying; an admin (not the poster) selects; the emails reach the people
    concerned by name, and the organisation's shared address."""
    employer, invited, declining, stranger = (
        world.employer(),
        world.launcher(),
        world.launcher(),
        world.launcher(),
    )
    with world.sessions.begin() as db:
        org = db.get(Employer, employer.id)
        assert org is not None
        org.notify_email = shared = unique_email("hiring")
    poster = colleague(world, employer, MemberRole.HIRING_MANAGER, own_only=True)
    admin = colleague(world, employer, MemberRole.ADMIN)
    finance = colleague(world, employer, MemberRole.FINANCE)
    h = await world.start(world.posting(employer, posted_by=poster.member_id, invitation_only=True))
    iid = (await state(h)).posting.internship_id

    # Not invited: the posting does not exist for them.
    err = await rejected(
        h.execute_update(InternshipWorkflow.apply, Application(lnc(stranger), "Hi"))
    )
    assert err.type == errors.NOT_FOUND
    # Finance reads but does not invite.
    err = await rejected(
        h.execute_update(InternshipWorkflow.invite, Invitation(finance, invited.id))
    )
    assert err.type == errors.FORBIDDEN
    for who in (invited, declining):
        await h.execute_update(InternshipWorkflow.invite, Invitation(poster, who.id))
    err = await rejected(
        h.execute_update(InternshipWorkflow.invite, Invitation(poster, invited.id))
    )
    assert err.type == errors.CONFLICT
    await world.inbox.wait_for(iid, "invited", 2)

    s = await h.execute_update(InternshipWorkflow.decline, Declination(lnc(declining)))
    assert [i.answer for i in s.invitations] == ["declined"]  # a launcher reads their own
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(invited), "Glad to"))
    s = await h.execute_update(InternshipWorkflow.select, Selection(admin, invited.id))
    assert s.stage == Stage.MATCHED
    assert {i.launcher_id: i.answer for i in s.invitations} == {
        invited.id: "accepted",
        declining.id: "declined",
    }
    assert [e.member_id for e in s.timeline if e.event in ("invited", "selected")] == [
        poster.member_id,
        poster.member_id,
        admin.member_id,
    ]

    # The projection keeps the invitations and who posted; each email went to the poster, the
    # admin who acted where they acted, and the shared address, naming who acted.
    await world.inbox.wait_for(iid, "invitation_declined", 1)
    with world.sessions() as db:
        row = db.get(Internship, iid)
        assert row is not None and row.posted_by == poster.member_id and row.invitation_only
        answers = dict(
            db.execute(
                select(InternshipInvitation.launcher_id, InternshipInvitation.answer).where(
                    InternshipInvitation.internship_id == iid
                )
            ).all()
        )
        assert answers == {invited.id: "accepted", declining.id: "declined"}
        addresses = {
            m.id: m.email
            for m in db.scalars(select(Member).where(Member.employer_id == employer.id))
        }

    def sent(kind: str) -> list[Any]:
        return [m for m in world.inbox.about(iid) if f".{kind}." in m["Message-ID"]]

    assert {m["To"] for m in sent("invitation_declined")} == {addresses[poster.member_id], shared}
    for kind, by in (("invited", "Sam hiring_manager"), ("selected", "Sam admin")):
        body = (await world.inbox.wait_for(iid, kind))[0].get_body(("plain",))
        assert body is not None and f"{by} at Acme" in body.get_content(), kind


# ---------------------------------------------------------------- deadlines, as people are told


def told(s: InternshipState, role: Role) -> dict[str, UpcomingDeadline]:
    """The upcoming deadlines worded for `role`, by kind."""
    return {d.kind: d for d in s.deadlines if d.for_roles is None or role.value in d.for_roles}


async def skip_to(world: World, at: datetime, by: timedelta = timedelta(0)) -> None:
    """Skip the clock to `by` after `at` (a negative `by`: that long before it)."""
    await world.skip(at + by - await world.env.get_current_time())


def when_it_happened(s: InternshipState, event: str) -> datetime:
    [entry] = [e for e in s.timeline if e.event == event]
    return entry.at


def fired_at(s: InternshipState, event: str, at: datetime) -> bool:
    """The timer's event is on the timeline at the listed moment (its workflow task runs a few
    milliseconds after the timer fires)."""
    return timedelta(0) <= when_it_happened(s, event) - at < timedelta(seconds=5)


async def test_auto_approval_happens_when_the_deadline_said(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    s = await state(h)
    submitted = when_it_happened(s, "submitted")
    # Reminders only nudge: the list says what happens, soonest first.
    assert [d.kind for d in s.deadlines] == ["auto_approve"] * 3
    to_employer, to_launcher = told(s, Role.EMPLOYER), told(s, Role.LAUNCHER)
    approves = to_employer["auto_approve"]
    assert (approves.happens, approves.unless, approves.at) == (
        "The work is approved automatically",
        "you request a revision",
        submitted + 7 * DAY,
    )
    assert to_launcher["auto_approve"].happens == "Your work is approved automatically"
    await skip_to(world, approves.at, -HOUR)
    s = await state(h)
    assert s.stage == Stage.IN_REVIEW and list(told(s, Role.EMPLOYER)) == ["auto_approve"]
    await skip_to(world, approves.at, HOUR)
    s = await reaches(h, Stage.PAID)
    assert fired_at(s, "approved", approves.at)
    # Now the feedback window is what comes next.
    [closes] = s.deadlines
    assert closes.kind == "feedback_closes" and closes.at == when_it_happened(s, "paid") + 14 * DAY
    await skip_to(world, closes.at, HOUR)
    s = await h.result()
    assert s.stage == Stage.COMPLETED and fired_at(s, "completed", closes.at)


async def test_an_extension_moves_the_listed_due_date_and_auto_cancel(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    s = await state(h)
    assert s.due_at
    listed = {k: d.at for k, d in told(s, Role.LAUNCHER).items()}
    assert listed == {
        "due": s.due_at,
        "overdue_escalation": s.due_at + 3 * DAY,
        "auto_cancel": s.due_at + 10 * DAY,
    }
    assert told(s, Role.LAUNCHER)["auto_cancel"].unless == "you submit your work"
    later = s.due_at + 4 * DAY
    out = await h.execute_update(InternshipWorkflow.extend, Extension(emp(employer), later))
    # The employer's answer lists the deadlines worded for them; the launcher reads theirs.
    assert {d.for_roles for d in out.deadlines} <= {None, ("employer",), ("employer", "ops")}
    moved = {k: d.at for k, d in told(out, Role.EMPLOYER).items()}
    assert moved == {k: at + 4 * DAY for k, at in listed.items()}
    assert moved == {k: d.at for k, d in told(await state(h), Role.LAUNCHER).items()}
    # The extension's email says the new auto-cancel date, from the same list.
    emailed = await world.inbox.wait_for(s.posting.internship_id, "extended", 2)
    [extended] = [m for m in emailed if m["To"].startswith("lin-")]
    assert when(moved["auto_cancel"]) in extended.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    await skip_to(world, moved["due"], HOUR)
    s = await state(h)
    assert s.overdue and fired_at(s, "overdue", moved["due"])
    assert "due" not in told(s, Role.LAUNCHER)  # fired: no longer listed
    await skip_to(world, moved["auto_cancel"], HOUR)
    s = await h.result()
    assert s.stage == Stage.REFUNDED and fired_at(s, "cancelled", moved["auto_cancel"])
    assert s.deadlines == []


async def test_a_dispute_pauses_the_clock_and_lists_its_decision(world: World) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_review(world, employer, launcher)
    await world.skip(2 * DAY)
    s = await h.execute_update(
        InternshipWorkflow.open_dispute, Dispute(emp(employer), "Not what we asked")
    )
    assert s.dispute and {d.for_roles for d in s.deadlines} == {("employer",)}
    s = await state(h)
    assert s.dispute
    # The review clock is on hold: only the dispute's decision is listed, and it says so.
    assert {d.kind for d in s.deadlines} == {"dispute_decision"}
    decision = told(s, Role.LAUNCHER)["dispute_decision"]
    assert decision.paused and decision.at == s.dispute.opened_at + 7 * DAY
    assert (decision.happens, decision.unless) == (
        "You are paid your share in full",  # the default for delivered work
        "ops decide the dispute first",
    )
    assert told(s, Role.EMPLOYER)["dispute_decision"].happens == (
        "The launcher is paid their share in full"
    )
    # The dispute email gives the same date.
    opened = await world.inbox.wait_for(s.posting.internship_id, "dispute_opened", 3)
    assert all(when(decision.at) in m.get_body(("plain",)).get_content() for m in opened)  # type: ignore[union-attr]
    # The old auto-approve time passes without approval.
    await skip_to(world, when_it_happened(s, "submitted") + 7 * DAY, HOUR)
    assert (await state(h)).stage == Stage.IN_REVIEW
    await skip_to(world, decision.at, HOUR)
    s = await h.result()
    assert fired_at(s, "dispute_resolved", decision.at)
    assert s.deadlines == []
