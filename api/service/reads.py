"""Every read of the database projection, for the JSON API and the pages alike (the internship
list and searching are `api.service.search`'s): summaries, dashboards, the ops queue,
rankings, recommendations, portfolios and contacts. Each takes an open session (`run` gives
one, off the event loop) and returns response models or plain rows; callers keep the session
short and never hold it while they wait on Temporal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.service import profiles
from core import conversations, matching, rulebook
from core.conversations import FileView
from core.db import (
    Attachment,
    Employer,
    Internship,
    InternshipInvitation,
    InternshipSkill,
    Launcher,
    Member,
    Message,
    OutboxEmail,
    Thread,
    TimelineEvent,
)
from core.internship import TERMINAL_STAGES, Actor, InternshipState, Role, Stage
from core.matching import Record

T = TypeVar("T")

# How many of the newest open postings recommendations choose from.
RECOMMEND_FROM = 200


async def run(sessions: sessionmaker, read: Callable[..., T], *args: Any) -> T:
    """Run one read in a short session on a worker thread, off the event loop."""

    def in_session() -> T:
        with sessions() as db:
            return read(db, *args)

    return await run_in_threadpool(in_session)


def in_scope(scope: rulebook.ListScope) -> ColumnElement[bool]:
    """`rulebook.in_scope` as SQL."""
    if scope.everything:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if scope.employer_id is not None:
        clauses.append(Internship.employer_id == scope.employer_id)
    if scope.launcher_id is not None:
        clauses.append(Internship.launcher_id == scope.launcher_id)
    if scope.open_postings:
        # An invitation-only posting is open to the launchers invited to it.
        invited = (
            exists().where(
                InternshipInvitation.internship_id == Internship.id,
                InternshipInvitation.launcher_id == scope.launcher_id,
            )
            if scope.launcher_id is not None
            else false()
        )
        clauses.append(
            and_(
                Internship.stage == Stage.POSTED.value,
                or_(Internship.invitation_only.is_(False), invited),
            )
        )
    return or_(false(), *clauses)


def visible_to(actor: Actor) -> ColumnElement[bool]:
    return in_scope(rulebook.list_scope(actor))


# ---------------------------------------------------------------- the internship list


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
        launcher_share_cents=row.launcher_share_cents,
        currency=row.currency,
        duration_days=row.duration_days,
        due_at=row.due_at,
        overdue=row.overdue,
        escalation_level=row.escalation_level,
        employer_id=row.employer_id,
        launcher_id=row.launcher_id,
        posted_at=row.posted_at,
    )


# ---------------------------------------------------------------- people


def ranked_applicants(db: Session, state: InternshipState) -> list[schemas.RankedApplicantOut]:
    """Applicants by fit (withdrawn last), each with the reasons for their score and their
    whole profile (for those who choose among applicants: the employer, ops)."""
    ids = [a.launcher_id for a in state.applicants]
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
                profile=profiles.launcher_profile(person, whole=True) if person else None,
            )
        )
    return sorted(ranked, key=lambda r: (r.withdrawn, -r.score, r.applied_at))


@dataclass(frozen=True)
class People:
    """Who an internship's page names, as far as its viewer may know them."""

    ranked: list[schemas.RankedApplicantOut] | None  # for those who choose among applicants
    launcher_name: str  # the selected launcher, for the parties ("" otherwise)
    contacts: schemas.ContactsOut | None  # how to reach the parties (ops)
    company: schemas.CompanyProfileOut | None = None  # the posting's company (None: unknown)
    # The employer's members the timeline names (who posted and who acted), by member id, for
    # the organisation and ops; launchers read the company only.
    members: dict[str, str] = field(default_factory=dict)


