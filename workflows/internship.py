"""One micro-internship, from posting to completion, as a durable workflow.

Reads top to bottom like the lifecycle table in docs/architecture.md: `run` walks the stages,
each stage lists its deadlines, and the update handlers below are the transitions people make.
The mechanisms live in small classes: `Deadlines` (the stage's timers), `Settlement` (money)
and `Recorder` (timeline, search attributes, emails). Who may do what is `core.rulebook`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core import errors, rulebook, terms
    from core.activity_contracts import Notice, Recipient
    from core.formats import policy_duration, when
    from core.internship import (
        SYSTEM,
        TERMINAL_STAGES,
        Action,
        Actor,
        ApplicantView,
        Application,
        Cancellation,
        Declination,
        Dispute,
        DisputeMessage,
        DisputeView,
        Extension,
        Feedback,
        InternshipState,
        Invitation,
        InvitationView,
        Kickoff,
        Posting,
        Rating,
        Resolution,
        Review,
        Role,
        Selection,
        Stage,
        Submission,
        SubmissionView,
        UpcomingDeadline,
        Withdrawal,
    )
    from workflows.deadlines import Deadline, Deadlines, upcoming
    from workflows.recording import OPS_TEAM, Recorder, employer_of, launcher_of
    from workflows.settlement import Settlement

# Changes to logic that running workflows may be in the middle of (see tests/unit/test_replay.py
# and docs/architecture.md, 3, "Retiring a patch").
# Since this patch, a resolution that owes the launcher money stays `settling` until it is paid.
RESOLUTION_SETTLES = "resolution-settles-before-resolved"
# DEPRECATED (step 1 of retiring a patch done): every run now takes the new path, and only
# `workflow.deprecate_patch` names it. Since this patch (one release, two changes): the
# worker's outbox relay sends email, so no workflow task waits on SMTP (runs started before it
# ran their own mailer, calling the local activity `deliver_emails`: that path is gone); and
# transitions wait until the posting is recorded, so the timeline (and its emails) always begin
# with it. Step 2, in a later release: delete both `deprecate_patch(OUTBOX_RELAY)` calls and this
# constant once no run started before the release that deprecated it is open or still within
# the namespace's retention (a query on a closed run replays it too).
OUTBOX_RELAY = "outbox-relay-posting-first"
# Approved work is paid moments later: the approval publishes its search attributes only if the
# payout has to wait (an upsert is a billable action; `paid` follows with its own).
APPROVAL_PUBLISHED_IF_WAITING = "approval-published-if-payout-waits"
# Since this patch (`InternshipState.delivered_work_kept`): once work is delivered only ops
# refund it (an employer's cancellation and an overdue revision go to ops as disputes), and a
# dispute ends by its deadline with a stated default outcome.
DELIVERED_WORK_KEPT = "delivered-work-kept"
# Since this patch an extension is told to the employer too: their calendar has the due date
# from the kickoff's invitation, and the extension's moves it.
EXTENSION_TELLS_EMPLOYER = "extension-tells-employer"


# Whom a deadline's words are for (`UpcomingDeadline.for_roles`).
EMPLOYER, LAUNCHER, OPS = ("employer",), ("launcher",), ("ops",)
OTHERS = LAUNCHER + OPS


def _told(
    kind: str,
    at: datetime,
    happens: str,
    to: tuple[str, ...] | None,
    unless: str = "",
    paused: bool = False,
) -> UpcomingDeadline:
    return UpcomingDeadline(kind, at, happens, unless, to, paused)


@workflow.defn
class InternshipWorkflow:
    @workflow.init
    def __init__(self, posting: Posting) -> None:
        self._policy = posting.policy
        self._state = InternshipState(posting=posting, stage=Stage.POSTED, posted_at=workflow.now())
        # Handlers and deadlines take turns: each transition runs whole under this lock.
        self._lock = asyncio.Lock()
        self._posting_recorded = False
        self._recorder = Recorder(self._state, lambda: self._upcoming())
        self._money = Settlement(self._state, self._policy, self._recorder, self._lock)
        self._deadlines = Deadlines(
            self._lock, self._state.posted_at, self._money.wait_for_ops_retry
        )

    # ------------------------------------------------------------------ the lifecycle

    @workflow.run
    async def run(self, posting: Posting) -> InternshipState:
        if workflow.patched(DELIVERED_WORK_KEPT):
            self._state.delivered_work_kept = True
        # The worker's outbox relay sends every email this run queues (OUTBOX_RELAY, deprecated).
        workflow.deprecate_patch(OUTBOX_RELAY)
        self._recorder.show_details()
        async with self._lock:
            await self._recorder.record("posted", Actor(Role.EMPLOYER, posting.employer_id))
        self._posting_recorded = True
        moments: dict[Stage, Callable[[], Awaitable[None]]] = {
            Stage.APPROVED: self._approved,
            Stage.SETTLING: self._settling,
        }
        while self._state.stage not in TERMINAL_STAGES:
            if self._state.stage in moments and not self._state.disputed:
                await moments[self._state.stage]()
            else:  # the stage's timers; while a dispute is open, the dispute's instead
                await self._deadlines.run(*self._timers())
        # Resolved before RESOLUTION_SETTLES: the payout owed followed the final stage.
        if self._money.resolution_payout:
            await self._money.pay_resolution()
        # A handler may still be recording the last event: let it finish before the workflow
        # completes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    # Each stage's timers, listed from the state and when the round began: `run` waits on
    # them, and `_upcoming` tells people of the same list (so a page's date is the timer's).

    def _posted(self) -> list[Deadline]:
        p, since = self._policy, self._deadlines.since
        expires = since + p.scaled(p.posting_expiry)
        return [
            Deadline(
                "applicants_reminder",
                since + p.scaled(p.applicants_reminder),
                "Remind employer: applicants waiting",
                self._remind_applicants,
            ),
            Deadline(
                "expiry",
                expires,
                "Expire: no launcher selected",
                self._expire,
                (
                    _told(
                        "posting_expires",
                        expires,
                        "The posting expires",
                        EMPLOYER,
                        "you select a launcher",
                    ),
                    _told(
                        "posting_expires",
                        expires,
                        "The posting expires",
                        OTHERS,
                        "the employer selects a launcher",
                    ),
                ),
            ),
        ]

    def _matched(self) -> list[Deadline]:
        p, since = self._policy, self._deadlines.since
        escalates = since + p.scaled(p.kickoff_escalation)
        return [
            Deadline(
                "kickoff_reminder",
                since + p.scaled(p.kickoff_reminder),
                "Remind employer to kick off",
                lambda: self._recorder.remind("kickoff", [self._employer()]),
            ),
            Deadline(
                "kickoff_escalation",
                escalates,
                "Escalate to ops: no kickoff",
                lambda: self._recorder.escalate(
                    f"no kickoff {policy_duration(p.kickoff_escalation)} after selection"
                ),
                (
                    _told(
                        "kickoff_escalation",
                        escalates,
                        "Ops are asked to step in",
                        EMPLOYER,
                        "you kick off the project",
                    ),
                    _told(
                        "kickoff_escalation",
                        escalates,
                        "Ops are asked to step in",
                        OTHERS,
                        "the employer kicks off the project",
                    ),
                ),
            ),
        ]

    def _in_progress(self) -> list[Deadline]:
        p, s, due = self._policy, self._state, self._state.due_at
        assert due is not None
        escalates, cancels = due + p.scaled(p.overdue_escalation), due + p.scaled(p.overdue_cancel)
        if s.delivered_work_kept and s.submissions:  # `_cancel_overdue` hands it to ops
            ends: tuple[UpcomingDeadline, ...] = (
                _told(
                    "overdue_dispute",
                    cancels,
                    "Ops decide what happens to the project",
                    None,
                    "the revision is submitted",
                ),
            )
        else:
            ends = (
                _told(
                    "auto_cancel",
                    cancels,
                    "The project is cancelled and your fee refunded",
                    EMPLOYER,
                    "the work is submitted",
                ),
                _told(
                    "auto_cancel",
                    cancels,
                    "The project is cancelled and the employer's fee refunded",
                    LAUNCHER,
                    "you submit your work",
                ),
                _told(
                    "auto_cancel",
                    cancels,
                    "The project is cancelled and the employer's fee refunded",
                    OPS,
                    "the work is submitted",
                ),
            )
        return [
            Deadline(
                "due_reminder",
                due - p.scaled(p.due_reminder),
                "Remind launcher: due soon",
                lambda: self._recorder.remind("due_soon", [self._launcher()]),
            ),
            Deadline(
                "overdue",
                due,
                "Overdue: tell launcher, employer and ops",
                self._overdue,
                (
                    _told("due", due, "Your work becomes overdue", LAUNCHER, "you submit it"),
                    _told(
                        "due",
                        due,
                        "The work becomes overdue",
                        EMPLOYER + OPS,
                        "the launcher submits it",
                    ),
                ),
            ),
            Deadline(
                "overdue_escalation",
                escalates,
                "Escalate overdue to ops",
                lambda: self._recorder.escalate(
                    f"no submission {policy_duration(p.overdue_escalation)} after the due date"
                ),
                (
                    _told(
                        "overdue_escalation",
                        escalates,
                        "Ops are asked to step in",
                        None,
                        "the work is submitted",
                    ),
                ),
            ),
            Deadline(
                "overdue_cancel",
                cancels,
                "Auto-cancel overdue and refund employer",
                self._cancel_overdue,
                ends,
            ),
        ]

    def _in_review(self) -> list[Deadline]:
        p, since = self._policy, self._deadlines.since
        approves = since + p.scaled(p.review_auto_approve)
        return [
            Deadline(
                "review_reminder",
                since + p.scaled(p.review_reminder),
                "Remind employer to review",
                lambda: self._recorder.remind("review_submission", [self._employer()]),
            ),
            Deadline(
                "auto_approve",
                approves,
                "Auto-approve: review window over",
                lambda: self._approve(SYSTEM, auto=True, feedback=""),
                (
                    _told(
                        "auto_approve",
                        approves,
                        "The work is approved automatically",
                        EMPLOYER,
                        "you request a revision",
                    ),
                    _told(
                        "auto_approve",
                        approves,
                        "Your work is approved automatically",
                        LAUNCHER,
                        "the employer requests a revision",
                    ),
                    _told(
                        "auto_approve",
                        approves,
                        "The work is approved automatically",
                        OPS,
                        "the employer requests a revision",
                    ),
                ),
            ),
        ]

    def _paid(self) -> list[Deadline]:
        p, since = self._policy, self._deadlines.since
        closes = since + p.scaled(p.feedback_window)
        return [
            Deadline(
                "feedback_window",
                closes,
                "Complete: feedback window over",
                lambda: self._complete(SYSTEM),
                (
                    _told(
                        "feedback_closes",
                        closes,
                        "Feedback closes and the project is completed",
                        None,
                    ),
                ),
            ),
        ]

    def _disputed(self) -> list[Deadline]:
        """Ops decide by the deadline (reminded on the way), or the default outcome applies."""
        p, since = self._policy, self._deadlines.since  # since the dispute opened
        decide_by = rulebook.dispute_deadline(self._state)
        assert decide_by is not None
        reminders = int(p.dispute_decision / p.dispute_reminder - 1e-9) if p.dispute_reminder else 0
        if rulebook.dispute_default_outcome(self._state) == "pay_launcher":
            mine, others = (
                "You are paid your share in full",
                "The launcher is paid their share in full",
            )
            mine_to, others_to = LAUNCHER, EMPLOYER
        else:
            mine, others = "Your fee is refunded in full", "The employer's fee is refunded in full"
            mine_to, others_to = EMPLOYER, LAUNCHER
        ops_decide = "ops decide the dispute first"
        return [
            *(
                Deadline(
                    f"dispute_reminder_{n}",
                    since + p.scaled(p.dispute_reminder) * n,
                    "Remind ops: a dispute waits for their decision",
                    lambda: self._recorder.remind(
                        "dispute_waiting", [OPS_TEAM], **self._dispute_terms(decide_by)
                    ),
                )
                for n in range(1, reminders + 1)
            ),
            Deadline(
                "dispute_decision",
                decide_by,
                "Resolve dispute by default: ops did not decide",
                self._resolve_by_default,
                (
                    _told("dispute_decision", decide_by, mine, mine_to, ops_decide, paused=True),
                    _told(
                        "dispute_decision", decide_by, others, others_to, ops_decide, paused=True
                    ),
                    _told(
                        "dispute_decision",
                        decide_by,
                        others,
                        OPS,
                        "you decide it first",
                        paused=True,
                    ),
                ),
            ),
        ]

    def _timers(self) -> list[Deadline]:
        """The deadlines of the current round: the stage's, or an open dispute's instead."""
        s = self._state
        if s.disputed:  # before DELIVERED_WORK_KEPT a dispute has none: it waits for ops
            return self._disputed() if s.delivered_work_kept else []
        stage_timers = {
            Stage.POSTED: self._posted,
            Stage.MATCHED: self._matched,
            Stage.IN_PROGRESS: self._in_progress,
            Stage.IN_REVIEW: self._in_review,
            Stage.PAID: self._paid,
        }.get(s.stage)
        return stage_timers() if stage_timers else []

    def _upcoming(self) -> list[UpcomingDeadline]:
        return upcoming(self._timers(), workflow.now())

    async def _approved(self) -> None:
        amount = self._money.launcher_share()
        await self._money.pay_launcher(amount, "payout")
        async with self._lock:
            await self._transition(
                Stage.PAID,
                "paid",
                SYSTEM,
                Notice("paid", [self._launcher()], {"amount": self._money.fmt(amount)}),
                Notice("feedback_requested", [self._employer(), self._launcher()]),
            )

    async def _settling(self) -> None:
        amount = await self._money.pay_resolution()
        async with self._lock:
            await self._transition(
                Stage.RESOLVED,
                "resolution_paid",
                SYSTEM,
                Notice("paid", [self._launcher()], {"amount": self._money.fmt(amount)}),
            )

    # ------------------------------------------------------------------ what deadlines do

    async def _remind_applicants(self) -> None:
        if any(not a.withdrawn for a in self._state.applicants):
            await self._recorder.remind("review_applicants", [self._employer()])

    async def _overdue(self) -> None:
        self._state.overdue = True
        to = [self._launcher(), self._employer(), OPS_TEAM]
        await self._recorder.raise_level(1, "overdue", Notice("overdue", to))

    async def _cancel_overdue(self) -> None:
        p, s = self._policy, self._state
        reason = f"no submission {policy_duration(p.overdue_cancel)} after the due date"
        if s.delivered_work_kept and s.submissions:
            # A revision is overdue, but work was delivered: refunding it all is ops' call.
            late = (
                f"the revision is {policy_duration(p.overdue_cancel)} overdue; "
                "earlier work was delivered"
            )
            await self._open_dispute(SYSTEM, late)
        else:
            await self._cancel(SYSTEM, reason, True)

    async def _resolve_by_default(self) -> None:
        p, outcome = self._policy, rulebook.dispute_default_outcome(self._state)
        within = policy_duration(p.dispute_decision)
        note = f"Our team did not decide within {within}, so the default applies"
        await self._resolve(SYSTEM, outcome, 0, note, by_default=True)

    async def _expire(self) -> None:
        refunded = await self._money.refund_outstanding("expiry")
        notice = Notice("expired", [self._employer()], {"refunded": refunded})
        await self._transition(Stage.EXPIRED, "expired", SYSTEM, notice)

    async def _complete(self, by: Actor) -> None:
        ratings = self._state.ratings

        def received(author: Role) -> dict[str, object]:
            r = ratings.get(author.value)
            return {"rating_received": r.rating, "comment_received": r.comment} if r else {}

        await self._transition(
            Stage.COMPLETED,
            "completed",
            by,
            Notice("completed", [self._employer()], received(Role.LAUNCHER)),
            Notice("completed", [self._launcher()], received(Role.EMPLOYER)),
        )

    # ------------------------------------------------------------------ transitions (updates)
    #
    # Each validator rejects a bad request before anything reaches history. The handler runs it
    # again under the lock: another transition may have gone first while this one waited.
    # Each answers with the state as its caller may read it (`rulebook.as_seen_by`): every
    # update's result stays in history, and the whole state in each applicant's answer made it
    # grow with the square of the applications. The answer saves the caller a query.

    @workflow.query
    def state(self) -> InternshipState:
        return self._state

    @workflow.signal
    def payout_account_ready(self) -> None:
        """Sent by the API when Stripe reports the launcher's payout onboarding complete."""
        self._state.payout_account_ready = True

    @workflow.signal
    def retry_payment(self, by: Actor | None = None) -> None:
        """Ops (the API's payment-retry, or the Temporal UI or CLI with no input): Stripe's
        refusal is fixed, try the money again. Ignored unless a refused payment waits for it."""
        by = by or Actor(Role.OPS, "ops")
        if rulebook.may_retry_payment(self._state, by):
            self._money.retry_requested(by)

    @workflow.signal
    async def message_in_dispute(self, note: DisputeMessage) -> None:
        """Sent by the API for a message written while a dispute is open (ignored otherwise):
        the timeline links the dispute's record to it."""
        async with self._turn():
            if self._state.disputed:
                await self._recorder.record(
                    "message_in_dispute", note.by, note=f"Message {note.message_id}"
                )

    @workflow.update
    async def apply(self, req: Application) -> InternshipState:
        async with self._turn():
            self._check_apply(req)
            self._state.applicants.append(ApplicantView(req.by.id, req.pitch, workflow.now()))
            if invited := rulebook.invitation_of(self._state, req.by.id):
                invited.answer = "accepted"
            details = {"launcher_id": req.by.id, "pitch": req.pitch}
            await self._recorder.record(
                "applied",
                req.by,
                Notice("applied", [self._employer()], details),
                note=self._accepted(req.accepted_terms),
            )
            return self._answer(req.by)

    @apply.validator
    def _check_apply(self, req: Application) -> None:
        # Refused once the posting is full (`Policy.max_open_applications`; none before it).
        self._allow(Action.APPLY, req.by)
        if not req.pitch.strip():
            raise errors.refusal(errors.INVALID, "pitch must not be empty")
        self._check_terms(req.by, req.accepted_terms)

    @workflow.update
    async def invite(self, req: Invitation) -> InternshipState:
        """The employer asks a launcher to apply (their email and dashboard tell them)."""
        async with self._turn():
            self._check_invite(req)
            self._state.invitations.append(
                InvitationView(req.launcher_id, workflow.now(), req.by.member_id)
            )
            to = [Recipient(Role.LAUNCHER, req.launcher_id)]
            await self._recorder.record("invited", req.by, Notice("invited", to))
            return self._answer(req.by)

    @invite.validator
    def _check_invite(self, req: Invitation) -> None:
        self._allow(Action.INVITE, req.by)
        if refused := rulebook.invitation_refusal(self._state, req.launcher_id):
            raise errors.refusal(errors.CONFLICT, refused)

    @workflow.update
    async def decline(self, req: Declination) -> InternshipState:
        """The invited launcher says no: the employer hears it, the posting stays open."""
        async with self._turn():
            self._check_decline(req)
            invited = rulebook.invitation_of(self._state, req.by.id)
            assert invited is not None
            invited.answer = "declined"
            details = {"launcher_id": req.by.id}
            await self._recorder.record(
                "invitation_declined",
                req.by,
                Notice("invitation_declined", [self._employer()], details),
            )
            return self._answer(req.by)

    @decline.validator
    def _check_decline(self, req: Declination) -> None:
        self._allow(Action.DECLINE, req.by)

    @workflow.update
    async def select(self, req: Selection) -> InternshipState:
        async with self._turn():
            self._check_select(req)
            s = self._state
            s.launcher_id = req.launcher_id
            # Each applicant hears "not selected" once, even if the posting is matched again.
            passed_over = [
                a
                for a in s.applicants
                if a.launcher_id != req.launcher_id and not a.withdrawn and not a.passed_over
            ]
            for a in passed_over:
                a.passed_over = True
            others = [Recipient(Role.LAUNCHER, a.launcher_id) for a in passed_over]
            notices = [Notice("selected", [self._launcher()])]
            if others:
                notices.append(Notice("not_selected", others))
            await self._transition(Stage.MATCHED, "selected", req.by, *notices)
            return self._answer(req.by)

    @select.validator
    def _check_select(self, req: Selection) -> None:
        self._allow(Action.SELECT, req.by)
        if not any(
            a.launcher_id == req.launcher_id and not a.withdrawn for a in self._state.applicants
        ):
            raise errors.refusal(
                errors.INVALID, f"launcher {req.launcher_id} has no open application here"
            )

    @workflow.update
    async def kickoff(self, req: Kickoff) -> InternshipState:
        async with self._turn():
            self._check_kickoff(req)
            s = self._state
            if not s.money.payment_intent_id:  # a re-match keeps the first charge
                await self._money.charge()
            duration = timedelta(days=s.posting.duration_days)
            s.due_at = s.original_due_at = workflow.now() + self._policy.scaled(duration)
            amount = {"amount": self._money.fmt(s.money.charged_cents)}
            to = [self._launcher(), self._employer()]
            await self._transition(
                Stage.IN_PROGRESS,
                "kickoff",
                req.by,
                Notice("kickoff", to, amount),
                note=self._accepted(req.accepted_terms),
            )
            return self._answer(req.by)

    @kickoff.validator
    def _check_kickoff(self, req: Kickoff) -> None:
        self._allow(Action.KICKOFF, req.by)
        self._check_terms(req.by, req.accepted_terms)

    @workflow.update
    async def submit(self, req: Submission) -> InternshipState:
        async with self._turn():
            self._check_submit(req)
            s = self._state
            round_ = len(s.submissions) + 1
            s.submissions.append(
                SubmissionView(round_, req.url, req.note, workflow.now(), list(req.files))
            )
            s.overdue = False
            details: dict[str, object] = {"url": req.url, "note": req.note, "round": round_}
            if req.files:
                details["files"] = len(req.files)
            await self._transition(
                Stage.IN_REVIEW,
                "submitted",
                req.by,
                Notice("submission", [self._employer()], details),
            )
            return self._answer(req.by)

    @submit.validator
    def _check_submit(self, req: Submission) -> None:
        self._allow(Action.SUBMIT, req.by)

    @workflow.update
    async def review(self, req: Review) -> InternshipState:
        async with self._turn():
            self._check_review(req)
            s, p = self._state, self._policy
            if req.decision == "approve":
                await self._approve(req.by, auto=False, feedback=req.feedback)
            elif s.revision_rounds >= p.max_revision_rounds:
                await self._open_dispute(req.by, f"revision limit reached: {req.feedback}")
            else:
                s.revision_rounds += 1
                assert s.due_at is not None
                s.due_at = max(s.due_at, workflow.now() + p.scaled(p.revision_time))
                details = {
                    "feedback": req.feedback,
                    "round": s.revision_rounds,
                    "rounds_left": p.max_revision_rounds - s.revision_rounds,
                }
                await self._transition(
                    Stage.IN_PROGRESS,
                    "revision_requested",
                    req.by,
                    Notice("revision_requested", [self._launcher()], details),
                    note=req.feedback,
                )
            return self._answer(req.by)

    @review.validator
    def _check_review(self, req: Review) -> None:
        self._allow(Action.REVIEW, req.by)
        if req.decision not in ("approve", "request_revision"):
            raise errors.refusal(errors.INVALID, "decision must be 'approve' or 'request_revision'")
        if req.decision == "request_revision" and not req.feedback.strip():
            raise errors.refusal(errors.INVALID, "feedback must say what to revise")

    async def _approve(self, by: Actor, auto: bool, feedback: str) -> None:
        self._deadlines.restart()
        await self._recorder.enter(
            Stage.APPROVED,
            "approved",
            by,
            Notice("approved", [self._launcher()], {"auto": auto, "feedback": feedback}),
            note="approved automatically after the review window" if auto else feedback,
            publish=not workflow.patched(APPROVAL_PUBLISHED_IF_WAITING),
        )

    @workflow.update
    async def extend(self, req: Extension) -> InternshipState:
        async with self._turn():
            self._check_extend(req)
            s = self._state
            s.due_at, s.overdue = req.due_at, False
            self._deadlines.restart()
            s.escalation_level = 0
            self._recorder.publish()
            told = [self._launcher()]
            if workflow.patched(EXTENSION_TELLS_EMPLOYER):
                told.append(self._employer())
            await self._recorder.record(
                "extended", req.by, Notice("extended", told), note=req.due_at.isoformat()
            )
            return self._answer(req.by)

    @extend.validator
    def _check_extend(self, req: Extension) -> None:
        self._allow(Action.EXTEND, req.by)
        s, p = self._state, self._policy
        assert s.due_at is not None and s.original_due_at is not None
        latest = s.original_due_at + p.scaled(p.max_extension)
        if req.due_at <= workflow.now():
            raise errors.refusal(errors.INVALID, "due_at must be in the future")
        if req.due_at <= s.due_at:
            raise errors.refusal(
                errors.INVALID,
                f"due_at must be later than the current due date {s.due_at.isoformat()}",
            )
        if req.due_at > latest:
            raise errors.refusal(errors.INVALID, f"due_at may be at most {latest.isoformat()}")

    @workflow.update
    async def cancel(self, req: Cancellation) -> InternshipState:
        async with self._turn():
            self._check_cancel(req)
            if rulebook.cancellation_opens_dispute(self._state, req.by):
                reason = f"cancellation requested after work was delivered: {req.reason}"
                await self._open_dispute(req.by, reason)
            else:
                await self._cancel(req.by, req.reason, req.refund)
            return self._answer(req.by)

    @cancel.validator
    def _check_cancel(self, req: Cancellation) -> None:
        self._allow(Action.CANCEL, req.by)
        if not req.refund and not rulebook.may_withhold_refund(req.by):
            raise errors.refusal(
                errors.FORBIDDEN, "only ops may cancel without refunding the employer"
            )
        if not req.reason.strip():
            raise errors.refusal(errors.INVALID, "reason must not be empty")

    async def _cancel(self, by: Actor, reason: str, refund: bool) -> None:
        s = self._state
        refunded = await self._money.refund_outstanding("cancellation") if refund else 0
        if s.dispute is not None and s.disputed:
            s.dispute.outcome, s.dispute.note = "cancelled", reason
        to = [self._employer()] + ([self._launcher()] if s.launcher_id else [])
        details = {
            "reason": reason,
            "refunded": bool(refunded),
            "amount": self._money.fmt(refunded),
        }
        await self._transition(
            Stage.REFUNDED if refunded else Stage.CANCELLED,
            "cancelled",
            by,
            Notice("cancelled", to, details),
            note=reason,
        )

    @workflow.update
    async def withdraw(self, req: Withdrawal) -> InternshipState:
        async with self._turn():
            self._check_withdraw(req)
            s = self._state
            for a in s.applicants:
                if a.launcher_id == req.by.id:
                    a.withdrawn = True
            details = {"launcher_id": req.by.id}
            if s.stage == Stage.POSTED:
                notice = Notice("application_withdrawn", [self._employer()], details)
                await self._recorder.record("application_withdrawn", req.by, notice)
            else:
                # Back to posted for re-matching; a charge already taken stays for the next kickoff.
                s.launcher_id, s.due_at, s.original_due_at, s.overdue = None, None, None, False
                notice = Notice("launcher_withdrew", [self._employer()], details)
                await self._transition(Stage.POSTED, "launcher_withdrew", req.by, notice)
            return self._answer(req.by)

    @withdraw.validator
    def _check_withdraw(self, req: Withdrawal) -> None:
        self._allow(Action.WITHDRAW, req.by)

    @workflow.update
    async def open_dispute(self, req: Dispute) -> InternshipState:
        async with self._turn():
            self._check_dispute(req)
            await self._open_dispute(req.by, req.reason)
            return self._answer(req.by)

    @open_dispute.validator
    def _check_dispute(self, req: Dispute) -> None:
        self._allow(Action.DISPUTE, req.by)
        if not req.reason.strip():
            raise errors.refusal(errors.INVALID, "reason must not be empty")

    async def _open_dispute(self, by: Actor, reason: str) -> None:
        s = self._state
        s.dispute = DisputeView(by.role, reason, workflow.now())
        s.escalation_level = 2
        self._deadlines.restart()
        self._recorder.publish()
        details: dict[str, object] = {"opened_by": by.role.value, "reason": reason}
        if s.delivered_work_kept:
            # Both parties learn by when it is decided and what happens by default (the
            # opener too: an employer's cancellation may have become this dispute).
            decide_by = rulebook.dispute_deadline(s)
            assert decide_by is not None
            details |= self._dispute_terms(decide_by)
            told = [self._employer(), self._launcher()]
        else:
            told = [self._launcher() if by.role == Role.EMPLOYER else self._employer()]
        notice = Notice("dispute_opened", [OPS_TEAM, *told], details)
        await self._recorder.record("dispute_opened", by, notice, note=reason)

    def _dispute_terms(self, decide_by: datetime) -> dict[str, object]:
        """What every dispute email says: decided by when, and what happens if ops don't."""
        return {
            "decide_by": when(decide_by),
            "default_outcome": rulebook.dispute_default_outcome(self._state),
        }

    @workflow.update
    async def resolve(self, req: Resolution) -> InternshipState:
        async with self._turn():
            self._check_resolve(req)
            await self._resolve(req.by, req.outcome, req.launcher_percent, req.note)
            return self._answer(req.by)

    async def _resolve(
        self, by: Actor, outcome: str, launcher_percent: int, note: str, by_default: bool = False
    ) -> None:
        s = self._state
        assert s.dispute is not None
        to_launcher, to_employer = self._money.resolution_split(outcome, launcher_percent)
        if to_employer:
            await self._money.refund(to_employer, "resolution")
        s.dispute.outcome, s.dispute.note = outcome, note
        self._money.resolution_payout = to_launcher
        owed = bool(to_launcher) and workflow.patched(RESOLUTION_SETTLES)
        details: dict[str, object] = {
            "outcome": outcome,
            "launcher_amount": self._money.fmt(to_launcher),
            "refund_amount": self._money.fmt(to_employer),
            "note": note,
        }
        if by_default:
            details["by_default"] = True
        await self._transition(
            Stage.SETTLING if owed else Stage.RESOLVED,
            "dispute_resolved",
            by,
            Notice("dispute_resolved", [self._employer(), self._launcher()], details),
            note=note,
        )

    @resolve.validator
    def _check_resolve(self, req: Resolution) -> None:
        self._allow(Action.RESOLVE, req.by)
        if req.outcome not in ("pay_launcher", "split", "refund"):
            raise errors.refusal(
                errors.INVALID, "outcome must be 'pay_launcher', 'split' or 'refund'"
            )
        if req.outcome == "split" and not 0 < req.launcher_percent < 100:
            raise errors.refusal(
                errors.INVALID,
                "For a split, give the launcher between 1 and 99 percent of their share",
            )

    @workflow.update
    async def feedback(self, req: Feedback) -> InternshipState:
        async with self._turn():
            self._check_feedback(req)
            s = self._state
            s.ratings[req.by.role.value] = Rating(req.rating, req.comment, workflow.now())
            await self._recorder.record("feedback", req.by)
            if len(s.ratings) == 2:
                await self._complete(SYSTEM)
            return self._answer(req.by)

    @feedback.validator
    def _check_feedback(self, req: Feedback) -> None:
        self._allow(Action.FEEDBACK, req.by)
        if not 1 <= req.rating <= 5:
            raise errors.refusal(errors.INVALID, "rating must be between 1 and 5")

    # ------------------------------------------------------------------ small helpers

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """A transition's turn: once the posting is recorded (an update can arrive with the
        workflow's first task, before `run` has begun), and alone, under the lock."""
        workflow.deprecate_patch(OUTBOX_RELAY)  # where `patched` was: its marker may come first
        await workflow.wait_condition(lambda: self._posting_recorded)
        async with self._lock:
            yield

    def _allow(self, action: Action, by: Actor) -> None:
        """The rulebook's verdict as the API reports it (`rulebook.refusal_details`)."""
        refused = rulebook.refusal(action, self._state, by)
        if refused is not None:
            details = rulebook.refusal_details(refused, self._state, by)
            raise errors.refusal(refused.kind, refused.message, details)

    def _check_terms(self, by: Actor, accepted: str) -> None:
        """The terms accepted (their hash, "" for none named) must be this internship's. They
        depend on `delivered_work_kept`, set when `run` begins: an update that came with the
        first task is checked by its handler, which runs its validator again once it has."""
        if not self._posting_recorded:
            return
        if refused := terms.acceptance_refusal(self._state, accepted):
            details = rulebook.refusal_details(refused, self._state, by)
            raise errors.refusal(refused.kind, refused.message, details)

    @staticmethod
    def _accepted(accepted: str) -> str:
        """The timeline's note of an application or kickoff: the terms accepted, if named."""
        return terms.accepted_note(accepted) if accepted else ""

    def _answer(self, by: Actor) -> InternshipState:
        return rulebook.as_seen_by(self._state, by)

    async def _transition(
        self, stage: Stage, event: str, by: Actor, *notices: Notice, note: str = ""
    ) -> None:
        self._deadlines.restart()
        await self._recorder.enter(stage, event, by, *notices, note=note)

    def _employer(self) -> Recipient:
        return employer_of(self._state)

    def _launcher(self) -> Recipient:
        return launcher_of(self._state)
