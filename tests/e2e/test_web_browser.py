"""The whole lifecycle in a real browser, as its people do it: no curl, no API token.

Chromium (Debian's package) driven by Playwright against the API's pages, the local Stripe
server's hosted pages and the SMTP inbox. Every page is checked by axe-core and proven to fit
both a desktop's and a phone's width, photographed at both (tests/artifacts/screenshots/).
Without Chromium these tests skip, loudly; CI installs it and fails on any skip.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    expect,
)
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.db import Employer, Internship
from core.settings import Settings
from dev.harness import Inbox, eventually, links_in
from tests.conftest import Api, unique_email
from tests.e2e.browser import (
    PHONE,
    SKIP_REASON,
    TERMS_BOX,
    Pages,
    ask_for_sign_in_link,
    chromium_present,
    follow_sign_in_link,
    person,
)
from tests.surface.test_documents import pdf_text

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_present(), reason=SKIP_REASON),
]


async def badges_apart(page: Page) -> None:
    """Badges side by side (a stage and "Disputed") are visibly apart, not run together."""
    gaps = await page.evaluate(
        """() => [...document.querySelectorAll(".badge + .badge")].map((b) => {
            const a = b.previousElementSibling.getBoundingClientRect();
            const r = b.getBoundingClientRect();
            return a.top === r.top ? r.left - a.right : null;
        }).filter((gap) => gap !== null)"""
    )
    assert gaps and min(gaps) >= 6, f"{page.url}: badges {gaps} px apart"


async def until_shown(page: Page, text: str) -> None:
    """Reload until the page says `text`: for what lands on its own (a webhook, a payout)."""

    async def shown() -> bool:
        await page.wait_for_load_state()  # the form's own POST and redirect come first
        await page.reload()
        return await page.get_by_text(text).count() > 0

    await eventually(shown, within=30, every=0.3)


async def test_from_sign_up_to_completed_in_the_browser(
    api: Api,
    chromium: Browser,
    people: list[BrowserContext],
    inbox: Inbox,
    sessions: sessionmaker,
) -> None:
    """The happy path on phones (each page also checked at a desktop's width), with a pitch
    too long for its box kept and said beside it; the employer's browser in Los Angeles, the
    launcher's in Kolkata, each reading the deadlines in their own time; the receipt
    downloaded as a PDF."""
    pages = Pages("journey")
    employer_email, launcher_email = unique_email("erin"), unique_email("lee")

    # --- The employer signs up, signs in from the email, adds a card and posts.
    employer = await person(chromium, people, api, PHONE, time_zone="America/Los_Angeles")
    await employer.goto("/")
    await pages.check(employer, "home")
    await employer.get_by_role("link", name="Post a project").click()
    await pages.check(employer, "employer sign-up")
    await employer.get_by_label("Your name").fill("Erin Employer")
    await employer.get_by_label("Work email").fill(employer_email)
    await employer.get_by_label("Company").fill("Northwind")
    await employer.get_by_role("button", name="Create my account").click()
    await expect(employer.get_by_role("heading", name="Check your email")).to_be_visible()
    await pages.check(employer, "check your email")
    message = await inbox.wait_to(employer_email, "sign_up")
    await employer.goto(next(u for u in links_in(message) if "/sign-in/" in u))
    await pages.check(employer, "create account button")
    await employer.get_by_role("button", name="Create my account").click()
    await expect(employer.get_by_role("heading", name="Your card")).to_be_visible()
    await pages.check(employer, "card missing")
    await employer.get_by_role("button", name="Add a card").click()
    await employer.get_by_role("button", name="Save card").click()  # Stripe Checkout's page
    # The page waits for Stripe's webhook (and reloads itself while it doesn't): no reload here.
    await expect(employer.get_by_text("Card on file")).to_be_visible()
    await pages.check(employer, "card on file")

    await employer.get_by_role("link", name="Post an internship").click()
    await employer.get_by_label("Title").fill("Market research on pet food")
    await employer.get_by_label("Description").fill("A 10-page summary of the pet food market.")
    await employer.get_by_label("Category").select_option("marketing")
    await employer.get_by_label("Skills").fill("research, writing")
    await employer.get_by_label("Estimated hours").fill("10")
    await employer.get_by_label("Days to deliver").fill("14")
    await employer.get_by_label("Fixed fee").fill("90")  # below $20 an hour
    await employer.get_by_role("button", name="Post the internship").click()
    await expect(employer.locator("#f-fee-error")).to_contain_text("at least")
    await pages.check(employer, "posting form with an error")
    await employer.get_by_label("Fixed fee").fill("400")
    await employer.get_by_role("button", name="Post the internship").click()
    await expect(employer.get_by_text("Your internship is posted")).to_be_visible()
    await pages.check(employer, "posted internship")
    internship_page = employer.url

    # --- A launcher signs up, sets up payouts and applies.
    launcher = await person(chromium, people, api, PHONE, time_zone="Asia/Kolkata")
    await launcher.goto("/sign-up/launcher")
    await pages.check(launcher, "launcher sign-up")
    await launcher.get_by_label("Your name").fill("Lee Launcher")
    await launcher.get_by_label("Email").fill(launcher_email)
    await launcher.get_by_label("Skills").fill("research, excel")
    await launcher.get_by_role("button", name="Create my account").click()
    await follow_sign_in_link(launcher, inbox, launcher_email, kind="sign_up")
    await expect(launcher.get_by_role("heading", name="Payouts")).to_be_visible()
    await pages.check(launcher, "payouts not set up")
    await launcher.get_by_role("button", name="Set up payouts with Stripe").click()
    await launcher.get_by_role("button", name="Complete onboarding").click()  # Stripe's page
    await expect(launcher.get_by_role("heading", name="Payouts")).to_be_visible()
    await expect(launcher.get_by_text("Ready to be paid")).to_be_visible()
    await pages.check(launcher, "payouts ready")
    await launcher.get_by_role("link", name="Find internships").click()
    await pages.check(launcher, "open postings")
    await launcher.get_by_role("link", name="Market research on pet food").first.click()
    await pages.check(launcher, "posting as a launcher")
    # A pitch over the limit (told beside the box, and counted as it is typed) is refused
    # with the problem beside it, and nothing typed is lost.
    pitch = launcher.get_by_label("Your pitch")
    too_long = "I ran three market studies last term. " * 55  # 2,090 characters
    await pitch.fill(too_long)
    await expect(launcher.get_by_text("2,090 of 2,000 characters")).to_be_visible()
    await launcher.get_by_label(TERMS_BOX).check()
    await launcher.get_by_role("button", name="Send my application").click()
    await expect(launcher.locator("#f-pitch-error")).to_have_text(
        "Keep this to 2,000 characters or fewer: it has 2,090."
    )
    await expect(pitch).to_have_value(too_long)
    await pages.check(launcher, "too long a pitch, kept")
    await expect(launcher.get_by_label(TERMS_BOX)).to_be_checked()  # as ticked
    await pitch.fill("I ran three market studies last term.")
    await launcher.get_by_role("button", name="Send my application").click()
    await expect(launcher.get_by_text("Your application is in")).to_be_visible()

    # --- The employer sees the applicant ranked, with reasons, selects and kicks off.
    await employer.goto(internship_page)
    await expect(employer.get_by_text("I ran three market studies")).to_be_visible()
    await pages.check(employer, "applicants ranked")
    await employer.get_by_role("button", name="Select Lee Launcher").click()
    await expect(employer.locator("#kickoff")).to_contain_text("Visa ending in 4242")
    await pages.check(employer, "kickoff with the fee and card shown")
    await employer.get_by_label(TERMS_BOX).check()
    await employer.get_by_role("button", name="Charge $400.00 and kick off").click()
    await expect(employer.get_by_text("Kicked off")).to_be_visible()
    # What happens next, dated in each reader's own time (the zone their browser gave).
    employer_next = employer.locator("section", has=employer.locator("#h-next"))
    await expect(employer_next).to_contain_text(
        re.compile(
            r"The project is cancelled and your fee refunded on \w{3} \d+, \d{4} \d\d:\d\d PST"
        )
    )
    await pages.check(employer, "what happens next, in Los Angeles time")

    # --- The receipt for the charge: on the Billing page, and as a PDF.
    await employer.get_by_role("link", name="Billing").click()
    await expect(employer.get_by_role("cell", name=re.compile("Receipt"))).to_be_visible()
    await pages.check(employer, "billing with a receipt")
    async with employer.expect_download() as downloading:
        await employer.get_by_role("link", name=re.compile("^Download")).first.click()
    receipt = await (await downloading.value).path()
    text = pdf_text(await asyncio.to_thread(receipt.read_bytes))
    assert "Receipt" in text and "$400.00" in text and "Northwind" in text, text

    # --- The launcher submits; the employer asks for a revision, then approves.
    await launcher.goto(internship_page)
    await expect(launcher.locator("section", has=launcher.locator("#h-next"))).to_contain_text(
        re.compile(r"\d\d:\d\d IST")
    )
    await pages.check(launcher, "work in progress")
    await launcher.get_by_label("Link to the deliverable").fill("https://docs.example.com/v1")
    await launcher.get_by_role("button", name="Submit for review").click()
    await expect(launcher.get_by_text("Your work is submitted")).to_be_visible()

    await employer.goto(internship_page)
    await pages.check(employer, "submission to review")
    await employer.locator("summary", has_text="Request a revision").click()
    await employer.get_by_label("What needs to change").fill("Please add sources.")
    await employer.get_by_role("button", name="Request a revision").click()
    await expect(employer.get_by_text("Your review is sent")).to_be_visible()

    await launcher.goto(internship_page)
    await launcher.get_by_label("Link to the deliverable").fill("https://docs.example.com/v2")
    await launcher.get_by_role("button", name="Submit for review").click()
    await expect(launcher.get_by_text("Your work is submitted")).to_be_visible()

    await employer.goto(internship_page)
    await employer.get_by_role("button", name="Approve and pay $360.00 to the launcher").click()
    await expect(employer.get_by_text("Your review is sent")).to_be_visible()
    # The page waited for the payout (stage paid): the rating is offered without a reload.
    await expect(employer.get_by_text("Rate the launcher")).to_be_visible()

    # --- Both rate; the internship completes and the portfolio shows it.
    await employer.get_by_label("4 stars").check()
    await employer.get_by_label("Comment").fill("Clear and on time.")
    await employer.get_by_role("button", name="Send my rating").click()
    await expect(employer.get_by_text("Thanks for your rating")).to_be_visible()
    await launcher.goto(internship_page)
    await expect(launcher.get_by_text("$360.00").first).to_be_visible()
    await launcher.get_by_label("5 stars").check()
    await launcher.get_by_role("button", name="Send my rating").click()
    await expect(launcher.get_by_text("Thanks for your rating")).to_be_visible()
    await until_shown(launcher, "Completed")
    await pages.check(launcher, "completed with ratings")
    await launcher.get_by_role("link", name="Portfolio").click()
    await expect(launcher.get_by_text("Clear and on time.")).to_be_visible()
    await pages.check(launcher, "portfolio")
    await launcher.goto("/dashboard")
    await pages.check(launcher, "launcher dashboard")
    await employer.goto("/dashboard")
    await pages.check(employer, "employer dashboard")

    internship_id = internship_page.rsplit("/", 1)[1]
    with sessions() as db:
        row = db.get(Internship, internship_id)
        assert row is not None and row.stage == "completed"
        assert (row.charged_cents, row.paid_cents) == (40000, 36000)
        card = db.scalar(
            select(Employer.stripe_payment_method).where(Employer.email == employer_email)
        )
        assert card

    # --- Every email about it leads to a page that makes sense to its reader.
    for message in inbox.about(internship_id):
        reader = employer if message["To"] == employer_email else launcher
        # Ours, that is: a deliverable's own link goes where the launcher put it.
        for link in [u for u in links_in(message) if u.startswith(api.url)]:
            path = httpx.URL(link).path
            assert path.startswith(("/internships/", "/payouts", "/launchers/", "/documents/")), (
                link
            )
            answer = await reader.goto(link)
            assert answer is not None and answer.status == 200, link
            await expect(reader.get_by_role("heading", level=1)).to_be_visible()


async def test_ops_resolve_a_dispute_from_their_queue(
    api: Api,
    chromium: Browser,
    people: list[BrowserContext],
    inbox: Inbox,
    settings: Settings,
    sessions: sessionmaker,
) -> None:
    from tests.stack.test_web import POSTING, employer_account, launcher_account

    pages = Pages("dispute")
    _, employer_email = employer_account(sessions, settings)
    launcher_id, launcher_email = launcher_account(sessions, settings)

    employer = await person(chromium, people, api, PHONE)
    await employer.goto("/sign-in")
    await pages.check(employer, "sign in")
    await ask_for_sign_in_link(employer, inbox, employer_email)
    await employer.goto("/internships/new")
    for label, field in (
        ("Title", "title"),
        ("Description", "description"),
        ("Skills", "skills"),
        ("Estimated hours", "estimated_hours"),
        ("Days to deliver", "duration_days"),
        ("Fixed fee", "fee"),
    ):
        await employer.get_by_label(label).fill(POSTING[field])
    await employer.get_by_label("Category").select_option(POSTING["category"])
    await employer.get_by_role("button", name="Post the internship").click()
    internship_page = employer.url

    launcher = await person(chromium, people, api, PHONE)
    await launcher.goto(internship_page)  # signed out: through sign-in and back
    await ask_for_sign_in_link(launcher, inbox, launcher_email)
    assert launcher.url.endswith(
        internship_page.rsplit("/", 2)[-2] + "/" + internship_page.rsplit("/", 1)[1]
    )
    await launcher.get_by_label("Your pitch").fill("Happy to help.")
    await launcher.get_by_label(TERMS_BOX).check()
    await launcher.get_by_role("button", name="Send my application").click()

    await employer.reload()
    await employer.get_by_role("button", name="Select Lee Launcher").click()
    await employer.get_by_label(TERMS_BOX).check()
    await employer.get_by_role("button", name=re.compile("Charge .* and kick off")).click()
    await launcher.goto(internship_page)
    await launcher.get_by_label("Link to the deliverable").fill("https://docs.example.com/x")
    await launcher.get_by_role("button", name="Submit for review").click()

    await employer.goto(internship_page)
    await employer.locator("summary", has_text="Open a dispute").click()
    await employer.get_by_label("What went wrong").fill("Half of the report is missing.")
    await employer.get_by_role("button", name="Open a dispute").click()
    await expect(employer.get_by_text("Your dispute is open")).to_be_visible()
    await pages.check(employer, "dispute open")

    ops = await person(chromium, people, api, PHONE)
    await ops.goto("/ops")
    await ask_for_sign_in_link(ops, inbox, settings.ops_email)
    await expect(ops.get_by_role("heading", name="Ops queue")).to_be_visible()
    internship_id = internship_page.rsplit("/", 1)[1]
    row = ops.get_by_role("row").filter(has=ops.locator(f'a[href="/internships/{internship_id}"]'))
    await expect(row).to_contain_text("Disputed")
    await expect(row.get_by_role("link", name="Temporal UI")).to_have_attribute(
        "href", re.compile(r"/workflows/internship-")
    )
    await pages.check(ops, "ops queue")
    # Any internship, queued or not, is found by its launcher's email.
    await ops.get_by_role("link", name="Find any internship").click()
    await ops.get_by_label("Id, title, name or email").fill(launcher_email.upper())
    await ops.get_by_role("button", name="Search").click()
    found = ops.get_by_role("row").filter(
        has=ops.locator(f'a[href="/internships/{internship_id}"]')
    )
    await expect(found).to_contain_text(launcher_email)
    await pages.check(ops, "ops search")
    await ops.goto("/ops")
    await row.get_by_role("link", name="Market research on pet food", exact=True).click()
    await expect(ops.get_by_text(launcher_email)).to_be_visible()  # the parties' contacts
    await pages.check(ops, "dispute for ops")
    await ops.get_by_label("Split: pay the launcher part of their share").check()
    await ops.get_by_label("For a split: the launcher's part").fill("50")
    await ops.get_by_label("Note to both parties").fill("Half was delivered.")
    await ops.get_by_role("button", name="Show the amounts").click()
    # Each party's money, before anything moves: half of the launcher's $360 share.
    await expect(ops.get_by_text("Check the amounts, then confirm.")).to_be_visible()
    for amount in ("$180.00", "$200.00", "$20.00"):  # each on one line, even on a phone
        lines = await ops.locator("dd", has_text=amount).first.evaluate(
            "(dd) => { const r = document.createRange(); r.selectNodeContents(dd);"
            " return r.getClientRects().length; }"
        )
        assert lines == 1, f"{amount} is broken over {lines} lines"
    await pages.check(ops, "dispute amounts")
    await ops.get_by_role("button", name="Confirm: pay $180.00, refund $200.00").click()
    await expect(ops.get_by_text("The dispute is resolved")).to_be_visible()
    await until_shown(ops, "Resolved")
    await pages.check(ops, "dispute resolved")

    with sessions() as db:
        found = db.get(Internship, internship_id)
        assert found is not None and found.launcher_id == launcher_id
        assert (found.paid_cents, found.refunded_cents) == (18000, 20000)


async def test_settings_on_a_phone(
    api: Api,
    chromium: Browser,
    people: list[BrowserContext],
    inbox: Inbox,
    settings: Settings,
    sessions: sessionmaker,
) -> None:
    """Where one is signed in, API tokens and the portfolio's visibility, at a phone's width."""
    from tests.stack.test_web import launcher_account

    pages = Pages("settings")
    _, email = launcher_account(sessions, settings)
    laptop = await person(chromium, people, api)
    await laptop.goto("/sign-in")
    await ask_for_sign_in_link(laptop, inbox, email)
    phone = await person(chromium, people, api, PHONE)
    await phone.goto("/settings")  # signed out: through sign-in and back
    await ask_for_sign_in_link(phone, inbox, email)
    await expect(phone.get_by_role("heading", name="Where you're signed in")).to_be_visible()
    await expect(phone.get_by_text("This browser")).to_be_visible()
    await pages.check(phone, "settings")

    await phone.get_by_label("Name of a new token").fill("Phone script")
    await phone.get_by_role("button", name="Create a token").click()
    token = phone.get_by_label("Your new token “Phone script”")
    await expect(token).to_have_value(re.compile(r"^lnc_"))
    await pages.check(phone, "new token shown once")
    await phone.goto("/settings")
    await expect(phone.get_by_label("Your new token “Phone script”")).to_have_count(0)
    await expect(phone.get_by_text("Phone script", exact=True)).to_be_visible()

    await phone.get_by_label("Anyone with the link").check()
    await phone.get_by_role("button", name="Save who sees it").click()
    await expect(phone.get_by_text("Your portfolio is public")).to_be_visible()

    # The other browser's session, ended from the phone.
    await phone.get_by_role("button", name=re.compile(r"^Revoke Chrome on Linux")).click()
    await expect(phone.get_by_text("That session is ended")).to_be_visible()
    await pages.check(phone, "settings after revoking a session")
    await laptop.goto("/settings")
    await expect(laptop.get_by_role("heading", name="Sign in")).to_be_visible()


# No spaces to break at: what people paste (a shared document's link) and what they type.
LONG_LINK = "https://docs.example.com/d/" + "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms" * 6
LONG_WORD = "Supercalifragilisticexpialidocious"  # 34 characters


async def test_long_links_and_words_fit_a_phone(
    api: Api,
    chromium: Browser,
    people: list[BrowserContext],
    inbox: Inbox,
    settings: Settings,
    sessions: sessionmaker,
) -> None:
    """A long link in a description, a submission and its note, and a long word in a title and
    a skill: every page showing them, the dashboards and the ops queue fit a phone's width."""
    from tests.stack.test_web import POSTING, employer_account, launcher_account

    assert len(LONG_LINK) > 280 and len(LONG_WORD) == 34
    pages = Pages("long-words")
    _, employer_email = employer_account(sessions, settings)
    _, launcher_email = launcher_account(sessions, settings, skills=[LONG_WORD.lower()])
    title = f"{LONG_WORD} market research"

    employer = await person(chromium, people, api, PHONE)
    await employer.goto("/internships/new")  # signed out: through sign-in and back
    await ask_for_sign_in_link(employer, inbox, employer_email)
    await employer.get_by_label("Title").fill(title)
    await employer.get_by_label("Description").fill(f"Start from our notes at {LONG_LINK}")
    await employer.get_by_label("Category").select_option(POSTING["category"])
    await employer.get_by_label("Skills").fill(f"{LONG_WORD.lower()}, research")
    for label, field in (
        ("Estimated hours", "estimated_hours"),
        ("Days to deliver", "duration_days"),
        ("Fixed fee", "fee"),
    ):
        await employer.get_by_label(label).fill(POSTING[field])
    await employer.get_by_role("button", name="Post the internship").click()
    await expect(employer.get_by_text("Your internship is posted")).to_be_visible()
    await pages.check(employer, "posting with a long link and word")
    internship_page = employer.url

    launcher = await person(chromium, people, api, PHONE)
    await launcher.goto("/postings")
    await ask_for_sign_in_link(launcher, inbox, launcher_email)
    await expect(launcher.get_by_role("link", name=title)).to_be_visible()
    await pages.check(launcher, "postings with a long word")
    await launcher.get_by_role("link", name=title).click()
    await pages.check(launcher, "posting with a long link as a launcher")
    # On a phone the project comes first, then the form to apply to it.
    about = await launcher.get_by_role("heading", name="About the project").bounding_box()
    apply = await launcher.get_by_role("button", name="Send my application").bounding_box()
    assert about is not None and apply is not None and about["y"] < apply["y"]
    await launcher.get_by_label("Your pitch").fill(f"My last study: {LONG_LINK}")
    await launcher.get_by_label(TERMS_BOX).check()
    await launcher.get_by_role("button", name="Send my application").click()
    await expect(launcher.get_by_text("Your application is in")).to_be_visible()

    await employer.goto(internship_page)
    await employer.get_by_role("button", name="Select Lee Launcher").click()
    await employer.get_by_label(TERMS_BOX).check()
    await employer.get_by_role("button", name=re.compile("Charge .* and kick off")).click()
    await expect(employer.get_by_text("Kicked off")).to_be_visible()

    await launcher.goto(internship_page)
    await launcher.get_by_label("Link to the deliverable").fill(LONG_LINK)
    await launcher.get_by_label("Note for the employer").fill(f"Sources: {LONG_LINK}")
    await launcher.get_by_role("button", name="Submit for review").click()
    await expect(launcher.get_by_text("Your work is submitted")).to_be_visible()
    await pages.check(launcher, "long submission as the launcher")
    await launcher.goto("/dashboard")
    await pages.check(launcher, "launcher dashboard")

    await employer.goto(internship_page)
    await pages.check(employer, "long submission to review")
    await employer.locator("summary", has_text="Open a dispute").click()
    await employer.get_by_label("What went wrong").fill(f"This link is empty: {LONG_LINK}")
    await employer.get_by_role("button", name="Open a dispute").click()
    await expect(employer.get_by_text("Your dispute is open")).to_be_visible()
    await pages.check(employer, "long dispute")
    await badges_apart(employer)
    await employer.goto("/dashboard")
    await pages.check(employer, "employer dashboard")
    # Signing out: two buttons big enough for a thumb, apart.
    buttons = [
        await employer.get_by_role("button", name=name, exact=True).bounding_box()
        for name in ("Sign out", "Sign out everywhere")
    ]
    for box in buttons:
        assert box is not None and box["height"] >= 44 and box["width"] >= 44, buttons
    first, second = buttons
    assert first is not None and second is not None
    assert (
        first["x"] + first["width"] + 8 <= second["x"]
        or first["y"] + first["height"] + 8 <= second["y"]
    ), buttons

    ops = await person(chromium, people, api, PHONE)
    await ops.goto("/ops")
    await ask_for_sign_in_link(ops, inbox, settings.ops_email)
    await expect(ops.get_by_role("link", name=title, exact=True)).to_be_visible()
    await pages.check(ops, "ops queue")
    await ops.get_by_role("link", name=title, exact=True).click()
    await pages.check(ops, "long dispute for ops")