def people(db: Session, state: InternshipState, viewer: Actor) -> People:
    sees = rulebook.visibility(state, viewer)
    launcher = db.get(Launcher, state.launcher_id) if state.launcher_id and sees.work else None
    employer = db.get(Employer, state.posting.employer_id)
    return People(
        company=profiles.company_profile(employer) if employer else None,
        ranked=ranked_applicants(db, state) if sees.all_applicants else None,
        launcher_name=launcher.name if launcher else "",
        contacts=contacts(db, state.posting.employer_id, state.launcher_id)
        if viewer.role == Role.OPS
        else None,
        members=member_names(db, state) if sees.all_applicants else {},
    )


def member_names(db: Session, state: InternshipState) -> dict[str, str]:
    """The names of the members who posted the internship and acted on it (removed members
    too: the timeline keeps naming them)."""
    ids = {e.member_id for e in state.timeline if e.member_id}
    ids.add(state.posting.posted_by or state.posting.employer_id)
    found = db.execute(select(Member.id, Member.name).where(Member.id.in_(ids)))
    return {member_id: name for member_id, name in found}


# ---------------------------------------------------------------- postings for a launcher


def has_skill(skill: str) -> ColumnElement[bool]:
    """EXISTS, not IN: a newest-first scan stops after one page, probing each row's skill by the
    primary key, however many internships have the skill."""
    return (
        select(InternshipSkill.internship_id)
        .where(
            InternshipSkill.internship_id == Internship.id,
            InternshipSkill.skill == skill.lower(),
        )
        .exists()
    )


def recommendations(
    db: Session,
    launcher: Launcher,
    limit: int,
    category: str | None = None,
    skill: str | None = None,
) -> list[schemas.RecommendationOut]:
    """The newest open postings (of a category, with a skill) the launcher may see (not
    another's invitation-only posting), ranked by how well their skills fit (`ranked_for`)."""
    q = select(Internship).where(
        Internship.stage == Stage.POSTED.value, visible_to(Actor(Role.LAUNCHER, launcher.id))
    )
    if category:
        q = q.where(Internship.category == category)
    if skill:
        q = q.where(has_skill(skill))
    open_postings = db.scalars(q.order_by(Internship.posted_at.desc()).limit(RECOMMEND_FROM)).all()
    return ranked_for(db, launcher, open_postings)[:limit]


def ranked_for(
    db: Session, launcher: Launcher, rows: Sequence[Internship]
) -> list[schemas.RecommendationOut]:
    """Postings ranked by how well the launcher's skills fit them (newest first among
    equals, as `rows` come); the record part of the score is the launcher's own, the same
    for every posting."""
    record = matching.records(db, [launcher.id]).get(launcher.id, Record())
    ranked = []
    for summary in internship_summaries(db, rows):
        fit = matching.fit(summary.skills, launcher.skills, record)
        ranked.append(
            schemas.RecommendationOut(internship=summary, score=fit.score, reasons=fit.reasons)
        )
    ranked.sort(key=lambda r: -r.score)  # stable: newest first among equals
    return ranked


def companies(db: Session, employer_ids: Sequence[str]) -> dict[str, schemas.CompanyProfileOut]:
    """The companies of these employers, by employer id (as postings show them)."""
    rows = db.scalars(select(Employer).where(Employer.id.in_(set(employer_ids)))).all()
    return {e.id: profiles.company_profile(e) for e in rows}


# ---------------------------------------------------------------- portfolios and contacts


