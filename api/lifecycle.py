"""The API's side of the internship workflow: start it, read it, ask it for a transition.

A transition is a Temporal update: the workflow's validators (which ask the rulebook) decide,
and their refusal becomes the API's error with the status its kind names. An update answers
with the state as its caller may read it (`rulebook.as_seen_by`), which the API presents.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api import schemas
from api.errors import ApiError, not_found
from core import errors, identity, rulebook, search_attributes
from core.db import Employer, Internship
from core.internship import (
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
    workflow_id,
)
from core.settings import Settings
from workflows.internship import InternshipWorkflow

Handle = WorkflowHandle[InternshipWorkflow, InternshipState]
Update = UpdateMethodMultiParam[[InternshipWorkflow, Any], InternshipState]


async def start_internship(client: Client, posting: Posting, task_queue: str) -> Handle:
    """Start an internship's workflow with what ops filter and read on from its first moment.

    An internship id names one run, ever: Temporal refuses to start it again once any run of it
    exists, finished or not (`WorkflowAlreadyStartedError`)."""
    keys = search_attributes
    return await client.start_workflow(
        InternshipWorkflow.run,
        posting,
        id=workflow_id(posting.internship_id),
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(keys.STAGE, Stage.POSTED.value),
                SearchAttributePair(keys.EMPLOYER, posting.employer_id),
                SearchAttributePair(keys.CATEGORY, posting.category),
                SearchAttributePair(keys.ESCALATION, 0),
            ]
        ),
        static_summary=f"{posting.title} · {posting.company}",
    )


@dataclass(frozen=True)
class Posted:
    """What a posting request got: the internship, and whether this request created it."""

    state: InternshipState
    created: bool


async def post(
    client: Client,
    sessions: sessionmaker,
    settings: Settings,
    employer: Employer,
    body: schemas.InternshipIn,
    internship_id: str,
) -> Posted:
    """Post an internship: the fee floor is checked here (it depends on the deployment's
    settings), then its workflow starts.

    An id is never started twice. Posting again under an id that exists (a retry with the same
    key, however late) answers with that internship as it stands now, or 409 if the request
    differs from what was posted under it or the internship is no longer kept by Temporal."""
    floor = body.estimated_hours * settings.min_hourly_fee_cents
    if body.fee_cents < floor:
        raise ApiError(
            422,
            "invalid_request",
            f"fee_cents must be at least {floor} ({settings.min_hourly_fee_cents} per "
            f"estimated hour for {body.estimated_hours} hours)",
            {"field": "fee_cents", "minimum_cents": floor},
        )
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
        nonce=secrets.token_hex(8),
    )
    by = Actor(Role.EMPLOYER, employer.id)
    # Temporal forgets a finished workflow after the namespace's retention; the projection
    # does not, so an id it knows is never started again either.
    if await run_in_threadpool(_recorded, sessions, internship_id):
        return Posted(await _posted_before(client, internship_id, by, posting), created=False)
    try:
        await start_internship(client, posting, settings.task_queue)
    except WorkflowAlreadyStartedError:  # an earlier request started it
        return Posted(await _posted_before(client, internship_id, by, posting), created=False)
    state = InternshipState(posting=posting, stage=Stage.POSTED, posted_at=datetime.now(UTC))
    return Posted(state, created=True)


def _recorded(sessions: sessionmaker, internship_id: str) -> bool:
    with sessions() as db:
        return db.get(Internship, internship_id) is not None


# What a posting request names: a repeat must ask for the same internship to be answered with it.
_SAME_POSTING = (
    "title",
    "description",
    "category",
    "skills",
    "estimated_hours",
    "fee_cents",
    "currency",
    "duration_days",
)


async def _posted_before(
    client: Client, internship_id: str, by: Actor, asked: Posting
) -> InternshipState:
    """The internship an earlier request posted under this id, if this request asks for the
    same one; 409 otherwise."""
    reuse = (
        "This Idempotency-Key (or form) already posted an internship"
        f" ({internship_id}); send a new key to post another"
    )
    try:
        state = await read(client, internship_id, by)
    except ApiError as err:  # no longer kept by Temporal
        raise ApiError(409, "idempotency_key_reused", reuse, {"id": internship_id}) from err
    if any(getattr(state.posting, f) != getattr(asked, f) for f in _SAME_POSTING):
        raise ApiError(409, "idempotency_key_reused", reuse, {"id": internship_id})
    return state


def posting_id(employer_id: str, key: str) -> str:
    """The internship a keyed posting request creates: a retry names the same workflow."""
    return hashlib.sha256(f"{employer_id}:{key}".encode()).hexdigest()[:16]


def handle(client: Client, internship_id: str) -> Handle:
    return client.get_workflow_handle_for(InternshipWorkflow.run, workflow_id(internship_id))


async def read(client: Client, internship_id: str, viewer: Actor) -> InternshipState:
    """The internship as its workflow holds it; 404 unless the rulebook lets `viewer` see it."""
    state = await _query(client, internship_id)
    if not rulebook.can_see(state, viewer):
        raise not_found()
    return state


async def _query(client: Client, internship_id: str) -> InternshipState:
    try:
        return await handle(client, internship_id).query(InternshipWorkflow.state)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise not_found() from err
        raise


async def transition(
    client: Client,
    internship_id: str,
    viewer: Actor,
    update: Update,
    request: Any,
    idempotency_key: str | None = None,
) -> InternshipState:
    """Run one transition and answer with the state after it, as the caller may read it; the
    workflow's refusal becomes the matching API error. With an idempotency key the update has
    an id of its own, so Temporal runs a retried one once."""
    update_id = f"{viewer.role}:{viewer.id}:{idempotency_key}" if idempotency_key else None
    try:
        return await handle(client, internship_id).execute_update(update, request, id=update_id)
    except WorkflowUpdateFailedError as err:
        raise _refusal(err.cause) from err
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # Either no such internship, or it has finished: a finished one answers queries.
        state = await read(client, internship_id, viewer)
        raise ApiError(
            409,
            "invalid_stage",
            f"the internship is {state.stage.value}; nothing more can happen to it",
            {"stage": state.stage.value, "allowed_actions": []},
        ) from err


def _refusal(cause: BaseException | None) -> ApiError:
    """The workflow's refusal as the API's error: the status its kind names, and the code the
    refusal names (`posting_full`) or else its kind's."""
    if isinstance(cause, ApplicationError) and cause.type in errors.HTTP_STATUS:
        found = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        details = dict(found)
        code = details.pop("code", None)
        return ApiError(
            errors.HTTP_STATUS[cause.type],
            code if isinstance(code, str) else errors.ERROR_CODES[cause.type],
            cause.message,
            details,
        )
    return ApiError(409, "conflict", f"the transition was not applied: {cause}")


