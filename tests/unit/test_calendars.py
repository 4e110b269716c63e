"""The due date's invitations and the deadline feed, parsed back as a calendar reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from core import calendars
from core.calendars import FeedEvent
from core.internship import UpcomingDeadline

DUE = datetime(2026, 12, 20, 17, 0, tzinfo=UTC)
BASE = "https://interns.example.com"


def invitation(seq: int, due: datetime = DUE, cancel: bool = False) -> Calendar:
    text = calendars.due_invitation(
        internship_id="i1",
        title="Landing page copy",
        due_at=due,
        sequence=seq,
        url=f"{BASE}/internships/i1",
        host=calendars.host_of(BASE),
        organizer="ops@example.com",
        attendee="lin@example.com",
        stamp=datetime(2026, 12, 6, tzinfo=UTC),
        cancel=cancel,
    )
    return Calendar.from_ical(text)


def only_event(cal: Calendar) -> Event:
    assert len(cal.events) == 1
    return cal.events[0]


def test_an_invitation_is_one_event_at_the_due_time() -> None:
    cal = invitation(3)
    assert cal.method == "REQUEST"
    event = only_event(cal)
    assert event.uid == "due-i1@interns.example.com"
    assert event.sequence == 3
    assert event.start == DUE
    assert "DTSTART:20261220T170000Z" in event.to_ical().decode()  # UTC, written with Z
    assert event.summary == "Due: Landing page copy"
    assert f"{BASE}/internships/i1" in str(event.description)
    assert str(event["ATTENDEE"]) == "mailto:lin@example.com"
    assert str(event["ORGANIZER"]) == "mailto:ops@example.com"


def test_a_change_moves_the_same_event_and_a_cancellation_removes_it() -> None:
    first, later = only_event(invitation(3)), only_event(invitation(7, DUE + timedelta(days=4)))
    assert later.uid == first.uid
    assert later.sequence > first.sequence
    assert later.start == DUE + timedelta(days=4)
    cancelled = invitation(9, cancel=True)
    assert cancelled.method == "CANCEL"
    event = only_event(cancelled)
    assert (event.uid, event.status) == (first.uid, "CANCELLED")
    assert event.sequence > later.sequence
    assert calendars.method_of(cancelled.to_ical().decode()) == "CANCEL"


def test_a_feed_lists_each_deadline_once_per_internship_and_kind() -> None:
    due = UpcomingDeadline("due", DUE, "The work is due", "", ("launcher",))
    approve = UpcomingDeadline(
        "auto_approve",
        DUE + timedelta(days=7),
        "The work is approved automatically",
        "you request a revision",
        ("employer",),
    )
    twice = UpcomingDeadline("auto_approve", approve.at, "Another wording", "", None)
    events = [
        FeedEvent("i1", "Copy", due),
        FeedEvent("i1", "Copy", approve),
        FeedEvent("i1", "Copy", twice),
        FeedEvent("i2", "Logo", due),
    ]
    cal = Calendar.from_ical(calendars.feed(events, BASE, datetime(2026, 12, 6, tzinfo=UTC)))
    assert not cal.method
    listed = {e.uid: e for e in cal.events}
    assert set(listed) == {
        "due-i1@interns.example.com",
        "auto-approve-i1@interns.example.com",
        "due-i2@interns.example.com",
    }
    approval = listed["auto-approve-i1@interns.example.com"]
    assert approval.summary == "Copy: The work is approved automatically"
    assert "unless you request a revision" in str(approval.description)
    # The invitations' event and the feed's due date are one event.
    assert listed["due-i1@interns.example.com"].start == DUE


def test_a_feed_is_bounded() -> None:
    many = [
        FeedEvent(f"i{n}", "T", UpcomingDeadline("due", DUE, "Due"))
        for n in range(calendars.MAX_FEED_EVENTS + 10)
    ]
    cal = Calendar.from_ical(calendars.feed(many, BASE, DUE))
    assert len(cal.events) == calendars.MAX_FEED_EVENTS


def test_roles_are_stored_so_one_role_matches_exactly() -> None:
    assert calendars.roles_column(None) is None
    assert calendars.roles_column(("employer", "ops")) == ",employer,ops,"
    assert calendars.roles_of(",employer,ops,") == ("employer", "ops")
