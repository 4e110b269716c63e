"""Internships: post, list, read, and the eleven lifecycle transitions, as JSON.

A thin adapter: each endpoint parses its request, calls the application layer
(`api.service`) and answers with what it returns. A transition is `Transitions.<step>` (the
workflow update of the same name); an answer is `internship_view`, validated into
`InternshipDetail`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from api import schemas
from api.deps import (
    CallerDep,
    DbDep,
    OpsDep,
    PosterDep,
    SessionsDep,
    SettingsDep,
    WorkflowsDep,
)
from api.errors import ApiError, not_found
from api.idempotency import KeyDep
from api.service import internships, reads, search
from api.service.internships import Transitions
from api.service.views import internship_view
from core import rulebook
from core.accounts import new_id
from core.internship import Stage

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
    poster: PosterDep,
    settings: SettingsDep,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    key: KeyDep,
    response: Response,
) -> Detail:
    # A retried posting (same idempotency key) names the same internship, which starts once.
    by = poster.actor
    internship_id = internships.posting_id(by.member_id or by.id, key) if key else new_id()
    assert poster.employer is not None
    posted = await internships.post(
        workflows, sessions, settings, poster.employer, by, body, internship_id
    )
    if not posted.created:
        response.status_code = 200
    return internship_view(posted.state, by)


async def search_criteria(
    stage: Annotated[Stage | None, Query()] = None,
    category: Annotated[schemas.Category | None, Query()] = None,
    skill: Annotated[
        list[schemas.Skill] | None,
        Query(max_length=20, description="A skill the internship asks for; repeat for each"),
    ] = None,
    employer: Annotated[schemas.Id | None, Query(description="The employer's id")] = None,
    posted_by: Annotated[
        schemas.Id | None,
        Query(description="The member of the employer who posted it (your own member id: mine)"),
    ] = None,
    fee_min_cents: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    fee_max_cents: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    duration_min_days: Annotated[int | None, Query(ge=0, le=365)] = None,
    duration_max_days: Annotated[int | None, Query(ge=0, le=365)] = None,
    posted_from: Annotated[date | None, Query(description="Posted on or after (UTC)")] = None,
    posted_to: Annotated[date | None, Query(description="Posted on or before (UTC)")] = None,
) -> search.Criteria:
    """The list's filters, shared by the launchers' and employers' list and ops' search."""
    return search.Criteria(
        stage=stage,
        category=category,
        skills=tuple(skill or ()),
        employer_id=employer,
        posted_by=posted_by,
        fee_min_cents=fee_min_cents,
        fee_max_cents=fee_max_cents,
        duration_min_days=duration_min_days,
        duration_max_days=duration_max_days,
        posted_from=posted_from,
        posted_to=posted_to,
    )


Criteria = Annotated[search.Criteria, Depends(search_criteria)]
Limit = Annotated[int, Query(ge=1, le=search.MAX_PAGE)]
Cursor = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=r"^[A-Za-z0-9_=-]+$",
        description="next_cursor of the previous page",
    ),
]
# The criteria by the names a request gives them, for the 422 that says what to fix.
QUERY_NAMES = {"words": "q", "anything": "q", "skills": "skill", "employer_id": "employer"}


@router.get("", response_model=schemas.InternshipPage, summary="List and search internships")
def list_internships(
    caller: CallerDep,
    db: DbDep,
    wanted: Criteria,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words of the title or description, each matched by prefix and stem",
        ),
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> schemas.InternshipPage:
    """Newest first: what the caller may see (employers their own internships, launchers open
    postings and the work they were selected for, ops everything), narrowed by the filters
    (each one given must hold)."""
    wanted = search.checked(replace(wanted, words=q or ""), QUERY_NAMES)
    return search.internship_page(db, caller.actor, wanted, limit, cursor)


@router.get(
    "/{internship_id}",
    response_model=Detail,
    summary="One internship: stage, due date, applicants, submissions, timeline",
)
async def get_internship(
    internship_id: InternshipId, caller: CallerDep, workflows: WorkflowsDep
) -> Detail:
    state = await internships.read(workflows, internship_id, caller.actor)
    return internship_view(state, caller.actor)


@router.get(
    "/{internship_id}/contacts",
    response_model=schemas.ContactsOut,
    summary="How to reach the employer and the launcher (ops)",
)
async def contacts(
    internship_id: InternshipId, ops: OpsDep, workflows: WorkflowsDep, sessions: SessionsDep
) -> schemas.ContactsOut:
    state = await internships.read(workflows, internship_id, ops)
    found = await reads.run(sessions, reads.contacts, state.posting.employer_id, state.launcher_id)
    if found is None:
        raise not_found("employer")
    return found


@router.get(
    "/{internship_id}/applicants",
    response_model=list[schemas.RankedApplicantOut],
    summary="Applicants ranked by fit, with the reasons (employer, ops)",
)
async def ranked_applicants(
    internship_id: InternshipId, caller: CallerDep, workflows: WorkflowsDep, sessions: SessionsDep
) -> list[schemas.RankedApplicantOut]:
    state = await internships.read(workflows, internship_id, caller.actor)
    if not rulebook.visibility(state, caller.actor).all_applicants:
        raise ApiError(403, "forbidden", "Only the employer who posted it and ops see applicants")
    return await reads.run(sessions, reads.ranked_applicants, state)


@router.get(
    "/{internship_id}/candidates",
    response_model=list[schemas.CandidateOut],
    summary="Launchers who fit an open posting, best first, with the reasons: whom to invite "
    "(employer)",
    description=(
        "At most 20: launchers sharing a skill with the posting who take invitations, except "
        "those who applied or were invited already. 409 once the posting is no longer open."
    ),
)
async def candidates(
    internship_id: InternshipId, caller: CallerDep, workflows: WorkflowsDep, sessions: SessionsDep
) -> list[schemas.CandidateOut]:
    return await internships.candidates(workflows, sessions, internship_id, caller.actor)


# ---------------------------------------------------------------- transitions


async def transitions(
    internship_id: InternshipId,
    caller: CallerDep,
    workflows: WorkflowsDep,
    key: KeyDep,
    sessions: SessionsDep,
) -> Transitions:
    return Transitions(
        workflows, internship_id, caller.actor, key, caller.employer, sessions=sessions
    )


Ask = Annotated[Transitions, Depends(transitions)]


@router.post(
    "/{internship_id}/applications",
    response_model=Detail,
    summary="Apply with a pitch, accepting the internship's terms (launcher)",
    description=(
        "`accept_terms` must be true: you accept the internship's `terms` (422 otherwise). "
        "`terms_hash`, the terms' `hash` as you read them, is refused (409 `terms_changed`) if "
        "they are not this internship's; without it, the terms are this internship's as they "
        "stand. The timeline's `applied` entry records the hash accepted."
    ),
)
async def apply(body: schemas.ApplicationIn, ask: Ask) -> Detail:
    return internship_view(await ask.apply(body), ask.by)


@router.post(
    "/{internship_id}/selection",
    response_model=Detail,
    summary="Choose a launcher among the applicants (employer)",
)
async def select_launcher(body: schemas.SelectionIn, ask: Ask) -> Detail:
    return internship_view(await ask.select(body), ask.by)


@router.post(
    "/{internship_id}/kickoff",
    response_model=Detail,
    summary="Start the clock and charge the fee, accepting the internship's terms (employer)",
    description=(
        "`accept_terms` must be true: you accept the internship's `terms` (422 otherwise). "
        "`terms_hash`, as when applying, names the terms you read (409 `terms_changed` if they "
        "are not this internship's). The timeline's `kickoff` entry records the hash accepted."
    ),
)
async def kickoff(body: schemas.KickoffIn, ask: Ask) -> Detail:
    return internship_view(await ask.kickoff(body), ask.by)


@router.post(
    "/{internship_id}/submissions",
    response_model=Detail,
    summary="Submit the deliverable (launcher)",
)
async def submit(body: schemas.SubmissionIn, ask: Ask) -> Detail:
    return internship_view(await ask.submit(body), ask.by)


@router.post(
    "/{internship_id}/review",
    response_model=Detail,
    summary="Approve, or request a revision (employer)",
)
async def review(body: schemas.ReviewIn, ask: Ask) -> Detail:
    return internship_view(await ask.review(body), ask.by)


@router.post(
    "/{internship_id}/extension",
    response_model=Detail,
    summary="Move the due date later, within bounds (employer or ops)",
)
async def extend(body: schemas.ExtensionIn, ask: Ask) -> Detail:
    return internship_view(await ask.extend(body), ask.by)


@router.post(
    "/{internship_id}/cancellation",
    response_model=Detail,
    summary="Cancel; refunds the employer after kickoff (employer or ops)",
)
async def cancel(body: schemas.CancellationIn, ask: Ask) -> Detail:
    return internship_view(await ask.cancel(body), ask.by)


@router.post(
    "/{internship_id}/withdrawal",
    response_model=Detail,
    summary="Withdraw an application, or leave before submitting (launcher)",
)
async def withdraw(ask: Ask) -> Detail:
    return internship_view(await ask.withdraw(), ask.by)


@router.post(
    "/{internship_id}/dispute",
    response_model=Detail,
    summary="Open a dispute for ops to resolve (employer or launcher)",
)
async def open_dispute(body: schemas.DisputeIn, ask: Ask) -> Detail:
    return internship_view(await ask.open_dispute(body), ask.by)


@router.post(
    "/{internship_id}/resolution",
    response_model=Detail,
    summary="Resolve a dispute: pay the launcher, split, or refund (ops)",
)
async def resolve(body: schemas.ResolutionIn, ask: Ask) -> Detail:
    return internship_view(await ask.resolve(body), ask.by)


@router.post(
    "/{internship_id}/invitations",
    response_model=Detail,
    summary="Invite a launcher to apply to an open posting (employer)",
)
async def invite(body: schemas.InvitationIn, ask: Ask) -> Detail:
    return internship_view(await ask.invite(body), ask.by)


@router.post(
    "/{internship_id}/invitation-declined",
    response_model=Detail,
    summary="Decline an invitation to apply (the invited launcher)",
)
async def decline_invitation(ask: Ask) -> Detail:
    return internship_view(await ask.decline(), ask.by)


@router.post(
    "/{internship_id}/feedback",
    response_model=Detail,
    summary="Rate the other side 1-5 (employer or launcher)",
)
async def feedback(body: schemas.FeedbackIn, ask: Ask) -> Detail:
    return internship_view(await ask.feedback(body), ask.by)