def portfolio(
    db: Session, launcher_id: str, viewer: Actor | None = None
) -> schemas.Portfolio | None:
    """A launcher's completed internships with the ratings employers gave, their average over
    employers (each employer's own average counted once), and their profile as `viewer` (None:
    not signed in) may read it; None if unknown."""
    launcher = db.get(Launcher, launcher_id)
    if launcher is None:
        return None
    completed_at = (
        select(TimelineEvent.at)
        .where(TimelineEvent.internship_id == Internship.id, TimelineEvent.event == "completed")
        .scalar_subquery()
    )
    rows = db.execute(
        select(Internship, completed_at)
        .where(Internship.launcher_id == launcher_id, Internship.stage == Stage.COMPLETED.value)
        .order_by(completed_at.desc())
    ).all()
    items = [
        schemas.PortfolioItem(
            internship_id=r.id,
            title=r.title,
            company=r.company,
            category=r.category,
            completed_at=at,
            rating=r.employer_rating,
            comment=r.employer_comment,
        )
        for r, at in rows
    ]
    # Each employer counts once: one employer rating many small internships weighs as one.
    mean = matching.average(
        matching.per_employer((r.employer_id, r.employer_rating) for r, _ in rows)
    )
    return schemas.Portfolio(
        launcher_id=launcher.id,
        name=launcher.name,
        skills=launcher.skills,
        completed=items,
        average_rating=round(mean, 2) if mean is not None else None,
        profile=profiles.profile_for(launcher, viewer),
    )


def shown_portfolio(
    db: Session, launcher_id: str, viewer: Actor | None = None
) -> tuple[schemas.Portfolio | None, bool]:
    """A launcher's portfolio (None if unknown) and whether they made its page public."""
    found = portfolio(db, launcher_id, viewer)
    launcher = db.get(Launcher, launcher_id)  # read by portfolio(): no second query
    return found, bool(launcher and launcher.portfolio_public)


def contacts(db: Session, employer_id: str, launcher_id: str | None) -> schemas.ContactsOut | None:
    """How to reach an internship's parties (ops only); None if the employer is unknown."""
    employer = db.get(Employer, employer_id)
    launcher = db.get(Launcher, launcher_id) if launcher_id else None
    if employer is None:
        return None
    return schemas.ContactsOut(
        employer=schemas.ContactOut(
            id=employer.id, name=employer.name, email=employer.email, company=employer.company
        ),
        launcher=schemas.ContactOut(id=launcher.id, name=launcher.name, email=launcher.email)
        if launcher
        else None,
    )


# ---------------------------------------------------------------- dashboards and the ops queue

# The newest internships a dashboard shows (the JSON list pages through all of them).
DASHBOARD_ROWS = 500
# The longest-waiting internships the ops queue shows.
OPS_QUEUE_ROWS = 500

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


class DashboardRow(NamedTuple):
    internship: Internship
    needs: str | None  # what it waits for from the viewer: their to-do line
    applicants: int  # launchers who applied
    link: str = ""  # where the to-do is done, if not the internship's page (a conversation)


@dataclass(frozen=True)
class ThreadNews:
    """A conversation with something for its reader: messages they have not read, or a
    message waiting for their answer (`waiting`: the other side wrote last, the thread is
    open and the reader may answer)."""

    internship: Internship
    launcher_id: str
    launcher_name: str
    unread: int
    waiting: bool

    @property
    def link(self) -> str:
        return f"/internships/{self.internship.id}/threads/{self.launcher_id}"


@dataclass(frozen=True)
class Dashboard:
    """An employer's or a launcher's internships: what needs them, then every row by group."""

    rows: list[DashboardRow]
    groups: list[tuple[str, list[DashboardRow]]]
    todo: list[DashboardRow]
    # A launcher's open applications and the postings recommended to them.
    applications: list[Internship] = field(default_factory=list)
    recommended: list[schemas.RecommendationOut] = field(default_factory=list)
    # Conversations with unread messages or waiting for the viewer's answer, newest first.
    threads: list[ThreadNews] = field(default_factory=list)

    @property
    def unread(self) -> dict[str, int]:
        """Unread messages per internship."""
        counts: dict[str, int] = {}
        for t in self.threads:
            counts[t.internship.id] = counts.get(t.internship.id, 0) + t.unread
        return counts

    @property
    def unread_total(self) -> int:
        return sum(t.unread for t in self.threads)


