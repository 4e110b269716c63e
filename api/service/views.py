"""One internship as one viewer may see it, and what they may do with it: the read model.

`internship_view` is the only place that applies the rulebook's visibility to an internship.
The JSON API answers with the view validated into `schemas.InternshipDetail` (the view is a
superset of it); the internship page renders the view itself, so no template decides what a
viewer may see: a section the viewer may not read is simply empty here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from api import schemas
from core import rulebook
from core.internship import Action, Actor, InternshipState, Role, Stage, UpcomingDeadline
from core.terms import Terms, terms_in


class ResolutionAmounts(BaseModel):
    """What a dispute's outcome moves, in money, before ops confirm it."""

    outcome: str
    launcher_percent: int  # of the launcher's share (a split's part)
    to_launcher_cents: int
    to_employer_cents: int  # refunded
    platform_keeps_cents: int
    currency: str


class InternshipView(schemas.InternshipDetail):
    """`InternshipDetail` (what the JSON API returns) and what the page needs besides."""

    disputed: bool
    # Why Stripe refused a refund or payout for good; only the parties read it.
    payment_refused: str
    may_retry_payment: bool
    # Ops may cancel without refunding; anyone else's cancellation refunds what was charged.
    may_withhold_refund: bool
    # Delivered work: this viewer's cancellation goes to ops as a dispute instead.
    cancel_opens_dispute: bool
    dispute_deadline: datetime | None  # the workflow's `dispute_decision` deadline
    dispute_default: str  # `rulebook.dispute_default_outcome`: "pay_launcher" or "refund"
    launcher_share_cents: int
    max_revision_rounds: int
    max_extension_days: int
    original_due_at: datetime | None
    # Said to a launcher who can neither apply nor withdraw because the posting is full.
    posting_full: str
    # The selected launcher leaves the project; an applicant only withdraws their application.
    withdrawal_leaves_project: bool
    rates: Literal["launcher", "employer"] | None  # whom the viewer's rating is of
    payout_setup_needed: bool  # the viewer is the launcher, paid once payouts are set up
    sees_all_applicants: bool
    selectable: list[str]  # the applicants the viewer may select now
    own_application: schemas.ApplicantOut | None  # a launcher's own, when they see no others
    # The work is due (in progress, or a revision): the due line is shown; after delivery, not.
    due_shown: bool
    # What the employer asked to change in the latest revision, shown beside the resubmit form.
    revision_feedback: str
    # The workflow is paying the launcher by itself: the page says so and updates in a moment.
    moving_on: bool
    # Ops settling a dispute: what paying in full and refunding in full would move.
    outcomes: dict[str, ResolutionAmounts]
    # The terms' hash as people read it ("Terms ref. …", `core.terms.Terms.ref`).
    terms_ref: str


def resolution_amounts(
    s: InternshipState, outcome: str, launcher_percent: int
) -> ResolutionAmounts:
    """The money each party gets if ops resolve the dispute so (the workflow's own arithmetic)."""
    charged = s.money.charged_cents
    to_launcher, to_employer = s.posting.policy.dispute_split(charged, outcome, launcher_percent)
    return ResolutionAmounts(
        outcome=outcome,
        launcher_percent=launcher_percent,
        to_launcher_cents=to_launcher,
        to_employer_cents=to_employer,
        platform_keeps_cents=charged - to_launcher - to_employer,
        currency=s.posting.currency,
    )


OWNER_OR_OPS = (rulebook.Relation.OWNER, rulebook.Relation.OPS)


