"""The internship workflow alone: its activities replaced by fakes, its timers by skipped time.

Every test runs the real workflow on its own task queue (see `harness`), so a reminder, an
escalation or an auto-cancel is reached with `harness.skip(...)` on the test server's clock,
and what the workflow asked of Stripe and of the mailer is read from the fakes.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from activities.notifications import when
from activities.payments import ChargeRequest, Payments, PayoutRequest, RefundRequest
from activities.projection import Notice, Recipient
from core import errors, terms
from core.internship import (
    Actor,
    Application,
    Cancellation,
    Dispute,
    Extension,
    Feedback,
    Kickoff,
    Money,
    Resolution,
    Review,
    Role,
    Selection,
    Stage,
    Submission,
    Withdrawal,
    workflow_id,
)
from core.terms import terms_hash, terms_in
from tests.unit.harness import (
    DAY,
    EMPLOYER,
    FEE,
    HOUR,
    LAUNCHER,
    ONBOARDING_URL,
    OPS,
    OPS_TEAM,
    POLICY,
    SHARE,
    Handle,
    Harness,
    card_declined,
    not_onboarded,
    posting,
    reaches,
    rejected,
    state,
    stripe_rejected,
)
from workflows.internship import InternshipWorkflow

TO_EMPLOYER = Recipient(Role.EMPLOYER, EMPLOYER.id)
TO_LAUNCHER = Recipient(Role.LAUNCHER, LAUNCHER.id)


def escalation(reason: str) -> Notice:
    return Notice("escalation", [OPS_TEAM], {"reason": reason, "level": 2})


def reminder(reason: str, to: Recipient, **details: Any) -> Notice:
    return Notice("reminder", [to], {"reason": reason, **details})


async def test_happy_path_posted_to_completed(harness: Harness) -> None:
    h = await harness.in_review()
    s = await h.execute_update(InternshipWorkflow.review, Review(EMPLOYER, "approve", "Great"))
    assert s.stage == Stage.APPROVED
    await reaches(h, Stage.PAID)
    await h.execute_update(InternshipWorkflow.feedback, Feedback(EMPLOYER, 5, "Superb"))
    s = await h.execute_update(InternshipWorkflow.feedback, Feedback(LAUNCHER, 4, "Clear brief"))
    assert s.stage == Stage.COMPLETED
    result = await h.result()
    iid = result.posting.internship_id

    # The timeline, each event projected once, in order.
    assert harness.events == [
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
    assert [r.entry for r in harness.records] == result.timeline

    # Money: one charge of the fee, one transfer of the launcher's share, no refund.
    assert harness.charge.calls == [ChargeRequest(iid, EMPLOYER.id, FEE, "usd", 1)]
    assert harness.payout.calls == [PayoutRequest(iid, "pi_1", LAUNCHER.id, SHARE, "usd", "payout")]
    assert harness.refund.calls == []
    assert result.money == Money("pi_1", FEE, "tr_1", SHARE)

    # Emails: each queued once, to the right people, in order.
    e, lc = (Role.EMPLOYER, EMPLOYER.id), (Role.LAUNCHER, LAUNCHER.id)
    assert harness.sent() == [
        ("applied", *e),
        ("selected", *lc),
        ("kickoff", *lc),
        ("kickoff", *e),
        ("submission", *e),
        ("approved", *lc),
        ("paid", *lc),
        ("feedback_requested", *e),
        ("feedback_requested", *lc),
        ("completed", *e),
        ("completed", *lc),
    ]
    # The worker's outbox relay sends them: the workflow runs no mail activity of its own.
    assert "deliver_emails" not in (await h.fetch_history()).to_json()
    # Each side learns the rating it received, only now.
    assert harness.notices("completed") == [
        Notice(
            "completed", [TO_EMPLOYER], {"rating_received": 4, "comment_received": "Clear brief"}
        ),
        Notice("completed", [TO_LAUNCHER], {"rating_received": 5, "comment_received": "Superb"}),
    ]


async def test_posted_reminds_employer_then_expires(harness: Harness) -> None:
    h = await harness.start()
    await h.execute_update(InternshipWorkflow.apply, Application(LAUNCHER, "Pick me"))
    await harness.skip(7 * DAY - HOUR)
    assert (await state(h)).escalation_level == 0
    await harness.skip(2 * HOUR)
    s = await state(h)
    assert (s.stage, s.escalation_level) == (Stage.POSTED, 1)
    assert harness.notices("reminder_review_applicants") == [
        reminder("review_applicants", TO_EMPLOYER)
    ]
    await harness.skip(7 * DAY)
    s = await h.result()
    assert s.stage == Stage.EXPIRED
    assert harness.events == ["posted", "applied", "reminder_review_applicants", "expired"]
    assert harness.notices("expired") == [Notice("expired", [TO_EMPLOYER], {"refunded": 0})]
    assert (harness.charge.calls, harness.refund.calls) == ([], [])


async def test_posting_without_applicants_expires_without_reminder(harness: Harness) -> None:
    h = await harness.start()
    await harness.skip(14 * DAY + HOUR)
    s = await h.result()
    assert (s.stage, s.escalation_level) == (Stage.EXPIRED, 0)
    assert harness.events == ["posted", "expired"]


async def test_matched_reminds_then_escalates_to_ops(harness: Harness) -> None:
    h = await harness.matched()
    await harness.skip(5 * DAY + HOUR)
    assert (await state(h)).escalation_level == 1
    assert harness.notices("reminder_kickoff") == [reminder("kickoff", TO_EMPLOYER)]
    await harness.skip(5 * DAY)
    s = await state(h)
    assert (s.stage, s.escalation_level) == (Stage.MATCHED, 2)
    assert harness.notices("escalated") == [escalation("no kickoff 10 days after selection")]
    # Still kick-off-able after the escalation; a new stage starts with none.
    out = await h.execute_update(InternshipWorkflow.kickoff, Kickoff(EMPLOYER))
    assert (out.stage, out.escalation_level) == (Stage.IN_PROGRESS, 0)


async def test_overdue_escalates_then_auto_cancels_with_one_refund(harness: Harness) -> None:
    h = await harness.in_progress()
    await harness.skip(5 * DAY + HOUR)  # 48 h before the 7-day due date
    s = await state(h)
    assert (s.escalation_level, s.overdue) == (1, False)
    assert harness.notices("reminder_due_soon") == [reminder("due_soon", TO_LAUNCHER)]
    await harness.skip(2 * DAY)
    s = await state(h)
    assert (s.stage, s.overdue, s.escalation_level) == (Stage.IN_PROGRESS, True, 1)
    assert harness.notices("overdue") == [Notice("overdue", [TO_LAUNCHER, TO_EMPLOYER, OPS_TEAM])]
    await harness.skip(3 * DAY)
    assert (await state(h)).escalation_level == 2
    assert harness.notices("escalated") == [escalation("no submission 3 days after the due date")]
    await harness.skip(7 * DAY)
    s = await h.result()
    assert (s.stage, s.money.refunded_cents, s.money.refund_id) == (Stage.REFUNDED, FEE, "re_1")
    iid = s.posting.internship_id
    assert harness.refund.calls == [RefundRequest(iid, "pi_1", FEE, "cancellation")]
    assert harness.payout.calls == []
    reason = "no submission 10 days after the due date"
    assert harness.notices("cancelled") == [
        Notice(
            "cancelled",
            [TO_EMPLOYER, TO_LAUNCHER],
            {"reason": reason, "refunded": True, "amount": "$400.00"},
        )
    ]
    assert s.timeline[-1].actor_role == Role.SYSTEM and s.timeline[-1].note == reason


async def test_review_reminds_then_auto_approves_and_pays(harness: Harness) -> None:
    h = await harness.in_review()
    await harness.skip(5 * DAY + HOUR)
    assert (await state(h)).escalation_level == 1
    assert harness.notices("reminder_review_submission") == [
        reminder("review_submission", TO_EMPLOYER)
    ]
    await harness.skip(2 * DAY)
    s = await reaches(h, Stage.PAID)
    [approved] = [e for e in s.timeline if e.event == "approved"]
    assert approved.actor_role == Role.SYSTEM
    assert approved.note == "approved automatically after the review window"
    assert harness.notices("approved") == [
        Notice("approved", [TO_LAUNCHER], {"auto": True, "feedback": ""})
    ]
    assert [(p.amount_cents, p.step) for p in harness.payout.calls] == [(SHARE, "payout")]
    # Nobody rates: the feedback window closes it.
    s = await h.result()
    assert (s.stage, s.ratings) == (Stage.COMPLETED, {})


DECLINE = {"decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}
OUTAGE = "payment service failed at kickoff"


@pytest.mark.parametrize(
    ("answer", "refusal", "reason", "attempts"),
    [
        (
            card_declined(),
            (errors.PAYMENT_DECLINED, DECLINE),
            "card declined at kickoff (insufficient_funds)",
            [1, 2],
        ),
        (stripe_rejected(), (errors.PAYMENT_UNAVAILABLE, {}), OUTAGE, [1, 2]),
        # Not an answer Stripe stored: the next kickoff may reuse the key (a charge that did
        # land is then answered, not repeated).
        (
            ApplicationError("Stripe unreachable", type="Outage", non_retryable=True),
            (errors.PAYMENT_UNAVAILABLE, {}),
            OUTAGE,
            [1, 1],
        ),
        # A payment Stripe did not complete (say, the card wants 3-D Secure) has no decline
        # details: ops should not read "None" for a reason.
        (
            ApplicationError(
                "payment not completed (status requires_action)",
                type=Payments.CARD_DECLINED,
                non_retryable=True,
            ),
            (
                errors.PAYMENT_DECLINED,
                {"decline_code": None, "message": "payment not completed (status requires_action)"},
            ),
            "card declined at kickoff",
            [1, 2],
        ),
    ],
    ids=["declined", "rejected", "outage", "not-completed"],
)
async def test_failed_charge_at_kickoff_escalates_and_kickoff_can_be_retried(
    harness: Harness,
    answer: ApplicationError,
    refusal: tuple[str, dict[str, Any]],
    reason: str,
    attempts: list[int],
) -> None:
    h = await harness.matched()
    harness.charge.then(answer)
    err = await rejected(h.execute_update(InternshipWorkflow.kickoff, Kickoff(EMPLOYER)))
    assert (err.type, err.details[0]) == refusal
    s = await state(h)
    assert (s.stage, s.escalation_level, s.money) == (Stage.MATCHED, 2, Money())
    assert harness.notices("escalated") == [escalation(reason)]

    out = await h.execute_update(InternshipWorkflow.kickoff, Kickoff(EMPLOYER))
    assert (out.stage, out.money.payment_intent_id, out.money.charged_cents) == (
        Stage.IN_PROGRESS,
        "pi_2",
        FEE,
    )
    assert [c.attempt for c in harness.charge.calls] == attempts
    assert harness.sent().count(("kickoff", Role.EMPLOYER, EMPLOYER.id)) == 1


async def test_ops_hear_once_per_declined_card(harness: Harness) -> None:
    h = await harness.matched()
    harness.charge.then(card_declined("pm_a"), card_declined("pm_a"), card_declined("pm_b"))
    for _ in range(3):
        err = await rejected(h.execute_update(InternshipWorkflow.kickoff, Kickoff(EMPLOYER)))
        assert err.type == errors.PAYMENT_DECLINED
    # The same card declined again tells ops nothing new; another card does.
    assert len(harness.notices("escalated")) == 2
    s = await h.execute_update(InternshipWorkflow.kickoff, Kickoff(EMPLOYER))
    assert s.stage == Stage.IN_PROGRESS
    # Each refusal was stored under its key at Stripe: every try needed a new one.
    assert [c.attempt for c in harness.charge.calls] == [1, 2, 3, 4]


async def test_a_state_the_database_refuses_is_flagged_and_the_lifecycle_goes_on(
    harness: Harness,
) -> None:
    h = await harness.start()
    harness.unrecordable.add("applied")
    out = await h.execute_update(InternshipWorkflow.apply, Application(LAUNCHER, "Pick me"))
    assert (out.stage, out.escalation_level) == (Stage.POSTED, 2)
    assert [a.launcher_id for a in (await state(h)).applicants] == [LAUNCHER.id]
    assert harness.events == ["posted"]  # ops were told by the projection itself
    out = await h.execute_update(InternshipWorkflow.select, Selection(EMPLOYER, LAUNCHER.id))
    assert out.stage == Stage.MATCHED
    assert harness.events == ["posted", "selected"]
    assert [e.event for e in (await state(h)).timeline] == ["posted", "applied", "selected"]


async def test_refused_auto_cancel_refund_waits_for_ops_retry(harness: Harness) -> None:
    h = await harness.in_progress()
    harness.refund.then(stripe_rejected())
    await harness.skip(17 * DAY + HOUR)  # 10 days past the due date: auto-cancel
    [_, refused] = await harness.recorded("escalated", 2)
    assert refused.entry.note == (
        "refund of $400.00 refused by Stripe (Stripe rejected the request: charge already "
        "refunded); signal retry_payment once it is fixed"
    )
    # However long it takes, nothing moves until ops say Stripe's side is fixed.
    await harness.skip(30 * DAY)
    s = await state(h)
    assert (s.stage, s.escalation_level, s.money.refunded_cents) == (Stage.IN_PROGRESS, 2, 0)
    assert len(harness.refund.calls) == 1

    await h.signal(InternshipWorkflow.retry_payment)
    s = await h.result()
    assert (s.stage, s.money.refunded_cents, s.money.refund_id) == (Stage.REFUNDED, FEE, "re_2")
    # Stripe stored its refusal under the first key: the retry needs a new one.
    assert [(r.amount_cents, r.step) for r in harness.refund.calls] == [
        (FEE, "cancellation"),
        (FEE, "cancellation-2"),
    ]


async def test_refused_cancellation_refund_answers_the_caller(harness: Harness) -> None:
    h = await harness.in_progress()
    harness.refund.then(stripe_rejected())
    cancel = Cancellation(EMPLOYER, "Changed plans")
    err = await rejected(h.execute_update(InternshipWorkflow.cancel, cancel))
    assert err.type == errors.PAYMENT_UNAVAILABLE
    s = await state(h)
    assert (s.stage, s.escalation_level, s.money.refunded_cents) == (Stage.IN_PROGRESS, 2, 0)
    out = await h.execute_update(InternshipWorkflow.cancel, cancel)
    assert (out.stage, out.money.refunded_cents) == (Stage.REFUNDED, FEE)
    assert [r.step for r in harness.refund.calls] == ["cancellation", "cancellation-2"]


async def test_split_resolution_settles_until_the_payout_lands(harness: Harness) -> None:
    h = await harness.in_progress()
    out = await h.execute_update(InternshipWorkflow.open_dispute, Dispute(LAUNCHER, "Scope grows"))
    assert out.dispute is not None
    decide_by = when(out.dispute.opened_at + POLICY.dispute_decision)
    assert harness.notices("dispute_opened") == [
        Notice(
            "dispute_opened",
            [OPS_TEAM, TO_EMPLOYER, TO_LAUNCHER],
            {
                "opened_by": "launcher",
                "reason": "Scope grows",
                "decide_by": decide_by,
                "default_outcome": "refund",
            },
        )
    ]
    harness.payout.then(not_onboarded())
    out = await h.execute_update(
        InternshipWorkflow.resolve, Resolution(OPS, "split", 50, "Half each")
    )
    assert out.stage == Stage.SETTLING
    await harness.recorded("payout_waiting")
    s = await state(h)
    assert s.stage == Stage.SETTLING and s.dispute and s.dispute.outcome == "split"
    assert (s.money.refunded_cents, s.money.paid_cents) == (FEE // 2, 0)

    await h.signal(InternshipWorkflow.payout_account_ready)
    await reaches(h, Stage.RESOLVED)
    s = await h.result()
    iid = s.posting.internship_id
    # Half the fee back to the employer, half the launcher's share to the launcher.
    assert harness.refund.calls == [RefundRequest(iid, "pi_1", FEE // 2, "resolution")]
    assert [(p.amount_cents, p.step) for p in harness.payout.calls] == [
        (SHARE // 2, "resolution"),
        (SHARE // 2, "resolution"),
    ]
    assert (s.money.refunded_cents, s.money.paid_cents) == (FEE // 2, SHARE // 2)
    assert [(r.entry.event, r.entry.stage) for r in harness.records[-4:]] == [
        ("dispute_opened", Stage.IN_PROGRESS),
        ("dispute_resolved", Stage.SETTLING),
        ("payout_waiting", Stage.SETTLING),
        ("resolution_paid", Stage.RESOLVED),
    ]
    details = {
        "outcome": "split",
        "launcher_amount": "$180.00",
        "refund_amount": "$200.00",
        "note": "Half each",
    }
    assert harness.notices("dispute_resolved") == [
        Notice("dispute_resolved", [TO_EMPLOYER, TO_LAUNCHER], details)
    ]
    assert harness.notices("resolution_paid") == [
        Notice("paid", [TO_LAUNCHER], {"amount": "$180.00"})
    ]


async def test_payout_waits_for_onboarding_with_reminders(harness: Harness) -> None:
    h = await harness.in_review()
    harness.payout.then(not_onboarded(), not_onboarded())
    await h.execute_update(InternshipWorkflow.review, Review(EMPLOYER, "approve"))
    await harness.recorded("payout_waiting")
    assert harness.notices("payout_waiting") == [
        Notice("payout_waiting", [TO_LAUNCHER], {"onboarding_url": ONBOARDING_URL})
    ]
    # Approved work is owed: not even ops can cancel it into a refund now.
    err = await rejected(h.execute_update(InternshipWorkflow.cancel, Cancellation(OPS, "x")))
    assert err.type == errors.CONFLICT

    await harness.skip(3 * DAY + HOUR)  # no webhook: the reminder round asks Stripe again
    await harness.recorded("reminder_payout_onboarding")
    assert harness.notices("reminder_payout_onboarding") == [
        reminder("payout_onboarding", TO_LAUNCHER, onboarding_url=ONBOARDING_URL)
    ]
    s = await state(h)
    assert (s.stage, s.escalation_level, len(harness.payout.calls)) == (Stage.APPROVED, 1, 2)

    # The webhook's signal ends the wait at once, not at the next reminder.
    await h.signal(InternshipWorkflow.payout_account_ready)
    s = await reaches(h, Stage.PAID)
    assert (s.money.paid_cents, s.escalation_level) == (SHARE, 0)
    # Not refusals: every try is the same payout under the same key.
    assert [p.step for p in harness.payout.calls] == ["payout", "payout", "payout"]


async def test_rematch_after_withdrawal_keeps_the_first_charge(harness: Harness) -> None:
    other = Actor(Role.LAUNCHER, "lnc-other")
    h = await harness.start()
    await h.execute_update(InternshipWorkflow.apply, Application(LAUNCHER, "First"))
    await h.execute_update(InternshipWorkflow.apply, Application(other, "Second"))
    await h.execute_update(InternshipWorkflow.select, Selection(EMPLOYER, LAUNCHER.id))
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(EMPLOYER))
    s = await h.execute_update(InternshipWorkflow.withdraw, Withdrawal(LAUNCHER))
    assert (s.stage, s.launcher_id, s.due_at, s.money.charged_cents) == (
        Stage.POSTED,
        None,
        None,
        FEE,
    )
    assert harness.notices("launcher_withdrew") == [
        Notice("launcher_withdrew", [TO_EMPLOYER], {"launcher_id": LAUNCHER.id})
    ]
    third = Actor(Role.LAUNCHER, "lnc-third")
    await h.execute_update(InternshipWorkflow.apply, Application(third, "Third"))
    await h.execute_update(InternshipWorkflow.select, Selection(EMPLOYER, other.id))
    s = await h.execute_update(InternshipWorkflow.kickoff, Kickoff(EMPLOYER))
    assert (s.stage, s.launcher_id) == (Stage.IN_PROGRESS, other.id)
    assert len(harness.charge.calls) == 1
    # Each applicant passed over hears it once: `other` at the first match, `third` at the second.
    notices = harness.notices("selected")
    assert [n.to for n in notices if n.kind == "selected"][-1] == [
        Recipient(Role.LAUNCHER, other.id)
    ]
    assert [n.to for n in notices if n.kind == "not_selected"] == [
        [Recipient(Role.LAUNCHER, other.id)],
        [Recipient(Role.LAUNCHER, third.id)],
    ]
    s = await h.execute_update(InternshipWorkflow.cancel, Cancellation(EMPLOYER, "Stop"))
    assert s.stage == Stage.REFUNDED
    assert [(r.amount_cents, r.step) for r in harness.refund.calls] == [(FEE, "cancellation")]


async def history_of_updates(h: Handle) -> list[str]:
    """The updates Temporal accepted into the workflow's history, by name."""
    history = await h.fetch_history()
    return [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]


