"""Internships: post, list, read, and every lifecycle transition.

Transitions are Temporal updates: the workflow's validators decide (who, which stage, what
input) and the API maps their verdict to a status, so rules live in one place. Lists come from
the database projection; one internship is read from the workflow itself.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from inspect import Parameter, Signature
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy import and_, or_, select
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api import schemas
from api.deps import Caller, CallerDep, DbDep, SettingsDep, TemporalDep, require
from api.errors import ApiError, not_found
from core import errors
from core.accounts import new_id
from core.db import Internship, InternshipSkill
from core.temporal import start_internship
from core.types import (
    Action,
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
    allowed_actions,
    can_see,
)
from workflows.internship import InternshipWorkflow, workflow_id

router = APIRouter(prefix="/v1/internships", tags=["internships"])
InternshipId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Handle = WorkflowHandle[InternshipWorkflow, InternshipState]


def _handle(client: Client, internship_id: str) -> Handle:
    return client.get_workflow_handle_for(InternshipWorkflow.run, workflow_id(internship_id))


# ---------------------------------------------------------------- post and read


@router.post(
    "",
    status_code=201,
    response_model=schemas.InternshipDetail,
    summary="Post an internship (employer)",
)
async def post_internship(
    body: schemas.InternshipIn, caller: CallerDep, settings: SettingsDep, client: TemporalDep
) -> schemas.InternshipDetail:
    require(caller, Role.EMPLOYER)
    assert caller.employer is not None
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
        employer_id=caller.employer.id,
        company=caller.employer.company,
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
    await start_internship(client, posting, settings.task_queue)
    state = InternshipState(posting=posting, stage=Stage.POSTED, posted_at=datetime.now(UTC))
    return detail(state, caller)


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
    category: Annotated[str | None, Query(max_length=32)] = None,
    skill: Annotated[str | None, Query(max_length=64)] = None,
    employer: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.InternshipPage:
    """Newest first. Launchers and employers see open postings and their own internships."""
    q = select(Internship)
    if caller.role == Role.EMPLOYER:
        q = q.where(
            or_(Internship.stage == Stage.POSTED.value, Internship.employer_id == caller.id)
        )
    elif caller.role == Role.LAUNCHER:
        q = q.where(
            or_(Internship.stage == Stage.POSTED.value, Internship.launcher_id == caller.id)
        )
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
    items = [
        schemas.InternshipSummary(
            id=r.id,
            title=r.title,
            company=r.company,
            category=r.category,
            skills=skills.get(r.id, []),
            stage=r.stage,
            estimated_hours=r.estimated_hours,
            fee_cents=r.fee_cents,
            currency=r.currency,
            duration_days=r.duration_days,
            due_at=r.due_at,
            overdue=r.overdue,
            escalation_level=r.escalation_level,
            employer_id=r.employer_id,
            launcher_id=r.launcher_id,
            posted_at=r.posted_at,
        )
        for r in page
    ]
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = base64.urlsafe_b64encode(
            f"{last.posted_at.isoformat()}|{last.id}".encode()
        ).decode()
    return schemas.InternshipPage(items=items, next_cursor=next_cursor)


async def _state(client: Client, internship_id: str, caller: Caller) -> InternshipState:
    try:
        state = await _handle(client, internship_id).query(InternshipWorkflow.state)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise not_found() from err
        raise
    if not can_see(state, caller.actor):
        raise not_found()
    return state


@router.get(
    "/{internship_id}",
    response_model=schemas.InternshipDetail,
    summary="One internship: stage, due date, applicants, submissions, timeline",
)
async def get_internship(
    internship_id: InternshipId, caller: CallerDep, client: TemporalDep
) -> schemas.InternshipDetail:
    return detail(await _state(client, internship_id, caller), caller)


def detail(s: InternshipState, caller: Caller) -> schemas.InternshipDetail:
    p = s.posting
    party = caller.role == Role.OPS or caller.id in (p.employer_id, s.launcher_id)
    sees_all_applicants = caller.role == Role.OPS or caller.id == p.employer_id
    disputed = bool(s.dispute and not s.dispute.outcome)
    ratings = None
    if party:
        shown = (
            s.ratings
            if s.stage == Stage.COMPLETED
            else {k: v for k, v in s.ratings.items() if k == caller.role.value}
        )
        ratings = {
            k: schemas.RatingOut(rating=v.rating, comment=v.comment) for k, v in shown.items()
        }
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
        launcher_id=s.launcher_id,
        stage=s.stage.value,
        posted_at=s.posted_at,
        due_at=s.due_at,
        overdue=s.overdue,
        escalation_level=s.escalation_level,
        revision_rounds=s.revision_rounds,
        allowed_actions=[a.value for a in allowed_actions(s.stage, disputed, caller.role)],
        applicants=[
            schemas.ApplicantOut(
                launcher_id=a.launcher_id,
                pitch=a.pitch,
                applied_at=a.applied_at,
                withdrawn=a.withdrawn,
            )
            for a in s.applicants
            if sees_all_applicants or a.launcher_id == caller.id
        ],
        submissions=[
            schemas.SubmissionOut(
                round=x.round, url=x.url, note=x.note, submitted_at=x.submitted_at
            )
            for x in s.submissions
        ]
        if party
        else [],
        payment=schemas.PaymentOut(
            charged_cents=s.money.charged_cents,
            paid_to_launcher_cents=s.money.paid_cents,
            refunded_cents=s.money.refunded_cents,
        )
        if party
        else None,
        dispute=schemas.DisputeOut(
            opened_by=s.dispute.opened_by.value,
            reason=s.dispute.reason,
            opened_at=s.dispute.opened_at,
            outcome=s.dispute.outcome,
            note=s.dispute.note,
        )
        if s.dispute and party
        else None,
        ratings=ratings,
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
            for e in s.timeline
        ]
        if party
        else [],
    )


# ---------------------------------------------------------------- transitions


async def _transition(
    client: Client,
    internship_id: str,
    caller: Caller,
    update: UpdateMethodMultiParam[[InternshipWorkflow, Any], InternshipState],
    arg: Any,
) -> schemas.InternshipDetail:
    handle = _handle(client, internship_id)
    try:
        state = await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as err:
        raise _refusal(err.cause) from err
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # Either no such internship, or it has finished: a finished one answers queries.
        state = await _state(client, internship_id, caller)
        raise ApiError(
            409,
            "invalid_stage",
            f"the internship is {state.stage.value}; nothing more can happen to it",
            {"stage": state.stage.value, "allowed_actions": []},
        ) from err
    return detail(state, caller)


def _refusal(cause: BaseException | None) -> ApiError:
    if isinstance(cause, ApplicationError) and cause.type in errors.HTTP_STATUS:
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        return ApiError(
            errors.HTTP_STATUS[cause.type], errors.ERROR_CODES[cause.type], cause.message, details
        )
    return ApiError(409, "conflict", f"the transition was not applied: {cause}")


@dataclass(frozen=True)
class Transition:
    """One lifecycle endpoint: POST /v1/internships/{id}/<action> runs `update`."""

    action: Action
    update: UpdateMethodMultiParam[[InternshipWorkflow, Any], InternshipState]
    body: type[BaseModel] | None
    request: Callable[[Actor, Any], Any]  # (caller, validated body) -> the update's input
    summary: str


TRANSITIONS = (
    Transition(
        Action.APPLY,
        InternshipWorkflow.apply,
        schemas.ApplicationIn,
        lambda by, b: Application(by, b.pitch),
        "Apply with a pitch (launcher)",
    ),
    Transition(
        Action.SELECT,
        InternshipWorkflow.select,
        schemas.SelectionIn,
        lambda by, b: Selection(by, b.launcher_id),
        "Choose a launcher among the applicants (employer)",
    ),
    Transition(
        Action.KICKOFF,
        InternshipWorkflow.kickoff,
        None,
        lambda by, _: Kickoff(by),
        "Start the clock and charge the fee (employer)",
    ),
    Transition(
        Action.SUBMIT,
        InternshipWorkflow.submit,
        schemas.SubmissionIn,
        lambda by, b: Submission(by, str(b.url), b.note),
        "Submit the deliverable (launcher)",
    ),
    Transition(
        Action.REVIEW,
        InternshipWorkflow.review,
        schemas.ReviewIn,
        lambda by, b: Review(by, b.decision, b.feedback),
        "Approve, or request a revision (employer)",
    ),
    Transition(
        Action.EXTEND,
        InternshipWorkflow.extend,
        schemas.ExtensionIn,
        lambda by, b: Extension(by, b.due_at),
        "Move the due date later, within bounds (employer or ops)",
    ),
    Transition(
        Action.CANCEL,
        InternshipWorkflow.cancel,
        schemas.CancellationIn,
        lambda by, b: Cancellation(by, b.reason, b.refund),
        "Cancel; refunds the employer after kickoff (employer or ops)",
    ),
    Transition(
        Action.WITHDRAW,
        InternshipWorkflow.withdraw,
        None,
        lambda by, _: Withdrawal(by),
        "Withdraw an application, or leave before submitting (launcher)",
    ),
    Transition(
        Action.DISPUTE,
        InternshipWorkflow.open_dispute,
        schemas.DisputeIn,
        lambda by, b: Dispute(by, b.reason),
        "Open a dispute for ops to resolve (employer or launcher)",
    ),
    Transition(
        Action.RESOLVE,
        InternshipWorkflow.resolve,
        schemas.ResolutionIn,
        lambda by, b: Resolution(by, b.outcome, b.launcher_percent, b.note),
        "Resolve a dispute: pay the launcher, split, or refund (ops)",
    ),
    Transition(
        Action.FEEDBACK,
        InternshipWorkflow.feedback,
        schemas.FeedbackIn,
        lambda by, b: Feedback(by, b.rating, b.comment),
        "Rate the other side 1-5 (employer or launcher)",
    ),
)


def _route(t: Transition) -> None:
    async def endpoint(
        internship_id: str, caller: Caller, client: Client, body: BaseModel | None = None
    ) -> schemas.InternshipDetail:
        request = t.request(caller.actor, body)
        return await _transition(client, internship_id, caller, t.update, request)

    # FastAPI reads the signature: give each endpoint its own body model for validation and docs.
    params = [
        Parameter("internship_id", Parameter.KEYWORD_ONLY, annotation=InternshipId),
        Parameter("caller", Parameter.KEYWORD_ONLY, annotation=CallerDep),
        Parameter("client", Parameter.KEYWORD_ONLY, annotation=TemporalDep),
    ]
    if t.body is not None:
        params.append(Parameter("body", Parameter.KEYWORD_ONLY, annotation=t.body))
    endpoint.__signature__ = Signature(params)  # type: ignore[attr-defined]
    router.post(
        f"/{{internship_id}}/{t.action.value}",
        response_model=schemas.InternshipDetail,
        summary=t.summary,
        name=t.action.value,
    )(endpoint)


for transition in TRANSITIONS:
    _route(transition)
