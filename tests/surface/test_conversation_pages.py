"""Conversations on the pages: a thread shows its messages and posts one with files; a refused
file keeps what was typed; a launcher never reads another's thread; a passed-over applicant
reads theirs without a form; reports reach ops, who hide a message; each person's choice of
emails about messages; unread counts and answers waiting on the dashboards; a submission of
files with no link."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from api.app import create_app
from core import conversations
from core.db import Attachment, Launcher, Member, Message, MessageReport, Thread
from core.internship import Actor, DisputeView, MemberRole, Role, Stage, Submission, SubmissionView
from tests.surface.conftest import CSRF, FORM_KEY, Browser, Surface

# The smallest PDF a PDF reader and libmagic both take.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
WEB_PAGE = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def thread_of(state: Any, launcher: Launcher) -> str:
    return f"/internships/{state.posting.internship_id}/threads/{launcher.id}"


def beside(page: str, field: str) -> str:
    """The problem shown beside the field with id `f-<field>` ("" if none)."""
    found = re.search(rf'<span class="error-text" id="f-{field}-error">([^<]*)</span>', page)
    return html.unescape(found.group(1)) if found else ""


def text_of(page: str) -> str:
    """The page's words as a reader reads them (tags gone, spaces collapsed)."""
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    return html.unescape(re.sub(r" ([:,.)])", r"\1", words))


async def send(
    browser: Browser,
    page: str,
    action: str,
    fields: dict[str, str],
    files: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
) -> httpx.Response:
    """Open `page` and send one of its forms to `action` as a browser does: multipart when it
    carries files."""
    shown = (await browser.get(page)).text
    token = CSRF.search(shown)
    assert token, f"{page} has no form"
    data = {"csrf_token": token.group(1), "form_key": FORM_KEY.findall(shown)[0], **fields}
    parts = [("files", (name, body, "application/octet-stream")) for name, body in files]
    return await browser.http.post(action, data=data, files=parts or None)


def messages_in(surface: Surface, state: Any) -> int:
    """The messages in the internship's threads."""
    with surface.sessions() as db:
        found = (
            select(func.count()).select_from(Message).join(Thread, Thread.id == Message.thread_id)
        )
        return db.scalar(found.where(Thread.internship_id == state.posting.internship_id)) or 0


async def test_a_message_with_a_file_is_posted_read_answered_and_counted(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED, applicants=[lee])
    iid, thread = state.posting.internship_id, thread_of(state, lee)

    lee_browser = await surface.signed_in(lee.email)
    internship = (await lee_browser.get(f"/internships/{iid}")).text
    assert f'href="{thread}"' in internship and "Ask Northwind a question" in internship
    empty = await lee_browser.get(thread)
    assert empty.status_code == 200
    assert "Conversation with Northwind" in empty.text and "No messages yet." in empty.text

    body = "Is the report in English?\nThe brief: https://example.com/brief. <b>Thanks</b>"
    sent = await send(lee_browser, thread, thread, {"body": body}, [("plan.pdf", PDF)])
    assert sent.status_code == 303, sent.text
    assert re.fullmatch(rf"{thread}#m-\d+", sent.headers["location"])
    shown = (await lee_browser.get(thread)).text
    assert "Your message is sent." in shown
    assert "Is the report in English?\nThe brief: " in shown  # the line break kept
    assert "&lt;b&gt;Thanks&lt;/b&gt;" in shown and "<b>Thanks" not in shown
    assert (
        '<a href="https://example.com/brief" rel="nofollow noopener noreferrer">'
        "https://example.com/brief</a>." in shown
    )
    with surface.sessions() as db:
        [file_id] = db.scalars(select(Attachment.id).where(Attachment.internship_id == iid))
    assert f'<a href="/files/{file_id}" download>plan.pdf</a>' in shown and "(1 KB)" in shown

    # The employer is told on the dashboard, answers from the thread, and downloads the file.
    erin = await surface.signed_in(employer.email)
    dashboard = text_of((await erin.get("/dashboard")).text)
    assert "Answer Lee Launcher: Market research on pet food" in dashboard
    assert "Messages 1 unread" in dashboard and "1 unread message" in dashboard
    page = text_of((await erin.get(f"/internships/{iid}")).text)
    assert "Lee Launcher 1 unread message Waiting for your answer" in page
    read = (await erin.get(thread)).text
    assert "Conversation with Lee Launcher" in read and '<span class="badge ok">New</span>' in read
    download = await erin.get(f"/files/{file_id}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"].startswith('attachment; filename="plan.pdf"')
    after = text_of((await erin.get("/dashboard")).text)
    assert "Answer Lee Launcher" in after and "unread" not in after  # read, not yet answered
    answered = await send(erin, thread, thread, {"body": "Yes, in English."})
    assert answered.status_code == 303
    assert "Answer Lee Launcher" not in text_of((await erin.get("/dashboard")).text)

    mine = text_of((await lee_browser.get("/dashboard")).text)
    assert "Answer the message: Market research on pet food" in mine
    assert "Messages 1 unread" in mine
    reply = text_of((await lee_browser.get(thread)).text)
    assert "Erin Employer (Northwind)" in reply and "Yes, in English." in reply
    # Someone else's file is nobody else's: another launcher gets a 404.
    stranger = await surface.signed_in(surface.launcher("Sam").email)
    assert (await stranger.get(f"/files/{file_id}")).status_code == 404