Refusal = tuple[str, dict[str, Any]]  # the error's kind and details, as the API reports them
NOT_FOUND: Refusal = (errors.NOT_FOUND, {})
FORBIDDEN: Refusal = (errors.FORBIDDEN, {})
INVALID: Refusal = (errors.INVALID, {})


def conflict(stage: str, *allowed: str) -> Refusal:
    """409, with the stage and what the caller may do instead."""
    return errors.CONFLICT, {"stage": stage, "allowed_actions": list(allowed)}


async def test_refusals_leave_no_trace_in_history(harness: Harness) -> None:
    other_employer = Actor(Role.EMPLOYER, "emp-other")
    prospect = Actor(Role.LAUNCHER, "lnc-new")
    wf = InternshipWorkflow
    h = await harness.start()

    async def refused(cases: list[tuple[Any, Any, Refusal]]) -> None:
        for update, req, expected in cases:
            err = await rejected(h.execute_update(update, req))
            assert (err.type, err.details[0]) == expected, req

    await refused(
        [
            # Another employer's internship does not exist for them.
            (wf.select, Selection(other_employer, LAUNCHER.id), NOT_FOUND),
            # A launcher cannot select, an employer cannot apply, nor waive the refund.
            (wf.select, Selection(LAUNCHER, LAUNCHER.id), FORBIDDEN),
            (wf.apply, Application(EMPLOYER, "me"), FORBIDDEN),
            (wf.cancel, Cancellation(EMPLOYER, "x", refund=False), FORBIDDEN),
            # Not in this stage.
            (
                wf.kickoff,
                Kickoff(EMPLOYER),
                conflict("posted", "selection", "cancellation", "invitations"),
            ),
            (wf.resolve, Resolution(OPS, "refund"), conflict("posted", "cancellation")),
            (wf.withdraw, Withdrawal(prospect), conflict("posted", "applications")),
            # Bad input from someone who may ask.
            (wf.apply, Application(LAUNCHER, "  "), INVALID),
            (wf.select, Selection(EMPLOYER, LAUNCHER.id), INVALID),  # no such application
            (wf.cancel, Cancellation(EMPLOYER, " "), INVALID),
        ]
    )
    await h.execute_update(wf.apply, Application(LAUNCHER, "I write well"))
    await refused([(wf.apply, Application(LAUNCHER, "Again"), conflict("posted", "withdrawal"))])
    await h.execute_update(wf.select, Selection(EMPLOYER, LAUNCHER.id))
    submission = Submission(LAUNCHER, "https://docs.test/a", "early")
    await refused(
        [
            # Once matched, launchers who were not selected lose sight of it.
            (wf.withdraw, Withdrawal(prospect), NOT_FOUND),
            (wf.submit, submission, conflict("matched", "withdrawal")),
        ]
    )

    assert await history_of_updates(h) == ["apply", "select"]
    assert harness.events == ["posted", "applied", "selected"]


