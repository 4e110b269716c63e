"""Calendars: the `.ics` invitation kickoff, extension and cancellation emails carry for the
due date, and each person's private calendar feed of the deadlines that concern them.

An internship's due date is one calendar event everywhere: its UID is the internship's
(`due_uid`), and each change is sent with a higher SEQUENCE (the timeline seq of the event
that changed it), so a calendar moves the event it has instead of adding another; a
cancellation sends METHOD:CANCEL for the same UID. Built and parsed with `icalendar`.

The feed (`GET /calendar/{secret}.ics`) is a subscription: its secret is the credential, so
only its hash is kept (`CalendarFeed`), and making a new one or turning it off revokes the old.
It reads the deadlines the projection keeps per internship (`InternshipDeadline`, the
workflow's `InternshipState.deadlines` as of its last event), never Temporal.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from icalendar import Calendar, Event, vCalAddress
from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import token_hash
from core.db import CalendarFeed, Internship, InternshipDeadline, Member, utcnow
from core.internship import Role, UpcomingDeadline

REQUEST, CANCEL = "REQUEST", "CANCEL"
PRODID = "-//Micro-internships//Deadlines//EN"
# How long the event lasts: a due date is a moment, shown as a short block people notice.
EVENT_LENGTH = timedelta(minutes=30)
# A feed lists at most this many deadlines (the soonest), and none passed longer ago than this.
MAX_FEED_EVENTS = 500
FEED_LOOKBACK = timedelta(days=7)
# The secret in a feed's address: 32 random bytes, URL-safe.
SECRET_BYTES = 32


def host_of(public_base_url: str) -> str:
    """The host UIDs are scoped to: the service's public address (stable per deployment)."""
    return urlsplit(public_base_url).hostname or "localhost"


def due_uid(internship_id: str, host: str) -> str:
    return f"due-{internship_id}@{host}"


def deadline_uid(internship_id: str, kind: str, host: str) -> str:
    """One event per internship and deadline kind: the due date's is the invitations' UID."""
    return f"{kind.replace('_', '-')}-{internship_id}@{host}"


