"""The pages people work in: dashboards, postings, one internship with what the viewer may do,
the ops queue and public portfolios.

Every action goes through the same workflow update as the API (`api.lifecycle.Transitions`),
and a page offers only what the rulebook allows its viewer. A refusal, or losing a race to
someone else, comes back as a message on the internship's page, which shows the fresh state.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, get_args

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from activities.notifications import format_money
from api import lifecycle, queries, schemas
from api.deps import Caller, SessionsDep, SettingsDep, TemporalDep
from api.errors import ApiError, not_found
from api.presenters import internship_summaries
from api.web import session
from api.web.forms import Problems, fields, problems_of, read_form
from api.web.render import page, redirect
from api.web.session import (
    MaybeViewer,
    OpsViewer,
    SignedInEmployer,
    SignedInLauncher,
    Viewer,
)
from core import rulebook
from core.db import Internship, Launcher, TimelineEvent
from core.internship import TERMINAL_STAGES, Action, Actor, InternshipState, Role, Stage

router = APIRouter(include_in_schema=False)
InternshipId = Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")

CATEGORIES: list[str] = list(get_args(schemas.Category))

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
}


# The newest internships a dashboard shows (the JSON list pages through all of them).
DASHBOARD_ROWS = 500

# The dashboards' sections, by stage.
GROUPS = [
    ("Open for applications", {Stage.POSTED}),
    (
        "Under way",
        {Stage.MATCHED, Stage.IN_PROGRESS, Stage.IN_REVIEW, Stage.APPROVED, Stage.SETTLING},
    ),
    ("Paid, awaiting ratings", {Stage.PAID}),
    ("Finished", set(TERMINAL_STAGES)),
]


def _needs(row: Internship, actor: Actor, applicants: int) -> str | None:
    """What this internship waits for from the viewer, if anything (their to-do line)."""
    stage = Stage(row.stage)
    if row.disputed:
        return None
    if actor.role == Role.EMPLOYER:
        return {
            Stage.POSTED: "Choose a launcher" if applicants else None,
            Stage.MATCHED: "Kick off the project",
            Stage.IN_REVIEW: "Review the submission",
            Stage.PAID: "Rate the launcher" if row.employer_rating is None else None,
        }.get(stage)
    if actor.role == Role.LAUNCHER:
        return {
            Stage.IN_PROGRESS: "Submit your work",
            Stage.PAID: "Rate the employer" if row.launcher_rating is None else None,
        }.get(stage)
    return None


def _applicant_counts(db: Session, ids: list[str]) -> dict[str, int]:
    """Launchers who applied, per internship (one query for the page)."""
    rows = db.execute(
        select(TimelineEvent.internship_id, func.count(func.distinct(TimelineEvent.actor_id)))
        .where(TimelineEvent.internship_id.in_(ids), TimelineEvent.event == "applied")
        .group_by(TimelineEvent.internship_id)
    )
    return {internship_id: count for internship_id, count in rows}


def _applied_to(db: Session, launcher_id: str) -> set[str]:
    return set(
        db.scalars(
            select(TimelineEvent.internship_id).where(
                TimelineEvent.event == "applied", TimelineEvent.actor_id == launcher_id
            )
        )
    )


# ---------------------------------------------------------------- home and dashboards


@router.get("/", response_class=HTMLResponse)
def home(request: Request, viewer: MaybeViewer) -> Response:
    if viewer is not None:
        return redirect("/dashboard")
    return page(request, "home.html", viewer)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    if viewer.actor.role == Role.OPS:
        return redirect("/ops")
    mine = select(Internship).where(queries.visible_to(viewer.actor))
    if viewer.launcher is not None:  # their work; open postings are on /postings
        mine = mine.where(Internship.launcher_id == viewer.launcher.id)
    with sessions() as db:
        rows = db.scalars(mine.order_by(Internship.posted_at.desc()).limit(DASHBOARD_ROWS)).all()
        counts = _applicant_counts(db, [r.id for r in rows])
        extra: dict[str, Any] = {}
        if viewer.launcher is not None:
            applied = _applied_to(db, viewer.launcher.id)
            extra["applications"] = db.scalars(
                select(Internship)
                .where(Internship.id.in_(applied), Internship.stage == Stage.POSTED.value)
                .order_by(Internship.posted_at.desc())
            ).all()
            extra["recommended"] = queries.recommendations(db, viewer.launcher, 3)
    items = [(r, _needs(r, viewer.actor, counts.get(r.id, 0)), counts.get(r.id, 0)) for r in rows]
    groups = [
        (title, [i for i in items if Stage(i[0].stage) in stages]) for title, stages in GROUPS
    ]
    return page(
        request,
        f"dashboard_{viewer.actor.role.value}.html",
        viewer,
        todo=[i for i in items if i[1]],
        items=items,
        groups=[(title, found) for title, found in groups if found],
        **extra,
    )


@router.get("/postings", response_class=HTMLResponse)
def postings(
    request: Request,
    viewer: Viewer,
    launcher: SignedInLauncher,
    sessions: SessionsDep,
    category: str | None = None,
    skill: str | None = None,
) -> Response:
    """Open postings for launchers, the best fits first, with why they fit."""
    category = category if category in CATEGORIES else None
    wanted = (skill or "").strip().lower()[:64]
    with sessions() as db:
        ranked = queries.recommendations(db, launcher, 100, category, wanted)
        applied = _applied_to(db, launcher.id)
    return page(
        request,
        "postings.html",
        viewer,
        ranked=ranked,
        applied=applied,
        categories=CATEGORIES,
        category=category or "",
        skill=wanted,
    )


# ---------------------------------------------------------------- posting


@router.get(
    "/internships/new",
    response_class=HTMLResponse,
    dependencies=[Depends(session.signed_in_employer)],
)
def new_posting(request: Request, viewer: Viewer) -> Response:
    return _posting_form(request, viewer, {"currency": "usd", "duration_days": "14"}, {})


def _posting_form(
    request: Request, viewer: Caller, values: dict[str, str], errors: Problems, status: int = 200
) -> Response:
    return page(
        request,
        "posting_form.html",
        viewer,
        status,
        values=values,
        errors=errors,
        categories=CATEGORIES,
        min_hourly=request.app.state.settings.min_hourly_fee_cents,
    )


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
    employer: SignedInEmployer,
    client: TemporalDep,
    settings: SettingsDep,
    sessions: SessionsDep,
) -> Response:
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
        return redirect(f"/internships/{lifecycle.posting_id(employer.id, f'web:{sent.nonce}')}")
    internship_id = lifecycle.posting_id(employer.id, f"web:{key}")
    try:
        await lifecycle.post(client, sessions, settings, employer, body, internship_id)
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


@router.get("/internships/{internship_id}", response_class=HTMLResponse)
async def internship_page(
    request: Request,
    viewer: Viewer,
    client: TemporalDep,
    sessions: SessionsDep,
    internship_id: str = InternshipId,
) -> Response:
    state = await lifecycle.read(client, internship_id, viewer.actor)
    sees = rulebook.visibility(state, viewer.actor)
    people = await queries.run(sessions, _people, state, sees.all_applicants)
    return page(
        request,
        "internship.html",
        viewer,
        s=state,
        p=state.posting,
        sees=sees,
        timeline=rulebook.timeline(state, viewer.actor),
        cancel_opens_dispute=rulebook.cancellation_opens_dispute(state, viewer.actor),
        dispute_deadline=rulebook.dispute_deadline(state),
        dispute_default=rulebook.dispute_default_outcome(state),
        allowed={a.value for a in rulebook.allowed_actions(state, viewer.actor)},
        may_retry_payment=rulebook.may_retry_payment(state, viewer.actor),
        may_withhold_refund=rulebook.may_withhold_refund(viewer.actor),
        has_card=bool(viewer.employer and viewer.employer.chargeable_card),
        # A launcher who can't apply because the posting is full is told so, not left guessing.
        full=rulebook.posting_full_message(state)
        if viewer.launcher and state.stage == Stage.POSTED and rulebook.posting_full(state)
        else "",
        share_cents=state.posting.fee_cents * state.posting.policy.launcher_share_percent // 100,
        **people,
    )


def _people(db: Session, state: InternshipState, all_applicants: bool) -> dict[str, Any]:
    """Names for the page: the ranked applicants (for those who choose), the selected launcher,
    and the parties' contacts (ops)."""
    launcher = db.get(Launcher, state.launcher_id) if state.launcher_id else None
    return {
        "ranked": queries.ranked_applicants(db, state) if all_applicants else [],
        "launcher": launcher,
        "contacts": queries.contacts(db, state.posting.employer_id, state.launcher_id),
    }