@dataclass(frozen=True)
class Step:
    """One transition as callers ask for it: the workflow update, the input it takes (validated
    at the edge: JSON for the API, a form for the pages) and how that becomes the update's."""

    update: Update
    body: type[BaseModel] | None
    build: Callable[[Actor, Any], Any]


STEPS: dict[Action, Step] = {
    Action.APPLY: Step(
        InternshipWorkflow.apply, schemas.ApplicationIn, lambda by, b: Application(by, b.pitch)
    ),
    Action.SELECT: Step(
        InternshipWorkflow.select,
        schemas.SelectionIn,
        lambda by, b: Selection(by, b.launcher_id),
    ),
    Action.KICKOFF: Step(InternshipWorkflow.kickoff, None, lambda by, _: Kickoff(by)),
    Action.SUBMIT: Step(
        InternshipWorkflow.submit,
        schemas.SubmissionIn,
        lambda by, b: Submission(by, str(b.url), b.note),
    ),
    Action.REVIEW: Step(
        InternshipWorkflow.review,
        schemas.ReviewIn,
        lambda by, b: Review(by, b.decision, b.feedback),
    ),
    Action.EXTEND: Step(
        InternshipWorkflow.extend, schemas.ExtensionIn, lambda by, b: Extension(by, b.due_at)
    ),
    Action.CANCEL: Step(
        InternshipWorkflow.cancel,
        schemas.CancellationIn,
        lambda by, b: Cancellation(by, b.reason, b.refund),
    ),
    Action.WITHDRAW: Step(InternshipWorkflow.withdraw, None, lambda by, _: Withdrawal(by)),
    Action.DISPUTE: Step(
        InternshipWorkflow.open_dispute, schemas.DisputeIn, lambda by, b: Dispute(by, b.reason)
    ),
    Action.RESOLVE: Step(
        InternshipWorkflow.resolve,
        schemas.ResolutionIn,
        lambda by, b: Resolution(by, b.outcome, b.launcher_percent, b.note),
    ),
    Action.FEEDBACK: Step(
        InternshipWorkflow.feedback,
        schemas.FeedbackIn,
        lambda by, b: Feedback(by, b.rating, b.comment),
    ),
}


