"""The pages people work in: dashboards, postings, one internship with what the viewer may do,
the ops queue and public portfolios.

A thin adapter, like the JSON routers: each handler parses the request (a form, checked for its
CSRF token and spent once), calls the application layer (`api.service`) and renders a page with
a typed context (one dataclass per template, below its handler). A form's action names the
step: `POST /internships/{id}/kickoff` calls `Transitions.take(Action.KICKOFF)`, which calls
`Transitions.kickoff`, which runs the workflow's `kickoff` update. A refusal, or losing a race
to someone else, comes back as a message on the internship's page, which shows the fresh state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, get_args

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import FormData

from api import schemas
from api.deps import Caller, DbDep, SessionsDep, SettingsDep, WorkflowsDep
from api.errors import ApiError, not_found, refusal_error
from api.routers.conversations import reports_waiting
from api.service import conversations, internships, reads, search
from api.service.conversations import ThreadSummary
from api.service.internships import Transitions
from api.service.views import InternshipView, ResolutionAmounts, internship_view, resolution_amounts
from api.web import conversations as web_conversations
from api.web import search_pages, session
from api.web.forms import NOTHING_TYPED, Problems, Typed, fields, problems_of, read_form
from api.web.render import PageContext, page, redirect
from api.web.session import (
    MaybeViewer,
    OpsViewer,
    SignedInLauncher,
    SignedInPoster,
    Viewer,
)
from core import identity, rulebook, zones
from core.conversations import FileView
from core.db import Internship, Launcher
from core.formats import format_money
from core.internship import Action, Actor, InternshipState, Role, Stage
from core.rulebook import OrgRight

router = APIRouter(include_in_schema=False)
InternshipId = Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
LauncherId = Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")

CATEGORIES: list[str] = list(get_args(schemas.Category))
_an_id = TypeAdapter(schemas.Id)

# What the viewer is told once their action went through.
DISPUTED_INSTEAD = (
    "Work was already delivered, so your cancellation went to ops as a dispute: nothing is "
    "refunded unless they decide so. The page says by when and what happens by default."
)
DONE = {
    Action.APPLY: "Your application is in. The employer has been told.",
    Action.SELECT: "Launcher selected. Kick off when you're ready: that's when the fee is charged.",
    Action.KICKOFF: "Kicked off: the fee was charged and the clock is running.",
    Action.SUBMIT: "Your work is submitted for review.",
    Action.REVIEW: "Your review is sent.",
    Action.EXTEND: "The due date is extended.",
    Action.CANCEL: "The internship is cancelled.",
    Action.WITHDRAW: "You have withdrawn.",
    Action.DISPUTE: "Your dispute is open; ops will look at it.",
    Action.RESOLVE: "The dispute is resolved.",
    Action.FEEDBACK: "Thanks for your rating.",
    Action.INVITE: "Invitation sent: they are emailed, and their dashboard shows it.",
    Action.DECLINE: "You declined the invitation. The employer has been told.",
}

# The form each step's page form is parsed into (the same models as the JSON API's bodies).
FORMS: dict[Action, type[BaseModel] | None] = {
    Action.APPLY: schemas.ApplicationIn,
    Action.SELECT: schemas.SelectionIn,
    Action.KICKOFF: schemas.KickoffIn,
    Action.SUBMIT: schemas.SubmissionIn,
    Action.REVIEW: schemas.ReviewIn,
    Action.EXTEND: schemas.ExtensionIn,
    Action.CANCEL: schemas.CancellationIn,
    Action.WITHDRAW: None,
    Action.DISPUTE: schemas.DisputeIn,
    Action.RESOLVE: schemas.ResolutionIn,
    Action.FEEDBACK: schemas.FeedbackIn,
    Action.INVITE: schemas.InvitationIn,
    Action.DECLINE: None,
}


# ---------------------------------------------------------------- home and dashboards


@dataclass(frozen=True)
class HomePage(PageContext):
    """What the service is, for someone not signed in."""

    template: ClassVar[str] = "home.html"


@router.get("/", response_class=HTMLResponse)
def home(request: Request, viewer: MaybeViewer) -> Response:
    if viewer is not None:
        return redirect("/dashboard")
    return page(request, viewer, HomePage())


@dataclass(frozen=True)
class EmployerDashboard(PageContext):
    """An employer's internships: what needs them, then every one by group."""

    template: ClassVar[str] = "dashboard_employer.html"
    todo: list[reads.DashboardRow]
    items: list[reads.DashboardRow]
    groups: list[tuple[str, list[reads.DashboardRow]]]
    needs_card: bool  # no card on file yet: kickoffs would be refused
    company: str  # the organisation's name
    mine: bool  # only the internships the viewer posted
    may_post: bool  # the viewer's role posts internships
    may_add_card: bool  # the viewer's role manages the card (others ask an admin)
    # Conversations with unread messages or waiting for the member's answer; unread per
    # internship and in all.
    threads: list[reads.ThreadNews] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)
    unread_total: int = 0


