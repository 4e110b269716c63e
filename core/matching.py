"""Matching: how well a launcher fits a posting, as a score with the reasons behind it.

Transparent on purpose: an employer sees why an applicant ranks where they do, and a launcher
sees why a posting is recommended. Three things count, each from what the platform itself saw:

- skills: the share of the posting's skills the launcher has (most of the score);
- on time: completed internships submitted before they went overdue;
- ratings: what employers rated their completed work.

A launcher with no completed internships yet is neither rewarded nor punished for it: the two
record parts count as average, and the reasons say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Internship, TimelineEvent
from core.internship import Stage

SKILLS_WEIGHT, ON_TIME_WEIGHT, RATING_WEIGHT = 60, 25, 15
NEUTRAL = 0.5  # the record part of someone with no record yet


@dataclass(frozen=True)
class Record:
    """A launcher's completed internships, as the projection has them."""

    completed: int = 0
    on_time: int = 0
    ratings: tuple[int, ...] = ()  # 1-5, from employers


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
    if record.completed:
        on_time = record.on_time / record.completed
        reasons.append(f"on time in {record.on_time} of {record.completed} completed")
    else:
        on_time = NEUTRAL
        reasons.append("no completed internships yet")
    if record.ratings:
        average = sum(record.ratings) / len(record.ratings)
        rating = (average - 1) / 4
        count = len(record.ratings)
        reasons.append(f"rated {average:.1f} of 5 ({count} rating{'s' if count > 1 else ''})")
    else:
        rating = NEUTRAL
        if record.completed:
            reasons.append("not rated yet")
    score = SKILLS_WEIGHT * skills + ON_TIME_WEIGHT * on_time + RATING_WEIGHT * rating
    return Fit(round(score), reasons)


def records(db: Session, launcher_ids: list[str]) -> dict[str, Record]:
    """Each launcher's record, from completed internships in the projection: one query for the
    internships and one for which of them went overdue, whatever the number of launchers."""
    rows = db.execute(
        select(Internship.id, Internship.launcher_id, Internship.employer_rating).where(
            Internship.stage == Stage.COMPLETED.value, Internship.launcher_id.in_(launcher_ids)
        )
    ).all()
    late = set(
        db.scalars(
            select(TimelineEvent.internship_id).where(
                TimelineEvent.internship_id.in_([r.id for r in rows]),
                TimelineEvent.event == "overdue",
            )
        )
    )
    found: dict[str, list[tuple[bool, int | None]]] = {}
    for row in rows:
        found.setdefault(row.launcher_id, []).append((row.id not in late, row.employer_rating))
    return {
        launcher: Record(
            completed=len(done),
            on_time=sum(on_time for on_time, _ in done),
            ratings=tuple(r for _, r in done if r is not None),
        )
        for launcher, done in found.items()
    }