@dataclass(frozen=True)
class Transitions:
    """Asks one internship's workflow for transitions on a caller's behalf; the workflow
    decides. `key` (an Idempotency-Key, or a form's one-time key) is the Temporal update id,
    so a retried request runs once. Before applying, selecting and rating, the API refuses the
    same person on both sides (`core.identity`), reading the accounts from `sessions`."""

    client: Client
    internship_id: str
    by: Actor
    key: str | None = None
    employer: Employer | None = None  # the caller's record, when the caller is an employer
    sessions: sessionmaker = field(kw_only=True)

    async def __call__(self, action: Action, body: BaseModel | None = None) -> InternshipState:
        if action == Action.KICKOFF and self.employer and not self.employer.chargeable_card:
            # Said before asking: kicking off charges the card the employer has on file.
            raise ApiError(
                402, "no_card", "Add a card before kicking off: the fee is charged at kickoff"
            )
        if action in OWN_POSTING:
            await self._refuse_own_posting(action, body)
        step = STEPS[action]
        request = step.build(self.by, body)
        return await transition(
            self.client, self.internship_id, self.by, step.update, request, self.key
        )

    async def _refuse_own_posting(self, action: Action, body: BaseModel | None) -> None:
        """403 `own_posting` if the launcher concerned (the caller applying or rating, the one
        an employer selects, the one an employer rates) is the employer who posted it."""
        chosen = body.launcher_id if isinstance(body, schemas.SelectionIn) else None
        one = await run_in_threadpool(
            _same_person_on_both_sides, self.sessions, self.internship_id, self.by, chosen
        )
        if one is None:  # not projected yet (posted moments ago): the workflow knows
            try:
                state = await handle(self.client, self.internship_id).query(
                    InternshipWorkflow.state
                )
            except RPCError:
                return  # the update will answer (404)
            employer_id = state.posting.employer_id
            launcher_id = _concerned(self.by, employer_id, state.launcher_id, chosen)
            one = launcher_id is not None and await run_in_threadpool(
                _are_one, self.sessions, employer_id, launcher_id
            )
        if one:
            raise ApiError(403, "own_posting", OWN_POSTING[action], {"action": action.value})


# What the same person on both sides is told, and what to do instead.
OWN_POSTING = {
    Action.APPLY: (
        "You can't apply to a posting of your own company: this launcher account and the "
        "employer account that posted it belong to the same person (the same email address or "
        "the same card or bank account). Apply to other companies' postings."
    ),
    Action.SELECT: (
        "You can't select this applicant: their launcher account belongs to you (the same "
        "email address or the same card or bank account as your employer account). Select "
        "another applicant, or cancel the posting."
    ),
    Action.FEEDBACK: (
        "You can't rate this internship: its employer and its launcher are the same person (the "
        "same email address or the same card or bank account), and ratings count only between "
        "different people."
    ),
}


def _concerned(by: Actor, employer_id: str, selected: str | None, chosen: str | None) -> str | None:
    """The launcher an apply, select or rating by `by` concerns: the caller if a launcher, the
    chosen applicant or the selected launcher if the employer who posted it. None for anyone
    else, whom the workflow refuses in its own order (404 before 403)."""
    if by.role == Role.LAUNCHER:
        return by.id
    if by.role == Role.EMPLOYER and by.id == employer_id:
        return chosen or selected
    return None


def _same_person_on_both_sides(
    sessions: sessionmaker, internship_id: str, by: Actor, chosen: str | None
) -> bool | None:
    """Whether the internship's employer and the launcher concerned are one person, read in
    one short session; None if the projection does not know the internship yet."""
    with sessions() as db:
        row = db.get(Internship, internship_id)
        if row is None:
            return None
        launcher_id = _concerned(by, row.employer_id, row.launcher_id, chosen)
        return launcher_id is not None and identity.parties_are_one(
            db, row.employer_id, launcher_id
        )


def _are_one(sessions: sessionmaker, employer_id: str, launcher_id: str) -> bool:
    with sessions() as db:
        return identity.parties_are_one(db, employer_id, launcher_id)


async def retry_payment(client: Client, internship_id: str, by: Actor) -> InternshipState:
    """Send the workflow ops' `retry_payment` signal if a refused payment waits for it (409
    otherwise); returns the internship as it stands once the signal is in."""
    state = await read(client, internship_id, by)
    if by.role != Role.OPS:
        raise ApiError(403, "forbidden", "Only ops may retry a refused payment")
    if not rulebook.may_retry_payment(state, by):
        raise _nothing_to_retry(state, by)
    try:
        await handle(client, internship_id).signal(InternshipWorkflow.retry_payment, by)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # It finished in the meantime: nothing waits for a retry any more.
        raise _nothing_to_retry(await read(client, internship_id, by), by) from err
    return await read(client, internship_id, by)


def _nothing_to_retry(state: InternshipState, by: Actor) -> ApiError:
    return ApiError(
        409,
        "invalid_stage",
        f"No refused payment waits for a retry: the internship is {state.stage.value}",
        {
            "stage": state.stage.value,
            "allowed_actions": [a.value for a in rulebook.allowed_actions(state, by)],
        },
    )
