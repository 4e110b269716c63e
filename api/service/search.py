"""Searching the internships: one query for the JSON list (`GET /v1/internships`, ops'
`GET /v1/ops/internships`), the launchers' postings page and ops' search page.

`find` narrows what the viewer may list (`rulebook.list_scope`, as SQL: `reads.visible_to`) by
`Criteria`, newest first, a bounded page at a time with a cursor. Words are matched in the
title and description by the database's full-text index (migration 0009): an FTS5 table on
SQLite, a GIN index on the English `tsvector` on Postgres; `full_text` is the one place that
knows which. Each word matches by prefix and stem ("design" finds "designer" and
"designing"); anything but letters and digits is dropped, so no input is query syntax.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Session

from api import schemas
from api.errors import ApiError
from api.service import reads
from core import rulebook
from core.db import FULL_TEXT_INDEX, Employer, Internship, Launcher
from core.internship import Actor, Role, Stage

# The most rows one page of results holds (the JSON `limit` is at most this).
MAX_PAGE = 100
# The words of a query that count (the rest are ignored), and the longest word.
MAX_WORDS = 8
MAX_WORD = 64
# The document Postgres indexes (migration 0009 creates the GIN index on this expression).
PG_DOCUMENT = "to_tsvector('english', internships.title || ' ' || internships.description)"


@dataclass(frozen=True)
class Criteria:
    """What a search narrows the viewer's internships to; empty fields don't narrow."""

    words: str = ""  # words of the title or description
    # Ops: an internship's id, words of its title or description, or part of a party's name
    # or email (the employer's, their company's, the launcher's).
    anything: str = ""
    category: str | None = None
    skills: tuple[str, ...] = ()  # every one of them
    fee_min_cents: int | None = None
    fee_max_cents: int | None = None
    duration_min_days: int | None = None
    duration_max_days: int | None = None
    stage: Stage | None = None
    employer_id: str | None = None
    posted_by: str | None = None  # the member who posted it ("mine", for an employer's member)
    posted_from: date | None = None  # posted on or after this day (UTC)
    posted_to: date | None = None  # posted on or before this day (UTC)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, "", ()) for f in fields(self))


def problems(wanted: Criteria) -> dict[str, str]:
    """What to fix, by criterion, in plain words (empty when the search can run)."""
    found: dict[str, str] = {}
    low, high = wanted.fee_min_cents, wanted.fee_max_cents
    if low is not None and high is not None and low > high:
        found["fee_max_cents"] = "The highest fee is below the lowest: raise it or clear one"
    low, high = wanted.duration_min_days, wanted.duration_max_days
    if low is not None and high is not None and low > high:
        found["duration_max_days"] = (
            "The longest duration is below the shortest: raise it or clear one"
        )
    if wanted.posted_from and wanted.posted_to and wanted.posted_from > wanted.posted_to:
        found["posted_to"] = "The last day is before the first: change one of the dates"
    return found


def checked(wanted: Criteria, names: dict[str, str] | None = None) -> Criteria:
    """`wanted`, or a 422 naming the first criterion to fix (by `names`: the request's names
    for the criteria, when they differ)."""
    if found := problems(wanted):
        field, problem = next(iter(found.items()))
        field = (names or {}).get(field, field)
        raise ApiError(422, "invalid_request", f"{field}: {problem}", {"field": field})
    return wanted


def words_of(text: str) -> list[str]:
    """The words of a query: letters and digits only, lower case, at most `MAX_WORDS`."""
    return [w[:MAX_WORD] for w in re.findall(r"[^\W_]+", text.lower())][:MAX_WORDS]


def full_text(db: Session, words: list[str]) -> ColumnElement[bool]:
    """Internships whose title or description has every word (by prefix and stem), in the
    database's own full-text index. `words` come from `words_of`: no query syntax."""
    dialect = db.get_bind().dialect.name
    if dialect == "sqlite":
        index = table(FULL_TEXT_INDEX, column("internship_id"))
        query = " ".join(f'"{w}"*' for w in words)  # each a quoted prefix: all of them
        return Internship.id.in_(
            select(index.c.internship_id).where(literal_column(FULL_TEXT_INDEX).op("MATCH")(query))
        )
    if dialect == "postgresql":
        query = " & ".join(f"{w}:*" for w in words)
        return literal_column(PG_DOCUMENT).op("@@")(
            func.to_tsquery(literal_column("'english'"), query)
        )
    # Another database: each word somewhere in the title or description, without an index.
    return and_(
        *(
            or_(Internship.title.ilike(f"%{w}%"), Internship.description.ilike(f"%{w}%"))
            for w in words
        )
    )


