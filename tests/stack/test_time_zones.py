"""Emails in each reader's zone, end to end: the real worker projects the kickoff and the
extension and its relay sends them over SMTP; the employer in Los Angeles and the launcher in
Kolkata read the one due date each in their own time, named, and the calendar invitation
carries the moment itself."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import update

from core.db import Launcher, Member
from core.internship import Extension
from tests.conftest import World
from tests.stack.test_calendars import invitation, reader, whole_seconds
from tests.stack.test_lifecycle import emp, in_progress, state
from workflows.internship import InternshipWorkflow

READERS = {"employer": ZoneInfo("America/Los_Angeles"), "launcher": ZoneInfo("Asia/Kolkata")}


def text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


def written(at: datetime, zone: ZoneInfo) -> str:
    """How a reader there reads the moment: "Dec 20, 2026 09:00 PST" (the zone's short name,
    which is what December has in both these places)."""
    local = at.astimezone(zone)
    return f"{local:%b} {local.day}, {local:%Y %H:%M} {local.tzname()}"


async def test_the_employer_and_the_launcher_read_one_due_date_each_in_their_zone(
    world: World,
) -> None:
    employer, launcher = world.employer(), world.launcher()
    with world.sessions.begin() as db:
        for model, row_id, role in (
            (Member, employer.id, "employer"),
            (Launcher, launcher.id, "launcher"),
        ):
            db.execute(update(model).where(model.id == row_id).values(time_zone=str(READERS[role])))
    h = await in_progress(world, employer, launcher)
    s = await state(h)
    iid, due = s.posting.internship_id, s.due_at
    assert due is not None
    kickoffs = {reader(m): m for m in await world.inbox.wait_for(iid, "kickoff", 2)}
    for role, message in kickoffs.items():
        said = text(message)
        assert f"due {written(due, READERS[role])}" in said, (role, said)
        assert "UTC" not in said, (role, said)
        assert invitation(message)[1].start == whole_seconds(due)  # the moment itself
    # The same moment reads as two different clock times, with the zone named.
    assert written(due, READERS["employer"]).endswith("PST")
    assert written(due, READERS["launcher"]).endswith("IST")

    later = due + timedelta(days=3)
    await h.execute_update(InternshipWorkflow.extend, Extension(emp(employer), later))
    for message in await world.inbox.wait_for(iid, "extended", 2):
        role = reader(message)
        assert f"It is now due {written(later, READERS[role])}." in text(message), role
