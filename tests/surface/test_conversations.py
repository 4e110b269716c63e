"""Conversations over the JSON API: who reads and writes each thread (an applicant's own, the
organisation's members, ops), messages with files (types by content, downloads as attachments
only for readers), closed threads, reports and hiding, and submissions that are files; with
the files in a folder and in a real S3-compatible server."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from core.db import Attachment, Employer, Launcher, Message, ThreadReader
from core.internship import DisputeView, MemberRole, Role, Stage, SubmissionView
from tests.surface.conftest import Surface

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120


@pytest.fixture
def surface(surface_any_storage: Surface) -> Surface:
    """Every test here runs twice: files in a folder, then in the S3-compatible server."""
    return surface_any_storage


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, "PNG")
    return out.getvalue()


def thread_url(internship_id: str, launcher: Launcher) -> str:
    return f"/v1/internships/{internship_id}/threads/{launcher.id}/messages"


async def say(
    surface: Surface, token: str, internship_id: str, launcher: Launcher, text: str
) -> httpx.Response:
    async with surface.client(token) as http:
        return await http.post(thread_url(internship_id, launcher), json={"body": text})


async def read(surface: Surface, token: str, internship_id: str, launcher: Launcher) -> Any:
    async with surface.client(token) as http:
        return await http.get(thread_url(internship_id, launcher))


def tokens(surface: Surface, employer: Employer, *launchers: Launcher) -> list[str]:
    return [surface.token(Role.EMPLOYER, employer.id)] + [
        surface.token(Role.LAUNCHER, lc.id) for lc in launchers
    ]


async def test_an_applicant_asks_and_the_employer_answers_in_a_thread_of_their_own(
    surface: Surface,
) -> None:
    employer, ann, bob = surface.employer(), surface.launcher("Ann"), surface.launcher("Bob")
    iid = surface.internship(employer, applicants=[ann, bob]).posting.internship_id
    boss, ann_t, bob_t = tokens(surface, employer, ann, bob)

    asked = await say(surface, ann_t, iid, ann, "Is a <b>Google Doc</b> fine for the summary?")
    assert asked.status_code == 201, asked.text
    assert asked.json()["author_name"] == "Ann" and asked.json()["mine"] is True
    async with surface.client(boss) as http:
        listed = (await http.get(f"/v1/internships/{iid}/threads")).json()
    by_launcher = {t["launcher_id"]: t for t in listed}
    assert by_launcher[ann.id]["unread"] == 1 and by_launcher[ann.id]["waiting_on_you"]
    assert by_launcher[bob.id]["unread"] == 0 and not by_launcher[bob.id]["waiting_on_you"]

    answered = await say(surface, boss, iid, ann, "Yes: share it with edit rights.")
    assert answered.status_code == 201, answered.text
    assert answered.json()["author_name"] == "Erin Employer (Northwind)"
    page = (await read(surface, ann_t, iid, ann)).json()
    assert [m["body"] for m in page["messages"]] == [
        "Is a <b>Google Doc</b> fine for the summary?",
        "Yes: share it with edit rights.",
    ]
    assert [m["mine"] for m in page["messages"]] == [True, False]
    assert page["writable"] is True and page["closed_reason"] is None

    # Bob sees only his own thread, and Ann's does not exist for him.
    assert (await read(surface, bob_t, iid, ann)).status_code == 404
    assert (await say(surface, bob_t, iid, ann, "hello?")).status_code == 404
    async with surface.client(bob_t) as http:
        mine = (await http.get(f"/v1/internships/{iid}/threads")).json()
    assert [t["launcher_id"] for t in mine] == [bob.id]


async def test_a_launcher_who_was_not_selected_reads_but_cannot_write_nor_read_the_winners(
    surface: Surface,
) -> None:
    employer, ann, bob = surface.employer(), surface.launcher("Ann"), surface.launcher("Bob")
    state = surface.internship(employer, applicants=[ann, bob])
    iid = state.posting.internship_id
    boss, ann_t, bob_t = tokens(surface, employer, ann, bob)
    assert (await say(surface, bob_t, iid, bob, "My question")).status_code == 201
    assert (await say(surface, ann_t, iid, ann, "Mine too")).status_code == 201
    surface.workflows.states[iid] = replace(state, stage=Stage.MATCHED, launcher_id=ann.id)

    kept = (await read(surface, bob_t, iid, bob)).json()
    assert [m["body"] for m in kept["messages"]] == ["My question"]
    assert kept["writable"] is False
    assert kept["closed_reason"] == (
        "This conversation is closed (another launcher was selected): you can still read it"
    )
    refused = await say(surface, bob_t, iid, bob, "Please reconsider")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "closed"
    assert (await read(surface, bob_t, iid, ann)).status_code == 404
    assert (await say(surface, ann_t, iid, ann, "Starting Monday")).status_code == 201
    assert (await say(surface, boss, iid, bob, "Sorry!")).status_code == 409


async def test_members_read_and_only_those_who_act_write(surface: Surface) -> None:
    employer, ann = surface.employer(), surface.launcher("Ann")
    iid = surface.internship(employer, applicants=[ann]).posting.internship_id
    viewer = surface.member(employer, MemberRole.VIEWER, "Vic Viewer")
    finance = surface.member(employer, MemberRole.FINANCE)
    ann_t = surface.token(Role.LAUNCHER, ann.id)
    assert (await say(surface, ann_t, iid, ann, "Hi")).status_code == 201
    for member in (viewer, finance):
        token = surface.token(Role.EMPLOYER, member.id)
        assert (await read(surface, token, iid, ann)).json()["writable"] is False
        refused = await say(surface, token, iid, ann, "Hello")
        assert refused.status_code == 403, refused.text
        assert "ask a hiring manager or an admin" in refused.json()["error"]["message"]
    stranger = surface.token(Role.EMPLOYER, surface.employer().id)
    assert (await read(surface, stranger, iid, ann)).status_code == 404


async def test_ops_read_every_thread_and_write_marked_as_ops_during_a_dispute(
    surface: Surface,
) -> None:
    employer, ann = surface.employer(), surface.launcher("Ann")
    dispute = DisputeView(Role.EMPLOYER, "Work not delivered", datetime.now(UTC))
    state = surface.internship(employer, Stage.IN_PROGRESS, launcher=ann, dispute=dispute)
    iid = state.posting.internship_id
    boss, ann_t = tokens(surface, employer, ann)
    assert (await say(surface, ann_t, iid, ann, "I sent it on Friday")).status_code == 201
    ops = await say(surface, surface.settings.ops_api_token, iid, ann, "Please attach it here")
    assert ops.status_code == 201, ops.text
    assert ops.json()["author_role"] == "ops" and ops.json()["author_name"] == "Ops team"
    page = (await read(surface, boss, iid, ann)).json()
    assert [(m["author_role"], m["in_dispute"]) for m in page["messages"]] == [
        ("launcher", True),
        ("ops", True),
    ]
    # The dispute's record (the workflow's timeline) is told of each, by id.
    told = [a.request for a in surface.workflows.updates(iid) if a.what == "message_in_dispute"]
    assert [(t.by.role, t.message_id) for t in told] == [
        (Role.LAUNCHER, page["messages"][0]["id"]),
        (Role.OPS, page["messages"][1]["id"]),
    ]


async def test_files_go_by_their_content_and_only_to_the_threads_readers(
    surface: Surface,
) -> None:
    employer, ann, bob = surface.employer(), surface.launcher("Ann"), surface.launcher("Bob")
    iid = surface.internship(employer, applicants=[ann, bob]).posting.internship_id
    boss, ann_t, bob_t = tokens(surface, employer, ann, bob)
    async with surface.client(ann_t) as http:
        sent = await http.post(
            thread_url(iid, ann),
            data={"body": "My CV and a sketch"},
            files=[
                ("files", ("cv.pdf", PDF, "application/pdf")),
                ("files", ("sketch.txt", png(), "text/plain")),  # a PNG, whatever its name
            ],
        )
        assert sent.status_code == 201, sent.text
        shown = sent.json()["files"]
        assert [(f["filename"], f["content_type"]) for f in shown] == [
            ("cv.pdf", "application/pdf"),
            ("sketch.png", "image/png"),
        ]
        program = await http.post(
            thread_url(iid, ann),
            data={"body": "and my tool"},
            files=[("files", ("report.pdf", ELF, "application/pdf"))],
        )
    assert program.status_code == 422, program.text
    assert program.json()["error"]["code"] == "file_refused"
    with surface.sessions() as db:
        assert db.scalar(select(Message).where(Message.body == "and my tool")) is None

    async with surface.client(boss) as http:
        got = await http.get(shown[0]["url"])
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment;")
    assert 'filename="cv.pdf"' in got.headers["content-disposition"]
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in got.headers["cache-control"]
    async with surface.client(bob_t) as http:
        assert (await http.get(shown[0]["url"])).status_code == 404
    async with surface.client() as http:
        assert (await http.get(shown[0]["url"])).status_code == 401


async def test_a_message_needs_words_or_files_and_keeps_to_the_text_rules(
    surface: Surface,
) -> None:
    employer, ann = surface.employer(), surface.launcher("Ann")
    iid = surface.internship(employer, applicants=[ann]).posting.internship_id
    ann_t = surface.token(Role.LAUNCHER, ann.id)
    empty = await say(surface, ann_t, iid, ann, "   ")
    assert empty.status_code == 422 and "Write a message" in empty.json()["error"]["message"]
    bell = await say(surface, ann_t, iid, ann, "ding\x07")
    assert bell.status_code == 422 and "control characters" in bell.text
    long = await say(surface, ann_t, iid, ann, "x" * 5001)
    assert long.status_code == 422
    async with surface.client(ann_t) as http:
        other = await http.post(thread_url(iid, ann), json={"body": "hi", "files": [999999]})
    assert other.status_code == 422 and other.json()["error"]["details"]["field"] == "files"


async def test_an_uploaded_file_counts_against_the_internships_quota(surface: Surface) -> None:
    employer, ann = surface.employer(), surface.launcher("Ann")
    iid = surface.internship(employer, applicants=[ann]).posting.internship_id
    ann_t = surface.token(Role.LAUNCHER, ann.id)
    with surface.sessions.begin() as db:
        db.add(
            Attachment(
                internship_id=iid,
                key=f"k{iid}x" * 3,
                filename="huge.zip",
                content_type="application/zip",
                size=surface.settings.internship_files_quota_bytes - 100,
                uploaded_by_role="launcher",
                uploaded_by_id=ann.id,
            )
        )
    async with surface.client(ann_t) as http:
        over = await http.post(
            f"/v1/internships/{iid}/files", files={"file": ("cv.pdf", PDF, "application/pdf")}
        )
    assert over.status_code == 413, over.text
    assert over.json()["error"]["code"] == "quota_exceeded"


async def test_a_reported_message_hidden_by_ops_keeps_its_record_but_not_its_file(
    surface: Surface,
) -> None:
    employer, ann = surface.employer(), surface.launcher("Ann")
    iid = surface.internship(employer, applicants=[ann]).posting.internship_id
    boss, ann_t = tokens(surface, employer, ann)
    async with surface.client(ann_t) as http:
        sent = (
            await http.post(
                thread_url(iid, ann),
                data={"body": "buy followers at spam.example"},
                files=[("files", ("ad.pdf", PDF, "application/pdf"))],
            )
        ).json()
    async with surface.client(boss) as http:
        reported = await http.post(f"/v1/messages/{sent['id']}/reports", json={"reason": "Spam"})
        assert reported.status_code == 204, reported.text
        again = await http.post(f"/v1/messages/{sent['id']}/reports", json={"reason": "Spam!"})
        assert again.status_code == 204
    ops = surface.settings.ops_api_token
    async with surface.client(ops) as http:
        waiting = (await http.get("/v1/ops/reports")).json()
        mine = [r for r in waiting if r["message_id"] == sent["id"]]
        assert [(r["reason"], r["internship_id"]) for r in mine] == [("Spam", iid)]
        hidden = await http.post(
            f"/v1/ops/messages/{sent['id']}/moderation", json={"hide": True, "reason": "spam"}
        )
        assert hidden.status_code == 204, hidden.text
        assert sent["id"] not in [
            r["message_id"] for r in (await http.get("/v1/ops/reports")).json()
        ]
        audit = (await read(surface, ops, iid, ann)).json()["messages"][-1]
        assert audit["hidden"] and audit["body"] == "buy followers at spam.example"
    seen = (await read(surface, boss, iid, ann)).json()["messages"][-1]
    assert seen["hidden"] and seen["body"] is None and seen["files"] == []
    async with surface.client(boss) as http:
        assert (await http.get(sent["files"][0]["url"])).status_code == 404
    async with surface.client(ann_t) as http:
        launcher_report = await http.post(
            f"/v1/ops/messages/{sent['id']}/moderation", json={"hide": False}
        )
    assert launcher_report.status_code in (401, 403)


async def test_work_can_be_submitted_as_files_kept_with_the_internship(surface: Surface) -> None:
    employer, ann, bob = surface.employer(), surface.launcher("Ann"), surface.launcher("Bob")
    state = surface.internship(employer, Stage.IN_PROGRESS, launcher=ann, applicants=[bob])
    iid = state.posting.internship_id
    boss, ann_t, bob_t = tokens(surface, employer, ann, bob)
    async with surface.client(ann_t) as http:
        kept = await http.post(
            f"/v1/internships/{iid}/files",
            files={"file": ("summary.pdf", PDF, "application/pdf")},
        )
        assert kept.status_code == 201, kept.text
        file_id = kept.json()["id"]
        nothing = await http.post(f"/v1/internships/{iid}/submissions", json={"note": "done"})
        assert nothing.status_code == 422, nothing.text
        sent = await http.post(
            f"/v1/internships/{iid}/submissions", json={"files": [file_id], "note": "done"}
        )
    assert sent.status_code == 200, sent.text
    [asked] = surface.workflows.updates(iid)
    assert asked.request.files == [file_id] and asked.request.url == ""
    with surface.sessions() as db:
        assert db.get(Attachment, file_id).submission_round == 1  # type: ignore[union-attr]
    surface.workflows.states[iid] = replace(
        state,
        stage=Stage.IN_REVIEW,
        submissions=[SubmissionView(1, "", "done", datetime.now(UTC), [file_id])],
    )
    async with surface.client(boss) as http:
        detail = (await http.get(f"/v1/internships/{iid}")).json()
        assert detail["submissions"][0]["files"] == [file_id]
        got = await http.get(f"/v1/files/{file_id}")
    assert got.status_code == 200 and got.content == PDF
    async with surface.client(bob_t) as http:
        assert (await http.get(f"/v1/files/{file_id}")).status_code == 404


async def test_reading_a_thread_marks_it_read_for_that_person_alone(surface: Surface) -> None:
    employer, ann = surface.employer(), surface.launcher("Ann")
    iid = surface.internship(employer, applicants=[ann]).posting.internship_id
    colleague = surface.member(employer, MemberRole.HIRING_MANAGER, "Hal Hiring")
    boss, ann_t = tokens(surface, employer, ann)
    hal = surface.token(Role.EMPLOYER, colleague.id)
    for text in ("one", "two"):
        assert (await say(surface, ann_t, iid, ann, text)).status_code == 201
    await read(surface, boss, iid, ann)
    async with surface.client(boss) as http:
        [mine] = (await http.get(f"/v1/internships/{iid}/threads")).json()
    async with surface.client(hal) as http:
        [theirs] = (await http.get(f"/v1/internships/{iid}/threads")).json()
    assert (mine["unread"], theirs["unread"]) == (0, 2)
    with surface.sessions() as db:
        readers = db.scalars(select(ThreadReader.reader_id)).all()
    assert employer.id in readers
