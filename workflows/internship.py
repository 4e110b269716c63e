"""One micro-internship, from posting to completion, as a durable workflow.

Reads top to bottom like the lifecycle table in DESIGN.md section 3: `run` walks the stages, each
stage method lists its timers, and the update handlers below are the transitions people make.
Timers are deadlines derived from state, so an extension or a re-match simply restarts the
stage's list. Every transition is projected to the database by a local activity (cheap, and in
the same workflow task) and its emails go out from a background mailer so a slow SMTP relay never
holds up a caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import Mailer
    from activities.payments import Payments
    from activities.projection import Projection
    from core import errors, search_attributes
    from core.types import (
        SYSTEM,
        TERMINAL_STAGES,
        Action,
        Actor,
        ApplicantView,
        Application,
        Cancellation,
        ChargeRequest,
        Dispute,
        DisputeView,
        Extension,
        Feedback,
        InternshipState,
        Kickoff,
        Notice,
        PayoutRequest,
        Posting,
        Rating,
        Recipient,
        RefundRequest,
        Resolution,
        Review,
        Role,
        Selection,
        Stage,
        Submission,
        SubmissionView,
        TimelineEntry,
        TransitionRecord,
        Withdrawal,
        allowed_actions,
        can_see,
        format_money,
    )

LOCAL_TIMEOUT = timedelta(seconds=15)
# A projection write must land eventually; the database being down stalls, never loses.
LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
MAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10))
MONEY_TIMEOUT = timedelta(seconds=30)
# A charge is attempted while the employer waits for the answer: a few quick tries, then the
# kickoff fails with "try again" and ops hear of it.
CHARGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=4),
    maximum_attempts=3,
    non_retryable_error_types=[Payments.CARD_DECLINED, Payments.PERMANENT],
)
# Refunds and payouts owed must happen however long Stripe is down.
SETTLE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[Payments.PERMANENT],
)

# Patches to logic that running workflows may be in the middle of (see tests/test_replay.py).
PAYOUT_RECHECKS_STRIPE = "payout-wait-rechecks-stripe"

Step = tuple[datetime, str, Callable[[], Awaitable[None]]]


def _days(policy: timedelta) -> str:
    """A policy duration as people read it (before TIME_SCALE)."""
    hours = policy.total_seconds() / 3600
    return f"{hours:g} hours" if hours < 48 else f"{hours / 24:g} days"


@workflow.defn
class InternshipWorkflow:
    @workflow.init
    def __init__(self, posting: Posting) -> None:
        self._p = posting.policy
        self._s = InternshipState(posting=posting, stage=Stage.POSTED, posted_at=workflow.now())
        self._since = self._s.posted_at  # when the current stage (or its due date) began
        self._epoch = 0  # bumped whenever the current stage's timers must restart
        self._fired: set[str] = set()
        self._charge_refusals = 0  # definitive refusals so far: each needs a new Stripe key
        self._refusals: dict[str, int] = {}  # the same, per refund or payout step
        self._retry_requested = False
        self._mail: list[int] = []
        self._resolution_payout = 0
        self._finished = False
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ the lifecycle

    @workflow.run
    async def run(self, posting: Posting) -> InternshipState:
        mailer = asyncio.create_task(self._mailer())
        self._details()
        async with self._lock:  # an application may already be arriving
            await self._record("posted", Actor(Role.EMPLOYER, posting.employer_id))
        stages: dict[Stage, Callable[[], Awaitable[None]]] = {
            Stage.POSTED: self._posted,
            Stage.MATCHED: self._matched,
            Stage.IN_PROGRESS: self._in_progress,
            Stage.IN_REVIEW: self._in_review,
            Stage.APPROVED: self._approved,
            Stage.PAID: self._paid,
        }
        while self._s.stage not in TERMINAL_STAGES:
            if self._s.dispute and not self._s.dispute.outcome:
                await self._until_changed()
            else:
                await stages[self._s.stage]()
        await self._settle_resolution()
        # A handler may still be recording the last event; only then can the mailer drain and stop.
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._finished = True
        await mailer
        return self._s

    async def _posted(self) -> None:
        p = self._p
        await self._timers(
            (
                self._since + p.scaled(p.applicants_reminder),
                "Remind employer: applicants waiting",
                self._remind_applicants,
            ),
            (
                self._since + p.scaled(p.posting_expiry),
                "Expire: no launcher selected",
                self._expire,
            ),
        )

    async def _matched(self) -> None:
        p = self._p
        await self._timers(
            (
                self._since + p.scaled(p.kickoff_reminder),
                "Remind employer to kick off",
                lambda: self._remind("kickoff", [self._employer()]),
            ),
            (
                self._since + p.scaled(p.kickoff_escalation),
                "Escalate to ops: no kickoff",
                lambda: self._escalate(
                    2, f"no kickoff {_days(p.kickoff_escalation)} after selection"
                ),
            ),
        )

    async def _in_progress(self) -> None:
        p, due = self._p, self._s.due_at
        assert due is not None
        await self._timers(
            (
                due - p.scaled(p.due_reminder),
                "Remind launcher: due soon",
                lambda: self._remind("due_soon", [self._launcher()]),
            ),
            (due, "Overdue: tell launcher, employer and ops", self._overdue),
            (
                due + p.scaled(p.overdue_escalation),
                "Escalate overdue to ops",
                lambda: self._escalate(
                    2, f"no submission {_days(p.overdue_escalation)} after the due date"
                ),
            ),
            (
                due + p.scaled(p.overdue_cancel),
                "Auto-cancel overdue and refund employer",
                lambda: self._cancel(
                    SYSTEM, f"no submission {_days(p.overdue_cancel)} after the due date", True
                ),
            ),
        )

    async def _in_review(self) -> None:
        p = self._p
        await self._timers(
            (
                self._since + p.scaled(p.review_reminder),
                "Remind employer to review",
                lambda: self._remind("review_submission", [self._employer()]),
            ),
            (
                self._since + p.scaled(p.review_auto_approve),
                "Auto-approve: review window over",
                lambda: self._approve(SYSTEM, auto=True, feedback=""),
            ),
        )

    async def _approved(self) -> None:
        s = self._s
        amount = s.money.charged_cents * self._p.launcher_share_percent // 100
        await self._pay_launcher(amount, "payout")
        async with self._lock:
            await self._transition(
                Stage.PAID,
                "paid",
                SYSTEM,
                Notice("paid", [self._launcher()], {"amount": self._fmt(amount)}),
                Notice("feedback_requested", [self._employer(), self._launcher()]),
            )

    async def _paid(self) -> None:
        p = self._p
        await self._timers(
            (
                self._since + p.scaled(p.feedback_window),
                "Complete: feedback window over",
                lambda: self._complete(SYSTEM),
            ),
        )

    # ------------------------------------------------------------------ timer machinery

    async def _timers(self, *steps: Step) -> None:
        """Fire each step at its deadline unless the stage moves on first; then wait for it to."""
        epoch = self._epoch
        for at, summary, act in steps:
            while summary not in self._fired:
                if not await self._sleep_until(at, summary, epoch):
                    return
                async with self._lock:
                    if self._epoch != epoch:
                        return
                    try:
                        await act()
                        self._fired.add(summary)
                    except ApplicationError as err:
                        if err.type != errors.PAYMENT_UNAVAILABLE:
                            raise
                # Stripe refused a refund: ops were told; try again once they say so (or
                # settle it themselves, which moves the stage on).
                if summary not in self._fired:
                    await self._ops_retry(epoch)
        await self._until_changed(epoch)

    async def _sleep_until(self, at: datetime, summary: str, epoch: int) -> bool:
        """True once `at` is reached with the stage unchanged; False if it changed first."""
        delay = (at - workflow.now()).total_seconds()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._epoch != epoch, timeout=delay, timeout_summary=summary
                )
        return self._epoch == epoch

    async def _until_changed(self, epoch: int | None = None) -> None:
        start = self._epoch if epoch is None else epoch
        await workflow.wait_condition(lambda: self._epoch != start)

    def _restart_timers(self) -> None:
        self._epoch += 1
        self._fired.clear()
        self._since = workflow.now()

    # ------------------------------------------------------------------ timer actions

    async def _remind_applicants(self) -> None:
        if any(not a.withdrawn for a in self._s.applicants):
            await self._remind("review_applicants", [self._employer()])

    async def _remind(self, reason: str, to: list[Recipient], **details: object) -> None:
        await self._raise_level(
            1, f"reminder_{reason}", Notice("reminder", to, {"reason": reason, **details})
        )

    async def _escalate(self, level: int, reason: str) -> None:
        notice = Notice(
            "escalation", [Recipient(Role.OPS, "ops")], {"reason": reason, "level": level}
        )
        await self._raise_level(level, "escalated", notice, note=reason)

    async def _raise_level(self, level: int, event: str, *notices: Notice, note: str = "") -> None:
        self._s.escalation_level = max(self._s.escalation_level, level)
        self._upsert()
        await self._record(event, SYSTEM, *notices, note=note)

    async def _overdue(self) -> None:
        self._s.overdue = True
        await self._raise_level(
            1,
            "overdue",
            Notice("overdue", [self._launcher(), self._employer(), Recipient(Role.OPS, "ops")]),
        )

    async def _expire(self) -> None:
        refunded = await self._refund_all("expiry")
        await self._transition(
            Stage.EXPIRED,
            "expired",
            SYSTEM,
            Notice("expired", [self._employer()], {"refunded": refunded}),
        )

    async def _complete(self, by: Actor) -> None:
        ratings = self._s.ratings
        await self._transition(
            Stage.COMPLETED,
            "completed",
            by,
            *[
                Notice("completed", [party], self._rating_details(ratings.get(other)))
                for party, other in (
                    (self._employer(), Role.LAUNCHER),
                    (self._launcher(), Role.EMPLOYER),
                )
            ],
        )

    @staticmethod
    def _rating_details(r: Rating | None) -> dict[str, object]:
        return {"rating_received": r.rating, "comment_received": r.comment} if r else {}

    # ------------------------------------------------------------------ transitions (updates)

    @workflow.query
    def state(self) -> InternshipState:
        return self._s

    @workflow.signal
    def payout_account_ready(self) -> None:
        """Sent by the API when Stripe reports the launcher's payout onboarding complete."""
        self._s.payout_account_ready = True

    @workflow.update
    async def apply(self, req: Application) -> InternshipState:
        async with self._lock:
            self._check_apply(req)
            self._s.applicants.append(ApplicantView(req.by.id, req.pitch, workflow.now()))
            await self._record(
                "applied",
                req.by,
                Notice(
                    "applied", [self._employer()], {"launcher_id": req.by.id, "pitch": req.pitch}
                ),
            )
            return self._s

    @apply.validator
    def _check_apply(self, req: Application) -> None:
        self._allow(Action.APPLY, req.by)
        if any(a.launcher_id == req.by.id for a in self._s.applicants):
            raise self._error(errors.CONFLICT, "You have already applied to this internship")
        if not req.pitch.strip():
            raise self._error(errors.INVALID, "pitch must not be empty")

    @workflow.update
    async def select(self, req: Selection) -> InternshipState:
        async with self._lock:
            self._check_select(req)
            s = self._s
            s.launcher_id = req.launcher_id
            others = [
                Recipient(Role.LAUNCHER, a.launcher_id)
                for a in s.applicants
                if a.launcher_id != req.launcher_id and not a.withdrawn
            ]
            notices = [Notice("selected", [self._launcher()])]
            if others:
                notices.append(Notice("not_selected", others))
            await self._transition(Stage.MATCHED, "selected", req.by, *notices)
            return s

    @select.validator
    def _check_select(self, req: Selection) -> None:
        self._allow(Action.SELECT, req.by)
        if not any(
            a.launcher_id == req.launcher_id and not a.withdrawn for a in self._s.applicants
        ):
            raise self._error(
                errors.INVALID, f"launcher {req.launcher_id} has no open application here"
            )

    @workflow.update
    async def kickoff(self, req: Kickoff) -> InternshipState:
        async with self._lock:
            self._check_kickoff(req)
            s = self._s
            if not s.money.payment_intent_id:
                await self._charge(req.by)
            duration = timedelta(days=s.posting.duration_days)
            s.due_at = s.original_due_at = workflow.now() + self._p.scaled(duration)
            await self._transition(
                Stage.IN_PROGRESS,
                "kickoff",
                req.by,
                Notice(
                    "kickoff",
                    [self._launcher(), self._employer()],
                    {"amount": self._fmt(s.money.charged_cents)},
                ),
            )
            return s

    @kickoff.validator
    def _check_kickoff(self, req: Kickoff) -> None:
        self._allow(Action.KICKOFF, req.by)

    async def _charge(self, by: Actor) -> None:
        s = self._s
        request = ChargeRequest(
            s.posting.internship_id,
            s.posting.employer_id,
            s.posting.fee_cents,
            s.posting.currency,
            self._charge_refusals + 1,
        )
        try:
            charge = await workflow.execute_activity_method(
                Payments.charge_employer,
                request,
                start_to_close_timeout=MONEY_TIMEOUT,
                retry_policy=CHARGE_RETRY,
                summary=f"Charge employer {self._fmt(request.amount_cents)}",
            )
        except ActivityError as err:
            cause = err.cause.type if isinstance(err.cause, ApplicationError) else None
            declined = cause == Payments.CARD_DECLINED
            if cause in (Payments.CARD_DECLINED, Payments.PERMANENT):
                # Stripe stored that answer under this key: the next try needs a new one. After
                # a mere outage the same key is reused, so a charge that did land is not repeated.
                self._charge_refusals += 1
            reason = "card declined at kickoff" if declined else "payment service failed at kickoff"
            await self._escalate(2, reason)
            if declined:
                raise self._error(
                    errors.PAYMENT_DECLINED,
                    "The employer's card was declined; ops "
                    "have been told. Update the payment method and kick off again.",
                ) from err
            raise self._error(
                errors.PAYMENT_UNAVAILABLE,
                "The payment service is unavailable; try the kickoff again later.",
            ) from err
        s.money.payment_intent_id = charge.payment_intent_id
        s.money.charged_cents = charge.amount_cents

    @workflow.update
    async def submit(self, req: Submission) -> InternshipState:
        async with self._lock:
            self._check_submit(req)
            s = self._s
            round_ = len(s.submissions) + 1
            s.submissions.append(SubmissionView(round_, req.url, req.note, workflow.now()))
            s.overdue = False
            await self._transition(
                Stage.IN_REVIEW,
                "submitted",
                req.by,
                Notice(
                    "submission",
                    [self._employer()],
                    {"url": req.url, "note": req.note, "round": round_},
                ),
            )
            return s

    @submit.validator
    def _check_submit(self, req: Submission) -> None:
        self._allow(Action.SUBMIT, req.by)

    @workflow.update
    async def review(self, req: Review) -> InternshipState:
        async with self._lock:
            self._check_review(req)
            s, p = self._s, self._p
            if req.decision == "approve":
                await self._approve(req.by, auto=False, feedback=req.feedback)
            elif s.revision_rounds >= p.max_revision_rounds:
                await self._open_dispute(req.by, f"revision limit reached: {req.feedback}")
            else:
                s.revision_rounds += 1
                now = workflow.now()
                assert s.due_at is not None
                s.due_at = max(s.due_at, now + p.scaled(p.revision_time))
                await self._transition(
                    Stage.IN_PROGRESS,
                    "revision_requested",
                    req.by,
                    Notice(
                        "revision_requested",
                        [self._launcher()],
                        {
                            "feedback": req.feedback,
                            "round": s.revision_rounds,
                            "rounds_left": p.max_revision_rounds - s.revision_rounds,
                        },
                    ),
                    note=req.feedback,
                )
            return s

    @review.validator
    def _check_review(self, req: Review) -> None:
        self._allow(Action.REVIEW, req.by)
        if req.decision not in ("approve", "request_revision"):
            raise self._error(errors.INVALID, "decision must be 'approve' or 'request_revision'")
        if req.decision == "request_revision" and not req.feedback.strip():
            raise self._error(errors.INVALID, "feedback must say what to revise")

    async def _approve(self, by: Actor, auto: bool, feedback: str) -> None:
        await self._transition(
            Stage.APPROVED,
            "approved",
            by,
            Notice("approved", [self._launcher()], {"auto": auto, "feedback": feedback}),
            note="approved automatically after the review window" if auto else feedback,
        )

    @workflow.update
    async def extend(self, req: Extension) -> InternshipState:
        async with self._lock:
            self._check_extend(req)
            s = self._s
            s.due_at, s.overdue = req.due_at, False
            self._restart_timers()
            s.escalation_level = 0
            self._upsert()
            await self._record(
                "extended",
                req.by,
                Notice("extended", [self._launcher()]),
                note=req.due_at.isoformat(),
            )
            return s

    @extend.validator
    def _check_extend(self, req: Extension) -> None:
        self._allow(Action.EXTEND, req.by)
        s, p = self._s, self._p
        assert s.due_at is not None and s.original_due_at is not None
        latest = s.original_due_at + p.scaled(p.max_extension)
        if req.due_at <= workflow.now():
            raise self._error(errors.INVALID, "due_at must be in the future")
        if req.due_at <= s.due_at:
            raise self._error(
                errors.INVALID,
                f"due_at must be later than the current due date {s.due_at.isoformat()}",
            )
        if req.due_at > latest:
            raise self._error(errors.INVALID, f"due_at may be at most {latest.isoformat()}")

    @workflow.update
    async def cancel(self, req: Cancellation) -> InternshipState:
        async with self._lock:
            self._check_cancel(req)
            await self._cancel(req.by, req.reason, req.refund)
            return self._s

    @cancel.validator
    def _check_cancel(self, req: Cancellation) -> None:
        self._allow(Action.CANCEL, req.by)
        if not req.refund and req.by.role != Role.OPS:
            raise self._error(
                errors.FORBIDDEN, "only ops may cancel without refunding the employer"
            )
        if not req.reason.strip():
            raise self._error(errors.INVALID, "reason must not be empty")

    async def _cancel(self, by: Actor, reason: str, refund: bool) -> None:
        s = self._s
        refunded = await self._refund_all("cancellation") if refund else 0
        if s.dispute and not s.dispute.outcome:
            s.dispute.outcome, s.dispute.note = "cancelled", reason
        to = [self._employer()] + ([self._launcher()] if s.launcher_id else [])
        details = {"reason": reason, "refunded": bool(refunded), "amount": self._fmt(refunded)}
        await self._transition(
            Stage.REFUNDED if refunded else Stage.CANCELLED,
            "cancelled",
            by,
            Notice("cancelled", to, details),
            note=reason,
        )

    @workflow.update
    async def withdraw(self, req: Withdrawal) -> InternshipState:
        async with self._lock:
            self._check_withdraw(req)
            s = self._s
            for a in s.applicants:
                if a.launcher_id == req.by.id:
                    a.withdrawn = True
            if s.stage == Stage.POSTED:
                await self._record(
                    "application_withdrawn",
                    req.by,
                    Notice("application_withdrawn", [self._employer()], {"launcher_id": req.by.id}),
                )
            else:
                # Back to posted for re-matching; a charge already taken stays for the next kickoff.
                s.launcher_id, s.due_at, s.original_due_at, s.overdue = None, None, None, False
                await self._transition(
                    Stage.POSTED,
                    "launcher_withdrew",
                    req.by,
                    Notice("launcher_withdrew", [self._employer()], {"launcher_id": req.by.id}),
                )
            return s

    @withdraw.validator
    def _check_withdraw(self, req: Withdrawal) -> None:
        self._allow(Action.WITHDRAW, req.by)
        s = self._s
        if s.stage == Stage.POSTED and not any(
            a.launcher_id == req.by.id and not a.withdrawn for a in s.applicants
        ):
            raise self._error(errors.CONFLICT, "You have no open application to withdraw")
        if s.submissions:
            raise self._error(
                errors.CONFLICT,
                "Work has been submitted, so it can no longer be left; open a dispute instead",
            )

    @workflow.update
    async def open_dispute(self, req: Dispute) -> InternshipState:
        async with self._lock:
            self._check_dispute(req)
            await self._open_dispute(req.by, req.reason)
            return self._s

    @open_dispute.validator
    def _check_dispute(self, req: Dispute) -> None:
        self._allow(Action.DISPUTE, req.by)
        if not req.reason.strip():
            raise self._error(errors.INVALID, "reason must not be empty")

    async def _open_dispute(self, by: Actor, reason: str) -> None:
        s = self._s
        s.dispute = DisputeView(by.role, reason, workflow.now())
        other = self._launcher() if by.role == Role.EMPLOYER else self._employer()
        s.escalation_level = 2
        self._restart_timers()  # timers pause while ops decide
        self._upsert()
        await self._record(
            "dispute_opened",
            by,
            Notice(
                "dispute_opened",
                [Recipient(Role.OPS, "ops"), other],
                {"opened_by": by.role.value, "reason": reason},
            ),
            note=reason,
        )

    @workflow.update
    async def resolve(self, req: Resolution) -> InternshipState:
        async with self._lock:
            self._check_resolve(req)
            s = self._s
            assert s.dispute is not None
            charged = s.money.charged_cents
            share = {"pay_launcher": 100, "split": req.launcher_percent, "refund": 0}[req.outcome]
            launcher_cents = charged * self._p.launcher_share_percent // 100 * share // 100
            refund_cents = charged * (100 - share) // 100
            if refund_cents:
                await self._refund(refund_cents, "resolution")
            s.dispute.outcome, s.dispute.note = req.outcome, req.note
            self._resolution_payout = launcher_cents
            await self._transition(
                Stage.RESOLVED,
                "dispute_resolved",
                req.by,
                Notice(
                    "dispute_resolved",
                    [self._employer(), self._launcher()],
                    {
                        "outcome": req.outcome,
                        "launcher_amount": self._fmt(launcher_cents),
                        "refund_amount": self._fmt(refund_cents),
                        "note": req.note,
                    },
                ),
                note=req.note,
            )
            return s

    @resolve.validator
    def _check_resolve(self, req: Resolution) -> None:
        self._allow(Action.RESOLVE, req.by)
        if req.outcome not in ("pay_launcher", "split", "refund"):
            raise self._error(errors.INVALID, "outcome must be 'pay_launcher', 'split' or 'refund'")
        if req.outcome == "split" and not 0 < req.launcher_percent < 100:
            raise self._error(
                errors.INVALID, "launcher_percent must be between 1 and 99 for a split"
            )

    async def _settle_resolution(self) -> None:
        """A resolved dispute may still owe the launcher a payout; it waits for onboarding."""
        if self._resolution_payout:
            await self._pay_launcher(self._resolution_payout, "resolution")

    @workflow.update
    async def feedback(self, req: Feedback) -> InternshipState:
        async with self._lock:
            self._check_feedback(req)
            s = self._s
            s.ratings[req.by.role.value] = Rating(req.rating, req.comment, workflow.now())
            await self._record("feedback", req.by)
            if len(s.ratings) == 2:
                await self._complete(SYSTEM)
            return s

    @feedback.validator
    def _check_feedback(self, req: Feedback) -> None:
        self._allow(Action.FEEDBACK, req.by)
        if req.by.role.value in self._s.ratings:
            raise self._error(errors.CONFLICT, "You have already left feedback")
        if not 1 <= req.rating <= 5:
            raise self._error(errors.INVALID, "rating must be between 1 and 5")

    # ------------------------------------------------------------------ who may do what

    def _allow(self, action: Action, by: Actor) -> None:
        """Visibility (404), role and ownership (403), then stage (409): the API's status order."""
        s = self._s
        is_owner = by.role == Role.EMPLOYER and by.id == s.posting.employer_id
        is_party = is_owner or (by.role == Role.LAUNCHER and by.id == s.launcher_id)
        if not can_see(s, by):
            raise self._error(errors.NOT_FOUND, "internship not found")
        disputed = bool(s.dispute and not s.dispute.outcome)
        roles = {
            Action.APPLY: by.role == Role.LAUNCHER,
            Action.WITHDRAW: by.role == Role.LAUNCHER and (s.stage == Stage.POSTED or is_party),
            Action.SUBMIT: is_party and by.role == Role.LAUNCHER,
            Action.EXTEND: is_owner or by.role == Role.OPS,
            # An open dispute is for ops to settle; the employer can't cancel their way out.
            Action.CANCEL: (is_owner and not disputed) or by.role == Role.OPS,
            Action.DISPUTE: is_party,
            Action.FEEDBACK: is_party,
            Action.RESOLVE: by.role == Role.OPS,
        }
        if not roles.get(action, is_owner):
            raise self._error(
                errors.FORBIDDEN, f"a {by.role.value} may not ask for {action.value} here"
            )
        if action not in allowed_actions(s.stage, disputed):
            raise self._error(
                errors.CONFLICT,
                f"{action.value} is not possible while the internship is {s.stage.value}",
            )

    def _error(self, kind: str, message: str) -> ApplicationError:
        """A refusal the API maps to its status; a 409 also says what is possible now."""
        s = self._s
        details: dict[str, object] = {}
        if kind == errors.CONFLICT:
            allowed = allowed_actions(s.stage, bool(s.dispute and not s.dispute.outcome))
            details = {"stage": s.stage.value, "allowed_actions": [a.value for a in allowed]}
        return ApplicationError(message, details, type=kind, non_retryable=True)

    # ------------------------------------------------------------------ money

    async def _refund_all(self, step: str) -> int:
        m = self._s.money
        owed = m.charged_cents - m.refunded_cents - m.paid_cents
        if m.payment_intent_id and owed > 0:
            await self._refund(owed, step)
            return owed
        return 0

    def _money_key(self, step: str) -> str:
        """The idempotency step for a money movement: a new one only after Stripe refused it."""
        refusals = self._refusals.get(step, 0)
        return step if refusals == 0 else f"{step}-{refusals + 1}"

    async def _refused(self, step: str, what: str, err: ActivityError) -> None:
        self._refusals[step] = self._refusals.get(step, 0) + 1
        cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause)
        await self._escalate(
            2, f"{what} refused by Stripe ({cause}); signal retry_payment once it is fixed"
        )

    async def _refund(self, amount: int, step: str) -> None:
        """Refund the employer; if Stripe refuses for good, ops are told and the caller fails."""
        m = self._s.money
        assert m.payment_intent_id is not None
        request = RefundRequest(
            self._s.posting.internship_id, m.payment_intent_id, amount, self._money_key(step)
        )
        try:
            m.refund_id = await workflow.execute_activity_method(
                Payments.refund_employer,
                request,
                start_to_close_timeout=MONEY_TIMEOUT,
                retry_policy=SETTLE_RETRY,
                summary=f"Refund employer {self._fmt(amount)}",
            )
        except ActivityError as err:
            await self._refused(step, f"refund of {self._fmt(amount)}", err)
            raise self._error(
                errors.PAYMENT_UNAVAILABLE,
                "The refund could not be made; ops have been told and will follow up.",
            ) from err
        m.refunded_cents += amount

    async def _pay_launcher(self, amount: int, step: str) -> None:
        """Transfer to the launcher, waiting durably (with reminders) until they can be paid.

        Each round asks Stripe again, so a lost onboarding webhook only delays the payout.
        """
        s = self._s
        assert s.launcher_id is not None and s.money.payment_intent_id is not None
        reminded = False
        while True:
            # Cleared before asking Stripe, so a webhook signal arriving meanwhile is not lost.
            s.payout_account_ready = False
            request = PayoutRequest(
                s.posting.internship_id,
                s.money.payment_intent_id,
                s.launcher_id,
                amount,
                s.posting.currency,
                self._money_key(step),
            )
            try:
                result = await workflow.execute_activity_method(
                    Payments.pay_launcher,
                    request,
                    start_to_close_timeout=MONEY_TIMEOUT,
                    retry_policy=SETTLE_RETRY,
                    summary=f"Transfer {self._fmt(amount)} to launcher",
                )
            except ActivityError as err:
                await self._refused(step, f"payout of {self._fmt(amount)}", err)
                await self._ops_retry()
                continue
            if result.transfer_id:
                s.money.transfer_id = result.transfer_id
                s.money.paid_cents += result.amount_cents
                return
            link = {"onboarding_url": result.onboarding_url}
            if reminded:
                await self._remind("payout_onboarding", [self._launcher()], **link)
            else:
                notice = Notice("payout_waiting", [self._launcher()], link)
                await self._record("payout_waiting", SYSTEM, notice)
                reminded = True
            if workflow.patched(PAYOUT_RECHECKS_STRIPE):
                with contextlib.suppress(TimeoutError):
                    await self._await_payout_account()
                continue
            # Workflows that began waiting before the patch: only the webhook's signal ends it.
            while not s.payout_account_ready:
                try:
                    await self._await_payout_account()
                except TimeoutError:
                    async with self._lock:
                        await self._remind("payout_onboarding", [self._launcher()], **link)
            reminded = False

    async def _await_payout_account(self) -> None:
        await workflow.wait_condition(
            lambda: self._s.payout_account_ready,
            timeout=self._p.scaled(self._p.payout_reminder),
            timeout_summary="Remind launcher to finish payout onboarding",
        )

    @workflow.signal
    def retry_payment(self) -> None:
        """Ops, from the Temporal UI or CLI: Stripe's refusal is fixed, try the money again."""
        self._retry_requested = True

    async def _ops_retry(self, epoch: int | None = None) -> None:
        """Wait for ops' retry_payment signal, or for the stage to move on without it."""
        self._retry_requested = False
        await workflow.wait_condition(
            lambda: self._retry_requested or (epoch is not None and self._epoch != epoch)
        )

    # ------------------------------------------------------------------ recording

    async def _transition(
        self, stage: Stage, event: str, by: Actor, *notices: Notice, note: str = ""
    ) -> None:
        self._s.stage = stage
        self._s.escalation_level = 0
        self._restart_timers()
        self._upsert()
        await self._record(event, by, *notices, note=note)

    def _upsert(self) -> None:
        """One search-attribute upsert per transition, so the UI filters on the current stage."""
        s = self._s
        sa = search_attributes
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.STAGE.value_set(s.stage.value),
            sa.ESCALATION.value_set(s.escalation_level),
        ]
        # Launcher and due date are cleared only when a launcher withdraws (back to posted).
        if s.launcher_id:
            updates += [sa.LAUNCHER.value_set(s.launcher_id)]
        elif s.stage == Stage.POSTED:
            updates += [sa.LAUNCHER.value_unset()]
        if s.due_at:
            updates += [sa.DUE_AT.value_set(s.due_at)]
        elif s.stage == Stage.POSTED:
            updates += [sa.DUE_AT.value_unset()]
        workflow.upsert_search_attributes(updates)
        self._details()

    def _details(self) -> None:
        s = self._s
        parts = [f"**{s.stage.value}**", f"escalation {s.escalation_level}"]
        if s.due_at:
            parts.append(f"due {s.due_at:%Y-%m-%d %H:%M} UTC" + (" (overdue)" if s.overdue else ""))
        if s.dispute and not s.dispute.outcome:
            parts.append("disputed")
        workflow.set_current_details(" · ".join(parts))

    async def _record(self, event: str, by: Actor, *notices: Notice, note: str = "") -> None:
        s = self._s
        entry = TimelineEntry(
            len(s.timeline) + 1, workflow.now(), s.stage, event, by.role, by.id, note
        )
        s.timeline.append(entry)
        outbox = await workflow.execute_local_activity_method(
            Projection.record,
            TransitionRecord(s, entry, list(notices)),
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary=f"Record {event}",
        )
        self._mail.extend(outbox)

    async def _mailer(self) -> None:
        """Deliver queued emails in order; retries never block a transition."""
        while True:
            await workflow.wait_condition(lambda: bool(self._mail) or self._finished)
            if not self._mail:
                return
            batch = list(self._mail)
            await workflow.execute_local_activity_method(
                Mailer.deliver,
                batch,
                start_to_close_timeout=LOCAL_TIMEOUT,
                retry_policy=MAIL_RETRY,
                summary=f"Email {len(batch)} notification(s)",
            )
            del self._mail[: len(batch)]

    # ------------------------------------------------------------------ small helpers

    def _employer(self) -> Recipient:
        return Recipient(Role.EMPLOYER, self._s.posting.employer_id)

    def _launcher(self) -> Recipient:
        assert self._s.launcher_id is not None
        return Recipient(Role.LAUNCHER, self._s.launcher_id)

    def _fmt(self, cents: int) -> str:
        return format_money(cents, self._s.posting.currency)


def workflow_id(internship_id: str) -> str:
    return f"internship-{internship_id}"
