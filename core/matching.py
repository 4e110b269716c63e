"""Matching: how well a launcher fits a posting, as a score with the reasons behind it.

Transparent on purpose: an employer sees why an applicant ranks where they do, and a launcher
sees why a posting is recommended. Three things count, each from what the platform itself saw:

- skills: the share of the posting's skills the launcher has (most of the score);
- on time: of the internships a launcher finished or gave up, those they were never overdue on.
  Overdue work counts against the launcher who was late (the one selected when it went
  overdue), also when they withdrew or it was cancelled afterwards; whoever took it over starts
  clean;
- ratings: what employers rated their completed work, each employer counted once (the average
  of its own ratings), so that one employer rating many small internships weighs as one.

A launcher with no record yet is neither rewarded nor punished for it: the two record parts
count as average, and the reasons say so.

The same score ranks both ways: postings for a launcher, and launchers for a posting (the
employer's candidates to invite, `candidates`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core import identity
from core.db import Internship, Launcher, TimelineEvent
from core.internship import TERMINAL_STAGES, Stage

SKILLS_WEIGHT, ON_TIME_WEIGHT, RATING_WEIGHT = 60, 25, 15
NEUTRAL = 0.5  # the record part of someone with no record yet


@dataclass(frozen=True)
class Record:
    """A launcher's record, as the projection has it."""

    completed: int = 0  # internships they completed
    on_time: int = 0  # of those, the ones they were never overdue on
    ratings: tuple[float, ...] = ()  # 1-5: one per employer, the average of its ratings
    # Internships they were overdue on and did not complete (they withdrew, or it was
    # cancelled): each one late.
    unfinished_late: int = 0

    @property
    def counted(self) -> int:
        return self.completed + self.unfinished_late


@dataclass(frozen=True)
class Fit:
    score: int  # 0-100
    reasons: list[str] = field(default_factory=list)


def fit(posting_skills: list[str], launcher_skills: list[str], record: Record) -> Fit:
    wanted = {s.lower() for s in posting_skills}
    shared = sorted(wanted & {s.lower() for s in launcher_skills})
    reasons: list[str] = []
    if wanted:
        skills = len(shared) / len(wanted)
        listed = f": {', '.join(shared)}" if shared else ""
        reasons.append(f"{len(shared)} of {len(wanted)} skills{listed}")
    else:
        skills = 1.0
        reasons.append("the posting asks for no particular skills")
    if record.counted:
        on_time = record.on_time / record.counted
        if record.unfinished_late:
            reasons.append(
                f"on time in {record.on_time} of {record.counted} "
                f"({record.unfinished_late} not completed after going overdue)"
            )
        else:
            reasons.append(f"on time in {record.on_time} of {record.completed} completed")
    else:
        on_time = NEUTRAL
        reasons.append("no completed internships yet")
    mean = average(record.ratings)
    if mean is not None:
        rating = (mean - 1) / 4
        count = len(record.ratings)
        reasons.append(f"rated {mean:.1f} of 5 by {count} employer{'s' if count > 1 else ''}")
    else:
        rating = NEUTRAL
        if record.completed:
            reasons.append("not rated yet")
    score = SKILLS_WEIGHT * skills + ON_TIME_WEIGHT * on_time + RATING_WEIGHT * rating
    return Fit(round(score), reasons)


def per_employer(ratings: Iterable[tuple[str, int | None]]) -> tuple[float, ...]:
    """(employer, rating) pairs as one rating per employer: the average of its own, highest
    first (whatever order the database returned the rows in)."""
    given: dict[str, list[int]] = {}
    for employer_id, rating in ratings:
        if rating is not None:
            given.setdefault(employer_id, []).append(rating)
    return tuple(sorted((sum(r) / len(r) for r in given.values()), reverse=True))


def average(ratings: tuple[float, ...]) -> float | None:
    """The average over employers of `per_employer` ratings; None when nobody rated."""
    return sum(ratings) / len(ratings) if ratings else None


@dataclass
class _Tally:
    completed: list[tuple[str, str, int | None]] = field(default_factory=list)  # id, employer
    unfinished_late: int = 0