@dataclass(frozen=True)
class LauncherDashboard(PageContext):
    """A launcher's work, open applications and the postings that fit them best."""

    template: ClassVar[str] = "dashboard_launcher.html"
    todo: list[reads.DashboardRow]
    items: list[reads.DashboardRow]
    applications: list[Internship]
    recommended: list[schemas.RecommendationOut]
    needs_payouts: bool  # payouts not set up yet: approved work would wait
    invitations: list[Internship] = field(default_factory=list)  # open, not answered yet
    # Conversations with unread messages or waiting for the launcher's answer; unread per
    # internship and in all.
    threads: list[reads.ThreadNews] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)
    unread_total: int = 0


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request, viewer: Viewer, sessions: SessionsDep, mine: bool = False
) -> Response:
    """`mine`: an employer's member sees only what they posted (else the organisation's)."""
    if viewer.actor.role == Role.OPS:
        return redirect("/ops")
    found = await reads.run(sessions, reads.dashboard, viewer.actor, viewer.launcher, mine)
    context: PageContext
    if viewer.launcher is not None:
        invited = await reads.run(sessions, reads.open_invitations, viewer.launcher.id)
        answer = [reads.DashboardRow(row, "Answer the invitation", 0) for row in invited]
        context = LauncherDashboard(
            todo=answer + found.todo,
            items=found.rows,
            applications=found.applications,
            recommended=found.recommended,
            needs_payouts=not viewer.launcher.payouts_enabled,
            invitations=invited,
            threads=found.threads,
            unread=found.unread,
            unread_total=found.unread_total,
        )
    else:
        assert viewer.employer is not None
        context = EmployerDashboard(
            todo=found.todo,
            items=found.rows,
            groups=found.groups,
            needs_card=not viewer.employer.stripe_payment_method,
            company=viewer.employer.company,
            mine=mine,
            may_post=rulebook.member_may(viewer.actor, OrgRight.POST),
            may_add_card=rulebook.member_may(viewer.actor, OrgRight.CARD),
            threads=found.threads,
            unread=found.unread,
            unread_total=found.unread_total,
        )
    return page(request, viewer, context)


@dataclass(frozen=True)
class PostingsPage(PageContext):
    """Open postings for a launcher, the best fits first, with why they fit; searched by the
    form's words, category, skills, fee and duration (`search_pages.postings_search`)."""

    template: ClassVar[str] = "postings.html"
    ranked: list[schemas.RecommendationOut]
    applied: set[str]  # the internships the launcher applied to
    categories: list[str]
    values: dict[str, str]  # the search as typed
    errors: Problems  # beside each field that can't be used (and no postings shown)
    # The postings' companies (logo, website, description), by employer id.
    companies: dict[str, schemas.CompanyProfileOut]


@router.get("/postings", response_class=HTMLResponse)
async def postings(
    request: Request, viewer: Viewer, launcher: SignedInLauncher, sessions: SessionsDep
) -> Response:
    wanted, values, errors = search_pages.postings_search(request.query_params)
    if errors:
        context = PostingsPage([], set(), CATEGORIES, values, errors, {})
        return page(request, viewer, context, 422)
    ranked, applied = await reads.run(sessions, search.postings, launcher, wanted)
    employers = [r.internship.employer_id for r in ranked]
    companies = await reads.run(sessions, reads.companies, employers)
    context = PostingsPage(ranked, applied, CATEGORIES, values, errors, companies)
    return page(request, viewer, context)