def _contains(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _anything(db: Session, text: str) -> ColumnElement[bool]:
    """An id, words of the title or description, or part of a party's name or email."""
    text = text.strip()[:320]
    like = _contains(text.lower())
    employers = select(Employer.id).where(
        or_(
            func.lower(Employer.email).like(like, escape="\\"),
            func.lower(Employer.name).like(like, escape="\\"),
            func.lower(Employer.company).like(like, escape="\\"),
        )
    )
    launchers = select(Launcher.id).where(
        or_(
            func.lower(Launcher.email).like(like, escape="\\"),
            func.lower(Launcher.name).like(like, escape="\\"),
        )
    )
    either = [
        Internship.id == text,
        Internship.employer_id.in_(employers),
        Internship.launcher_id.in_(launchers),
    ]
    if words := words_of(text):
        either.append(full_text(db, words))
    return or_(*either)


def _query(db: Session, viewer: Actor, wanted: Criteria) -> Select[Internship]:
    q = select(Internship).where(reads.visible_to(viewer))
    if wanted.anything.strip():
        if not rulebook.sees_contacts(viewer):
            raise ApiError(403, "forbidden", "Only ops search by a party's name or email")
        q = q.where(_anything(db, wanted.anything))
    if words := words_of(wanted.words):
        q = q.where(full_text(db, words))
    if wanted.category:
        q = q.where(Internship.category == wanted.category)
    for skill in wanted.skills:
        q = q.where(reads.has_skill(skill))
    if wanted.fee_min_cents is not None:
        q = q.where(Internship.fee_cents >= wanted.fee_min_cents)
    if wanted.fee_max_cents is not None:
        q = q.where(Internship.fee_cents <= wanted.fee_max_cents)
    if wanted.duration_min_days is not None:
        q = q.where(Internship.duration_days >= wanted.duration_min_days)
    if wanted.duration_max_days is not None:
        q = q.where(Internship.duration_days <= wanted.duration_max_days)
    if wanted.stage:
        q = q.where(Internship.stage == wanted.stage.value)
    if wanted.employer_id:
        q = q.where(Internship.employer_id == wanted.employer_id)
    if wanted.posted_by:
        q = q.where(Internship.posted_by == wanted.posted_by)
    if wanted.posted_from:
        q = q.where(Internship.posted_at >= datetime.combine(wanted.posted_from, time(), UTC))
    if wanted.posted_to:
        end = datetime.combine(wanted.posted_to + timedelta(days=1), time(), UTC)
        q = q.where(Internship.posted_at < end)
    return q


class Found(NamedTuple):
    rows: list[Internship]
    next_cursor: str | None  # the next page's, None on the last


def find(
    db: Session, viewer: Actor, wanted: Criteria, limit: int, cursor: str | None = None
) -> Found:
    """Newest first: the internships the viewer may list that meet `wanted`, `limit` (at most
    `MAX_PAGE`) at a time; `next_cursor` continues after the page's last row."""
    limit = max(1, min(limit, MAX_PAGE))
    q = _query(db, viewer, checked(wanted))
    if after := _cursor(cursor):
        at, id_ = after
        q = q.where(
            or_(Internship.posted_at < at, and_(Internship.posted_at == at, Internship.id < id_))
        )
    rows = list(
        db.scalars(q.order_by(Internship.posted_at.desc(), Internship.id.desc()).limit(limit + 1))
    )
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = base64.urlsafe_b64encode(
            f"{last.posted_at.isoformat()}|{last.id}".encode()
        ).decode()
    return Found(page, next_cursor)


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    if not value:
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


# ---------------------------------------------------------------- the callers' shapes


def internship_page(
    db: Session, viewer: Actor, wanted: Criteria, limit: int, cursor: str | None
) -> schemas.InternshipPage:
    """The JSON list: one page of summaries and the next page's cursor."""
    found = find(db, viewer, wanted, limit, cursor)
    return schemas.InternshipPage(
        items=reads.internship_summaries(db, found.rows), next_cursor=found.next_cursor
    )


def postings(
    db: Session, launcher: Launcher, wanted: Criteria, limit: int = 100
) -> tuple[list[schemas.RecommendationOut], set[str]]:
    """The postings page: open postings meeting `wanted` (the newest `reads.RECOMMEND_FROM`),
    the best fits first (up to `limit`), and those the launcher already applied to."""
    viewer = Actor(Role.LAUNCHER, launcher.id)
    rows = find_all(db, viewer, replace(wanted, stage=Stage.POSTED), reads.RECOMMEND_FROM)
    return reads.ranked_for(db, launcher, rows)[:limit], reads.applied_to(db, launcher.id)


def find_all(db: Session, viewer: Actor, wanted: Criteria, most: int) -> list[Internship]:
    """The newest `most` that meet `wanted`, past `MAX_PAGE` (for ranking them)."""
    q = _query(db, viewer, checked(wanted))
    return list(db.scalars(q.order_by(Internship.posted_at.desc()).limit(most)))


class OpsRow(NamedTuple):
    internship: Internship
    employer: Employer | None
    launcher: Launcher | None


def ops_page(
    db: Session, viewer: Actor, wanted: Criteria, limit: int, cursor: str | None
) -> tuple[list[OpsRow], str | None]:
    """Ops' search page: each internship found with its parties, and the next page's cursor."""
    found = find(db, viewer, wanted, limit, cursor)
    employer_ids = {r.employer_id for r in found.rows}
    launcher_ids = {r.launcher_id for r in found.rows if r.launcher_id}
    employers = {e.id: e for e in db.scalars(select(Employer).where(Employer.id.in_(employer_ids)))}
    launchers = {x.id: x for x in db.scalars(select(Launcher).where(Launcher.id.in_(launcher_ids)))}
    rows = [
        OpsRow(r, employers.get(r.employer_id), launchers.get(r.launcher_id or ""))
        for r in found.rows
    ]
    return rows, found.next_cursor