def internship_view(s: InternshipState, viewer: Actor) -> InternshipView:
    """The internship as `viewer` may read it. Usually they can see it (a read answers 404
    otherwise); a transition's answer is presented even if a transition that followed at once
    took it out of their sight, and then shows no more than a stranger may read."""
    p = s.posting
    terms = terms_in(s)
    sees = rulebook.visibility(s, viewer)
    allowed = rulebook.allowed_actions(s, viewer)
    deadlines = _deadlines(s, viewer, sees.work)
    applicants = [
        schemas.ApplicantOut(
            launcher_id=a.launcher_id, pitch=a.pitch, applied_at=a.applied_at, withdrawn=a.withdrawn
        )
        for a in s.applicants
        if sees.all_applicants or a.launcher_id == viewer.id
    ]
    return InternshipView(
        id=p.internship_id,
        title=p.title,
        description=p.description,
        company=p.company,
        category=p.category,
        skills=p.skills,
        estimated_hours=p.estimated_hours,
        fee_cents=p.fee_cents,
        currency=p.currency,
        duration_days=p.duration_days,
        employer_id=p.employer_id,
        # Who was selected is the parties' business (no one is selected while others apply).
        launcher_id=s.launcher_id if sees.work else None,
        stage=s.stage.value,
        posted_at=s.posted_at,
        due_at=s.due_at,
        overdue=s.overdue,
        escalation_level=s.escalation_level,
        revision_rounds=s.revision_rounds,
        allowed_actions=[a.value for a in allowed],
        applicants=applicants,
        submissions=[
            schemas.SubmissionOut(
                round=x.round,
                url=x.url,
                note=x.note,
                submitted_at=x.submitted_at,
                files=list(x.files),
            )
            for x in s.submissions
            if sees.work
        ],
        payment=schemas.PaymentOut(
            charged_cents=s.money.charged_cents,
            paid_to_launcher_cents=s.money.paid_cents,
            refunded_cents=s.money.refunded_cents,
        )
        if sees.work and sees.money
        else None,
        dispute=schemas.DisputeOut(
            opened_by=s.dispute.opened_by.value,
            reason=s.dispute.reason,
            opened_at=s.dispute.opened_at,
            outcome=s.dispute.outcome,
            note=s.dispute.note,
        )
        if s.dispute and sees.work
        else None,
        ratings={
            author: schemas.RatingOut(rating=r.rating, comment=r.comment)
            for author, r in s.ratings.items()
            if author in sees.ratings
        }
        if sees.work
        else None,
        timeline=[
            schemas.TimelineOut(
                seq=e.seq,
                at=e.at,
                stage=e.stage.value,
                event=e.event,
                actor_role=e.actor_role.value,
                actor_id=e.actor_id,
                note=e.note,
                member_id=e.member_id,
            )
            for e in rulebook.timeline(s, viewer)
        ],
        posted_by=p.posted_by if rulebook.relation(s, viewer) in OWNER_OR_OPS else None,
        invitation_only=p.invitation_only,
        invitations=[
            schemas.InvitationOut(
                launcher_id=i.launcher_id,
                invited_at=i.invited_at,
                invited_by=i.invited_by if sees.all_applicants else None,
                answer=i.answer,
            )
            for i in s.invitations
            if sees.all_applicants or i.launcher_id == viewer.id
        ],
        deadlines=[
            schemas.DeadlineOut(
                kind=d.kind, at=d.at, happens=d.happens, unless=d.unless, paused=d.paused
            )
            for d in deadlines
        ],
        terms=terms_view(terms),
        terms_ref=terms.ref,
        disputed=s.disputed,
        payment_refused=s.payment_refused if sees.work else "",
        may_retry_payment=rulebook.may_retry_payment(s, viewer),
        may_withhold_refund=rulebook.may_withhold_refund(viewer),
        cancel_opens_dispute=rulebook.cancellation_opens_dispute(s, viewer),
        dispute_deadline=next((d.at for d in deadlines if d.kind == "dispute_decision"), None),
        dispute_default=rulebook.dispute_default_outcome(s),
        launcher_share_cents=p.policy.launcher_share(p.fee_cents),
        max_revision_rounds=p.policy.max_revision_rounds,
        max_extension_days=p.policy.max_extension.days,
        original_due_at=s.original_due_at,
        posting_full=_posting_full(s, viewer, allowed),
        withdrawal_leaves_project=viewer.role == Role.LAUNCHER and s.launcher_id == viewer.id,
        rates=_rates(viewer) if Action.FEEDBACK in allowed else None,
        payout_setup_needed=rulebook.relation(s, viewer) == rulebook.Relation.LAUNCHER
        and not s.payout_account_ready
        and s.stage in (Stage.APPROVED, Stage.SETTLING),
        sees_all_applicants=sees.all_applicants,
        selectable=[
            a.launcher_id
            for a in s.applicants
            if Action.SELECT in allowed and not a.withdrawn and a.launcher_id != s.launcher_id
        ],
        own_application=None if sees.all_applicants else next(iter(applicants), None),
        due_shown=s.stage == Stage.IN_PROGRESS and s.due_at is not None,
        moving_on=rulebook.moving_on(s) and sees.work,
        revision_feedback=_revision_feedback(s, viewer) if Action.SUBMIT in allowed else "",
        outcomes={
            outcome: resolution_amounts(s, outcome, 0) for outcome in ("pay_launcher", "refund")
        }
        if Action.RESOLVE in allowed
        else {},
    )


def terms_view(terms: Terms) -> schemas.TermsOut:
    """The internship's terms (`core.terms`): the same for everyone who may read it."""
    return schemas.TermsOut(
        **terms.values(),
        lines=[schemas.TermLineOut(label=label, text=text) for label, text in terms.lines()],
        hash=terms.hash,
    )


# What someone outside the project reads of its deadlines: when the posting closes.
PUBLIC_DEADLINES = frozenset({"posting_expires"})


def _deadlines(s: InternshipState, viewer: Actor, sees_work: bool) -> list[UpcomingDeadline]:
    """The workflow's upcoming deadlines worded for this viewer (`InternshipState.deadlines`:
    no date here is computed from a policy)."""
    return [
        d
        for d in s.deadlines
        if (d.for_roles is None or viewer.role.value in d.for_roles)
        and (sees_work or d.kind in PUBLIC_DEADLINES)
    ]


def _revision_feedback(s: InternshipState, viewer: Actor) -> str:
    """The latest revision request's feedback, while the launcher works on the revision."""
    if not s.revision_rounds:
        return ""
    asked = [e for e in rulebook.timeline(s, viewer) if e.event == "revision_requested"]
    return asked[-1].note if asked else ""


def _posting_full(s: InternshipState, viewer: Actor, allowed: list[Action]) -> str:
    """A launcher who can't apply because the posting is full is told so, not left guessing."""
    if (
        viewer.role == Role.LAUNCHER
        and s.stage == Stage.POSTED
        and Action.APPLY not in allowed
        and Action.WITHDRAW not in allowed
        and rulebook.posting_full(s)
    ):
        return rulebook.posting_full_message(s)
    return ""


def _rates(viewer: Actor) -> Literal["launcher", "employer"]:
    return "launcher" if viewer.role == Role.EMPLOYER else "employer"
