"""What people type is never lost and every problem is said beside its field in plain words;
money is shown before it moves; pages say what they mean (issue 17, items 2, 4 and 5)."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.service import RPCError, RPCStatusCode

from core.internship import (
    Actor,
    DisputeView,
    InternshipState,
    Money,
    Resolution,
    Role,
    Stage,
    TimelineEntry,
)
from tests.surface.conftest import Surface
from tests.surface.test_internship_page import beside


async def test_a_too_long_pitch_is_kept_and_its_limit_was_told_before(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    iid = surface.internship(employer, Stage.POSTED).posting.internship_id
    browser = await surface.signed_in(lee.email)
    shown = (await browser.get(f"/internships/{iid}")).text
    assert "Up to 2,000 characters" in shown and 'data-limit="2000"' in shown
    pitch = "I have run surveys for three local shops. " * 56  # 2,352 characters
    here = f"/internships/{iid}"
    sent = await browser.submit(here, f"{here}/applications", pitch=pitch, accept_terms="true")
    assert sent.status_code == 422
    assert surface.workflows.updates(iid) == []
    assert beside(sent.text, "pitch") == "Keep this to 2,000 characters or fewer: it has 2,352."
    assert html.escape(pitch.strip(), quote=True) in sent.text or pitch.strip() in sent.text


async def test_the_posting_form_says_limits_in_plain_words(surface: Surface) -> None:
    employer = surface.employer()
    browser = await surface.signed_in(employer.email)
    form = (await browser.get("/internships/new")).text
    assert "Up to 200 characters" in form and "each up to 64 characters" in form
    typed = {
        "title": "T" * 201,
        "description": "Call 20 shops.",
        "category": "marketing",
        "skills": "research, " + "s" * 70,
        "estimated_hours": "10",
        "duration_days": "14",
        "fee": "400",
    }
    refused = await browser.submit("/internships/new", "/internships/new", **typed)
    assert refused.status_code == 422
    assert beside(refused.text, "title") == "Keep this to 200 characters or fewer: it has 201."
    assert beside(refused.text, "skills").startswith("Keep each one to 64 characters or fewer:")
    assert "has 70." in beside(refused.text, "skills")
    assert "String should have" not in refused.text
    assert f'value="{"T" * 201}"' in refused.text
    assert surface.workflows.asked == []


def disputed(surface: Surface) -> tuple[str, str]:
    """An internship in review whose $240 fee was charged, with a dispute open: (id, ops' email)."""
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.IN_REVIEW, launcher=lee)
    state = replace(
        state,
        posting=replace(state.posting, fee_cents=24000),
        money=Money(charged_cents=24000),
        dispute=DisputeView(
            opened_by=Role.EMPLOYER, reason="Half of it is missing", opened_at=datetime.now(UTC)
        ),
    )
    surface.workflows.states[state.posting.internship_id] = state
    return state.posting.internship_id, surface.settings.ops_email


async def test_a_split_shows_each_partys_money_before_ops_confirm_it(surface: Surface) -> None:
    iid, ops_email = disputed(surface)
    ops = await surface.signed_in(ops_email)
    here, to = f"/internships/{iid}", f"/internships/{iid}/resolution"
    page = (await ops.get(here)).text
    assert "Pay the launcher in full ($216.00; no refund)" in page
    assert "Refund the employer in full ($240.00; the launcher gets nothing)" in page

    # A split without a percent: the choice is kept, and the problem is beside the percent.
    missing = await ops.submit(here, to, outcome="split", note="Half delivered")
    assert missing.status_code == 422
    assert 'value="split" checked' in missing.text and ">Half delivered</textarea>" in missing.text
    assert beside(missing.text, "launcher_percent") == (
        "For a split, give the launcher between 1 and 99 percent of their share."
    )

    # 60 % of the launcher's $216 share: the amounts are shown, nothing moves yet.
    shown = await ops.submit(here, to, outcome="split", launcher_percent="60")
    assert shown.status_code == 200 and surface.workflows.updates(iid) == []
    text = html.unescape(shown.text)
    assert "The launcher is paid</dt><dd>$129.60" in text
    assert "The employer is refunded</dt><dd>$96.00" in text
    assert "The platform keeps</dt><dd>$14.40" in text
    assert "Confirm: pay $129.60, refund $96.00" in text

    # A confirmation of another choice than the one shown shows that one's amounts first.
    changed = await ops.submit(
        here, to, outcome="split", launcher_percent="50", confirmed="split:60"
    )
    assert changed.status_code == 200 and surface.workflows.updates(iid) == []
    assert "Confirm: pay $108.00, refund $120.00" in html.unescape(changed.text)

    done = await ops.submit(here, to, outcome="split", launcher_percent="50", confirmed="split:50")
    assert done.status_code == 303
    [asked] = surface.workflows.updates(iid)
    assert asked.request == Resolution(Actor(Role.OPS, "ops"), "split", 50, "")


