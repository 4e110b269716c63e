"""The pages over real HTTP (no browser): sign-in by email link, the guards on forms, pages
showing only what the rulebook allows, and refusals as messages on the page.

The whole journey in a real browser is tests/e2e/test_web_browser.py.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import sessionmaker

from core.accounts import create_employer, create_launcher, issue_token, new_id
from core.db import Employer, Internship, InternshipSkill, SignInLink, utcnow
from core.inbox import MAX_OPEN_LINKS
from core.internship import Role
from core.settings import Settings
from core.stripe_api import onboarding_link, stripe_client
from dev.harness import Inbox, complete_onboarding, links_in
from tests.conftest import Api, World, eventually, unique_email
from tests.stack.test_api import ACCEPT

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def form_keys_of(html: str) -> list[str]:
    """The one-time key the server issued for a page's forms (one per page as rendered)."""
    return FORM_KEY.findall(html)


class Browser:
    """An HTTP client that keeps its cookies and sends forms as a browser does."""

    def __init__(self, api: Api) -> None:
        self.http = httpx.AsyncClient(base_url=api.url, timeout=30)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def submit(self, page: str, action: str, **fields: Any) -> httpx.Response:
        """Open `page`, then post one of its forms to `action` with this session's token."""
        html = (await self.http.get(page)).text
        keys = form_keys_of(html)
        data = {"csrf_token": csrf_of(html), "form_key": keys[0] if keys else "", **fields}
        return await self.http.post(action, data=data)

    async def sign_in(self, inbox: Inbox, email: str, back_to: str = "/dashboard") -> str:
        """The whole email-link sign-in; returns the path it lands on."""
        before = inbox.count_to(email, "sign_in")
        sent = await self.submit("/sign-in", "/sign-in", email=email, next=back_to)
        assert sent.status_code == 303  # to the page saying so: a reload never sends it again
        assert "Check your email" in (await self.get(sent.headers["location"])).text
        message = await inbox.wait_to(email, "sign_in", before)
        link = next(u for u in links_in(message) if "/sign-in/" in u)
        path = httpx.URL(link).path
        confirm = await self.get(path)
        assert confirm.status_code == 200 and "Sign in" in confirm.text
        signed = await self.http.post(path, data={"csrf_token": csrf_of(confirm.text)})
        assert signed.status_code == 303, signed.text
        return signed.headers["location"]

    async def aclose(self) -> None:
        await self.http.aclose()


async def signed_in(api: Api, inbox: Inbox, email: str) -> Browser:
    """A browser of its own, signed in by the email link."""
    browser = Browser(api)
    await browser.sign_in(inbox, email)
    return browser


def employer_account(sessions: sessionmaker, settings: Settings) -> tuple[str, str]:
    email = unique_email("web-emp")
    e = create_employer(
        sessions,
        stripe_client(settings),
        name="Erin Employer",
        email=email,
        company="Northwind",
        payment_method="pm_card_visa",
    )
    return e.id, email


def launcher_account(
    sessions: sessionmaker, settings: Settings, skills: list[str] | None = None
) -> tuple[str, str]:
    email = unique_email("web-lnc")
    client = stripe_client(settings)
    launcher = create_launcher(
        sessions, client, name="Lee Launcher", email=email, skills=skills or ["research"]
    )
    complete_onboarding(
        onboarding_link(client, launcher.stripe_account_id, settings.public_base_url)
    )
    return launcher.id, email


POSTING = {
    "title": "Market research on pet food",
    "description": "A 10-page summary of the market.",
    "category": "marketing",
    "skills": "research, writing",
    "estimated_hours": "10",
    "duration_days": "14",
    "fee": "400",
    "currency": "usd",
}