@router.post("/internships/{internship_id}/payment-retry")
async def retry_payment(
    request: Request, viewer: Viewer, client: TemporalDep, internship_id: str = InternshipId
) -> Response:
    await read_form(request)
    try:
        await lifecycle.retry_payment(client, internship_id, viewer.actor)
    except ApiError as err:
        session.flash(request, err.message, "error")
    else:
        session.flash(request, "Retrying the payment now.")
    return redirect(f"/internships/{internship_id}")


@router.post("/internships/{internship_id}/{action}")
async def act(
    request: Request,
    action: Action,
    viewer: Viewer,
    client: TemporalDep,
    internship_id: str = InternshipId,
) -> Response:
    form = await read_form(request)
    here = f"/internships/{internship_id}"
    data: dict[str, Any] = fields(form)
    if due_date := data.pop("due_date", None):  # a date picker: the end of that day, UTC
        data["due_at"] = f"{due_date}T23:59:00+00:00"
    step = lifecycle.STEPS[action]
    try:
        body = step.body.model_validate(data, strict=False) if step.body else None
    except ValidationError as err:
        problems = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in problems_of(err).items())
        session.flash(request, f"Nothing was changed. Please fix {problems}.", "error")
        return redirect(here)
    try:
        key = await session.spend_form_key(request, form)
    except session.FormAlreadySent:
        session.flash(request, "That form was already sent, so nothing more was done.", "info")
        return redirect(here)
    ask = lifecycle.Transitions(
        client,
        internship_id,
        viewer.actor,
        f"web:{key}",
        viewer.employer,
        sessions=request.app.state.sessions,
    )
    try:
        state = await ask(action, body)
    except ApiError as err:
        if err.status == 404:
            raise
        session.flash(request, err.message, "error")
        if err.code == "no_card":
            return redirect("/card")
        return redirect(here)
    if action == Action.CANCEL and state.disputed:  # delivered work: ops decide, not a refund
        session.flash(request, DISPUTED_INSTEAD, "info")
    else:
        session.flash(request, DONE[action])
    # A launcher who withdrew may no longer see the internship: their dashboard instead.
    return redirect("/dashboard" if action == Action.WITHDRAW else here)


