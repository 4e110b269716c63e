"""Posting an internship and the lifecycle steps, on a caller's behalf.

A step is a Temporal update: the workflow's validators (which ask the rulebook) decide, and their
refusal becomes an `ApiError` with the status its kind names. Each step is one named method of
`Transitions` (`kickoff` calls `InternshipWorkflow.kickoff`); an update answers with the state
as its caller may read it (`rulebook.as_seen_by`), which the adapters present with
`api.service.views.internship_view`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api import schemas
from api.errors import ApiError, not_found, refusal_error
from api.service import reads
from api.service.workflows import AlreadyStarted, InternshipWorkflows, NoSuchRun, Refused, Update
from core import conversations, errors, identity, rulebook
from core.db import Employer, Internship, Launcher
from core.internship import (
    Action,
    Actor,
    Application,
    Cancellation,
    Declination,
    Dispute,
    Extension,
    Feedback,
    InternshipState,
    Invitation,
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
from core.settings import Settings
from core.terms import terms_in
from workflows.internship import InternshipWorkflow

Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class Posted:
    """What a posting request got: the internship, and whether this request created it."""

    state: InternshipState
    created: bool


async def post(
    workflows: InternshipWorkflows,
    sessions: sessionmaker,
    settings: Settings,
    employer: Employer,
    by: Actor,
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
        posted_by=by.member_id,
        invitation_only=body.invitation_only,
    )
    # Temporal forgets a finished workflow after the namespace's retention; the projection
    # does not, so an id it knows is never started again either.
    if await run_in_threadpool(_recorded, sessions, internship_id):
        return Posted(await _posted_before(workflows, internship_id, by, posting), created=False)
    try:
        await workflows.start(posting)
    except AlreadyStarted:  # an earlier request started it
        return Posted(await _posted_before(workflows, internship_id, by, posting), created=False)
    # As the run just started has it (every run since the workflow's `delivered-work-kept`
    # patch): the answer's terms are the ones its validators hold the parties to.
    state = InternshipState(
        posting=posting,
        stage=Stage.POSTED,
        posted_at=datetime.now(UTC),
        delivered_work_kept=True,
    )
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
    workflows: InternshipWorkflows, internship_id: str, by: Actor, asked: Posting
) -> InternshipState:
    """The internship an earlier request posted under this id, if this request asks for the
    same one; 409 otherwise."""
    reuse = (
        "This Idempotency-Key (or form) already posted an internship"
        f" ({internship_id}); send a new key to post another"
    )
    try:
        state = await read(workflows, internship_id, by)
    except ApiError as err:  # no longer kept by Temporal
        raise ApiError(409, "idempotency_key_reused", reuse, {"id": internship_id}) from err
    if any(getattr(state.posting, f) != getattr(asked, f) for f in _SAME_POSTING):
        raise ApiError(409, "idempotency_key_reused", reuse, {"id": internship_id})
    return state


def posting_id(employer_id: str, key: str) -> str:
    """The internship a keyed posting request creates: a retry names the same workflow."""
    return hashlib.sha256(f"{employer_id}:{key}".encode()).hexdigest()[:16]


async def read(
    workflows: InternshipWorkflows, internship_id: str, viewer: Actor
) -> InternshipState:
    """The internship as its workflow holds it; 404 unless the rulebook lets `viewer` see it."""
    try:
        state = await workflows.state(internship_id)
    except NoSuchRun as err:
        raise not_found() from err
    if not rulebook.can_see(state, viewer):
        raise not_found()
    return state


async def candidates(
    workflows: InternshipWorkflows, sessions: sessionmaker, internship_id: str, viewer: Actor
) -> list[schemas.CandidateOut]:
    """Launchers who fit an open posting, to invite (`reads.candidates`): for the members of
    the employer that posted it (404 for whoever can't see it, as its detail; 409 once it is
    no longer open for applications)."""
    state = await read(workflows, internship_id, viewer)
    if rulebook.relation(state, viewer) != rulebook.Relation.OWNER:
        raise ApiError(403, "forbidden", "Only the employer who posted it sees whom to invite")
    if state.stage != Stage.POSTED:
        where = rulebook.WHERE_IT_STANDS[state.stage]
        refused = rulebook.Refusal(
            errors.CONFLICT, f"Launchers are invited to open postings only: this one {where}"
        )
        details = rulebook.refusal_details(refused, state, viewer)
        raise refusal_error(refused.kind, refused.message, details)
    return await reads.run(sessions, reads.candidates, state)


async def moved_on(
    workflows: InternshipWorkflows,
    internship_id: str,
    viewer: Actor,
    state: InternshipState,
    within: float = 5.0,
) -> InternshipState:
    """`state`, or where the workflow took it by itself within `within` seconds when it was
    moving on (`rulebook.moving_on`: paying the launcher), read every quarter second. The step
    itself is done: a read that fails only ends the wait."""
    deadline = asyncio.get_running_loop().time() + within
    while rulebook.moving_on(state) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.25)
        try:
            state = await read(workflows, internship_id, viewer)
        except (ApiError, RPCError):
            break
    return state


def needs_card(employer: Employer | None) -> bool:
    """Kicking off charges the card the employer has on file: an employer without one is told
    before anything is asked of the workflow (ops kicking off are not asked for one)."""
    return employer is not None and not employer.chargeable_card


@dataclass(frozen=True)
class Transitions:
    """Asks one internship's workflow for transitions on a caller's behalf; the workflow
    decides. `key` (an Idempotency-Key, or a form's one-time key) is the Temporal update id,
    so a retried request runs once. Before applying, selecting and rating, the API refuses the
    same person on both sides (`core.identity`), reading the accounts from `sessions`."""

    workflows: InternshipWorkflows
    internship_id: str
    by: Actor
    key: str | None = None
    employer: Employer | None = None  # the caller's record, when the caller is an employer
    sessions: sessionmaker = field(kw_only=True)

    # ------------------------------------------------------------ one method per update

    async def apply(self, body: schemas.ApplicationIn) -> InternshipState:
        await self._refuse_own_posting(Action.APPLY, chosen=None)
        accepted = await self._accepted_terms(body)
        return await self._update(
            InternshipWorkflow.apply, Application(self.by, body.pitch, accepted)
        )

    async def select(self, body: schemas.SelectionIn) -> InternshipState:
        await self._refuse_own_posting(Action.SELECT, chosen=body.launcher_id)
        return await self._update(InternshipWorkflow.select, Selection(self.by, body.launcher_id))

    async def kickoff(self, body: schemas.KickoffIn) -> InternshipState:
        if needs_card(self.employer):
            raise ApiError(
                402, "no_card", "Add a card before kicking off: the fee is charged at kickoff"
            )
        accepted = await self._accepted_terms(body)
        return await self._update(InternshipWorkflow.kickoff, Kickoff(self.by, accepted))

    async def submit(self, body: schemas.SubmissionIn) -> InternshipState:
        url = str(body.url) if body.url else ""
        if not body.files:
            return await self._update(
                InternshipWorkflow.submit, Submission(self.by, url, body.note)
            )
        # The files are attached to the round first (a retry finds them attached to it), and
        # let go again if the workflow refuses the submission.
        round_ = len((await read(self.workflows, self.internship_id, self.by)).submissions) + 1
        await self._files(body.files, round_)
        try:
            return await self._update(
                InternshipWorkflow.submit, Submission(self.by, url, body.note, list(body.files))
            )
        except ApiError:
            await self._files(body.files, None)
            raise

    async def _files(self, ids: list[int], round_: int | None) -> None:
        def work() -> None:
            with self.sessions.begin() as db:
                if round_ is None:
                    conversations.detach_submission(db, ids, self.internship_id)
                else:
                    conversations.attach(
                        db,
                        ids,
                        self.internship_id,
                        conversations.reader_of(self.by),
                        submission_round=round_,
                    )

        try:
            await run_in_threadpool(work)
        except conversations.Refused as err:
            raise ApiError(422, "invalid_files", err.message, {"field": "files"}) from err

    async def review(self, body: schemas.ReviewIn) -> InternshipState:
        return await self._update(
            InternshipWorkflow.review, Review(self.by, body.decision, body.feedback)
        )

    async def extend(self, body: schemas.ExtensionIn) -> InternshipState:
        return await self._update(InternshipWorkflow.extend, Extension(self.by, body.due_at))

    async def cancel(self, body: schemas.CancellationIn) -> InternshipState:
        return await self._update(
            InternshipWorkflow.cancel, Cancellation(self.by, body.reason, body.refund)
        )

    async def withdraw(self) -> InternshipState:
        return await self._update(InternshipWorkflow.withdraw, Withdrawal(self.by))

    async def open_dispute(self, body: schemas.DisputeIn) -> InternshipState:
        return await self._update(InternshipWorkflow.open_dispute, Dispute(self.by, body.reason))

    async def resolve(self, body: schemas.ResolutionIn) -> InternshipState:
        resolution = Resolution(self.by, body.outcome, body.launcher_percent, body.note)
        return await self._update(InternshipWorkflow.resolve, resolution)

    async def feedback(self, body: schemas.FeedbackIn) -> InternshipState:
        await self._refuse_own_posting(Action.FEEDBACK, chosen=None)
        return await self._update(
            InternshipWorkflow.feedback, Feedback(self.by, body.rating, body.comment)
        )

    async def invite(self, body: schemas.InvitationIn) -> InternshipState:
        """Ask a launcher to apply: one who turned invitations off, or is unknown, is refused
        before the workflow is asked."""
        refused = await run_in_threadpool(_not_invitable, self.sessions, body.launcher_id)
        if refused:
            raise ApiError(409, "not_invitable", refused, {"launcher_id": body.launcher_id})
        return await self._update(InternshipWorkflow.invite, Invitation(self.by, body.launcher_id))

    async def decline(self) -> InternshipState:
        return await self._update(InternshipWorkflow.decline, Declination(self.by))

    async def take(self, action: Action, body: BaseModel | None) -> InternshipState:
        """The step a page's form names (`/internships/{id}/{action}`), with its parsed form
        (`api.web.pages.FORMS[action]`)."""
        match action:
            case Action.APPLY:
                return await self.apply(_as(body, schemas.ApplicationIn))
            case Action.SELECT:
                return await self.select(_as(body, schemas.SelectionIn))
            case Action.KICKOFF:
                return await self.kickoff(_as(body, schemas.KickoffIn))
            case Action.SUBMIT:
                return await self.submit(_as(body, schemas.SubmissionIn))
            case Action.REVIEW:
                return await self.review(_as(body, schemas.ReviewIn))
            case Action.EXTEND:
                return await self.extend(_as(body, schemas.ExtensionIn))
            case Action.CANCEL:
                return await self.cancel(_as(body, schemas.CancellationIn))
            case Action.WITHDRAW:
                return await self.withdraw()
            case Action.DISPUTE:
                return await self.open_dispute(_as(body, schemas.DisputeIn))
            case Action.RESOLVE:
                return await self.resolve(_as(body, schemas.ResolutionIn))
            case Action.FEEDBACK:
                return await self.feedback(_as(body, schemas.FeedbackIn))
            case Action.INVITE:
                return await self.invite(_as(body, schemas.InvitationIn))
            case Action.DECLINE:
                return await self.decline()

    # ------------------------------------------------------------ how each is asked

    async def _accepted_terms(self, body: schemas.TermsAccepted) -> str:
        """The hash of the terms the caller accepts (`core.terms`): the one they read and name
        (`terms_hash`: the workflow refuses it, 409 `terms_changed`, if it is not this
        internship's), else this internship's, read from its workflow now."""
        if body.terms_hash:
            return body.terms_hash
        return terms_in(await read(self.workflows, self.internship_id, self.by)).hash

    async def _update(self, update: Update, request: Any) -> InternshipState:
        """Run one transition and answer with the state after it, as the caller may read it;
        the workflow's refusal becomes the matching API error. With a key the update has an id
        of its own, so Temporal runs a retried one once."""
        by = self.by
        # A member's key is their own: two colleagues' keys never name one update.
        update_id = f"{by.role}:{by.member_id or by.id}:{self.key}" if self.key else None
        try:
            return await self.workflows.update(self.internship_id, update, request, update_id)
        except Refused as refused:
            raise refusal_error(refused.kind, refused.message, refused.details) from refused
        except NoSuchRun as err:
            # Either no such internship, or it has finished: a finished one answers queries.
            state = await read(self.workflows, self.internship_id, by)
            raise ApiError(
                409,
                "invalid_stage",
                f"the internship is {state.stage.value}; nothing more can happen to it",
                {"stage": state.stage.value, "allowed_actions": []},
            ) from err

    async def _refuse_own_posting(self, action: Action, chosen: str | None) -> None:
        """403 `own_posting` if the launcher concerned (the caller applying or rating, the one
        an employer selects, the one an employer rates) is the employer who posted it."""
        one = await run_in_threadpool(
            _same_person_on_both_sides, self.sessions, self.internship_id, self.by, chosen
        )
        if one is None:  # not projected yet (posted moments ago): the workflow knows
            try:
                state = await self.workflows.state(self.internship_id)
            except NoSuchRun:
                return  # the update will answer (404)
            employer_id = state.posting.employer_id
            launcher_id = _concerned(self.by, employer_id, state.launcher_id, chosen)
            one = launcher_id is not None and await run_in_threadpool(
                _are_one, self.sessions, employer_id, launcher_id
            )
        if one:
            raise ApiError(403, "own_posting", OWN_POSTING[action], {"action": action.value})


def _not_invitable(sessions: sessionmaker, launcher_id: str) -> str | None:
    with sessions() as db:
        launcher = db.get(Launcher, launcher_id)
    if launcher is None:
        return "There is no launcher with this id: invite one from their portfolio or the list"
    if not launcher.takes_invitations:
        return (
            f"{launcher.name} has turned invitations off: share the posting with them another "
            "way, or invite someone else"
        )
    return None


def _as(body: BaseModel | None, model: type[Body]) -> Body:
    if not isinstance(body, model):
        raise TypeError(f"expected {model.__name__}, got {type(body).__name__}")
    return body


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


async def retry_payment(
    workflows: InternshipWorkflows, internship_id: str, by: Actor
) -> InternshipState:
    """Send the workflow ops' `retry_payment` signal if a refused payment waits for it (409
    otherwise); returns the internship as it stands once the signal is in."""
    state = await read(workflows, internship_id, by)
    if by.role != Role.OPS:
        raise ApiError(403, "forbidden", "Only ops may retry a refused payment")
    if not rulebook.may_retry_payment(state, by):
        raise _nothing_to_retry(state, by)
    try:
        await workflows.retry_payment(internship_id, by)
    except NoSuchRun as err:
        # It finished in the meantime: nothing waits for a retry any more.
        raise _nothing_to_retry(await read(workflows, internship_id, by), by) from err
    return await read(workflows, internship_id, by)


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


async def payout_account_ready(
    workflows: InternshipWorkflows, sessions: sessionmaker, launcher_id: str
) -> None:
    """Tell every internship waiting to pay the launcher that it may try again."""
    waiting = await reads.run(sessions, reads.waiting_for_payout, launcher_id)
    for internship_id in waiting:
        # A workflow that finished meanwhile has nothing waiting any more.
        with contextlib.suppress(NoSuchRun, RPCError):
            await workflows.payout_account_ready(internship_id)
