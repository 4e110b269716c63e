"""The due date's calendar invitation, end to end: the real worker projects each event and its
relay sends the emails over SMTP; a calendar reading the `.ics` they carry keeps one event per
internship, moved by the extension and removed by the cancellation. The feed's table follows."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage

from icalendar import Calendar, Event
from sqlalchemy import select

from core import calendars
from core.db import InternshipDeadline
from core.internship import Cancellation, Extension
from tests.conftest import World
from tests.stack.test_lifecycle import emp, in_progress, state
from workflows.internship import InternshipWorkflow

DAY = timedelta(days=1)


def invitation(message: EmailMessage) -> tuple[str, Event]:
    """The email's calendar attachment: its METHOD (as the MIME part and the calendar say it)
    and its one event. The email keeps its text and HTML bodies."""
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "invite.ics"
    cal = Calendar.from_ical(part.get_content())
    assert part.get_param("method") == cal.method
    [event] = cal.events
    return str(cal.method), event


def reader(message: EmailMessage) -> str:
    """Whose email it is: the role in its Message-ID (…kickoff.<role>.<id>@…)."""
    return str(message["Message-ID"]).split(".")[-3]


def whole_seconds(at: datetime) -> datetime:
    return at.replace(microsecond=0)


async def test_the_due_date_is_one_event_moved_by_an_extension_and_removed_by_a_cancellation(
    world: World,
) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    s = await state(h)
    iid, due = s.posting.internship_id, s.due_at
    assert due is not None
    kickoffs = await world.inbox.wait_for(iid, "kickoff", 2)  # the launcher and the employer
    sent = [invitation(m) for m in kickoffs]
    assert {method for method, _ in sent} == {"REQUEST"}
    [uid] = {e.uid for _, e in sent}
    assert uid == f"due-{iid}@{calendars.host_of(world.settings.public_base_url)}"
    assert {e.start for _, e in sent} == {whole_seconds(due)}
    assert {str(e.summary) for _, e in sent} == {f"Due: {s.posting.title}"}
    for message, (_, event) in zip(kickoffs, sent, strict=True):  # each to its reader
        assert str(event["ATTENDEE"]) == f"mailto:{message['To']}"
    first = max(e.sequence for _, e in sent)

    later = due + 4 * DAY
    await h.execute_update(InternshipWorkflow.extend, Extension(emp(employer), later))
    # Both parties' calendars had the event from the kickoff: both are moved.
    extended = await world.inbox.wait_for(iid, "extended", 2)
    assert {reader(m) for m in extended} == {"employer", "launcher"}
    for message in extended:
        method, moved = invitation(message)
        assert (method, moved.uid) == ("REQUEST", uid)
        assert moved.sequence > first
        assert moved.start == whole_seconds(later)
    # The feeds read the deadlines as the extension left them.
    with world.sessions() as db:
        listed = {
            (d.kind, d.for_roles): d.at
            for d in db.scalars(
                select(InternshipDeadline).where(InternshipDeadline.internship_id == iid)
            )
        }
    assert listed[("due", ",launcher,")] == later

    await h.execute_update(InternshipWorkflow.cancel, Cancellation(emp(employer), "Plans changed"))
    cancellations = await world.inbox.wait_for(iid, "cancelled", 2)
    for message in cancellations:
        method, gone = invitation(message)
        assert (method, gone.uid, gone.status) == ("CANCEL", uid, "CANCELLED")
        assert gone.sequence > moved.sequence
    with world.sessions() as db:  # nothing is upcoming any more
        assert not db.scalars(
            select(InternshipDeadline).where(InternshipDeadline.internship_id == iid)
        ).all()