# ---------------------------------------------------------------- posting


@dataclass(frozen=True)
class PostingForm(PageContext):
    """The posting form, with what was typed and a message beside each field to fix."""

    template: ClassVar[str] = "posting_form.html"
    values: dict[str, str]
    errors: Problems
    categories: list[str]
    min_hourly: int  # the fee floor per estimated hour, in cents


@router.get(
    "/internships/new",
    response_class=HTMLResponse,
    dependencies=[Depends(session.employer_with(OrgRight.POST))],
)
def new_posting(request: Request, viewer: Viewer) -> Response:
    return _posting_form(request, viewer, {"currency": "usd", "duration_days": "14"}, {})


def _posting_form(
    request: Request, viewer: Caller, values: dict[str, str], errors: Problems, status: int = 200
) -> Response:
    min_hourly = request.app.state.settings.min_hourly_fee_cents
    return page(request, viewer, PostingForm(values, errors, CATEGORIES, min_hourly), status)


def _cents(value: str) -> int | None:
    try:
        amount = Decimal(value.replace(",", "").replace("$", "").strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        return None
    return int(amount * 100)


@router.post("/internships/new", response_class=HTMLResponse)
async def post_internship(
    request: Request,
    viewer: Viewer,
    poster: SignedInPoster,
    workflows: WorkflowsDep,
    settings: SettingsDep,
    sessions: SessionsDep,
) -> Response:
    by, employer = poster.actor, poster.employer
    assert employer is not None
    form = await read_form(request)
    values = fields(form)
    data: dict[str, Any] = {k: v for k, v in values.items() if k != "fee"}
    data["skills"] = [s.strip() for s in values.get("skills", "").split(",")]
    errors: Problems = {}
    cents = _cents(values.get("fee", ""))
    if cents is None:
        errors["fee"] = "Enter the fee in whole currency units, like 400 or 400.50"
    else:
        data["fee_cents"] = cents
    try:
        body = schemas.InternshipIn.model_validate(data, strict=False)
    except ValidationError as err:
        problems = problems_of(err)
        if "fee_cents" in problems:
            problems.setdefault("fee", problems.pop("fee_cents"))
        errors = {**problems, **errors}
    if errors:
        return _posting_form(request, viewer, values, errors, 422)
    try:
        key = await session.spend_form_key(request, form)
    except session.FormAlreadySent as sent:
        session.flash(request, "That form was already sent: here is the internship it posted.")
        posted = internships.posting_id(by.member_id or by.id, f"web:{sent.nonce}")
        return redirect(f"/internships/{posted}")
    internship_id = internships.posting_id(by.member_id or by.id, f"web:{key}")
    try:
        await internships.post(workflows, sessions, settings, employer, by, body, internship_id)
    except ApiError as err:
        if err.details.get("field") != "fee_cents":
            return _posting_form(request, viewer, values, {"form": err.message}, err.status)
        floor = format_money(err.details["minimum_cents"], body.currency)
        hourly = format_money(settings.min_hourly_fee_cents, body.currency)
        hours = body.estimated_hours
        problem = f"The fee must be at least {floor}: {hourly} for each of the {hours} hours"
        return _posting_form(request, viewer, values, {"fee": problem}, err.status)
    session.flash(request, "Your internship is posted. Launchers can apply now.")
    return redirect(f"/internships/{internship_id}")


# ---------------------------------------------------------------- one internship

# The partials of the steps (core/templates/web/internship/<name>.html), in page order: the
# main steps first, then the side exits, each folded away. All but `payment_retry` (ops' retry
# of a refused payment, a signal) are named after the action they send.
STEP_PARTIALS = [
    Action.SELECT.value,
    Action.INVITE.value,
    Action.APPLY.value,
    Action.DECLINE.value,
    Action.KICKOFF.value,
    Action.SUBMIT.value,
    Action.REVIEW.value,
    Action.RESOLVE.value,
    "payment_retry",
    Action.FEEDBACK.value,
    Action.EXTEND.value,
    Action.DISPUTE.value,
    Action.WITHDRAW.value,
    Action.CANCEL.value,
]


@dataclass(frozen=True)
class InternshipPage(PageContext):
    """One internship as the viewer may see it (`v`, `api.service.views.InternshipView`), the
    forms of the steps they may take (`actions`: one partial each), and who is involved."""

    template: ClassVar[str] = "internship.html"
    v: InternshipView
    actions: list[str]  # the partials to show, in page order
    ranked: list[schemas.RankedApplicantOut] | None  # for those who choose among applicants
    launcher_name: str  # the selected launcher, for the parties
    card_label: str  # the employer's card kickoff charges ("" for anyone else)
    needs_card: bool  # an employer with no card: kickoff asks for one first
    contacts: schemas.ContactsOut | None  # ops: how to reach the parties
    workflow_url: str  # ops: the workflow in the Temporal UI ("" for anyone else)
    # A step's form that was sent and refused, with what was typed (each partial asks for its
    # own: `typed.of("applications")`).
    typed: Typed
    # Ops' resolution, its amounts shown before they confirm it (None until they ask).
    resolution: ResolutionAmounts | None
    company: schemas.CompanyProfileOut | None  # the posting's company profile
    # Names of the employer's members who posted and acted, by member id (the organisation
    # and ops; empty for launchers, who read the company's name).
    members: dict[str, str]
    # The owner inviting launchers: who fits (while they may invite) and who was invited.
    candidates: list[schemas.CandidateOut] = field(default_factory=list)
    invitees: list[reads.Invitee] = field(default_factory=list)
    # The owner of completed work: their open postings to invite its launcher to again (None:
    # not offered).
    invite_again: InviteTo | None = None
    # The conversations the viewer may read (`api.service.conversations.thread_summaries`): the
    # launcher's own with the company (`own_thread`), or every launcher's for the organisation
    # and ops, the selected one first.
    threads: list[ThreadSummary] = field(default_factory=list)
    own_thread: bool = False
    # The submissions' files, by id (`v.submissions[].files` holds the ids).
    files: dict[int, FileView] = field(default_factory=dict)
    # Ops, on a dispute: the messages posted while it was open, in every thread (None: not
    # shown).
    dispute_messages: list[reads.DisputeMessage] | None = None
    files_hint: str = ""  # what the forms' file inputs take


@dataclass(frozen=True)
class InviteTo:
    """A form inviting one launcher to one of the viewer's open postings (`postings`; none:
    a link to post one, if they may)."""

    launcher_id: str
    postings: list[Internship]
    may_post: bool
    back: str  # the page to come back to if it is refused


async def _invite_again(
    sessions: SessionsDep, state: InternshipState, by: Actor
) -> InviteTo | None:
    """For the owner of completed work who may invite, the postings to invite its launcher to."""
    work_done = state.stage == Stage.COMPLETED and state.launcher_id is not None
    if not (work_done and rulebook.relation(state, by) == rulebook.Relation.OWNER):
        return None
    if not rulebook.member_may(by, OrgRight.LIFECYCLE):
        return None
    assert state.launcher_id is not None
    postings = await reads.run(sessions, reads.invitable_postings, by, state.launcher_id)
    here = f"/internships/{state.posting.internship_id}"
    return InviteTo(state.launcher_id, postings, rulebook.member_may(by, OrgRight.POST), here)


@router.get("/internships/{internship_id}", response_class=HTMLResponse)
async def internship_page(
    request: Request,
    viewer: Viewer,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    internship_id: str = InternshipId,
) -> Response:
    return await _internship_page(request, viewer, workflows, sessions, internship_id)


async def _internship_page(
    request: Request,
    viewer: Caller,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    internship_id: str,
    typed: Typed = NOTHING_TYPED,
    status: int = 200,
    resolving: schemas.ResolutionIn | None = None,
) -> Response:
    state = await internships.read(workflows, internship_id, viewer.actor)
    v = internship_view(state, viewer.actor)
    people = await reads.run(sessions, reads.people, state, viewer.actor)
    inviting = Action.INVITE.value in v.allowed_actions
    candidates = await reads.run(sessions, reads.candidates, state) if inviting else []
    sees_all = rulebook.visibility(state, viewer.actor).all_applicants
    invitees = await reads.run(sessions, reads.invitees, state) if sees_all else []
    settings = request.app.state.settings
    allowed = set(v.allowed_actions) | ({"payment_retry"} if v.may_retry_payment else set())
    employer = viewer.employer
    threads = await conversations.thread_summaries(sessions, state, viewer.actor)
    delivered = [i for x in v.submissions for i in x.files]
    files = await reads.run(sessions, reads.files_named, internship_id, delivered)
    ops = viewer.actor.role == Role.OPS
    disputed = ops and state.dispute is not None
    in_dispute = (
        await reads.run(sessions, reads.dispute_messages, internship_id) if disputed else None
    )
    context = InternshipPage(
        v=v,
        actions=[name for name in STEP_PARTIALS if name in allowed],
        ranked=people.ranked,
        launcher_name=people.launcher_name,
        card_label=employer.card_label if employer and employer.card_label else "",
        needs_card=internships.needs_card(employer),
        contacts=people.contacts,
        company=people.company,
        members=people.members,
        workflow_url=f"{settings.temporal_ui_url.rstrip('/')}/namespaces/"
        f"{settings.temporal_namespace}/workflows/internship-{internship_id}"
        if ops
        else "",
        typed=typed,
        resolution=resolution_amounts(state, resolving.outcome, resolving.launcher_percent)
        if resolving
        else None,
        candidates=candidates,
        invitees=invitees,
        invite_again=await _invite_again(sessions, state, viewer.actor),
        threads=threads,
        own_thread=viewer.actor.role == Role.LAUNCHER,
        files=files,
        dispute_messages=in_dispute,
        files_hint=web_conversations.files_hint(settings),
    )
    return page(request, viewer, context, status)


async def _asked(
    request: Request,
    form: FormData,
    viewer: Caller,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    internship_id: str,
) -> Transitions | None:
    """A step's form sent once: its one-time key spent (the step's update id), the workflow
    asked on the viewer's behalf. None for a form sent before (said in a flash)."""
    try:
        key = await session.spend_form_key(request, form)
    except session.FormAlreadySent:
        session.flash(request, "That form was already sent, so nothing more was done.", "info")
        return None
    return Transitions(
        workflows, internship_id, viewer.actor, f"web:{key}", viewer.employer, sessions=sessions
    )


@router.post("/internships/{internship_id}/payment-retry")
async def retry_payment(
    request: Request, viewer: Viewer, workflows: WorkflowsDep, internship_id: str = InternshipId
) -> Response:
    await read_form(request)
    try:
        await internships.retry_payment(workflows, internship_id, viewer.actor)
    except ApiError as err:
        session.flash(request, err.message, "error")
    else:
        session.flash(request, "Retrying the payment now.")
    return redirect(f"/internships/{internship_id}")


def _end_of_day(picked: str, viewer: Caller) -> str:
    """A date picked on a form as the moment it means: 23:59 that day in the picker's zone
    (what isn't a date goes on as typed, for the form's own refusal)."""
    try:
        day = date.fromisoformat(picked)
    except ValueError:
        return picked
    return zones.end_of_day(day, viewer.time_zone).isoformat()


@router.post("/internships/{internship_id}/{action}")
async def act(
    request: Request,
    action: Action,
    viewer: Viewer,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    internship_id: str = InternshipId,
) -> Response:
    """One step's form: `action` names it (`kickoff`, `submissions`, ...). A form refused, by
    a mistake in it or by the workflow, comes back on the page with what was typed in it."""
    form = await read_form(request)
    here = f"/internships/{internship_id}"
    values = fields(form)
    data: dict[str, Any] = dict(values)
    if due_date := data.pop("due_date", None):  # a date picker: the end of that day, theirs
        data["due_at"] = _end_of_day(str(due_date), viewer)
    confirmed = data.pop("confirmed", None)  # the resolution ops saw the amounts of
    if action == Action.INVITE:  # a portfolio's address pasted in works as well as the id
        data["launcher_id"] = str(data.get("launcher_id", "")).strip().rstrip("/").split("/")[-1]
    uploads = web_conversations.chosen_files(form) if action == Action.SUBMIT else []

    async def refused(errors: Problems, status: int) -> Response:
        if "due_at" in errors:  # the date picker's field
            errors["due_date"] = errors.pop("due_at")
        if uploads and "files" not in errors:
            errors["files"] = web_conversations.CHOOSE_AGAIN
        if "form" in errors:
            message = errors.pop("form").rstrip(".") + ". Nothing was changed."
        else:
            message = "Nothing was sent: please fix what is marked below."
        session.flash(request, message, "error")
        typed = Typed(action.value, values, errors)
        return await _internship_page(
            request, viewer, workflows, sessions, internship_id, typed, status
        )

    if uploads:  # counted now, each replaced by its id once kept
        data["files"] = list(range(1, len(uploads) + 1))
    model = FORMS[action]
    try:
        body = model.model_validate(data, strict=False) if model else None
    except ValidationError as err:
        return await refused(_terms_unticked(_delivered(problems_of(err))), 422)
    sent, problem = await web_conversations.checked_files(uploads, request.app.state.settings)
    if problem:
        return await refused({"files": problem}, 422)
    if isinstance(body, schemas.ResolutionIn) and confirmed != (
        f"{body.outcome}:{body.launcher_percent}"
    ):  # ops see what this outcome moves, in money, before confirming it
        typed = Typed(action.value, values)
        return await _internship_page(
            request, viewer, workflows, sessions, internship_id, typed, resolving=body
        )
    ask = await _asked(request, form, viewer, workflows, sessions, internship_id)
    if ask is None:
        return redirect(here)
    try:
        if isinstance(body, schemas.SubmissionIn) and sent:
            body = body.model_copy(update={"files": await _kept(ask, sent, request)})
        state = await ask.take(action, body)
    except ApiError as err:
        if err.status == 404:
            raise
        if err.code == "no_card":
            session.flash(request, err.message, "error")
            return redirect("/card")
        field = str(err.details.get("field") or "form")
        return await refused({field if field in data else "form": err.message}, err.status)
    # What comes next by itself (the launcher's payout, then the rating) is waited for briefly.
    state = await internships.moved_on(workflows, internship_id, viewer.actor, state)
    if action == Action.CANCEL and state.disputed:  # delivered work: ops decide, not a refund
        session.flash(request, DISPUTED_INSTEAD, "info")
    else:
        session.flash(request, DONE[action])
    # A launcher who withdrew may no longer see the internship: their dashboard instead.
    return redirect("/dashboard" if action == Action.WITHDRAW else here)


# Beside the box an applicant or employer left unticked (`schemas.TermsAccepted`).
TICK_THE_TERMS = "Tick the box to accept the terms of this internship (read them below)."


def _terms_unticked(problems: Problems) -> Problems:
    """The terms not accepted: said beside the box, in the page's words (not the API's)."""
    if "accept_terms" in problems:
        problems["accept_terms"] = TICK_THE_TERMS
    return problems


def _delivered(problems: Problems) -> Problems:
    """A submission with neither a link nor a file: said beside the link."""
    if "form" in problems and "url" not in problems and "(url)" in problems["form"]:
        problems.pop("form")
        problems["url"] = "Give a link to the work, attach its files, or both."
    return problems


async def _kept(ask: Transitions, sent: list[tuple[str, bytes]], request: Request) -> list[int]:
    """The files of a submission, kept (`conversations.upload`) to be attached to it: once the
    rulebook would take the submission now (else its refusal, as the workflow would say it,
    and no file kept for nothing)."""
    state = await internships.read(ask.workflows, ask.internship_id, ask.by)
    if refused := rulebook.refusal(Action.SUBMIT, state, ask.by):
        details = rulebook.refusal_details(refused, state, ask.by)
        raise refusal_error(refused.kind, refused.message, details)
    app = request.app.state
    return [
        (
            await conversations.upload(
                ask.workflows,
                ask.sessions,
                app.files,
                app.settings,
                ask.internship_id,
                ask.by,
                name,
                data,
            )
        ).id
        for name, data in sent
    ]


# ---------------------------------------------------------------- ops and portfolios


@dataclass(frozen=True)
class OpsQueuePage(PageContext):
    """Everything that needs ops (`rulebook.needs_ops`), the longest waiting first, and the
    reports of messages waiting for their decision."""

    template: ClassVar[str] = "ops_queue.html"
    items: list[Internship]
    # Reports of messages waiting for ops' decision, oldest first.
    reports: list[schemas.ReportOut] = field(default_factory=list)


@router.get("/ops", response_class=HTMLResponse)
async def ops_queue(request: Request, viewer: OpsViewer, sessions: SessionsDep) -> Response:
    items = await reads.run(sessions, reads.ops_queue)
    reports = await reads.run(sessions, reports_waiting)
    return page(request, viewer, OpsQueuePage(items, reports))


@dataclass(frozen=True)
class PortfolioPage(PageContext):
    """A launcher's completed work and the ratings employers gave."""

    template: ClassVar[str] = "portfolio.html"
    portfolio: schemas.Portfolio
    public: bool  # shown to anyone, signed in or not
    own: bool  # the launcher's own: they may change who sees it
    # An employer's member who may invite: the form inviting them to one of their postings
    # (None: not offered), or why they can't be (`not_invitable`).
    invite_to: InviteTo | None = None
    not_invitable: str = ""


@router.get("/launchers/{launcher_id}", response_class=HTMLResponse)
def portfolio(
    request: Request,
    viewer: MaybeViewer,
    db: DbDep,
    launcher_id: str = Path(max_length=40),
) -> Response:
    """Completed work and the ratings employers gave: for anyone if the launcher made it
    public, else for signed-in employers and ops (and the launcher)."""
    found, public = reads.shown_portfolio(db, launcher_id, viewer.actor if viewer else None)
    if viewer is None and not (found and public):
        # Private and unknown look alike to a stranger: both ask to sign in.
        session.flash(
            request, "This portfolio is shown to signed-in employers: sign in to see it.", "info"
        )
        raise session.SignInRequired(request.url.path)
    if found is None:
        raise not_found("launcher")
    own = bool(viewer and viewer.launcher and viewer.launcher.id == launcher_id)
    if not (public or own or (viewer and viewer.actor.role in (Role.EMPLOYER, Role.OPS))):
        raise not_found("launcher")
    context = PortfolioPage(found, public, own)
    if viewer is not None and rulebook.member_may(viewer.actor, OrgRight.LIFECYCLE):
        context = _with_invitation(db, context, viewer.actor)
    return page(request, viewer, context)


def _with_invitation(db: DbDep, context: PortfolioPage, by: Actor) -> PortfolioPage:
    """The portfolio with the form inviting its launcher to one of `by`'s open postings, or
    why they can't be invited."""
    launcher_id = context.portfolio.launcher_id
    if identity.parties_are_one(db, by.id, launcher_id):
        return context  # nobody invites themself
    launcher = db.get(Launcher, launcher_id)  # read by the portfolio: no second query
    if launcher is None or not launcher.takes_invitations:
        name = context.portfolio.name
        return replace(context, not_invitable=f"{name} has turned invitations off.")
    postings = reads.invitable_postings(db, by, launcher_id)
    invite = InviteTo(
        launcher_id, postings, rulebook.member_may(by, OrgRight.POST), f"/launchers/{launcher_id}"
    )
    return replace(context, invite_to=invite)


@router.post("/launchers/{launcher_id}/invitations")
async def invite_launcher(
    request: Request,
    viewer: Viewer,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    launcher_id: str = LauncherId,
) -> Response:
    """Invite a launcher to one of the viewer's open postings, chosen in a list (from their
    portfolio, or the page of work they completed): the posting's page says it is done."""
    form = await read_form(request)
    back = session.safe_next(form.get("back"))
    try:
        internship_id = _an_id.validate_python(form.get("internship_id"))
        body = schemas.InvitationIn(launcher_id=launcher_id)
    except ValidationError:
        session.flash(request, "Choose one of your open postings to invite them to.", "error")
        return redirect(back)
    ask = await _asked(request, form, viewer, workflows, sessions, internship_id)
    if ask is None:
        return redirect(back)
    try:
        await ask.invite(body)
    except ApiError as err:
        session.flash(request, err.message.rstrip(".") + ". Nothing was sent.", "error")
        return redirect(back)
    session.flash(request, DONE[Action.INVITE])
    return redirect(f"/internships/{internship_id}")