async def test_a_refused_file_keeps_what_was_typed_and_sends_nothing(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED, applicants=[lee])
    thread = thread_of(state, lee)
    browser = await surface.signed_in(lee.email)

    typed = "Here is my plan:\nfirst the survey, then the report."
    refused = await send(browser, thread, thread, {"body": typed}, [("page.html", WEB_PAGE)])
    assert refused.status_code == 422
    assert beside(refused.text, "files").startswith(
        "page.html: That file is not a type we take (it looks like a web page"
    )
    assert f">{html.escape(typed, quote=False)}</textarea>" in refused.text
    assert "Nothing was sent: please fix what is marked below." in refused.text
    assert messages_in(surface, state) == 0
    with surface.sessions() as db:
        files = select(func.count()).where(Attachment.internship_id == state.posting.internship_id)
        assert db.scalar(files) == 0

    empty = await send(browser, thread, thread, {"body": "  "})
    assert empty.status_code == 422 and beside(empty.text, "body") == (
        "Write a message or attach a file"
    )
    too_long = await send(browser, thread, thread, {"body": "x" * 5001})
    assert too_long.status_code == 422
    assert beside(too_long.text, "body") == "Keep this to 5,000 characters or fewer: it has 5,001."
    assert messages_in(surface, state) == 0


async def test_a_file_too_large_or_over_the_quota_is_said_beside_the_files(
    surface: Surface,
) -> None:
    settings = surface.settings.model_copy(
        update={"max_file_bytes": 1024, "internship_files_quota_bytes": 1500}
    )
    small = Surface(
        create_app(settings, workflows=surface.workflows),
        surface.workflows,
        surface.sessions,
        settings,
    )
    employer, lee = small.employer(), small.launcher()
    state = small.internship(employer, Stage.POSTED, applicants=[lee])
    thread = thread_of(state, lee)
    browser = await small.signed_in(lee.email)

    big = await send(browser, thread, thread, {"body": "Notes"}, [("notes.txt", b"a" * 1500)])
    assert big.status_code == 422
    assert beside(big.text, "files") == ("notes.txt: That file is 1 KB: choose one of 1 KB or less")
    two = [("one.txt", b"a" * 900), ("two.txt", b"b" * 900)]
    over = await send(browser, thread, thread, {"body": "Both notes"}, two)
    assert over.status_code == 413 and beside(over.text, "files").startswith(
        "This internship holds 1 KB of files at most: share a link to the rest"
    )
    assert ">Both notes</textarea>" in over.text
    assert messages_in(small, state) == 0