def dashboard(
    db: Session, viewer: Actor, launcher: Launcher | None, posted_by_me: bool = False
) -> Dashboard:
    """The newest internships the viewer may see (a launcher's: their work; open postings are
    on /postings), with what each waits for from them; `posted_by_me`: only those the viewer,
    a member of an employer, posted."""
    mine = select(Internship).where(visible_to(viewer))
    if launcher is not None:
        mine = mine.where(Internship.launcher_id == launcher.id)
    if posted_by_me and viewer.member_id:
        mine = mine.where(Internship.posted_by == viewer.member_id)
    found = db.scalars(mine.order_by(Internship.posted_at.desc()).limit(DASHBOARD_ROWS)).all()
    counts = _applicant_counts(db, [r.id for r in found])
    rows = [
        DashboardRow(r, needs(r, viewer, counts.get(r.id, 0)), counts.get(r.id, 0)) for r in found
    ]
    groups = [
        (title, [row for row in rows if Stage(row.internship.stage) in stages])
        for title, stages in GROUPS
    ]
    extra: dict[str, Any] = {}
    if launcher is not None:
        extra["applications"] = db.scalars(
            select(Internship)
            .where(
                Internship.id.in_(applied_to(db, launcher.id)),
                Internship.stage == Stage.POSTED.value,
            )
            .order_by(Internship.posted_at.desc())
        ).all()
        extra["recommended"] = recommendations(db, launcher, 3)
    threads = thread_news(db, viewer, posted_by_me)
    answer = [
        DashboardRow(t.internship, f"Answer {t.launcher_name or 'the launcher'}", 0, t.link)
        if viewer.role == Role.EMPLOYER
        else DashboardRow(t.internship, "Answer the message", 0, t.link)
        for t in threads
        if t.waiting
    ]
    return Dashboard(
        rows=rows,
        groups=[(title, some) for title, some in groups if some],
        todo=[row for row in rows if row.needs] + answer,
        threads=threads,
        **extra,
    )


def needs(row: Internship, actor: Actor, applicants: int) -> str | None:
    """What this internship waits for from the viewer, if anything (their to-do line)."""
    stage = Stage(row.stage)
    if row.disputed:
        return None
    if actor.role == Role.EMPLOYER:
        if not rulebook.member_acts_on_posting(actor, row.posted_by):
            return None  # a colleague's to do
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


# The conversations a dashboard looks through, the latest first.
DASHBOARD_THREADS = 500


def thread_news(db: Session, viewer: Actor, posted_by_me: bool = False) -> list[ThreadNews]:
    """The viewer's conversations (a launcher's own; every one of an employer's internships,
    or only of those the member posted) with unread messages or waiting for their answer."""
    if viewer.role not in (Role.EMPLOYER, Role.LAUNCHER):
        return []
    query = (
        select(Thread, Internship, Launcher.name)
        .join(Internship, Internship.id == Thread.internship_id)
        .join(Launcher, Launcher.id == Thread.launcher_id)
        .where(Thread.last_message_id > 0)
    )
    if viewer.role == Role.LAUNCHER:
        query = query.where(Thread.launcher_id == viewer.id)
    else:
        query = query.where(Internship.employer_id == viewer.id)
        if posted_by_me and viewer.member_id:
            query = query.where(Internship.posted_by == viewer.member_id)
    found = db.execute(query.order_by(Thread.last_message_id.desc()).limit(DASHBOARD_THREADS)).all()
    reader = conversations.reader_of(viewer)
    unread = conversations.unread_by_thread(db, reader, [t.id for t, _, _ in found])
    closed = _closed_applications(db, [(t.internship_id, t.launcher_id) for t, _, _ in found])
    news = []
    for thread, row, name in found:
        may_answer = viewer.role == Role.LAUNCHER or rulebook.member_acts_on_posting(
            viewer, row.posted_by
        )
        waiting = (
            thread.waiting_on == reader.role and _thread_open(thread, row, closed) and may_answer
        )
        if waiting or unread.get(thread.id):
            news.append(
                ThreadNews(row, thread.launcher_id, name, unread.get(thread.id, 0), waiting)
            )
    return news


