"""Internships: post, list, read, and the eleven lifecycle transitions.

Transitions are Temporal updates: the workflow's validators decide (asking the rulebook) and
the API maps their verdict to a status. Lists come from the database projection, scoped by the
same rulebook; one internship is read from the workflow itself.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from api import lifecycle, schemas
from api.deps import (
    CallerDep,
    DbDep,
    EmployerDep,
    OpsDep,
    SessionsDep,
    SettingsDep,
    TemporalDep,
)
from api.errors import ApiError, not_found
from api.presenters import internship_detail, internship_summary
from core import rulebook
from core.accounts import new_id
from core.db import Employer, Internship, InternshipSkill, Launcher
from core.internship import (
    Actor,
    Application,
    Cancellation,
    Dispute,
    Extension,
    Feedback,
    InternshipState,
    Kickoff,
    Posting,
    Resolution,
    Review,
    Role,
    Selection,
    Stage,
    Submission,
    Withdrawal,
)
from workflows.internship import InternshipWorkflow

router = APIRouter(prefix="/v1/internships", tags=["internships"])
InternshipId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Detail = schemas.InternshipDetail


# ---------------------------------------------------------------- post and read


@router.post("", status_code=201, response_model=Detail, summary="Post an internship (employer)")
async def post_internship(
    body: schemas.InternshipIn, employer: EmployerDep, settings: SettingsDep, client: TemporalDep
) -> Detail:
    floor = body.estimated_hours * settings.min_hourly_fee_cents
    if body.fee_cents < floor:
        raise ApiError(
            422,
            "invalid_request",
            f"fee_cents must be at least {floor} ({settings.min_hourly_fee_cents} per "
            f"estimated hour for {body.estimated_hours} hours)",
            {"field": "fee_cents"},
        )
    posting = Posting(
        internship_id=new_id(),
        employer_id=employer.id,
        company=employer.company,
        title=body.title,
        description=body.description,
        category=body.category,
        skills=body.skills,
        estimated_hours=body.estimated_hours,
        fee_cents=body.fee_cents,
        currency=body.currency,
        duration_days=body.duration_days,
        policy=settings.policy(),
    )
    await lifecycle.start_internship(client, posting, settings.task_queue)
    state = InternshipState(posting=posting, stage=Stage.POSTED, posted_at=datetime.now(UTC))
    return internship_detail(state, Actor(Role.EMPLOYER, employer.id))


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    if value is None:
        return None
    try:
        at, _, id_ = base64.urlsafe_b64decode(value.encode()).decode().partition("|")
        posted_at = datetime.fromisoformat(at)
        if posted_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return posted_at.astimezone(UTC), id_
    except (ValueError, OverflowError, binascii.Error) as err:
        raise ApiError(
            422,
            "invalid_request",
            "cursor is not one this API returned; use next_cursor from the previous page",
            {"field": "cursor"},
        ) from err


def _in_scope(scope: rulebook.ListScope) -> ColumnElement[bool]:
    """`rulebook.in_scope` as SQL."""
    if scope.everything:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if scope.employer_id is not None:
        clauses.append(Internship.employer_id == scope.employer_id)
    if scope.launcher_id is not None:
        clauses.append(Internship.launcher_id == scope.launcher_id)
    if scope.open_postings:
        clauses.append(Internship.stage == Stage.POSTED.value)
    return or_(false(), *clauses)


@router.get("", response_model=schemas.InternshipPage, summary="List internships")
def list_internships(
    caller: CallerDep,
    db: DbDep,
    stage: Annotated[Stage | None, Query()] = None,
    category: Annotated[schemas.Category | None, Query()] = None,
    skill: Annotated[schemas.Skill | None, Query()] = None,
    employer: Annotated[schemas.Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_=-]+$")] = None,
) -> schemas.InternshipPage:
    """Newest first: what the caller may see (employers their own internships, launchers open
    postings and the work they were selected for, ops everything)."""
    q = select(Internship).where(_in_scope(rulebook.list_scope(caller.actor)))
    if stage:
        q = q.where(Internship.stage == stage.value)
    if category:
        q = q.where(Internship.category == category)
    if employer:
        q = q.where(Internship.employer_id == employer)
    if skill:
        q = q.where(
            Internship.id.in_(
                select(InternshipSkill.internship_id).where(InternshipSkill.skill == skill.lower())
            )
        )
    if after := _cursor(cursor):
        at, id_ = after
        q = q.where(
            or_(Internship.posted_at < at, and_(Internship.posted_at == at, Internship.id < id_))
        )
    rows = db.scalars(
        q.order_by(Internship.posted_at.desc(), Internship.id.desc()).limit(limit + 1)
    ).all()
    page, more = rows[:limit], len(rows) > limit
    skills: dict[str, list[str]] = {}
    for internship_id, name in db.execute(
        select(InternshipSkill.internship_id, InternshipSkill.skill)
        .where(InternshipSkill.internship_id.in_([r.id for r in page]))
        .order_by(InternshipSkill.skill)
    ):
        skills.setdefault(internship_id, []).append(name)
    items = [internship_summary(r, skills.get(r.id, [])) for r in page]
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = base64.urlsafe_b64encode(
            f"{last.posted_at.isoformat()}|{last.id}".encode()
        ).decode()
    return schemas.InternshipPage(items=items, next_cursor=next_cursor)


@router.get(
    "/{internship_id}",
    response_model=Detail,
    summary="One internship: stage, due date, applicants, submissions, timeline",
)
async def get_internship(
    internship_id: InternshipId, caller: CallerDep, client: TemporalDep
) -> Detail:
    return internship_detail(
        await lifecycle.read(client, internship_id, caller.actor), caller.actor
    )


@router.get(
    "/{internship_id}/contacts",
    response_model=schemas.ContactsOut,
    summary="How to reach the employer and the launcher (ops)",
)
async def contacts(
    internship_id: InternshipId, ops: OpsDep, client: TemporalDep, sessions: SessionsDep
) -> schemas.ContactsOut:
    state = await lifecycle.read(client, internship_id, ops)
    return await run_in_threadpool(
        _contacts, sessions, state.posting.employer_id, state.launcher_id
    )


def _contacts(
    sessions: sessionmaker, employer_id: str, launcher_id: str | None
) -> schemas.ContactsOut:
    with sessions() as db:
        employer = db.get(Employer, employer_id)
        launcher = db.get(Launcher, launcher_id) if launcher_id else None
    if employer is None:
        raise not_found("employer")
    return schemas.ContactsOut(
        employer=schemas.ContactOut(
            id=employer.id, name=employer.name, email=employer.email, company=employer.company
        ),
        launcher=schemas.ContactOut(id=launcher.id, name=launcher.name, email=launcher.email)
        if launcher
        else None,
    )


# ---------------------------------------------------------------- transitions
#
# Each asks the workflow for one update on behalf of the caller; the workflow decides.


async def _transition(
    client: TemporalDep, internship_id: str, by: Actor, update: lifecycle.Update, request: Any
) -> Detail:
    state = await lifecycle.transition(client, internship_id, by, update, request)
    return internship_detail(state, by)


@router.post(
    "/{internship_id}/applications", response_model=Detail, summary="Apply with a pitch (launcher)"
)
async def apply(
    internship_id: InternshipId, body: schemas.ApplicationIn, caller: CallerDep, client: TemporalDep
) -> Detail:
    by = caller.actor
    return await _transition(
        client, internship_id, by, InternshipWorkflow.apply, Application(by, body.pitch)
    )


@router.post(
    "/{internship_id}/selection",
    response_model=Detail,
    summary="Choose a launcher among the applicants (employer)",
)
async def select_launcher(
    internship_id: InternshipId, body: schemas.SelectionIn, caller: CallerDep, client: TemporalDep
) -> Detail:
    by = caller.actor
    request = Selection(by, body.launcher_id)
    return await _transition(client, internship_id, by, InternshipWorkflow.select, request)


@router.post(
    "/{internship_id}/kickoff",
    response_model=Detail,
    summary="Start the clock and charge the fee (employer)",
)
async def kickoff(internship_id: InternshipId, caller: CallerDep, client: TemporalDep) -> Detail:
    by = caller.actor
    return await _transition(client, internship_id, by, InternshipWorkflow.kickoff, Kickoff(by))


@router.post(
    "/{internship_id}/submissions",
    response_model=Detail,
    summary="Submit the deliverable (launcher)",
)
async def submit(
    internship_id: InternshipId, body: schemas.SubmissionIn, caller: CallerDep, client: TemporalDep
) -> Detail:
    by = caller.actor
    request = Submission(by, str(body.url), body.note)
    return await _transition(client, internship_id, by, InternshipWorkflow.submit, request)


@router.post(
    "/{internship_id}/review",
    response_model=Detail,
    summary="Approve, or request a revision (employer)",
)
async def review(
    internship_id: InternshipId, body: schemas.ReviewIn, caller: CallerDep, client: TemporalDep
) -> Detail:
    by = caller.actor
    request = Review(by, body.decision, body.feedback)
    return await _transition(client, internship_id, by, InternshipWorkflow.review, request)


@router.post(
    "/{internship_id}/extension",
    response_model=Detail,
    summary="Move the due date later, within bounds (employer or ops)",
)
async def extend(
    internship_id: InternshipId, body: schemas.ExtensionIn, caller: CallerDep, client: TemporalDep
) -> Detail:
    by = caller.actor
    request = Extension(by, body.due_at)
    return await _transition(client, internship_id, by, InternshipWorkflow.extend, request)


@router.post(
    "/{internship_id}/cancellation",
    response_model=Detail,
    summary="Cancel; refunds the employer after kickoff (employer or ops)",
)
async def cancel(
    internship_id: InternshipId,
    body: schemas.CancellationIn,
    caller: CallerDep,
    client: TemporalDep,
) -> Detail:
    by = caller.actor
    request = Cancellation(by, body.reason, body.refund)
    return await _transition(client, internship_id, by, InternshipWorkflow.cancel, request)


@router.post(
    "/{internship_id}/withdrawal",
    response_model=Detail,
    summary="Withdraw an application, or leave before submitting (launcher)",
)
async def withdraw(internship_id: InternshipId, caller: CallerDep, client: TemporalDep) -> Detail:
    by = caller.actor
    request = Withdrawal(by)
    return await _transition(client, internship_id, by, InternshipWorkflow.withdraw, request)


@router.post(
    "/{internship_id}/dispute",
    response_model=Detail,
    summary="Open a dispute for ops to resolve (employer or launcher)",
)
async def open_dispute(
    internship_id: InternshipId, body: schemas.DisputeIn, caller: CallerDep, client: TemporalDep
) -> Detail:
    by = caller.actor
    request = Dispute(by, body.reason)
    return await _transition(client, internship_id, by, InternshipWorkflow.open_dispute, request)


@router.post(
    "/{internship_id}/resolution",
    response_model=Detail,
    summary="Resolve a dispute: pay the launcher, split, or refund (ops)",
)
async def resolve(
    internship_id: InternshipId, body: schemas.ResolutionIn, caller: CallerDep, client: TemporalDep
) -> Detail:
    by = caller.actor
    request = Resolution(by, body.outcome, body.launcher_percent, body.note)
    return await _transition(client, internship_id, by, InternshipWorkflow.resolve, request)


@router.post(
    "/{internship_id}/feedback",
    response_model=Detail,
    summary="Rate the other side 1-5 (employer or launcher)",
)
async def feedback(
    internship_id: InternshipId, body: schemas.FeedbackIn, caller: CallerDep, client: TemporalDep
) -> Detail:
    by = caller.actor
    request = Feedback(by, body.rating, body.comment)
    return await _transition(client, internship_id, by, InternshipWorkflow.feedback, request)