async def test_a_launcher_never_reads_another_launchers_thread(surface: Surface) -> None:
    employer, lee, ann = surface.employer(), surface.launcher(), surface.launcher("Ann")
    state = surface.internship(employer, Stage.POSTED, applicants=[lee, ann])
    lee_thread = thread_of(state, lee)
    lee_browser = await surface.signed_in(lee.email)
    assert (await send(lee_browser, lee_thread, lee_thread, {"body": "Hello"})).status_code == 303

    ann_browser = await surface.signed_in(ann.email)
    assert (await ann_browser.get(lee_thread)).status_code == 404
    own = await send(ann_browser, thread_of(state, ann), lee_thread, {"body": "Let me in"})
    assert own.status_code == 404
    assert messages_in(surface, state) == 1
    # And the internship's page shows Ann only her own conversation.
    page = (await ann_browser.get(f"/internships/{state.posting.internship_id}")).text
    assert lee_thread not in page and thread_of(state, ann) in page


async def test_earlier_messages_are_a_page_away(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED, applicants=[lee])
    thread = thread_of(state, lee)
    with surface.sessions.begin() as db:
        for n in range(1, conversations.PAGE + 3):
            conversations.post(
                db,
                internship_id=state.posting.internship_id,
                launcher_id=lee.id,
                by=Actor(Role.LAUNCHER, lee.id),
                body=f"Message number {n}.",
                via="web",
                in_dispute=False,
                files=[],
                recipients=[],
                now=datetime.now(UTC),
            )
    browser = await surface.signed_in(lee.email)
    newest = text_of((await browser.get(thread)).text)
    assert "Message number 3." in newest and "Message number 2." not in newest
    earlier = re.search(
        rf'href="({thread}\?before=\d+)">Earlier messages', (await browser.get(thread)).text
    )
    assert earlier
    before = text_of((await browser.get(earlier.group(1))).text)
    assert "Message number 1." in before and "Message number 2." in before
    assert "Message number 3." not in before and "Newest messages" in before
    assert "Write a message" not in before  # the form is on the newest page


async def test_a_signed_out_visitor_signs_in_and_comes_back_to_the_thread(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED, applicants=[lee])
    thread = thread_of(state, lee)
    async with surface.client() as stranger:
        answer = await stranger.get(f"{thread}?before=7")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/sign-in?next={thread}%3Fbefore%3D7"


async def test_a_passed_over_applicant_reads_the_thread_but_has_no_form(surface: Surface) -> None:
    employer, lee, ann = surface.employer(), surface.launcher(), surface.launcher("Ann")
    state = surface.internship(employer, Stage.POSTED, applicants=[lee, ann])
    thread = thread_of(state, ann)
    ann_browser = await surface.signed_in(ann.email)
    assert (await send(ann_browser, thread, thread, {"body": "Still open?"})).status_code == 303
    form = f'<form method="post" action="{thread}"'
    assert form in (await ann_browser.get(thread)).text

    # The employer selects Lee: Ann still reads what she wrote, and can't write any more.
    surface.workflows.states[state.posting.internship_id] = replace(
        state, stage=Stage.MATCHED, launcher_id=lee.id
    )
    page = (await ann_browser.get(thread)).text
    assert "Still open?" in page and form not in page
    assert (
        "This conversation is closed (another launcher was selected): you can still read it"
        in html.unescape(page)
    )
    late = await ann_browser.http.post(
        thread,
        data={
            "csrf_token": CSRF.findall(page)[0],
            "form_key": FORM_KEY.findall(page)[0],
            "body": "Any chance?",
        },
    )
    assert late.status_code == 409
    assert "What you typed, not sent:" in late.text and "Any chance?" in late.text
    assert messages_in(surface, state) == 1