def _calendar(method: str | None = None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    return cal


def _event(uid: str, at: datetime, summary: str, description: str, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", at.astimezone(UTC))
    event.add("duration", EVENT_LENGTH)
    event.add("summary", summary)
    event.add("description", description)
    return event


def due_invitation(
    *,
    internship_id: str,
    title: str,
    due_at: datetime,
    sequence: int,
    url: str,
    host: str,
    organizer: str,
    attendee: str,
    stamp: datetime,
    cancel: bool = False,
) -> str:
    """The invitation (METHOD:REQUEST) or cancellation (METHOD:CANCEL) for an internship's
    due date, addressed to `attendee`. `sequence` must grow with each change: the timeline seq
    of the event that made it does."""
    cal = _calendar(CANCEL if cancel else REQUEST)
    event = _event(
        due_uid(internship_id, host), due_at, f"Due: {title}", f"The internship: {url}", stamp
    )
    event.add("sequence", sequence)
    event.add("url", url)
    # Mail clients show an invitation only with an organizer and the recipient as attendee;
    # nobody is asked to answer (RSVP=FALSE): the due date is the workflow's, not a meeting.
    who = vCalAddress(f"mailto:{organizer}")
    who.params["cn"] = "Micro-internships"
    event.add("organizer", who)
    guest = vCalAddress(f"mailto:{attendee}")
    guest.params["rsvp"] = "FALSE"
    event.add("attendee", guest)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    event.add("transp", "TRANSPARENT")  # a due date doesn't make anyone busy
    cal.add_component(event)
    return cal.to_ical().decode()


def method_of(ics: str) -> str:
    """The METHOD of an invitation's text (REQUEST or CANCEL), for its email's content type.
    Read from the calendar's own line (a property line is never folded this short): parsing
    the whole calendar for it cost the relay more than writing the email."""
    found = _METHOD_LINE.search(ics)
    return found.group(1).upper() if found else REQUEST


_METHOD_LINE = re.compile(r"^METHOD:([A-Za-z-]+)\r?$", re.MULTILINE)


# ---------------------------------------------------------------- the private feed


@dataclass(frozen=True)
class FeedEvent:
    """One deadline of one internship, as a feed lists it."""

    internship_id: str
    title: str
    deadline: UpcomingDeadline


def feed(events: Sequence[FeedEvent], public_base_url: str, stamp: datetime) -> str:
    """A subscription calendar (no METHOD) of the deadlines, one event per internship and
    kind (the first wording given wins)."""
    host = host_of(public_base_url)
    base = public_base_url.rstrip("/")
    cal = _calendar()
    cal.add("x-wr-calname", "Micro-internship deadlines")
    seen: set[tuple[str, str]] = set()
    for e in events[:MAX_FEED_EVENTS]:
        d = e.deadline
        if (e.internship_id, d.kind) in seen:
            continue
        seen.add((e.internship_id, d.kind))
        url = f"{base}/internships/{e.internship_id}"
        summary = f"Due: {e.title}" if d.kind == "due" else f"{e.title}: {d.happens}"
        lines = [d.happens + (f" unless {d.unless}" if d.unless else "") + "."]
        if d.paused:
            lines.append("The other deadlines are on hold until then.")
        lines.append(f"The internship: {url}")
        event = _event(
            deadline_uid(e.internship_id, d.kind, host), d.at, summary, "\n".join(lines), stamp
        )
        event.add("url", url)
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    return cal.to_ical().decode()


def roles_column(for_roles: tuple[str, ...] | None) -> str | None:
    """`UpcomingDeadline.for_roles` as stored: ",employer,launcher," (a LIKE finds one role
    exactly); NULL for everyone."""
    return None if for_roles is None else "," + ",".join(for_roles) + ","


def roles_of(column: str | None) -> tuple[str, ...] | None:
    return None if column is None else tuple(r for r in column.split(",") if r)


def new_feed(sessions: sessionmaker, role: Role, account_id: str) -> str:
    """A new feed secret for the account, returned this once; any earlier one stops working."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    with sessions.begin() as db:
        _revoke(db, role, account_id, now)
        db.add(
            CalendarFeed(
                token_hash=token_hash(secret),
                role=role.value,
                account_id=account_id,
                created_at=now,
            )
        )
    return secret


def turn_off_feed(sessions: sessionmaker, role: Role, account_id: str) -> bool:
    """Revoke the account's feed; False if it had none on."""
    with sessions.begin() as db:
        return _revoke(db, role, account_id, utcnow()) > 0


def _revoke(db: Session, role: Role, account_id: str, now: datetime) -> int:
    revoked: CursorResult[Any] = db.execute(  # type: ignore[assignment]
        update(CalendarFeed).where(*_live(role, account_id)).values(revoked_at=now)
    )
    return revoked.rowcount


def _live(role: Role, account_id: str) -> tuple[ColumnElement[bool], ...]:
    return (
        CalendarFeed.role == role.value,
        CalendarFeed.account_id == account_id,
        CalendarFeed.revoked_at.is_(None),
    )


def feed_since(sessions: sessionmaker, role: Role, account_id: str) -> datetime | None:
    """When the account's current feed was made (None: it has none on)."""
    with sessions() as db:
        return db.scalar(
            select(CalendarFeed.created_at)
            .where(*_live(role, account_id))
            .order_by(CalendarFeed.created_at.desc())
            .limit(1)
        )


def _concerning(db: Session, role: Role, account_id: str) -> ColumnElement[bool] | None:
    """The internships whose deadlines concern the account: a launcher's, those they are
    selected for; a member's, their organisation's, or, for a hiring manager limited to their
    own, those they posted. None: the account is gone (a removed member)."""
    if role == Role.LAUNCHER:
        return Internship.launcher_id == account_id
    member = db.get(Member, account_id)
    if member is None or member.removed_at is not None:
        return None
    mine = Internship.employer_id == member.employer_id
    if member.role == "hiring_manager" and not member.all_internships:
        # Before members existed the founder (whose member id is the organisation's) posted.
        posted = or_(
            Internship.posted_by == member.id,
            and_(Internship.posted_by.is_(None), Internship.employer_id == member.id),
        )
        return and_(mine, posted)
    return mine


def feed_for_secret(
    sessions: sessionmaker, secret: str, public_base_url: str, now: datetime
) -> str | None:
    """The feed a secret opens, as its text; None for a secret unknown or revoked."""
    with sessions() as db:
        held = db.scalar(
            select(CalendarFeed).where(
                CalendarFeed.token_hash == token_hash(secret), CalendarFeed.revoked_at.is_(None)
            )
        )
        if held is None:
            return None
        role = Role(held.role)
        concerning = _concerning(db, role, held.account_id)
        if concerning is None:
            return None
        rows = db.execute(
            select(InternshipDeadline, Internship.title)
            .join(Internship, Internship.id == InternshipDeadline.internship_id)
            .where(
                concerning,
                InternshipDeadline.at >= now - FEED_LOOKBACK,
                or_(
                    InternshipDeadline.for_roles.is_(None),
                    InternshipDeadline.for_roles.contains(f",{role.value},"),
                ),
            )
            .order_by(InternshipDeadline.at, InternshipDeadline.internship_id)
            .limit(MAX_FEED_EVENTS)
        ).all()
    events = [
        FeedEvent(
            d.internship_id,
            title,
            UpcomingDeadline(d.kind, d.at, d.happens, d.unless, roles_of(d.for_roles), d.paused),
        )
        for d, title in rows
    ]
    return feed(events, public_base_url, now)