# ---------------------------------------------------------------- ops and portfolios


@router.get("/ops", response_class=HTMLResponse)
def ops_queue(request: Request, viewer: OpsViewer, sessions: SessionsDep) -> Response:
    """Everything that needs ops, the longest waiting first."""
    with sessions() as db:
        rows = db.scalars(
            select(Internship)
            .where(
                Internship.stage.not_in([s.value for s in TERMINAL_STAGES]),
                or_(
                    Internship.escalation_level >= 2,
                    Internship.overdue,
                    Internship.disputed,
                    Internship.payment_refused,
                ),
            )
            .order_by(Internship.updated_at.asc())
            .limit(500)
        ).all()
        summaries = internship_summaries(db, rows)
    return page(request, "ops_queue.html", viewer, items=list(zip(rows, summaries, strict=True)))


@router.get("/launchers/{launcher_id}", response_class=HTMLResponse)
def portfolio(
    request: Request,
    viewer: MaybeViewer,
    sessions: SessionsDep,
    launcher_id: str = Path(max_length=40),
) -> Response:
    """Completed work and the ratings employers gave: for anyone if the launcher made it
    public, else for signed-in employers and ops (and the launcher)."""
    with sessions() as db:
        found = queries.portfolio(db, launcher_id)
        launcher = db.get(Launcher, launcher_id)  # read by the line above: no second query
    public = bool(launcher and launcher.portfolio_public)
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
    return page(request, "portfolio.html", viewer, portfolio=found, public=public, own=own)