async def test_a_report_reaches_ops_who_hide_the_message(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED, applicants=[lee])
    thread = thread_of(state, lee)
    lee_browser = await surface.signed_in(lee.email)
    rude = "Pay me outside the platform: https://pay.example.com"
    await send(lee_browser, thread, thread, {"body": rude}, [("plan.pdf", PDF)])
    with surface.sessions() as db:
        message_id = db.scalar(select(func.max(Message.id)))
        file_id = db.scalar(select(func.max(Attachment.id)))
    assert "Report" not in text_of((await lee_browser.get(thread)).text)  # not one's own

    erin = await surface.signed_in(employer.email)
    reports = f"/messages/{message_id}/reports"
    blank = await send(erin, thread, reports, {"reason": " ", "back": thread})
    assert blank.status_code == 422, blank.text
    assert beside(blank.text, f"report-{message_id}")
    reported = await send(erin, thread, reports, {"reason": "Asks to be paid off-platform"})
    assert reported.status_code == 303
    assert reported.headers["location"] == f"{thread}#m-{message_id}"
    page = text_of((await erin.get(thread)).text)
    assert "the message is reported" in page and "You reported this message to ops." in page

    ops = await surface.signed_in(surface.settings.ops_email)
    queue = (await ops.get("/ops")).text
    link = f"{thread}?before={message_id + 1}#m-{message_id}"
    assert "Asks to be paid off-platform" in queue and f'href="{link}"' in queue
    seen = (await ops.get(link.split("#")[0])).text
    assert "Reported to ops:" in seen and rude.split(":")[0] in seen
    hidden = await send(ops, thread, f"/messages/{message_id}/moderation", {"hide": "true"})
    assert hidden.status_code == 303
    assert "No reported messages." in (await ops.get("/ops")).text
    as_ops = text_of((await ops.get(thread)).text)
    assert "Hidden by ops: only ops see it" in as_ops and "Pay me outside the platform" in as_ops

    as_employer = text_of((await erin.get(thread)).text)
    assert "Hidden by ops." in as_employer and "Pay me outside" not in as_employer
    assert (await erin.get(f"/files/{file_id}")).status_code == 404
    assert (await ops.get(f"/files/{file_id}")).status_code == 200
    with surface.sessions() as db:
        report = db.scalar(select(MessageReport).where(MessageReport.message_id == message_id))
        assert report is not None and report.decided_at is not None
    # Only ops moderate.
    refused = await send(erin, thread, f"/messages/{message_id}/moderation", {"hide": "false"})
    assert refused.status_code == 303 and refused.headers["location"] == "/dashboard"


