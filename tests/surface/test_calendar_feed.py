"""The private calendar feed: made and revoked on Settings, read by a calendar app with no
session (its secret is the credential), listing the deadlines that concern its owner."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from icalendar import Calendar

from core.internship import MemberRole, Stage, UpcomingDeadline
from tests.surface.conftest import Browser, Surface

FEED_URL = re.compile(r'id="new-feed" type="text" readonly value="([^"]+)"')
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)


def deadlines() -> list[UpcomingDeadline]:
    return [
        UpcomingDeadline("due", SOON, "The work is due", "", ("launcher",)),
        UpcomingDeadline("due", SOON, "The launcher's work is due", "", ("employer", "ops")),
        UpcomingDeadline(
            "auto_cancel",
            SOON + timedelta(days=10),
            "The project is cancelled and your fee refunded",
            "the work is submitted",
            ("employer",),
        ),
    ]


async def new_feed(browser: Browser) -> str:
    made = await browser.submit("/settings", "/settings/calendar")
    assert made.status_code == 200, made.text
    found = FEED_URL.search(made.text)
    assert found, made.text
    return found.group(1)


async def read(surface: Surface, url: str) -> httpx.Response:
    async with surface.client() as app:  # a calendar app: no cookie, no token
        return await app.get(httpx.URL(url).path)


def summaries(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/calendar")
    return {str(e.summary) for e in Calendar.from_ical(answer.text).events}


async def test_a_feed_lists_the_deadlines_worded_for_its_owner(surface: Surface) -> None:
    employer, lee, other = surface.employer(), surface.launcher(), surface.launcher()
    title = "Market research on pet food"
    iid = surface.internship(
        employer, Stage.IN_PROGRESS, launcher=lee, applicants=[other], deadlines=deadlines()
    ).posting.internship_id
    lee_feed = await new_feed(await surface.signed_in(lee.email))
    assert lee_feed.startswith(f"{surface.settings.public_base_url}/calendar/")
    answer = await read(surface, lee_feed)
    assert summaries(answer) == {f"Due: {title}"}
    [due] = Calendar.from_ical(answer.text).events
    assert due.start == SOON and due.uid.startswith(f"due-{iid}@")
    assert f"/internships/{iid}" in str(due.description)
    # The employer's founder: the due date and the auto-cancel, in their words.
    employer_feed = await new_feed(await surface.signed_in(employer.email))
    assert summaries(await read(surface, employer_feed)) == {
        f"Due: {title}",
        f"{title}: The project is cancelled and your fee refunded",
    }
    # A launcher who only applied has nothing of it in theirs.
    assert (
        summaries(await read(surface, await new_feed(await surface.signed_in(other.email))))
        == set()
    )


async def test_a_hiring_manager_limited_to_their_own_sees_only_those(surface: Surface) -> None:
    employer = surface.employer()
    surface.internship(
        employer, Stage.IN_PROGRESS, launcher=surface.launcher(), deadlines=deadlines()
    )
    manager = surface.member(employer, MemberRole.HIRING_MANAGER, "Hal Hiring")
    with surface.sessions.begin() as db:
        db.get(type(manager), manager.id).all_internships = False  # type: ignore[union-attr]
    feed = await new_feed(await surface.signed_in(manager.email))
    assert summaries(await read(surface, feed)) == set()


async def test_a_new_link_or_turning_it_off_revokes_the_old(surface: Surface) -> None:
    lee = surface.launcher()
    browser = await surface.signed_in(lee.email)
    assert "Turn on my calendar feed" in (await browser.get("/settings")).text
    first = await new_feed(browser)
    settings_page = (await browser.get("/settings")).text
    assert first not in settings_page  # shown once
    assert "On since" in settings_page
    second = await new_feed(browser)
    assert second != first
    gone = await read(surface, first)
    assert gone.status_code == 404 and "make a new link" in gone.text.lower()
    assert (await read(surface, second)).status_code == 200
    off = await browser.submit("/settings", "/settings/calendar/off")
    assert off.status_code == 303
    assert "Off: no address works." in (await browser.get("/settings")).text
    assert (await read(surface, second)).status_code == 404
    assert (
        await read(surface, f"{surface.settings.public_base_url}/calendar/made-up.ics")
    ).status_code == 404


async def test_ops_have_no_feed(surface: Surface) -> None:
    ops = await surface.signed_in(surface.settings.ops_email)
    assert "Calendar feed" not in (await ops.get("/settings")).text
