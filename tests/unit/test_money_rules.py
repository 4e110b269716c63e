"""Money never moves twice or backwards: the sequences a dishonest employer or launcher tried.

Each test is one sequence found by trying the service as a fraudster would (issue 13); each
failed on the code before the rules below, and asserts the money the fakes were asked to move.
"""

from __future__ import annotations

from datetime import timedelta

from activities.payments import ChargeRequest, PayoutRequest, RefundRequest, stripe_key
from core import errors, rulebook
from core.internship import (
    Actor,
    Application,
    Cancellation,
    Dispute,
    Review,
    Role,
    Selection,
    Stage,
    Withdrawal,
)
from tests.unit.harness import (
    DAY,
    EMPLOYER,
    FEE,
    LAUNCHER,
    OPS,
    OPS_TEAM,
    POLICY,
    SHARE,
    Harness,
    reaches,
    rejected,
    state,
)
from workflows.internship import InternshipWorkflow as Wf

OTHER = Actor(Role.LAUNCHER, "lnc-two")


async def test_a_cancellation_after_delivery_goes_to_ops_instead_of_refunding(
    harness: Harness,
) -> None:
    h = await harness.in_review()
    await h.execute_update(Wf.review, Review(EMPLOYER, "request_revision", "More sources"))
    s = await h.execute_update(Wf.cancel, Cancellation(EMPLOYER, "Changed my mind"))
    assert s.stage == Stage.IN_PROGRESS and s.disputed
    assert s.dispute is not None and s.dispute.opened_by == Role.EMPLOYER
    assert "after work was delivered" in s.dispute.reason
    assert harness.refund.calls == []  # nothing refunded: ops decide
    err = await rejected(h.execute_update(Wf.cancel, Cancellation(EMPLOYER, "Again")))
    assert err.type == errors.FORBIDDEN
    # Ops still may refund delivered work, when they decide it is owed.
    s = await h.execute_update(Wf.cancel, Cancellation(OPS, "Plagiarised", refund=True))
    assert s.stage == Stage.REFUNDED
    assert [r.amount_cents for r in harness.refund.calls] == [FEE]


async def test_an_overdue_revision_goes_to_ops_and_by_default_pays_for_the_delivered_work(
    harness: Harness,
) -> None:
    h = await harness.in_review()
    await harness.skip(6 * DAY)  # review day 6: the auto-approve would come tomorrow
    out = await h.execute_update(Wf.review, Review(EMPLOYER, "request_revision", "Redo it all"))
    assert out.due_at is not None
    # Past the due date by the overdue cancellation's 10 days: no automatic refund.
    past = out.due_at - await harness.env.get_current_time() + POLICY.overdue_cancel
    await harness.skip(past + timedelta(minutes=1))
    s = await state(h)
    assert s.stage == Stage.IN_PROGRESS and s.disputed
    assert s.dispute is not None and s.dispute.opened_by == Role.SYSTEM
    assert harness.refund.calls == []
    assert "dispute_opened" in harness.events and "cancelled" not in harness.events
    # Ops do nothing: at the dispute's deadline the delivered work is paid for.
    await harness.skip(POLICY.dispute_decision)
    s = await reaches(h, Stage.RESOLVED)
    assert s.dispute is not None and s.dispute.outcome == "pay_launcher"
    assert harness.refund.calls == []
    assert [p.amount_cents for p in harness.payout.calls] == [SHARE]
    assert s.money.paid_cents == SHARE and s.money.refunded_cents == 0


async def test_a_dispute_reminds_ops_then_ends_with_its_default(harness: Harness) -> None:
    """A launcher's dispute with nothing delivered: ops reminded every 2 days, then the fee
    goes back to the employer on day 7."""
    h = await harness.in_progress()
    out = await h.execute_update(Wf.open_dispute, Dispute(LAUNCHER, "The brief changed"))
    assert out.dispute is not None
    opened = harness.notices("dispute_opened")[0]
    assert opened.details["default_outcome"] == "refund"
    await harness.skip(POLICY.dispute_decision - timedelta(hours=1))
    assert (await state(h)).disputed  # still ops' to decide
    reminders = harness.notices("reminder_dispute_waiting")
    assert len(reminders) == 3  # days 2, 4 and 6
    assert all(n.to == [OPS_TEAM] for n in reminders)
    assert reminders[0].details["decide_by"] == opened.details["decide_by"]
    await harness.skip(2 * timedelta(hours=1))
    s = await state(h)
    assert s.stage == Stage.RESOLVED and s.dispute is not None
    assert s.dispute.outcome == "refund"
    assert [r.amount_cents for r in harness.refund.calls] == [FEE]
    assert harness.payout.calls == []
    resolved = harness.notices("dispute_resolved")[0]
    assert resolved.details["by_default"] is True
    assert [r.entry.actor_role for r in harness.records if r.entry.event == "dispute_resolved"] == [
        Role.SYSTEM
    ]