async def test_the_resubmit_form_shows_what_the_employer_asked_to_change(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    asked = TimelineEntry(
        seq=5,
        at=datetime.now(UTC),
        stage=Stage.IN_PROGRESS,
        event="revision_requested",
        actor_role=Role.EMPLOYER,
        actor_id=employer.id,
        note="Add the prices of the three biggest brands.",
    )
    state = surface.internship(
        employer,
        Stage.IN_PROGRESS,
        launcher=lee,
        revision_rounds=1,
        timeline=[asked],
        due_at=datetime.now(UTC) + timedelta(days=3),
    )
    browser = await surface.signed_in(lee.email)
    page = (await browser.get(f"/internships/{state.posting.internship_id}")).text
    form = page[page.index('id="submit"') :]
    form = form[: form.index("</form>")]
    assert "What the employer asked you to change" in form
    assert "Add the prices of the three biggest brands." in form


async def test_the_due_line_is_rounded_as_people_say_it_and_gone_once_delivered(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    due = datetime.now(UTC) + timedelta(days=7) - timedelta(minutes=1)
    kicked_off = surface.internship(employer, Stage.IN_PROGRESS, launcher=lee, due_at=due)
    done = surface.internship(employer, Stage.COMPLETED, launcher=lee, due_at=due)
    refunded = surface.internship(employer, Stage.REFUNDED, launcher=lee, due_at=due)
    browser = await surface.signed_in(employer.email)
    running = (await browser.get(f"/internships/{kicked_off.posting.internship_id}")).text
    assert "<dt>Due</dt>" in running and "in 7 days" in running
    for ended in (done, refunded):
        shown = (await browser.get(f"/internships/{ended.posting.internship_id}")).text
        assert "<dt>Due</dt>" not in shown, ended.stage


async def test_after_approving_the_page_offers_the_rating_without_a_reload(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(
        employer, Stage.IN_REVIEW, launcher=lee, money=Money(charged_cents=40000)
    )
    iid = state.posting.internship_id
    approved = replace(state, stage=Stage.APPROVED)
    surface.workflows.then[iid] = approved
    browser = await surface.signed_in(employer.email)

    # Stripe pays the launcher a moment after the approval is answered (two reads later).
    surface.workflows.by_itself[iid] = [approved, replace(approved, stage=Stage.PAID)]
    here = f"/internships/{iid}"
    sent = await browser.submit(here, f"{here}/review", decision="approve")
    assert sent.status_code == 303
    after = (await browser.get(sent.headers["location"])).text
    assert "Your review is sent." in after and "Rate the launcher" in after

    # Still paying when the page is opened: it says so, and not "nothing to do".
    surface.workflows.states[iid] = approved
    paying = (await browser.get(f"/internships/{iid}")).text
    assert "Paying the launcher: this page updates by itself in a moment." in paying
    assert "data-pending" in paying and "Nothing for you to do here" not in paying


async def test_a_launcher_sees_what_was_paid_to_them(surface: Surface) -> None:
    employer, lee, ann = surface.employer(), surface.launcher(), surface.launcher("Ann")

    def paid(charged: int, days_ago: int) -> dict[str, Any]:
        at = datetime.now(UTC) - timedelta(days=days_ago)
        return {
            "money": Money(charged_cents=charged, paid_cents=charged * 9 // 10),
            "timeline": [TimelineEntry(9, at, Stage.PAID, "paid", Role.SYSTEM, "system")],
        }

    older = surface.internship(employer, Stage.COMPLETED, launcher=lee, **paid(40000, 30))
    newer = surface.internship(employer, Stage.PAID, launcher=lee, **paid(20000, 2))
    surface.internship(employer, Stage.PAID, launcher=ann, **paid(40000, 1))  # not Lee's
    surface.internship(employer, Stage.IN_PROGRESS, launcher=lee, money=Money(charged_cents=1))
    browser = await surface.signed_in(lee.email)
    page = (await browser.get("/payouts")).text
    history = page[page.index("Paid to you") :]
    rows = history.split("<tr>")[2:]  # the header, then one row per payment
    assert len(rows) == 2
    assert newer.posting.internship_id in rows[0] and "$180.00" in rows[0]
    assert older.posting.internship_id in rows[1] and "$360.00" in rows[1]


async def test_a_launchers_pages_say_what_they_receive_not_the_employers_fee(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    working = surface.internship(employer, Stage.IN_PROGRESS, launcher=lee)  # $400 fee
    surface.internship(employer, Stage.POSTED, applicants=[lee])
    browser = await surface.signed_in(lee.email)
    dashboard = (await browser.get("/dashboard")).text
    mine = dashboard[dashboard.index("Internships you were selected for") :]
    assert "You receive" in mine and "$360.00" in mine and "$400.00" not in mine
    applications = dashboard[dashboard.index("My applications") :]
    assert "$360.00 to you" in applications
    shown = (await browser.get(f"/internships/{working.posting.internship_id}")).text
    assert "<dt>Launcher gets</dt><dd>$360.00</dd>" in shown


async def test_an_approval_is_done_even_if_the_wait_for_the_payout_cannot_read(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(
        employer, Stage.IN_REVIEW, launcher=lee, money=Money(charged_cents=40000)
    )
    iid = state.posting.internship_id
    surface.workflows.then[iid] = replace(state, stage=Stage.APPROVED)
    browser = await surface.signed_in(employer.email)
    here = f"/internships/{iid}"
    page = (await browser.get(here)).text
    read = surface.workflows.state

    async def unreachable_once_approved(internship_id: str) -> InternshipState:
        if surface.workflows.updates(iid):
            raise RPCError("Temporal is restarting", RPCStatusCode.UNAVAILABLE, b"")
        return await read(internship_id)

    surface.workflows.state = unreachable_once_approved  # type: ignore[method-assign]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    key = re.search(r'name="form_key" value="([^"]+)"', page)
    assert token and key
    sent = await browser.http.post(
        f"{here}/review",
        data={"csrf_token": token[1], "form_key": key[1], "decision": "approve"},
    )
    assert sent.status_code == 303 and sent.headers["location"] == here
    assert [a.what for a in surface.workflows.updates(iid)] == ["review"]
