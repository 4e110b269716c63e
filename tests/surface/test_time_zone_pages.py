"""Every moment on a page in the reader's own zone, named: chosen in settings, guessed by the
browser at sign-up; a due date picked on a form ends at 23:59 that day in the picker's zone,
across a daylight-saving change."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select, update

from core.db import Launcher, Member, SignInLink
from core.internship import Actor, Extension, MemberRole, Role, Stage, UpcomingDeadline
from tests.surface.conftest import Browser, Surface
from tests.surface.test_conversation_pages import send
from tests.surface.test_internship_page import beside

LA, KOLKATA = "America/Los_Angeles", "Asia/Kolkata"
# March 2027: Los Angeles moves its clocks forward on the 14th.
DUE = datetime(2027, 3, 8, 17, 0, tzinfo=UTC)  # before the change: PST
APPROVES = datetime(2027, 3, 20, 17, 0, tzinfo=UTC)  # after it: PDT


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def test_each_reader_sees_the_same_moments_in_their_own_zone(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher(time_zone=KOLKATA)
    with surface.sessions.begin() as db:
        db.execute(update(Member).where(Member.id == employer.id).values(time_zone=LA))
    approves = UpcomingDeadline(
        "auto_approve", APPROVES, "The work is approved automatically", "you request a revision"
    )
    iid = surface.internship(
        employer,
        Stage.IN_PROGRESS,
        launcher=lee,
        due_at=DUE,
        original_due_at=DUE,
        deadlines=[approves],
    ).posting.internship_id
    pages = {
        email: text_of((await (await surface.signed_in(email)).get(f"/internships/{iid}")).text)
        for email in (employer.email, lee.email, surface.settings.ops_email)
    }
    # One due date: 09:00 in Los Angeles (winter time), 22:30 in Kolkata, 17:00 for ops (UTC).
    assert "Mar 8, 2027 09:00 PST" in pages[employer.email]
    assert "Mar 8, 2027 22:30 IST" in pages[lee.email]
    assert "Mar 8, 2027 17:00 UTC" in pages[surface.settings.ops_email]
    # After the change Los Angeles reads summer time.
    assert "approved automatically on Mar 20, 2027 10:00 PDT" in pages[employer.email]
    assert "approved automatically on Mar 20, 2027 22:30 IST" in pages[lee.email]
    # No time on these pages is left without its zone.
    for page in pages.values():
        for clock in re.finditer(r"\b\d{2}:\d{2}\b", page):
            after = page[clock.end() : clock.end() + 10]
            named = re.match(r" (PST|PDT|IST|UTC\b|[A-Z][a-z]+/)", after)
            assert named, page[clock.start() - 20 :][:60]


async def test_a_due_date_picked_across_the_dst_change_ends_at_the_end_of_that_day_there(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    with surface.sessions.begin() as db:
        db.execute(update(Member).where(Member.id == employer.id).values(time_zone=LA))
    iid = surface.internship(
        employer, Stage.IN_PROGRESS, launcher=lee, due_at=DUE, original_due_at=DUE
    ).posting.internship_id
    browser = await surface.signed_in(employer.email)
    page = f"/internships/{iid}"
    assert "Due at 23:59 America/Los Angeles time that day" in text_of(
        (await browser.get(page)).text
    )
    sent = await send(browser, page, f"{page}/extension", {"due_date": "2027-03-14"})
    assert sent.status_code == 303, sent.text
    [asked] = surface.workflows.updates(iid)
    # March 14 is the first day of summer time there: its 23:59 is 06:59 UTC the next day.
    assert asked.request == Extension(
        Actor(Role.EMPLOYER, employer.id, employer.id, MemberRole.ADMIN),
        datetime(2027, 3, 15, 6, 59, tzinfo=UTC),
    )
    # Something not a date is refused beside the field, as typed.
    wrong = await send(browser, page, f"{page}/extension", {"due_date": "next friday"})
    assert wrong.status_code == 422 and beside(wrong.text, "due_date")
    assert 'value="next friday"' in wrong.text


async def test_each_person_chooses_their_zone_and_a_wrong_one_is_refused_beside_it(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    colleague = surface.member(employer, MemberRole.FINANCE)
    for email, zone in ((lee.email, KOLKATA), (colleague.email, LA)):
        browser = await surface.signed_in(email)
        shown = (await browser.get("/settings")).text
        assert '<option value="UTC" selected>' in shown  # everyone starts in UTC
        saved = await send(browser, "/settings", "/settings/time-zone", {"time_zone": zone})
        assert saved.status_code == 303
        after = await browser.get(saved.headers["location"])
        assert f'<option value="{zone}" selected>' in after.text
        assert f"Times are now shown in {zone.replace('_', ' ')} time." in after.text
        wrong = await send(browser, "/settings", "/settings/time-zone", {"time_zone": "Mars/Base"})
        assert wrong.status_code == 422 and beside(wrong.text, "time-zone")
    with surface.sessions() as db:
        assert db.scalar(select(Launcher.time_zone).where(Launcher.id == lee.id)) == KOLKATA
        zones_now = dict(db.execute(select(Member.id, Member.time_zone)).all())
    assert zones_now[colleague.id] == LA and zones_now[employer.id] == "UTC"
    ops = await surface.signed_in(surface.settings.ops_email)
    assert "Ops read every time in UTC" in text_of((await ops.get("/settings")).text)
    async with surface.client(surface.token(Role.LAUNCHER, lee.id)) as http:
        assert (await http.get("/v1/me")).json()["time_zone"] == KOLKATA


async def test_the_sign_up_keeps_the_zone_the_browser_guessed(surface: Surface) -> None:
    browser = Browser(surface.client())
    form = (await browser.get("/sign-up/launcher")).text
    assert 'name="time_zone" value="" data-zone-guess' in form and "/static/zone.js" in form
    for email, guess, kept in (
        ("sam-zone@example.com", KOLKATA, KOLKATA),
        ("sol-zone@example.com", "Not/AZone", "UTC"),  # a guess never refuses the form
    ):
        fields = {"name": "Sam Zone", "email": email, "skills": "writing", "time_zone": guess}
        sent = await browser.submit("/sign-up/launcher", "/sign-up/launcher", **fields)
        assert sent.status_code == 303, sent.text
        with surface.sessions() as db:
            pending = [
                link.sign_up
                for link in db.scalars(select(SignInLink))
                if link.sign_up and link.sign_up["email"] == email
            ]
        assert [p["time_zone"] for p in pending] == [kept]
