"""A conversation in a real browser: an applicant asks the employer a question on a phone and
gets an answer; the employer selects and kicks off; the launcher delivers the work as a file,
with no link; the employer downloads it (the same bytes, as an attachment) and replies; the
launcher answers the email from a mail client, and the reply lands in the thread.

Every page is checked by axe-core and proven to fit a phone's and a desktop's width,
photographed at both (tests/artifacts/screenshots/). Disputes are tested elsewhere.
"""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, FilePayload, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.db import Attachment
from core.settings import Settings
from dev.harness import Inbox
from tests.conftest import Api, eventually
from tests.e2e.browser import (
    PHONE,
    SKIP_REASON,
    TERMS_BOX,
    Pages,
    ask_for_sign_in_link,
    chromium_present,
    person,
)
from tests.stack.test_conversations import reply
from tests.stack.test_web import POSTING, employer_account, launcher_account

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_present(), reason=SKIP_REASON),
]

# A one-page PDF, made here: what a launcher's report would be.
REPORT = (
    b"%PDF-1.4\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


async def write(page: Page, text: str) -> None:
    """Send a message from the conversation's page; it shows in the thread."""
    await page.get_by_label("Your message").fill(text)
    await page.get_by_role("button", name="Send the message").click()
    await expect(page.get_by_text("Your message is sent.")).to_be_visible()
    await expect(page.locator("ol.messages li").last).to_contain_text(text)


async def test_an_applicant_asks_then_delivers_a_file_the_employer_downloads(
    api: Api,
    sink: int,
    chromium: Browser,
    people: list[BrowserContext],
    inbox: Inbox,
    settings: Settings,
    sessions: sessionmaker,
) -> None:
    pages = Pages("conversation")
    _, employer_email = employer_account(sessions, settings)
    _, launcher_email = launcher_account(sessions, settings)

    # --- The employer posts (at a desk).
    employer = await person(chromium, people, api)
    await employer.goto("/sign-in")
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
    await expect(employer.get_by_text("Your internship is posted")).to_be_visible()
    internship_page = employer.url
    internship_id = internship_page.rsplit("/", 1)[1]

    # --- The launcher applies on a phone, then asks a question.
    launcher = await person(chromium, people, api, PHONE)
    await launcher.goto(internship_page)  # signed out: through sign-in and back
    await ask_for_sign_in_link(launcher, inbox, launcher_email)
    await launcher.get_by_label("Your pitch").fill("I ran three market studies last term.")
    await launcher.get_by_label(TERMS_BOX).check()
    await launcher.get_by_role("button", name="Send my application").click()
    await expect(launcher.get_by_text("Your application is in")).to_be_visible()
    await launcher.get_by_role("link", name="Ask Northwind a question").click()
    await expect(
        launcher.get_by_role("heading", name="Conversation with Northwind")
    ).to_be_visible()
    await pages.check(launcher, "conversation before the first message")
    # An empty message is refused beside the box, and nothing is sent.
    await launcher.get_by_role("button", name="Send the message").click()
    await expect(launcher.locator("#f-body-error")).to_have_text("Write a message or attach a file")
    await pages.check(launcher, "empty message refused")
    await write(
        launcher,
        "Should the report be in English? The brief I used: https://example.com/brief",
    )
    link = launcher.get_by_role("link", name="https://example.com/brief")
    await expect(link).to_have_attribute("rel", "nofollow noopener noreferrer")
    await pages.check(launcher, "question asked")

    # --- The employer sees it waiting on the dashboard and answers.
    await employer.goto("/dashboard")
    todo = employer.locator("li", has_text="Answer Lee Launcher")
    await expect(todo).to_be_visible()
    await expect(
        employer.get_by_role("heading", name=re.compile("Messages 1 unread"))
    ).to_be_visible()
    await pages.check(employer, "dashboard with a question waiting")
    await todo.get_by_role("link").click()
    await expect(
        employer.get_by_role("heading", name="Conversation with Lee Launcher")
    ).to_be_visible()
    await expect(employer.get_by_text("Should the report be in English?")).to_be_visible()
    await pages.check(employer, "the question, as the employer reads it")
    await write(employer, "Yes, English please.\nTen pages at most.")

    await launcher.reload()
    await expect(launcher.get_by_text("Ten pages at most.")).to_be_visible()
    await expect(launcher.get_by_text("Erin Employer (Northwind)", exact=True)).to_be_visible()
    await pages.check(launcher, "answer read")

    # --- The employer selects and kicks off; the conversation stays on the page.
    await employer.goto(internship_page)
    conversation = employer.locator("#conversation")
    await expect(conversation).to_contain_text("Lee Launcher")
    await employer.get_by_role("button", name="Select Lee Launcher").click()
    await employer.get_by_label(TERMS_BOX).check()
    await employer.get_by_role("button", name=re.compile("Charge .* and kick off")).click()
    await expect(employer.get_by_text("Kicked off")).to_be_visible()
    await expect(employer.locator("#conversation")).to_contain_text("Selected")
    await pages.check(employer, "kicked off, with the conversation")

    # --- The launcher delivers a file and no link.
    await launcher.goto(internship_page)
    await launcher.get_by_label("Files of the deliverable").set_input_files(
        files=[FilePayload(name="report.pdf", mimeType="application/pdf", buffer=REPORT)]
    )
    await launcher.get_by_label("Note for the employer").fill("The report is attached.")
    await pages.check(launcher, "submitting a file")
    await launcher.get_by_role("button", name="Submit for review").click()
    await expect(launcher.get_by_text("Your work is submitted")).to_be_visible()
    await expect(launcher.get_by_role("link", name="report.pdf")).to_be_visible()
    await pages.check(launcher, "file submitted")

    # --- The employer downloads it: the same bytes, as an attachment, never shown inline.
    await employer.goto(internship_page)
    delivered = employer.locator("#review").get_by_role("link", name="report.pdf")
    await expect(delivered).to_be_visible()
    await pages.check(employer, "submission of a file to review")
    async with employer.expect_download() as downloading:
        await delivered.click()
    download = await downloading.value
    assert download.suggested_filename == "report.pdf"
    saved = await download.path()
    assert await asyncio.to_thread(Path(saved).read_bytes) == REPORT
    href = await delivered.get_attribute("href")
    assert href is not None and re.fullmatch(r"/files/\d+", href)
    answer = await employer.request.get(href)
    assert answer.status == 200 and await answer.body() == REPORT
    assert answer.headers["content-disposition"].startswith('attachment; filename="report.pdf"')
    assert answer.headers["content-type"] == "application/pdf"
    with sessions() as db:
        rounds = db.scalars(
            select(Attachment.submission_round).where(Attachment.internship_id == internship_id)
        ).all()
    assert rounds == [1]

    # --- And replies in the conversation; the launcher's dashboard counts it.
    await employer.locator("#conversation").get_by_role("link", name="Lee Launcher").click()
    await write(employer, "Thanks, reading it now.")
    await pages.check(employer, "reply after the submission")
    await launcher.goto("/dashboard")
    await expect(launcher.get_by_text("1 unread message").first).to_be_visible()
    await pages.check(launcher, "dashboard with an unread message")
    await launcher.get_by_role("link", name="Northwind").first.click()
    await expect(launcher.get_by_text("Thanks, reading it now.")).to_be_visible()

    # --- The launcher answers the employer's email from their mail client: through the SMTP
    # sink, as the mail provider would, the reply (without the quoted email) lands in the thread.
    async def told() -> list[EmailMessage]:
        return [
            m
            for m in list(inbox.messages)
            if m["To"] == launcher_email and ".messages-" in str(m["Message-ID"])
        ]

    address = str((await eventually(told))[0]["Reply-To"])
    reply(sink, launcher_email, address, "Glad it helps, ask me anything.", "<r1@mail.example>")
    by_email = employer.locator("ol.messages li").last

    async def posted() -> bool:  # the sink forwards it from a thread of its own
        await employer.reload()
        return "Glad it helps, ask me anything." in await by_email.inner_text()

    await eventually(posted)
    await expect(by_email).to_contain_text("by email")
    await expect(by_email).not_to_contain_text("wrote:")
    await pages.check(employer, "a reply by email, in the thread")

    # --- The launcher chooses a daily digest of messages; ops read the thread, with Hide.
    await launcher.get_by_role("link", name="Settings").click()
    await launcher.get_by_label("A daily digest").check()
    await launcher.get_by_role("button", name="Save my choice about messages").click()
    await expect(launcher.get_by_text("You'll get a daily digest of new messages.")).to_be_visible()
    await expect(launcher.get_by_label("A daily digest")).to_be_checked()
    await pages.check(launcher, "emails about messages chosen")
    ops = await person(chromium, people, api, PHONE)
    await ops.goto(f"{internship_page}#conversation")
    await ask_for_sign_in_link(ops, inbox, settings.ops_email)
    await ops.locator("#conversation").get_by_role("link", name="Lee Launcher").click()
    heading = ops.get_by_role("heading", name="Conversation between Lee Launcher and Northwind")
    await expect(heading).to_be_visible()
    await expect(ops.get_by_role("button", name=re.compile("^Hide"))).to_have_count(4)
    await pages.check(ops, "conversation as ops")
