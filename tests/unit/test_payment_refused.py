"""A payment Stripe refused for good: `payment_refused` says so while the money waits for ops.

The flag is set (with what was refused and why) when a refund or payout is refused and the money
then waits for ops' `retry_payment` signal; the escalation's record already carries it, so the
projection lists it. Ops' retry clears it and is recorded on the timeline; the money then moves,
or is refused again and the flag is set again. A refusal that fails a request (a cancellation's
refund) waits for nobody, so it sets nothing, and a retry that nothing waits for changes nothing.
"""

from __future__ import annotations

from core import errors
from core.internship import Actor, Cancellation, Review, Role, Stage
from tests.unit.harness import (
    DAY,
    EMPLOYER,
    FEE,
    HOUR,
    OPS,
    SHARE,
    Harness,
    reaches,
    rejected,
    state,
    stripe_rejected,
)
from workflows.internship import InternshipWorkflow

PAYOUT_REFUSED = (
    "payout of $360.00 refused by Stripe (Stripe rejected the request: charge already refunded)"
)
REFUND_REFUSED = (
    "refund of $400.00 refused by Stripe (Stripe rejected the request: charge already refunded)"
)


async def test_a_refused_payout_is_flagged_until_ops_retry_and_again_if_refused_again(
    harness: Harness,
) -> None:
    h = await harness.in_review()
    harness.payout.then(stripe_rejected(), stripe_rejected())
    await h.execute_update(InternshipWorkflow.review, Review(EMPLOYER, "approve"))
    [refusal] = await harness.recorded("escalated")
    # The escalation's own record carries the flag: the projection lists it at once.
    assert refusal.state.payment_refused == PAYOUT_REFUSED
    s = await state(h)
    assert (s.stage, s.escalation_level, s.payment_refused) == (Stage.APPROVED, 2, PAYOUT_REFUSED)

    await h.signal(InternshipWorkflow.retry_payment, OPS)
    [retry] = await harness.recorded("payment_retry")
    assert (retry.entry.actor_role, retry.entry.actor_id) == (Role.OPS, OPS.id)
    assert retry.entry.note == PAYOUT_REFUSED
    assert retry.state.payment_refused == ""
    # Refused again: flagged again, with a new escalation.
    [_, again] = await harness.recorded("escalated", 2)
    assert again.state.payment_refused == PAYOUT_REFUSED
    assert (await state(h)).payment_refused == PAYOUT_REFUSED

    await h.signal(InternshipWorkflow.retry_payment)  # from the CLI: no input
    s = await reaches(h, Stage.PAID)
    assert (s.payment_refused, s.money.paid_cents) == ("", SHARE)
    retries = await harness.recorded("payment_retry", 2)
    assert [(r.entry.actor_role, r.entry.actor_id) for r in retries] == [
        (Role.OPS, OPS.id),
        (Role.OPS, "ops"),
    ]
    [paid] = await harness.recorded("paid")
    assert paid.state.payment_refused == ""
    assert harness.events[-3:] == ["escalated", "payment_retry", "paid"]
    assert [p.step for p in harness.payout.calls] == ["payout", "payout-2", "payout-3"]


async def test_a_refused_auto_cancel_refund_is_flagged_until_ops_retry(harness: Harness) -> None:
    h = await harness.in_progress()
    harness.refund.then(stripe_rejected())
    await harness.skip(17 * DAY + HOUR)  # 10 days past the due date: auto-cancel
    [_, refusal] = await harness.recorded("escalated", 2)
    assert refusal.state.payment_refused == REFUND_REFUSED
    assert (await state(h)).payment_refused == REFUND_REFUSED

    await h.signal(InternshipWorkflow.retry_payment, OPS)
    s = await h.result()
    assert (s.stage, s.payment_refused, s.money.refunded_cents) == (Stage.REFUNDED, "", FEE)
    assert harness.events[-3:] == ["escalated", "payment_retry", "cancelled"]
    assert [r.state.payment_refused for r in harness.records[-3:]] == [REFUND_REFUSED, "", ""]


async def test_a_refused_refund_that_fails_a_request_waits_for_nobody(harness: Harness) -> None:
    h = await harness.in_progress()
    harness.refund.then(stripe_rejected())
    cancel = Cancellation(EMPLOYER, "Changed plans")
    err = await rejected(h.execute_update(InternshipWorkflow.cancel, cancel))
    assert err.type == errors.PAYMENT_UNAVAILABLE
    s = await state(h)
    # Ops were told, but the caller asks again: no retry of ops' waits for it.
    assert (s.escalation_level, s.payment_refused) == (2, "")
    await h.signal(InternshipWorkflow.retry_payment, OPS)
    out = await h.execute_update(InternshipWorkflow.cancel, cancel)
    assert (out.stage, out.money.refunded_cents) == (Stage.REFUNDED, FEE)
    assert "payment_retry" not in harness.events
    assert [r.step for r in harness.refund.calls] == ["cancellation", "cancellation-2"]


async def test_a_retry_nothing_waits_for_changes_nothing(harness: Harness) -> None:
    h = await harness.in_review()
    await h.signal(InternshipWorkflow.retry_payment, OPS)
    await h.execute_update(InternshipWorkflow.review, Review(EMPLOYER, "approve"))
    s = await reaches(h, Stage.PAID)
    assert s.payment_refused == ""
    assert "payment_retry" not in harness.events
    assert [p.step for p in harness.payout.calls] == ["payout"]


async def test_only_ops_retry_a_refused_payment(harness: Harness) -> None:
    h = await harness.in_review()
    harness.payout.then(stripe_rejected())
    await h.execute_update(InternshipWorkflow.review, Review(EMPLOYER, "approve"))
    await harness.recorded("escalated")
    await h.signal(InternshipWorkflow.retry_payment, EMPLOYER)
    await h.signal(InternshipWorkflow.retry_payment, Actor(Role.LAUNCHER, "lnc-lin"))
    await harness.skip(DAY)
    s = await state(h)
    assert (s.stage, s.payment_refused) == (Stage.APPROVED, PAYOUT_REFUSED)
    assert len(harness.payout.calls) == 1 and "payment_retry" not in harness.events
    await h.signal(InternshipWorkflow.retry_payment, OPS)
    s = await reaches(h, Stage.PAID)
    assert s.payment_refused == ""


async def test_a_refused_refund_stops_waiting_when_ops_close_the_internship(
    harness: Harness,
) -> None:
    h = await harness.in_progress()
    harness.refund.then(stripe_rejected())
    await harness.skip(17 * DAY + HOUR)
    await harness.recorded("escalated", 2)
    # Ops refunded by hand at Stripe and close it without another refund.
    s = await h.execute_update(
        InternshipWorkflow.cancel, Cancellation(OPS, "Refunded by hand", refund=False)
    )
    assert (s.stage, s.payment_refused) == (Stage.CANCELLED, "")
    assert harness.records[-1].entry.event == "cancelled"
    assert harness.records[-1].state.payment_refused == ""
    assert "payment_retry" not in harness.events