def _thread_open(thread: Thread, row: Internship, closed: set[tuple[str, str]]) -> bool:
    """`rulebook.thread_open` over the projection: the selected launcher's thread until the
    internship ends; another's while the posting is open and they have not withdrawn their
    application or declined their invitation."""
    if Stage(row.stage) in TERMINAL_STAGES:
        return False
    if thread.launcher_id == row.launcher_id:
        return True
    return row.stage == Stage.POSTED.value and (row.id, thread.launcher_id) not in closed


def _closed_applications(db: Session, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of these (internship, launcher) pairs, those whose launcher withdrew their application
    or declined their invitation."""
    if not pairs:
        return set()
    internships = {i for i, _ in pairs}
    withdrawn = db.execute(
        select(TimelineEvent.internship_id, TimelineEvent.actor_id).where(
            TimelineEvent.internship_id.in_(internships),
            TimelineEvent.event == "application_withdrawn",
        )
    )
    declined = db.execute(
        select(InternshipInvitation.internship_id, InternshipInvitation.launcher_id).where(
            InternshipInvitation.internship_id.in_(internships),
            InternshipInvitation.answer == "declined",
        )
    )
    return {(i, lid) for i, lid in [*withdrawn, *declined]} & set(pairs)


def _applicant_counts(db: Session, ids: list[str]) -> dict[str, int]:
    """Launchers who applied, per internship (one query for the page)."""
    rows = db.execute(
        select(TimelineEvent.internship_id, func.count(func.distinct(TimelineEvent.actor_id)))
        .where(TimelineEvent.internship_id.in_(ids), TimelineEvent.event == "applied")
        .group_by(TimelineEvent.internship_id)
    )
    return {internship_id: count for internship_id, count in rows}


def applied_to(db: Session, launcher_id: str) -> set[str]:
    """The internships a launcher has applied to."""
    return set(
        db.scalars(
            select(TimelineEvent.internship_id).where(
                TimelineEvent.event == "applied", TimelineEvent.actor_id == launcher_id
            )
        )
    )


def needs_ops() -> ColumnElement[bool]:
    """`rulebook.needs_ops` as SQL."""
    return and_(
        Internship.stage.not_in([s.value for s in TERMINAL_STAGES]),
        or_(
            Internship.escalation_level >= rulebook.OPS_ESCALATION,
            Internship.overdue,
            Internship.disputed,
            Internship.payment_refused,
        ),
    )


def ops_queue(db: Session) -> list[Internship]:
    """Everything that needs ops, the longest waiting first."""
    return list(
        db.scalars(
            select(Internship)
            .where(needs_ops())
            .order_by(Internship.updated_at.asc())
            .limit(OPS_QUEUE_ROWS)
        )
    )


# Stages that may be waiting for the launcher's payout account (a dispute resolved before
# the `settling` stage existed waited as `resolved`).
WAITING_FOR_PAYOUT = (Stage.APPROVED.value, Stage.SETTLING.value, Stage.RESOLVED.value)


def waiting_for_payout(db: Session, launcher_id: str) -> list[str]:
    """The internships that wait to pay this launcher."""
    waiting = select(Internship.id).where(
        Internship.launcher_id == launcher_id, Internship.stage.in_(WAITING_FOR_PAYOUT)
    )
    return list(db.scalars(waiting))


# The newest payouts a launcher's payout history shows.
PAYOUT_HISTORY = 100


@dataclass(frozen=True)
class Payout:
    """One payment to a launcher: for approved work, or their part of a resolved dispute."""

    internship_id: str
    title: str
    company: str
    paid_cents: int
    currency: str
    paid_at: datetime | None


def payout_history(db: Session, launcher_id: str) -> list[Payout]:
    """What was paid to this launcher, newest first (the latest `PAYOUT_HISTORY`)."""
    paid_at = (
        select(func.max(TimelineEvent.at))
        .where(
            TimelineEvent.internship_id == Internship.id,
            TimelineEvent.event.in_(("paid", "resolution_paid")),
        )
        .scalar_subquery()
    )
    rows = db.execute(
        select(Internship, paid_at)
        .where(Internship.launcher_id == launcher_id, Internship.paid_cents > 0)
        .order_by(paid_at.desc(), Internship.id)
        .limit(PAYOUT_HISTORY)
    ).all()
    return [Payout(r.id, r.title, r.company, r.paid_cents, r.currency, at) for r, at in rows]


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class LifecycleCounts:
    """The lifecycle as the projection sees it, for the metrics scrape."""

    by_stage: dict[str, int]
    overdue: int  # open internships past their due date
    escalated: int  # open internships with ops
    disputed: int  # open internships with a dispute
    outbox: dict[str, int]  # emails by status


def lifecycle_counts(db: Session) -> LifecycleCounts:
    open_ = Internship.stage.not_in([s.value for s in TERMINAL_STAGES])

    def open_where(where: ColumnElement[bool] | InstrumentedAttribute[bool]) -> int:
        return db.scalar(select(func.count()).where(open_, where)) or 0

    def grouped(column: Any) -> dict[str, int]:
        return {k: n for k, n in db.execute(select(column, func.count()).group_by(column))}

    return LifecycleCounts(
        by_stage=grouped(Internship.stage),
        overdue=open_where(Internship.overdue),
        escalated=open_where(Internship.escalation_level >= rulebook.OPS_ESCALATION),
        disputed=open_where(Internship.disputed),
        outbox=grouped(OutboxEmail.status),
    )


# ---------------------------------------------------------------- invitations

# The invitations a launcher's list shows, newest first.
INVITATIONS_SHOWN = 100
# The open postings an employer may choose among to invite a launcher to.
INVITABLE_POSTINGS = 50


def candidates(db: Session, state: InternshipState) -> list[schemas.CandidateOut]:
    """Launchers who fit an open posting, best first, for its employer to invite
    (`matching.candidates`); those who applied or were invited already are not among them."""
    passed_over = {a.launcher_id for a in state.applicants} | {
        i.launcher_id for i in state.invitations
    }
    p = state.posting
    return [
        schemas.CandidateOut(
            launcher_id=c.launcher.id,
            name=c.launcher.name,
            headline=c.launcher.headline,
            score=c.fit.score,
            reasons=c.fit.reasons,
        )
        for c in matching.candidates(db, p.employer_id, p.skills, passed_over)
    ]


class Invitee(NamedTuple):
    launcher_id: str
    name: str
    invited_at: datetime
    answer: str  # "" (none yet), "accepted" or "declined"


def invitees(db: Session, state: InternshipState) -> list[Invitee]:
    """Who was invited to an internship, with their names, in the order invited."""
    ids = [i.launcher_id for i in state.invitations]
    names = dict(db.execute(select(Launcher.id, Launcher.name).where(Launcher.id.in_(ids))).all())
    return [
        Invitee(i.launcher_id, names.get(i.launcher_id, i.launcher_id), i.invited_at, i.answer)
        for i in state.invitations
    ]


def launcher_invitations(db: Session, launcher_id: str) -> list[schemas.LauncherInvitationOut]:
    """The invitations a launcher received, newest first: those still open (not answered,
    the posting open) and those they answered."""
    rows = db.execute(
        select(InternshipInvitation, Internship)
        .join(Internship, Internship.id == InternshipInvitation.internship_id)
        .where(
            InternshipInvitation.launcher_id == launcher_id,
            or_(InternshipInvitation.answer != "", Internship.stage == Stage.POSTED.value),
        )
        .order_by(InternshipInvitation.invited_at.desc())
        .limit(INVITATIONS_SHOWN)
    ).all()
    summaries = {s.id: s for s in internship_summaries(db, [row for _, row in rows])}
    return [
        schemas.LauncherInvitationOut(
            internship=summaries[row.id],
            invited_at=invitation.invited_at,
            answer=cast(schemas.InvitationAnswer, invitation.answer),
        )
        for invitation, row in rows
    ]


def open_invitations(db: Session, launcher_id: str) -> list[Internship]:
    """The open postings a launcher was invited to and has not answered yet, newest first."""
    return list(
        db.scalars(
            select(Internship)
            .join(InternshipInvitation, InternshipInvitation.internship_id == Internship.id)
            .where(
                InternshipInvitation.launcher_id == launcher_id,
                InternshipInvitation.answer == "",
                Internship.stage == Stage.POSTED.value,
            )
            .order_by(InternshipInvitation.invited_at.desc())
            .limit(INVITATIONS_SHOWN)
        )
    )


def invitable_postings(db: Session, by: Actor, launcher_id: str) -> list[Internship]:
    """The organisation's open postings this member may invite the launcher to, newest first:
    not those they were invited to or applied to already, and for a hiring manager limited to
    their own, only the ones they posted (`rulebook.member_acts_on_posting`)."""
    if not rulebook.member_may(by, rulebook.OrgRight.LIFECYCLE):
        return []
    asked = select(InternshipInvitation.internship_id).where(
        InternshipInvitation.launcher_id == launcher_id
    )
    q = select(Internship).where(
        Internship.employer_id == by.id,
        Internship.stage == Stage.POSTED.value,
        Internship.id.not_in(asked),
        Internship.id.not_in(applied_to(db, launcher_id)),
    )
    if by.own_only:
        q = q.where(Internship.posted_by == by.member_id)
    return list(db.scalars(q.order_by(Internship.posted_at.desc()).limit(INVITABLE_POSTINGS)))


# ---------------------------------------------------------------- files and conversations


def files_named(db: Session, internship_id: str, ids: Sequence[int]) -> dict[int, FileView]:
    """The files of this internship with these ids (a submission's), by id."""
    if not ids:
        return {}
    rows = db.scalars(
        select(Attachment).where(
            Attachment.id.in_(set(ids)), Attachment.internship_id == internship_id
        )
    )
    return {a.id: FileView(a.id, a.filename, a.content_type, a.size) for a in rows}


# The messages of a dispute the ops' view lists, the first ones.
DISPUTE_MESSAGES = 100


@dataclass(frozen=True)
class DisputeMessage:
    """A message posted while the internship was in dispute, as ops' dispute view lists it."""

    id: int
    internship_id: str
    launcher_id: str  # whose thread
    author_name: str
    created_at: datetime
    excerpt: str
    hidden: bool

    @property
    def link(self) -> str:
        # The page of the thread that ends with this message, wherever it is in the thread.
        thread = f"/internships/{self.internship_id}/threads/{self.launcher_id}"
        return f"{thread}?before={self.id + 1}#m-{self.id}"


def dispute_messages(db: Session, internship_id: str) -> list[DisputeMessage]:
    """Messages posted during a dispute of this internship, in every thread, oldest first."""
    rows = list(
        db.scalars(
            select(Message)
            .join(Thread, Thread.id == Message.thread_id)
            .where(Thread.internship_id == internship_id, Message.in_dispute)
            .order_by(Message.id)
            .limit(DISPUTE_MESSAGES)
        )
    )
    names = conversations.author_names(db, rows)
    launchers = dict(
        db.execute(
            select(Thread.id, Thread.launcher_id).where(Thread.id.in_({m.thread_id for m in rows}))
        ).all()
    )
    return [
        DisputeMessage(
            id=m.id,
            internship_id=internship_id,
            launcher_id=launchers[m.thread_id],
            author_name=names.get((m.author_role, m.author_id), ""),
            created_at=m.created_at,
            excerpt=m.body[:300],
            hidden=m.hidden_at is not None,
        )
        for m in rows
    ]
