"""Response models for internships, built from what the rulebook lets the caller see."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import schemas
from core import rulebook
from core.db import Internship, InternshipSkill
from core.internship import Actor, InternshipState


def internship_detail(s: InternshipState, viewer: Actor) -> schemas.InternshipDetail:
    """The internship as `viewer` may read it. Usually they can see it (a read answers 404
    otherwise); a transition's answer is presented even if a transition that followed at once
    took it out of their sight, and then shows no more than a stranger may read."""
    p = s.posting
    sees = rulebook.visibility(s, viewer)
    return schemas.InternshipDetail(
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
        allowed_actions=[a.value for a in rulebook.allowed_actions(s, viewer)],
        applicants=[
            schemas.ApplicantOut(
                launcher_id=a.launcher_id,
                pitch=a.pitch,
                applied_at=a.applied_at,
                withdrawn=a.withdrawn,
            )
            for a in s.applicants
            if sees.all_applicants or a.launcher_id == viewer.id
        ],
        submissions=[
            schemas.SubmissionOut(
                round=x.round, url=x.url, note=x.note, submitted_at=x.submitted_at
            )
            for x in s.submissions
            if sees.work
        ],
        payment=schemas.PaymentOut(
            charged_cents=s.money.charged_cents,
            paid_to_launcher_cents=s.money.paid_cents,
            refunded_cents=s.money.refunded_cents,
        )
        if sees.work
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
            )
            for e in rulebook.timeline(s, viewer)
        ],
    )


def internship_summaries(
    db: Session, rows: Sequence[Internship]
) -> list[schemas.InternshipSummary]:
    """A page of the list: one query for every row's skills, not one per row."""
    skills: dict[str, list[str]] = {}
    for internship_id, name in db.execute(
        select(InternshipSkill.internship_id, InternshipSkill.skill)
        .where(InternshipSkill.internship_id.in_([r.id for r in rows]))
        .order_by(InternshipSkill.skill)
    ):
        skills.setdefault(internship_id, []).append(name)
    return [_summary(r, skills.get(r.id, [])) for r in rows]


def _summary(row: Internship, skills: list[str]) -> schemas.InternshipSummary:
    return schemas.InternshipSummary(
        id=row.id,
        title=row.title,
        company=row.company,
        category=row.category,
        skills=skills,
        stage=row.stage,
        estimated_hours=row.estimated_hours,
        fee_cents=row.fee_cents,
        currency=row.currency,
        duration_days=row.duration_days,
        due_at=row.due_at,
        overdue=row.overdue,
        escalation_level=row.escalation_level,
        employer_id=row.employer_id,
        launcher_id=row.launcher_id,
        posted_at=row.posted_at,
    )