async def test_each_person_chooses_how_they_hear_of_messages(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    colleague = surface.member(employer, MemberRole.HIRING_MANAGER, "Hana Hiring")
    for email, choice in ((lee.email, "digest"), (colleague.email, "off")):
        browser = await surface.signed_in(email)
        page = (await browser.get("/settings")).text
        assert "at most one email per conversation every 10 minutes" in page
        assert "Emails about the internships themselves" in page
        assert 'value="immediate" checked' in page
        saved = await send(browser, "/settings", "/settings/messages", {"message_emails": choice})
        assert saved.status_code == 303
        assert f'value="{choice}" checked' in (await browser.get("/settings")).text
        wrong = await send(browser, "/settings", "/settings/messages", {"message_emails": "hourly"})
        assert wrong.status_code == 422 and beside(wrong.text, "message-emails")
    with surface.sessions() as db:
        assert db.scalar(select(Launcher.message_emails).where(Launcher.id == lee.id)) == "digest"
        chosen = dict(db.execute(select(Member.id, Member.message_emails)).all())  # every one
    assert chosen[colleague.id] == "off" and chosen[employer.id] == "immediate"
    ops = await surface.signed_in(surface.settings.ops_email)
    assert "Emails about messages" not in (await ops.get("/settings")).text


async def test_a_colleague_who_may_not_answer_sees_unread_messages_but_no_answer_to_give(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    finance = surface.member(employer, MemberRole.FINANCE, "Fin Finance")
    state = surface.internship(employer, Stage.POSTED, applicants=[lee])
    thread = thread_of(state, lee)
    lee_browser = await surface.signed_in(lee.email)
    await send(lee_browser, thread, thread, {"body": "When do you decide?"})

    fin = await surface.signed_in(finance.email)
    dashboard = text_of((await fin.get("/dashboard")).text)
    assert "Messages 1 unread" in dashboard and "Answer Lee" not in dashboard
    page = text_of((await fin.get(thread)).text)
    assert "When do you decide?" in page and "as finance you can read it" in page


async def test_a_submission_of_files_with_no_link(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.IN_PROGRESS, launcher=lee)
    iid = state.posting.internship_id
    here = f"/internships/{iid}"
    browser = await surface.signed_in(lee.email)
    form = (await browser.get(here)).text
    assert 'enctype="multipart/form-data" class="card stack" id="submit"' in form

    nothing = await send(browser, here, f"{here}/submissions", {"note": "Done"})
    assert nothing.status_code == 422
    assert beside(nothing.text, "url") == "Give a link to the work, attach its files, or both."
    refused = await send(
        browser, here, f"{here}/submissions", {"note": "My report"}, [("report.html", WEB_PAGE)]
    )
    assert refused.status_code == 422 and beside(refused.text, "files").startswith("report.html:")
    assert ">My report</textarea>" in refused.text
    assert surface.workflows.updates(iid) == []

    sent = await send(
        browser, here, f"{here}/submissions", {"note": "My report"}, [("report.pdf", PDF)]
    )
    assert sent.status_code == 303, sent.text
    [asked] = surface.workflows.updates(iid)
    assert isinstance(asked.request, Submission)
    assert asked.request.url == "" and asked.request.note == "My report"
    with surface.sessions() as db:
        [(file_id, round_)] = db.execute(
            select(Attachment.id, Attachment.submission_round).where(
                Attachment.internship_id == iid
            )
        )
    assert asked.request.files == [file_id] and round_ == 1

    # As the workflow then holds it: the round lists its file, for both parties to download.
    delivered = SubmissionView(1, "", "My report", datetime.now(UTC), [file_id])
    surface.workflows.states[iid] = replace(state, stage=Stage.IN_REVIEW, submissions=[delivered])
    erin = await surface.signed_in(employer.email)
    page = (await erin.get(here)).text
    assert f'<a href="/files/{file_id}" download>report.pdf</a>' in page
    assert 'rel="noopener noreferrer"></a>' not in page  # no empty link for a missing URL
    assert (await erin.get(f"/files/{file_id}")).content == PDF


async def test_ops_dispute_view_lists_what_was_said_during_the_dispute(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    opened = DisputeView(Role.EMPLOYER, "Half of it is missing", datetime.now(UTC))
    state = surface.internship(employer, Stage.IN_REVIEW, launcher=lee, dispute=opened)
    thread = thread_of(state, lee)
    lee_browser = await surface.signed_in(lee.email)
    await send(lee_browser, thread, thread, {"body": "The rest is in the appendix."})
    with surface.sessions() as db:
        message_id = db.scalar(select(func.max(Message.id)))

    ops = await surface.signed_in(surface.settings.ops_email)
    page = (await ops.get(f"/internships/{state.posting.internship_id}")).text
    assert "Messages during the dispute" in page and "The rest is in the appendix." in page
    assert f'href="{thread}?before={message_id + 1}#m-{message_id}"' in page
    assert f'href="{thread}">The conversation with Lee Launcher</a>' in page
    seen = (await ops.get(thread)).text
    assert (
        "During the dispute" in seen and "Conversation between Lee Launcher and Northwind" in seen
    )
    # The parties read the thread, not the dispute's list.
    erin = await surface.signed_in(employer.email)
    page = (await erin.get(f"/internships/{state.posting.internship_id}")).text
    assert "Messages during the dispute" not in page
    # Ops write in it, marked as ops; both parties read it.
    assert (
        await send(ops, thread, thread, {"body": "Please send the appendix."})
    ).status_code == 303
    for party in (lee_browser, erin):
        shown = text_of((await party.get(thread)).text)
        assert "Ops team Ops" in shown and "Please send the appendix." in shown