async def test_input_refusals_in_progress_and_review(harness: Harness) -> None:
    h = await harness.in_progress()
    wf = InternshipWorkflow
    s = await state(h)
    assert s.due_at is not None
    for due_at in (
        s.due_at - DAY,  # not later than the current due date
        s.due_at + 15 * DAY,  # past the longest extension (14 days)
    ):
        err = await rejected(h.execute_update(wf.extend, Extension(EMPLOYER, due_at)))
        assert err.type == errors.INVALID
    err = await rejected(h.execute_update(wf.open_dispute, Dispute(LAUNCHER, " ")))
    assert err.type == errors.INVALID
    err = await rejected(h.execute_update(wf.extend, Extension(LAUNCHER, s.due_at + DAY)))
    assert err.type == errors.FORBIDDEN
    await h.execute_update(wf.submit, Submission(LAUNCHER, "https://docs.test/a", "v1"))
    for review in (Review(EMPLOYER, "maybe"), Review(EMPLOYER, "request_revision", " ")):
        err = await rejected(h.execute_update(wf.review, review))
        assert err.type == errors.INVALID
    assert await history_of_updates(h) == ["apply", "select", "kickoff", "submit"]


async def test_an_application_with_the_first_task_is_recorded_after_posted(
    harness: Harness,
) -> None:
    # Update-with-start puts the application in the workflow's first task, as happens whenever
    # it reaches the server before a worker has picked the new workflow up.
    p = posting()
    start = WithStartWorkflowOperation(
        InternshipWorkflow.run,
        p,
        id=workflow_id(p.internship_id),
        task_queue=harness.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    await harness.client.execute_update_with_start_workflow(
        InternshipWorkflow.apply, Application(LAUNCHER, "First!"), start_workflow_operation=start
    )
    h = await start.workflow_handle()
    harness.handles.append(h)
    s = await state(h)
    assert [e.event for e in s.timeline] == ["posted", "applied"]


async def test_the_terms_accepted_are_checked_and_recorded_on_the_timeline(
    harness: Harness,
) -> None:
    h = await harness.start()
    accepted = terms_in(await state(h)).hash
    ref = f"Accepted the terms sha256:{accepted[:16]}"
    other = "0" * 64  # the hash of terms that are not this internship's
    wf = InternshipWorkflow
    err = await rejected(h.execute_update(wf.apply, Application(LAUNCHER, "Me", other)))
    assert (err.type, err.details[0]["code"]) == (errors.CONFLICT, terms.TERMS_CHANGED)
    assert "read its terms again" in err.message
    await h.execute_update(wf.apply, Application(LAUNCHER, "Me", accepted))
    await h.execute_update(wf.select, Selection(EMPLOYER, LAUNCHER.id))
    err = await rejected(h.execute_update(wf.kickoff, Kickoff(EMPLOYER, other)))
    assert (err.type, err.details[0]["code"]) == (errors.CONFLICT, terms.TERMS_CHANGED)
    s = await h.execute_update(wf.kickoff, Kickoff(EMPLOYER, accepted))
    assert s.stage == Stage.IN_PROGRESS
    notes = {e.event: e.note for e in (await state(h)).timeline}
    assert (notes["applied"], notes["kickoff"], notes["selected"]) == (ref, ref, "")
    assert [r.entry.note for r in harness.records if r.entry.event in ("applied", "kickoff")] == [
        ref,
        ref,
    ]
    # Refused terms leave no trace: only the accepted application and kickoff are in history.
    assert await history_of_updates(h) == ["apply", "select", "kickoff"]


async def test_terms_accepted_with_the_first_task_are_checked_once_it_has_run(
    harness: Harness,
) -> None:
    # The terms depend on what the workflow sets as it begins (`delivered_work_kept`): an
    # application in its first task is checked by its handler, after "posted".
    for taken in (True, False):
        p = posting()
        accepted = terms_hash(p) if taken else "0" * 64
        start = WithStartWorkflowOperation(
            InternshipWorkflow.run,
            p,
            id=workflow_id(p.internship_id),
            task_queue=harness.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        apply = harness.client.execute_update_with_start_workflow(
            InternshipWorkflow.apply,
            Application(LAUNCHER, "First!", accepted),
            start_workflow_operation=start,
        )
        if taken:
            await apply
        else:
            err = await rejected(apply)
            assert err.details[0]["code"] == terms.TERMS_CHANGED
        h = await start.workflow_handle()
        harness.handles.append(h)
        s = await state(h)
        assert [e.event for e in s.timeline] == ["posted", "applied"][: 1 + taken]
