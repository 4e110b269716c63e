"""Internships: post, list, read, and the eleven lifecycle transitions.

Transitions are Temporal updates: the workflow's validators decide (asking the rulebook) and
the API maps their verdict to a status. Lists come from the database projection, scoped by the
same rulebook; one internship is read from the workflow itself.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel
from sqlalchemy import and_, or_, select

from api import lifecycle, queries, schemas
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
from core import rulebook
from core.accounts import new_id
from core.db import Internship
from core.internship import (
    Action,
    Actor,
    Role,
    Stage,
)

router = APIRouter(prefix="/v1/internships", tags=["internships"])
InternshipId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Detail = schemas.InternshipDetail


# ---------------------------------------------------------------- post and read


@router.post(
    "",
    status_code=201,
    response_model=Detail,
    summary="Post an internship (employer)",
    responses={200: {"description": "Posted before under this Idempotency-Key: as it is now"}},
)
async def post_internship(
    body: schemas.InternshipIn,
    employer: EmployerDep,
    settings: SettingsDep,
    client: TemporalDep,
    sessions: SessionsDep,
    key: KeyDep,
    response: Response,
) -> Detail:
    # A retried posting (same idempotency key) names the same internship, which starts once.
    internship_id = lifecycle.posting_id(employer.id, key) if key else new_id()
    posted = await lifecycle.post(client, sessions, settings, employer, body, internship_id)
    if not posted.created:
        response.status_code = 200
    return internship_detail(posted.state, Actor(Role.EMPLOYER, employer.id))


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
    q = select(Internship).where(queries.visible_to(caller.actor))
    if stage:
        q = q.where(Internship.stage == stage.value)
    if category:
        q = q.where(Internship.category == category)
    if employer:
        q = q.where(Internship.employer_id == employer)
    if skill:
        q = q.where(queries.has_skill(skill))
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
    found = await queries.run(
        sessions, queries.contacts, state.posting.employer_id, state.launcher_id
    )
    if found is None:
        raise not_found("employer")
    return found


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
    return await queries.run(sessions, queries.ranked_applicants, state)


# ---------------------------------------------------------------- transitions


def transitions(
    internship_id: InternshipId,
    caller: CallerDep,
    client: TemporalDep,
    key: KeyDep,
    sessions: SessionsDep,
) -> lifecycle.Transitions:
    return lifecycle.Transitions(
        client, internship_id, caller.actor, key, caller.employer, sessions=sessions
    )


Ask = Annotated[lifecycle.Transitions, Depends(transitions)]


async def _answer(ask: lifecycle.Transitions, action: Action, body: BaseModel | None) -> Detail:
    return internship_detail(await ask(action, body), ask.by)


@router.post(
    "/{internship_id}/applications", response_model=Detail, summary="Apply with a pitch (launcher)"
)
async def apply(body: schemas.ApplicationIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.APPLY, body)


@router.post(
    "/{internship_id}/selection",
    response_model=Detail,
    summary="Choose a launcher among the applicants (employer)",
)
async def select_launcher(body: schemas.SelectionIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.SELECT, body)


@router.post(
    "/{internship_id}/kickoff",
    response_model=Detail,
    summary="Start the clock and charge the fee (employer)",
)
async def kickoff(ask: Ask) -> Detail:
    return await _answer(ask, Action.KICKOFF, None)


@router.post(
    "/{internship_id}/submissions",
    response_model=Detail,
    summary="Submit the deliverable (launcher)",
)
async def submit(body: schemas.SubmissionIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.SUBMIT, body)


@router.post(
    "/{internship_id}/review",
    response_model=Detail,
    summary="Approve, or request a revision (employer)",
)
async def review(body: schemas.ReviewIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.REVIEW, body)


@router.post(
    "/{internship_id}/extension",
    response_model=Detail,
    summary="Move the due date later, within bounds (employer or ops)",
)
async def extend(body: schemas.ExtensionIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.EXTEND, body)


@router.post(
    "/{internship_id}/cancellation",
    response_model=Detail,
    summary="Cancel; refunds the employer after kickoff (employer or ops)",
)
async def cancel(body: schemas.CancellationIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.CANCEL, body)


@router.post(
    "/{internship_id}/withdrawal",
    response_model=Detail,
    summary="Withdraw an application, or leave before submitting (launcher)",
)
async def withdraw(ask: Ask) -> Detail:
    return await _answer(ask, Action.WITHDRAW, None)


@router.post(
    "/{internship_id}/dispute",
    response_model=Detail,
    summary="Open a dispute for ops to resolve (employer or launcher)",
)
async def open_dispute(body: schemas.DisputeIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.DISPUTE, body)


@router.post(
    "/{internship_id}/resolution",
    response_model=Detail,
    summary="Resolve a dispute: pay the launcher, split, or refund (ops)",
)
async def resolve(body: schemas.ResolutionIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.RESOLVE, body)


@router.post(
    "/{internship_id}/feedback",
    response_model=Detail,
    summary="Rate the other side 1-5 (employer or launcher)",
)
async def feedback(body: schemas.FeedbackIn, ask: Ask) -> Detail:
    return await _answer(ask, Action.FEEDBACK, body)
