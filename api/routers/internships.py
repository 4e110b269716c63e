"""Internships: post, list, read, and the eleven lifecycle transitions.

Transitions are Temporal updates: the workflow's validators decide (asking the rulebook) and
the API maps their verdict to a status. Lists come from the database projection, scoped by the
same rulebook; one internship is read from the workflow itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

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
from api.idempotency import KeyDep
from api.presenters import internship_detail, internship_summaries
from core import matching, rulebook
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
from core.matching import Record
from workflows.internship import InternshipWorkflow

router = APIRouter(prefix="/v1/internships", tags=["internships"])
InternshipId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Detail = schemas.InternshipDetail


# ---------------------------------------------------------------- post and read


@router.post("", status_code=201, response_model=Detail, summary="Post an internship (employer)")
async def post_internship(
    body: schemas.InternshipIn,
    employer: EmployerDep,
    settings: SettingsDep,
    client: TemporalDep,
    key: KeyDep,
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
    # A retried posting (same idempotency key) names the same workflow, so it starts once.
    internship_id = _id_for(employer.id, key) if key else new_id()
    posting = Posting(
        internship_id=internship_id,
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
    by = Actor(Role.EMPLOYER, employer.id)
    try:
        await lifecycle.start_internship(client, posting, settings.task_queue)
    except WorkflowAlreadyStartedError:  # the first try started it, then lost its answer
        return internship_detail(await lifecycle.read(client, internship_id, by), by)
    state = InternshipState(posting=posting, stage=Stage.POSTED, posted_at=datetime.now(UTC))
    return internship_detail(state, by)


def _id_for(employer_id: str, key: str) -> str:
    return hashlib.sha256(f"{employer_id}:{key}".encode()).hexdigest()[:16]


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
    items = internship_summaries(db, page)
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


@router.get(
    "/{internship_id}/applicants",
    response_model=list[schemas.RankedApplicantOut],
    summary="Applicants ranked by fit, with the reasons (employer, ops)",
)
async def ranked_applicants(
    internship_id: InternshipId, caller: CallerDep, client: TemporalDep, sessions: SessionsDep
) -> list[schemas.RankedApplicantOut]:
    state = await lifecycle.read(client, internship_id, caller.actor)
    if not rulebook.visibility(state, caller.actor).all_applicants:
        raise ApiError(403, "forbidden", "Only the employer who posted it and ops see applicants")
    return await run_in_threadpool(_rank, sessions, state)


def _rank(sessions: sessionmaker, state: InternshipState) -> list[schemas.RankedApplicantOut]:
    ids = [a.launcher_id for a in state.applicants]
    with sessions() as db:
        people = {p.id: p for p in db.scalars(select(Launcher).where(Launcher.id.in_(ids)))}
        history = matching.records(db, ids)
    ranked = []
    for a in state.applicants:
        person = people.get(a.launcher_id)
        skills = person.skills if person else []
        fit = matching.fit(state.posting.skills, skills, history.get(a.launcher_id, Record()))
        ranked.append(
            schemas.RankedApplicantOut(
                launcher_id=a.launcher_id,
                name=person.name if person else a.launcher_id,
                pitch=a.pitch,
                applied_at=a.applied_at,
                withdrawn=a.withdrawn,
                score=fit.score,
                reasons=fit.reasons,
            )
        )
    return sorted(ranked, key=lambda r: (r.withdrawn, -r.score, r.applied_at))


# ---------------------------------------------------------------- transitions


@dataclass(frozen=True)
class Transitions:
    """Asks one internship's workflow for transitions on the caller's behalf; the workflow
    decides, and the caller gets the internship as they may see it."""

    internship_id: str
    by: Actor
    client: Client
    key: str | None  # Idempotency-Key: the Temporal update id, so a retry runs once

    async def __call__(self, update: lifecycle.Update, request: Any) -> Detail:
        state = await lifecycle.transition(
            self.client, self.internship_id, self.by, update, request, self.key
        )
        return internship_detail(state, self.by)


def transitions(
    internship_id: InternshipId, caller: CallerDep, client: TemporalDep, key: KeyDep
) -> Transitions:
    return Transitions(internship_id, caller.actor, client, key)


Ask = Annotated[Transitions, Depends(transitions)]


@router.post(
    "/{internship_id}/applications", response_model=Detail, summary="Apply with a pitch (launcher)"
)
async def apply(body: schemas.ApplicationIn, ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.apply, Application(ask.by, body.pitch))


@router.post(
    "/{internship_id}/selection",
    response_model=Detail,
    summary="Choose a launcher among the applicants (employer)",
)
async def select_launcher(body: schemas.SelectionIn, ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.select, Selection(ask.by, body.launcher_id))


@router.post(
    "/{internship_id}/kickoff",
    response_model=Detail,
    summary="Start the clock and charge the fee (employer)",
)
async def kickoff(ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.kickoff, Kickoff(ask.by))


@router.post(
    "/{internship_id}/submissions",
    response_model=Detail,
    summary="Submit the deliverable (launcher)",
)
async def submit(body: schemas.SubmissionIn, ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.submit, Submission(ask.by, str(body.url), body.note))


@router.post(
    "/{internship_id}/review",
    response_model=Detail,
    summary="Approve, or request a revision (employer)",
)
async def review(body: schemas.ReviewIn, ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.review, Review(ask.by, body.decision, body.feedback))


@router.post(
    "/{internship_id}/extension",
    response_model=Detail,
    summary="Move the due date later, within bounds (employer or ops)",
)
async def extend(body: schemas.ExtensionIn, ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.extend, Extension(ask.by, body.due_at))


@router.post(
    "/{internship_id}/cancellation",
    response_model=Detail,
    summary="Cancel; refunds the employer after kickoff (employer or ops)",
)
async def cancel(body: schemas.CancellationIn, ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.cancel, Cancellation(ask.by, body.reason, body.refund))


@router.post(
    "/{internship_id}/withdrawal",
    response_model=Detail,
    summary="Withdraw an application, or leave before submitting (launcher)",
)
async def withdraw(ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.withdraw, Withdrawal(ask.by))


@router.post(
    "/{internship_id}/dispute",
    response_model=Detail,
    summary="Open a dispute for ops to resolve (employer or launcher)",
)
async def open_dispute(body: schemas.DisputeIn, ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.open_dispute, Dispute(ask.by, body.reason))


@router.post(
    "/{internship_id}/resolution",
    response_model=Detail,
    summary="Resolve a dispute: pay the launcher, split, or refund (ops)",
)
async def resolve(body: schemas.ResolutionIn, ask: Ask) -> Detail:
    request = Resolution(ask.by, body.outcome, body.launcher_percent, body.note)
    return await ask(InternshipWorkflow.resolve, request)


@router.post(
    "/{internship_id}/feedback",
    response_model=Detail,
    summary="Rate the other side 1-5 (employer or launcher)",
)
async def feedback(body: schemas.FeedbackIn, ask: Ask) -> Detail:
    return await ask(InternshipWorkflow.feedback, Feedback(ask.by, body.rating, body.comment))