async def test_sign_in_link_works_once_and_opening_it_spends_nothing(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, email = employer_account(sessions, settings)
    browser = Browser(api)
    sent = await browser.submit("/sign-in", "/sign-in", email=email, next="/internships/new")
    assert "Check your email" in (await browser.get(sent.headers["location"])).text
    message = await inbox.wait_to(email, "sign_in")
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and "15 minutes" in text.get_content()
    path = httpx.URL(next(u for u in links_in(message) if "/sign-in/" in u)).path
    # A mail scanner opening the link twice: a page with a button, nothing spent.
    for _ in range(2):
        opened = await browser.get(path)
        assert opened.status_code == 200 and "Press the button to sign in" in opened.text
    signed = await browser.http.post(path, data={"csrf_token": csrf_of(opened.text)})
    assert signed.status_code == 303 and signed.headers["location"] == "/internships/new"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert (await browser.get("/internships/new")).status_code == 200
    # Spent: a second use is refused, with a way to get a new link.
    again = await Browser(api).get(path)
    assert again.status_code == 410 and "This link has expired" in again.text
    await browser.aclose()


async def test_an_expired_link_is_refused(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, email = launcher_account(sessions, settings)
    browser = Browser(api)
    await browser.submit("/sign-in", "/sign-in", email=email)
    message = await inbox.wait_to(email, "sign_in")
    path = httpx.URL(next(u for u in links_in(message) if "/sign-in/" in u)).path
    with sessions.begin() as db:  # 16 minutes later
        db.execute(update(SignInLink).values(expires_at=utcnow()))
    opened = await browser.get(path)
    assert opened.status_code == 410
    token = csrf_of((await browser.get("/sign-in")).text)
    posted = await browser.http.post(path, data={"csrf_token": token})
    assert posted.status_code == 410 and "This link has expired" in posted.text
    assert (await browser.get("/dashboard")).status_code == 303  # still signed out
    await browser.aclose()


async def test_unknown_address_gets_the_same_answer_and_no_email(api: Api, inbox: Inbox) -> None:
    browser = Browser(api)
    email = unique_email("nobody")
    sent = await browser.submit("/sign-in", "/sign-in", email=email)
    assert sent.status_code == 303
    assert "Check your email" in (await browser.get(sent.headers["location"])).text
    assert not [m for m in inbox.messages if m["To"] == email]
    bad = await browser.submit("/sign-in", "/sign-in", email="not an address")
    assert bad.status_code == 422 and "Enter the email address" in bad.text
    await browser.aclose()


async def test_forms_without_the_session_token_are_refused(api: Api) -> None:
    browser = Browser(api)
    await browser.get("/sign-in")
    forged = await browser.http.post("/sign-in", data={"email": "a@example.com"})
    assert forged.status_code == 403 and "This form has expired" in forged.text
    await browser.aclose()


async def test_an_email_link_leads_through_sign_in_and_back(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    employer_id, email = employer_account(sessions, settings)
    browser = Browser(api)
    landed = await browser.sign_in(inbox, email)
    assert landed == "/dashboard"
    posted = await browser.submit("/internships/new", "/internships/new", **POSTING)
    assert posted.status_code == 303
    page = posted.headers["location"]
    internship_id = page.rsplit("/", 1)[1]
    # What the employer is emailed about links to that page; opened signed out, it asks for
    # sign-in and then returns there.
    stranger = Browser(api)
    opened = await stranger.get(page)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/sign-in?next=/internships/{internship_id}"
    assert await stranger.sign_in(inbox, email, back_to=page) == page
    shown = await stranger.get(page)
    assert shown.status_code == 200 and "Market research on pet food" in shown.text
    await browser.aclose()
    await stranger.aclose()


async def test_posting_form_shows_what_to_fix_beside_each_field(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, email = employer_account(sessions, settings)
    browser = await signed_in(api, inbox, email)
    cheap = await browser.submit(
        "/internships/new", "/internships/new", **{**POSTING, "fee": "100", "title": " "}
    )
    assert cheap.status_code == 422
    assert 'id="f-title-error"' in cheap.text  # beside the title
    bad_fee = await browser.submit(
        "/internships/new", "/internships/new", **{**POSTING, "fee": "ten dollars"}
    )
    assert bad_fee.status_code == 422 and "Enter the fee" in bad_fee.text
    floor = await browser.submit(
        "/internships/new", "/internships/new", **{**POSTING, "fee": "150"}
    )
    assert floor.status_code == 422 and 'id="f-fee-error"' in floor.text
    assert "The fee must be at least $200.00: $20.00 for each of the 10 hours" in floor.text
    assert "Market research on pet food" in floor.text  # what was typed is kept
    await browser.aclose()


async def test_a_posting_form_sent_twice_posts_once(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    """A resend (a double click, a reload that resubmits, a replayed request) posts nothing new:
    the form's key was issued for one posting and is spent by it."""
    employer_id, email = employer_account(sessions, settings)
    browser = await signed_in(api, inbox, email)
    html = (await browser.get("/internships/new")).text
    form = {"csrf_token": csrf_of(html), "form_key": form_keys_of(html)[0], **POSTING}
    first = await browser.http.post("/internships/new", data=form)
    again = await browser.http.post("/internships/new", data=form)
    assert first.status_code == again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    shown = (await browser.get(again.headers["location"])).text
    assert "already sent" in shown and "Market research on pet food" in shown

    async def projected() -> list[str]:
        with sessions() as db:
            mine = select(Internship.id).where(Internship.employer_id == employer_id)
            return list(db.scalars(mine))

    assert await eventually(projected) == [first.headers["location"].rsplit("/", 1)[1]]
    await browser.aclose()


async def test_pages_offer_only_what_the_rulebook_allows_and_the_loser_of_a_race_is_told(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, employer_email = employer_account(sessions, settings)
    employer = await signed_in(api, inbox, employer_email)
    page = (await employer.submit("/internships/new", "/internships/new", **POSTING)).headers[
        "location"
    ]
    launchers = [launcher_account(sessions, settings) for _ in range(2)]
    for _, email in launchers:
        launcher = await signed_in(api, inbox, email)
        shown = (await launcher.get(page)).text
        assert "Send my application" in shown and "Kick off" not in shown
        applied = await launcher.submit(
            page, f"{page}/applications", pitch="I research well.", accept_terms="true"
        )
        assert applied.status_code == 303
        after = (await launcher.get(page)).text
        assert "Your application is in" in after and "Send my application" not in after
        await launcher.aclose()
    own = (await employer.get(page)).text
    assert "Send my application" not in own and own.count("Select Lee Launcher") == 2
    # Two tabs of the same employer: the first selection wins; the second tab is told why,
    # on the page as it is now.
    # (Each tab rendered the page: each has its own form key.)
    token, tab1 = csrf_of(own), form_keys_of(own)[0]
    tab2 = form_keys_of((await employer.get(page)).text)[0]
    first = await employer.http.post(
        f"{page}/selection",
        data={"csrf_token": token, "form_key": tab1, "launcher_id": launchers[0][0]},
    )
    second = await employer.http.post(
        f"{page}/selection",
        data={"csrf_token": token, "form_key": tab2, "launcher_id": launchers[1][0]},
    )
    # The loser's page is the page as it is now, with why nothing was changed.
    assert first.status_code == 303 and second.status_code == 409
    now = second.text
    assert 'class="flash error"' in now and "Nothing was changed." in now
    assert "a launcher selected" in now
    assert "Launcher selected" in now and "Charge $400.00 and kick off" in now
    # The same form sent twice (a double click) acts once: it is told so, and nothing changes.
    again = await employer.http.post(
        f"{page}/selection",
        data={"csrf_token": token, "form_key": tab1, "launcher_id": launchers[0][0]},
    )
    assert again.status_code == 303
    shown = (await employer.get(page)).text
    assert 'class="flash error"' not in shown and "already sent" in shown
    # A key the server did not issue (made up, or another session's) is a stale form.
    for made_up in ("tab3", tab2 + "x"):
        forged = await employer.http.post(
            f"{page}/kickoff",
            data={"csrf_token": token, "form_key": made_up, "accept_terms": "true"},
        )
        assert forged.status_code == 403 and "This form has expired" in forged.text
    assert "Charge $400.00 and kick off" in (await employer.get(page)).text  # still matched
    await employer.aclose()


async def test_the_json_api_and_its_errors_are_unchanged_beside_the_pages(api: Api) -> None:
    answer = await api.http.get("/v1/internships")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"
    missing = await api.http.get("/v1/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    page = await api.http.get("/nothing-here")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]


async def test_asking_again_and_again_cannot_flood_an_inbox(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, email = employer_account(sessions, settings)
    browser = Browser(api)
    for _ in range(MAX_OPEN_LINKS + 2):
        sent = await browser.submit("/sign-in", "/sign-in", email=email)
        assert sent.status_code == 303
        assert "Check your email" in (await browser.get(sent.headers["location"])).text
    await inbox.wait_to(email, "sign_in", MAX_OPEN_LINKS - 1)
    with sessions() as db:
        links = db.scalar(select(func.count()).select_from(SignInLink))
    assert links is not None and links >= MAX_OPEN_LINKS
    assert len([m for m in inbox.messages if m["To"] == email]) == MAX_OPEN_LINKS
    await browser.aclose()


async def test_what_is_not_yours_is_a_page_saying_so_never_json(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, owner_email = employer_account(sessions, settings)
    _, other_email = employer_account(sessions, settings)
    owner, other = Browser(api), Browser(api)
    await owner.sign_in(inbox, owner_email)
    page = (await owner.submit("/internships/new", "/internships/new", **POSTING)).headers[
        "location"
    ]
    await other.sign_in(inbox, other_email)
    hidden = await other.get(page)
    assert hidden.status_code == 404 and "text/html" in hidden.headers["content-type"]
    assert "Not found" in hidden.text
    # Acting on it is the same 404 page, and nothing happens.
    cancelled = await other.submit("/dashboard", f"{page}/cancellation", reason="mine now")
    assert cancelled.status_code == 404 and "Not found" in cancelled.text
    assert "Open for applications" in (await owner.get(page)).text
    nonsense = await other.submit("/dashboard", f"{page}/teleport")
    assert nonsense.status_code == 422 and "text/html" in nonsense.headers["content-type"]
    await owner.aclose()
    await other.aclose()


async def test_ops_retry_a_refused_payout_from_the_page_and_cancel_without_refund(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    from tests.stack.test_api import OPS, act
    from tests.stack.test_payment_retry import (
        in_review,
        projection_says,
        refuse_transfers,
        stop_refusing,
    )

    emp, _, iid = await in_review(api)
    refuse_transfers(settings, iid)
    await act(api, emp, iid, "review", {"decision": "approve"})
    await projection_says(sessions, iid, refused=True)
    ops = await signed_in(api, inbox, settings.ops_email)
    queue = (await ops.get("/ops")).text
    assert f'href="/internships/{iid}"' in queue and "Payment refused" in queue
    page = f"/internships/{iid}"
    shown = (await ops.get(page)).text
    assert "Retry the payment" in shown and "payout of $360.00 refused by Stripe" in shown
    stop_refusing(settings)
    retried = await ops.submit(page, f"{page}/payment-retry")
    assert retried.status_code == 303
    assert "Retrying the payment now" in (await ops.get(page)).text
    await projection_says(sessions, iid, refused=False)
    paid = await api.http.get(f"/v1/internships/{iid}", headers=OPS)
    assert paid.json()["payment"]["paid_to_launcher_cents"] == 36000

    # Ops cancel another one after kickoff, keeping the charge (the box unticked).
    _, _, other = await in_review(api)
    other_page = f"/internships/{other}"
    assert 'name="refund" value="true" checked' in (await ops.get(other_page)).text
    cancelled = await ops.submit(
        other_page, f"{other_page}/cancellation", reason="Fraud check", refund="false"
    )
    assert cancelled.status_code == 303
    after = (await ops.get(other_page)).text
    assert "The internship is cancelled" in after
    detail = (await api.http.get(f"/v1/internships/{other}", headers=OPS)).json()
    assert detail["stage"] == "cancelled" and detail["payment"]["refunded_cents"] == 0
    await ops.aclose()


async def test_cancelling_delivered_work_on_the_page_goes_to_ops_and_says_so(
    api: Api, inbox: Inbox, settings: Settings, sessions: sessionmaker
) -> None:
    from tests.stack.test_lifecycle import money_calls
    from tests.stack.test_payment_retry import in_review

    emp, _, iid = await in_review(api)
    with sessions() as db:
        email = db.get_one(Employer, emp["id"]).email
    employer = await signed_in(api, inbox, email)
    page = f"/internships/{iid}"
    before = (await employer.get(page)).text
    assert "cancelling goes to ops as a dispute" in before and "charged is refunded" not in before
    sent = await employer.submit(page, f"{page}/cancellation", reason="We changed plans")
    assert sent.status_code == 303
    after = (await employer.get(page)).text
    assert "your cancellation went to ops as a dispute" in after
    assert "decided by" in after and "the launcher is paid their share in full" in after
    assert money_calls(settings, "/v1/refunds", iid) == []
    await employer.aclose()


async def test_a_page_for_another_role_sends_the_viewer_home_with_why(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, email = launcher_account(sessions, settings)
    launcher = await signed_in(api, inbox, email)
    for path in ("/internships/new", "/card", "/ops"):
        sent = await launcher.get(path)
        assert sent.status_code == 303 and sent.headers["location"] == "/dashboard", path
    home = (await launcher.get("/dashboard")).text
    assert "That page is for employers." in home and "the operations team" in home
    forged = await launcher.submit("/dashboard", "/card")  # a form for employers only
    assert forged.status_code == 303 and forged.headers["location"] == "/dashboard"
    await launcher.aclose()


async def test_the_skill_filter_finds_an_older_posting_behind_two_hundred_newer_ones(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    employer_id, _ = employer_account(sessions, settings)
    _, email = launcher_account(sessions, settings, skills=["writing"])
    now = utcnow()

    def row(title: str, skill: str, age: timedelta) -> tuple[Internship, InternshipSkill]:
        posted = Internship(
            id=new_id(),
            employer_id=employer_id,
            title=title,
            description="Rows for the page alone: no workflow is needed to list them.",
            company="Northwind",
            category="engineering",
            stage="posted",
            estimated_hours=10,
            fee_cents=40000,
            currency="usd",
            duration_days=14,
            posted_at=now - age,
            updated_at=now - age,
        )
        return posted, InternshipSkill(internship_id=posted.id, skill=skill)

    rows = [row("Port the COBOL payroll batch", "cobol", timedelta(days=3))] + [
        row(f"Newer blog post {n}", "writing", timedelta(minutes=n)) for n in range(210)
    ]
    with sessions.begin() as db:
        db.add_all([r for pair in rows for r in pair])
    launcher = Browser(api)
    try:
        await launcher.sign_in(inbox, email)
        found = (await launcher.get("/postings?skill=COBOL")).text
        assert "Port the COBOL payroll batch" in found and "Newer blog post" not in found
        everything = (await launcher.get("/postings")).text
        assert "Newer blog post 0" in everything
    finally:
        await launcher.aclose()
        ids = [posted.id for posted, _ in rows]
        with sessions.begin() as db:
            db.execute(delete(InternshipSkill).where(InternshipSkill.internship_id.in_(ids)))
            db.execute(delete(Internship).where(Internship.id.in_(ids)))


async def test_signing_out_everywhere_ends_the_account_s_session_in_every_browser(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, email = launcher_account(sessions, settings)
    laptop, phone = Browser(api), Browser(api)
    for browser in (laptop, phone):
        await browser.sign_in(inbox, email)
        assert (await browser.get("/dashboard")).status_code == 200
    assert "Sign out everywhere" in (await phone.get("/dashboard")).text
    sent = await laptop.submit("/dashboard", "/sign-out/everywhere")
    assert sent.status_code == 303
    assert "signed out on every device" in (await laptop.get(sent.headers["location"])).text
    for browser in (laptop, phone):
        ended = await browser.get("/dashboard")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/sign-in")
    # Signing in again starts a new session, which works.
    await phone.sign_in(inbox, email)
    assert (await phone.get("/dashboard")).status_code == 200
    await laptop.aclose()
    await phone.aclose()


async def test_rotating_the_api_token_ends_the_account_s_web_sessions(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    employer_id, email = employer_account(sessions, settings)
    token = issue_token(sessions, Role.EMPLOYER, employer_id, "script")
    web = await signed_in(api, inbox, email)
    assert (await web.get("/dashboard")).status_code == 200
    rotated = await api.http.post("/v1/me/token", headers={"Authorization": f"Bearer {token}"})
    assert rotated.status_code == 200, rotated.text
    ended = await web.get("/dashboard")
    assert ended.status_code == 303 and ended.headers["location"].startswith("/sign-in")
    await web.aclose()


async def test_a_full_posting_tells_a_launcher_so(
    api: Api, world: World, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    """Not a missing form and silence: the page says why, and where to look instead."""
    employer, first = world.employer(), world.launcher()
    one_place = dataclasses.replace(settings.policy(), max_open_applications=1)
    handle = await world.start(world.posting(employer, policy=one_place))
    iid = handle.id.removeprefix("internship-")

    async def listed() -> bool:  # the projection has it (the page reads the workflow)
        with sessions() as db:
            return db.get(Internship, iid) is not None

    await eventually(listed)
    applied = await api.http.post(
        f"/v1/internships/{iid}/applications",
        json={"pitch": "Me first", **ACCEPT},
        headers={"Authorization": f"Bearer {first.token}"},
    )
    assert applied.status_code == 200, applied.text
    _, email = launcher_account(sessions, settings)
    browser = await signed_in(api, inbox, email)
    page = await browser.get(f"/internships/{iid}")
    assert page.status_code == 200
    assert "as many applicants as it takes (1 open application)" in page.text
    assert 'id="apply"' not in page.text and 'href="/postings"' in page.text
    await browser.aclose()