async def test_an_employers_dispute_in_review_ends_in_payment(harness: Harness) -> None:
    """Disputing on review day 6 no longer stops the auto-approve forever."""
    h = await harness.in_review()
    await harness.skip(6 * DAY)
    await h.execute_update(Wf.open_dispute, Dispute(EMPLOYER, "Not what we asked"))
    await harness.skip(30 * DAY)
    s = await reaches(h, Stage.RESOLVED)
    assert s.dispute is not None and s.dispute.outcome == "pay_launcher"
    assert s.money.paid_cents == SHARE and harness.refund.calls == []


async def test_an_overdue_launcher_with_nothing_delivered_cannot_dispute_the_cancellation(
    harness: Harness,
) -> None:
    h = await harness.in_progress()
    s = await state(h)
    assert s.due_at is not None
    await harness.skip(s.due_at - await harness.env.get_current_time() + 9 * DAY)
    err = await rejected(h.execute_update(Wf.open_dispute, Dispute(LAUNCHER, "Hold it")))
    assert err.type == errors.CONFLICT
    assert "submit" in err.message
    await harness.skip(2 * DAY)  # due + 11 days: the overdue cancellation refunded the fee
    s = await state(h)
    assert s.stage == Stage.REFUNDED
    assert [r.amount_cents for r in harness.refund.calls] == [FEE]


async def test_every_money_key_carries_the_postings_nonce(harness: Harness) -> None:
    h = await harness.in_review(nonce="n0nce")
    await h.execute_update(Wf.review, Review(EMPLOYER, "approve"))
    await reaches(h, Stage.PAID)
    iid = (await state(h)).posting.internship_id
    charge, payout = harness.charge.calls[0], harness.payout.calls[0]
    assert charge.idempotency_key == f"internship-{iid}/n0nce/charge/1"
    assert payout.idempotency_key == f"internship-{iid}/n0nce/transfer/payout"
    # Another run under the same id (were one ever started) could not be handed this money.
    rerun = ChargeRequest(iid, EMPLOYER.id, FEE, "usd", 1, "other")
    assert rerun.idempotency_key != charge.idempotency_key
    # Internships posted before the nonce keep the keys their money already moved under.
    assert RefundRequest(iid, "pi_1", FEE, "cancellation").idempotency_key == stripe_key(
        iid, "", "refund/cancellation"
    )
    assert PayoutRequest(iid, "pi_1", "l", 1, "usd", "payout").idempotency_key == (
        f"internship-{iid}/transfer/payout"
    )


# ------------------------------------------------------------------ applicants stay private


async def test_a_selected_launcher_sees_no_other_applicants_events(harness: Harness) -> None:
    h = await harness.start()
    await h.execute_update(Wf.apply, Application(OTHER, "Me first"))
    await h.execute_update(Wf.apply, Application(LAUNCHER, "I write well"))
    await h.execute_update(Wf.select, Selection(EMPLOYER, OTHER.id))
    await h.execute_update(Wf.withdraw, Withdrawal(OTHER))
    await h.execute_update(Wf.select, Selection(EMPLOYER, LAUNCHER.id))
    s = await state(h)
    seen = rulebook.timeline(s, LAUNCHER)
    assert all(e.actor_id != OTHER.id for e in seen)
    assert [e.event for e in seen if e.actor_role == Role.LAUNCHER] == ["applied"]
    # The employer and ops still read everything.
    assert rulebook.timeline(s, EMPLOYER) == s.timeline == rulebook.timeline(s, OPS)
    assert any(e.actor_id == OTHER.id for e in s.timeline)
    assert rulebook.timeline(s, Actor(Role.LAUNCHER, "stranger")) == []
