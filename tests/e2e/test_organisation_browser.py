"""A company with colleagues, in a real browser: an admin invites a hiring manager and a finance
member; the hiring manager posts an invitation-only internship and invites a launcher, who
accepts by applying; the admin (not the poster) approves; finance reads the charge but may do
nothing; a removed member is signed out at once; a launcher nobody invited gets a 404.

Every page is checked by axe-core and proven to fit a phone's and a desktop's width (the
launcher's on a phone, as most use one), photographed at both (tests/artifacts/screenshots/).
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.orm import sessionmaker

from core.db import Internship
from core.settings import Settings
from dev.harness import Inbox, links_in
from tests.conftest import Api, unique_email
from tests.e2e.browser import (
    PHONE,
    SKIP_REASON,
    TERMS_BOX,
    Pages,
    ask_for_sign_in_link,
    chromium_present,
    person,
)
from tests.e2e.test_web_browser import until_shown
from tests.stack.test_web import employer_account, launcher_account

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_present(), reason=SKIP_REASON),
]


async def invite_colleague(admin: Page, email: str, role: str) -> None:
    await admin.get_by_label("Their work email").fill(email)
    await admin.get_by_label("Role", exact=True).select_option(role)
    await admin.get_by_role("button", name="Send the invitation").click()
    await expect(admin.locator("#invitations")).to_contain_text(email)


async def join(page: Page, inbox: Inbox, email: str, name: str, pages: Pages) -> None:
    """Open the invitation from the email, give a name and join."""
    message = await inbox.wait_to(email, "colleague_invitation")
    await page.goto(next(u for u in links_in(message) if "/join/" in u))
    await pages.check(page, f"join as {name}")
    await page.get_by_label("Your name").fill(name)
    await page.get_by_role("button", name=re.compile("^Join ")).click()
    await expect(page).to_have_url(re.compile(r"/dashboard$"))


async def test_a_company_hires_with_colleagues_and_an_invitation(
    api: Api,
    chromium: Browser,
    people: list[BrowserContext],
    inbox: Inbox,
    settings: Settings,
    sessions: sessionmaker,
) -> None:
    pages = Pages("organisation")
    _, admin_email = employer_account(sessions, settings)  # Erin, Northwind's founder
    tag = unique_email("x").split("@")[0][-8:]  # a skill nobody else has: Lee is the top fit
    _, lee_email = launcher_account(sessions, settings, skills=[f"survey-{tag}", "writing"])
    _, ann_email = launcher_account(sessions, settings, skills=["research"])
    hana_email, fin_email = unique_email("hana"), unique_email("fin")

    # --- The admin invites a hiring manager and a finance member.
    admin = await person(chromium, people, api)
    await admin.goto("/sign-in")
    await ask_for_sign_in_link(admin, inbox, admin_email)
    await admin.get_by_role("link", name="Organisation").click()
    await pages.check(admin, "organisation, founder alone")
    await invite_colleague(admin, hana_email, "hiring_manager")
    await invite_colleague(admin, fin_email, "finance")
    await pages.check(admin, "two invitations waiting")

    hana = await person(chromium, people, api)
    await join(hana, inbox, hana_email, "Hana Hiring", pages)
    fin = await person(chromium, people, api)
    await join(fin, inbox, fin_email, "Fin Finance", pages)
    await pages.check(fin, "finance dashboard")
    await expect(fin.get_by_role("link", name="Post an internship")).to_have_count(0)

    # --- The hiring manager posts an invitation-only internship and invites Lee.
    await hana.get_by_role("link", name="Post an internship").click()
    await hana.get_by_label("Title").fill("Customer survey analysis")
    await hana.get_by_label("Description").fill("Analyse 300 survey answers in a short report.")
    await hana.get_by_label("Category").select_option("marketing")
    await hana.get_by_label("Skills").fill(f"survey-{tag}, writing")
    await hana.get_by_label("Estimated hours").fill("10")
    await hana.get_by_label("Days to deliver").fill("14")
    await hana.get_by_label("Fixed fee").fill("400")
    await hana.get_by_label(re.compile("Invitation only")).check()
    await hana.get_by_role("button", name="Post the internship").click()
    await expect(hana.get_by_text("Your internship is posted")).to_be_visible()
    internship_page = hana.url
    internship_id = internship_page.rsplit("/", 1)[1]
    await expect(hana.locator("#invite")).to_contain_text("Lee Launcher")
    await pages.check(hana, "candidates to invite")
    # Other tests' launchers may share the name: this Lee, with the skill nobody else has, is
    # the top fit, so the first candidate.
    await hana.locator("#invite li").first.get_by_role("button", name="Invite Lee Launcher").click()
    await expect(hana.get_by_text("Invitation sent")).to_be_visible()
    await pages.check(hana, "Lee invited")

    # --- A launcher nobody invited can't see it; Lee, invited, applies from the email.
    ann = await person(chromium, people, api, PHONE)
    await ann.goto("/sign-in")
    await ask_for_sign_in_link(ann, inbox, ann_email)
    answer = await ann.goto(internship_page)
    assert answer is not None and answer.status == 404
    await pages.check(ann, "not invited: not found")

    lee = await person(chromium, people, api, PHONE)
    await lee.goto("/sign-in")
    await ask_for_sign_in_link(lee, inbox, lee_email)
    await expect(lee.get_by_text("Northwind invited you to apply")).to_be_visible()
    await pages.check(lee, "launcher dashboard with an invitation")
    invitation = await inbox.wait_to(lee_email, "invited")
    await lee.goto(next(u for u in links_in(invitation) if f"/internships/{internship_id}" in u))
    await expect(lee.get_by_text("Northwind invited you to apply.")).to_be_visible()
    await pages.check(lee, "invited to apply")
    await lee.get_by_label("Your pitch").fill("I analysed 500 survey answers last term.")
    await lee.get_by_label(TERMS_BOX).check()
    await lee.get_by_role("button", name="Send my application").click()
    await expect(lee.get_by_text("Your application is in")).to_be_visible()

    # --- Hana sees the invitation accepted, selects Lee and kicks off on the company's card.
    await hana.goto(internship_page)
    await expect(hana.get_by_text("Accepted: applied")).to_be_visible()
    await hana.get_by_role("button", name="Select Lee Launcher").click()
    await hana.get_by_label(TERMS_BOX).check()
    await hana.get_by_role("button", name="Charge $400.00 and kick off").click()
    await expect(hana.get_by_text("Kicked off")).to_be_visible()
    await pages.check(hana, "kicked off by the hiring manager")

    await lee.goto(internship_page)
    await lee.get_by_label("Link to the deliverable").fill("https://docs.example.com/survey")
    await lee.get_by_role("button", name="Submit for review").click()
    await expect(lee.get_by_text("Your work is submitted")).to_be_visible()

    # --- Finance reads the charge and may do nothing with it.
    await fin.goto(internship_page)
    await expect(fin.get_by_text("Charged", exact=True)).to_be_visible()
    await expect(fin.get_by_text("$400.00").first).to_be_visible()
    await expect(fin.get_by_text("Nothing for you to do here right now.")).to_be_visible()
    await expect(fin.locator(f"form[action^='/internships/{internship_id}/']")).to_have_count(0)
    await pages.check(fin, "finance reads the charge")

    # --- The admin, who did not post it, approves; the timeline names who did what.
    await admin.goto(internship_page)
    await admin.get_by_role("button", name="Approve and pay $360.00 to the launcher").click()
    await expect(admin.get_by_text("Your review is sent")).to_be_visible()
    await expect(admin.get_by_text("Rate the launcher")).to_be_visible()
    timeline = admin.locator("table.timeline")
    await expect(timeline).to_contain_text("Hana Hiring")
    await expect(timeline).to_contain_text("Erin Employer")
    await pages.check(admin, "approved by the admin")
    with sessions() as db:
        row = db.get(Internship, internship_id)
        assert row is not None and row.charged_cents == 40000 and row.invitation_only

    # --- Removing finance ends their session at once.
    await admin.goto("/organisation")
    await admin.get_by_role("button", name="Remove Fin Finance").click()
    await expect(admin.locator("table")).not_to_contain_text("Fin Finance")
    await pages.check(admin, "finance removed")
    await fin.goto(internship_page)
    await expect(fin).to_have_url(re.compile(r"/sign-in"))
    await until_shown(lee, "Paid")