def records(db: Session, launcher_ids: list[str]) -> dict[str, Record]:
    """Each launcher's record from the projection, in three queries whatever the number of
    launchers: their completed internships, and who was overdue on what. An `overdue` event
    counts against the launcher recorded with it, or, on events recorded before the timeline
    kept one, against the internship's launcher."""
    if not launcher_ids:
        return {}
    completed = db.execute(
        select(
            Internship.id,
            Internship.launcher_id,
            Internship.employer_id,
            Internship.employer_rating,
        ).where(Internship.stage == Stage.COMPLETED.value, Internship.launcher_id.in_(launcher_ids))
    ).all()
    overdue = select(TimelineEvent.internship_id, Internship.launcher_id, Internship.stage).join(
        Internship, Internship.id == TimelineEvent.internship_id
    )
    late_rows = [
        *db.execute(
            overdue.add_columns(TimelineEvent.launcher_id).where(
                TimelineEvent.event == "overdue", TimelineEvent.launcher_id.in_(launcher_ids)
            )
        ),
        *db.execute(
            overdue.add_columns(Internship.launcher_id).where(
                TimelineEvent.event == "overdue",
                TimelineEvent.launcher_id.is_(None),
                Internship.launcher_id.in_(launcher_ids),
            )
        ),
    ]
    # (internship, the launcher who was late on it) -> (its launcher now, its stage)
    late = {(iid, was_late): (now_with, stage) for iid, now_with, stage, was_late in late_rows}
    tally: dict[str, _Tally] = {}
    for row in completed:
        tally.setdefault(row.launcher_id, _Tally()).completed.append(
            (row.id, row.employer_id, row.employer_rating)
        )
    for (_, launcher_id), (now_with, stage) in late.items():
        if now_with == launcher_id and Stage(stage) not in TERMINAL_STAGES - {Stage.COMPLETED}:
            continue  # theirs still: completed late (counted above), or still under way
        tally.setdefault(launcher_id, _Tally()).unfinished_late += 1
    return {
        launcher_id: Record(
            completed=len(t.completed),
            on_time=sum((iid, launcher_id) not in late for iid, _, _ in t.completed),
            ratings=per_employer((employer, rating) for _, employer, rating in t.completed),
            unfinished_late=t.unfinished_late,
        )
        for launcher_id, t in tally.items()
    }


# ---------------------------------------------------------------- the employer's side

# Ranking reads every candidate's record, so it ranks the newest launchers sharing a skill
# with the posting (at most `CANDIDATES_FROM`) and shows the best `CANDIDATES`.
CANDIDATES_FROM = 200
CANDIDATES = 20


@dataclass(frozen=True)
class Candidate:
    launcher: Launcher
    fit: Fit


def knows_any(db: Session, skills: list[str]) -> ColumnElement[bool]:
    """Launchers with at least one of `skills` (lower case, as profiles keep them), read from
    their JSON list of skills with the database's own function."""
    sqlite = db.get_bind().dialect.name == "sqlite"
    unpack = func.json_each if sqlite else func.json_array_elements_text
    element = unpack(Launcher.skills).table_valued("value")
    return select(element.c.value).where(element.c.value.in_(skills)).exists()


def candidates(
    db: Session,
    employer_id: str,
    skills: list[str],
    passed_over: Collection[str],
    limit: int = CANDIDATES,
) -> list[Candidate]:
    """Launchers who fit a posting, best first: those sharing a skill with it who take
    invitations, except `passed_over` (they applied or were invited already) and anyone who
    is the employer themself (`core.identity`)."""
    wanted = sorted({s.lower() for s in skills})
    if not wanted:
        return []
    pool = db.scalars(
        select(Launcher)
        .where(
            Launcher.takes_invitations,
            Launcher.id.not_in(list(passed_over)),
            knows_any(db, wanted),
        )
        .order_by(Launcher.created_at.desc())
        .limit(CANDIDATES_FROM)
    ).all()
    organisation = identity.organisation_identity(db, employer_id)
    others = [
        lc
        for lc in pool
        if organisation is None
        or not identity.same_person(organisation, identity.Identity.of_launcher(lc))
    ]
    history = records(db, [lc.id for lc in others])
    ranked = [
        Candidate(lc, fit(wanted, lc.skills or [], history.get(lc.id, Record()))) for lc in others
    ]
    ranked.sort(key=lambda c: (-c.fit.score, c.launcher.name, c.launcher.id))
    return ranked[:limit]
