"""Reads the API and the web pages share: what a caller may list, rankings, portfolios and
contacts. Each takes an open session and returns the presenters' models; callers keep the
session short and never hold it while they wait on Temporal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.presenters import internship_summaries
from core import matching, rulebook
from core.db import Employer, Internship, InternshipSkill, Launcher, TimelineEvent
from core.internship import Actor, InternshipState, Stage
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
        clauses.append(Internship.stage == Stage.POSTED.value)
    return or_(false(), *clauses)


def visible_to(actor: Actor) -> ColumnElement[bool]:
    return in_scope(rulebook.list_scope(actor))


def ranked_applicants(db: Session, state: InternshipState) -> list[schemas.RankedApplicantOut]:
    """Applicants by fit (withdrawn last), each with the reasons for their score."""
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
            )
        )
    return sorted(ranked, key=lambda r: (r.withdrawn, -r.score, r.applied_at))


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
    """The newest open postings (of a category, with a skill), ranked by how well the
    launcher's skills fit; the record part of the score is the launcher's own, the same for
    every posting."""
    q = select(Internship).where(Internship.stage == Stage.POSTED.value)
    if category:
        q = q.where(Internship.category == category)
    if skill:
        q = q.where(has_skill(skill))
    open_postings = db.scalars(q.order_by(Internship.posted_at.desc()).limit(RECOMMEND_FROM)).all()
    record = matching.records(db, [launcher.id]).get(launcher.id, Record())
    ranked = []
    for summary in internship_summaries(db, open_postings):
        fit = matching.fit(summary.skills, launcher.skills, record)
        ranked.append(
            schemas.RecommendationOut(internship=summary, score=fit.score, reasons=fit.reasons)
        )
    ranked.sort(key=lambda r: -r.score)  # stable: newest first among equals
    return ranked[:limit]


def portfolio(db: Session, launcher_id: str) -> schemas.Portfolio | None:
    """A launcher's completed internships with the ratings employers gave, and their average
    over employers (each employer's own average counted once); None if unknown."""
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
    )


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
