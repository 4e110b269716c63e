"""Conversations as pages: one thread (`/internships/{id}/threads/{launcher_id}`: its messages,
oldest first, and the form posting one, with files), a file's download (`/files/{id}`),
reporting a message, and ops hiding a message or keeping it.

A thin adapter: who reads and writes a thread, what a file may be, the quota and what a message
may hold are `api.service.conversations`'s (over the rulebook's `thread_access`); these
handlers read forms, call it and render. A refused message comes back on the thread with what
was typed and the problem beside its field; a sent one redirects (303) to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from api import schemas
from api.deps import Caller, FilesDep, SessionsDep, SettingsDep, WorkflowsDep
from api.errors import ApiError, not_found
from api.routers.conversations import attachment_response
from api.service import conversations, reads
from api.web import session
from api.web.forms import NOTHING_TYPED, Problems, Typed, problems_of, read_form
from api.web.render import PageContext, page, redirect
from api.web.session import OpsViewer, Viewer
from core import attachments, rulebook
from core.conversations import MAX_FILES, MAX_MESSAGE_CHARS, MessageView, Reader, reader_of
from core.db import MessageReport
from core.images import megabytes
from core.internship import Role
from core.settings import Settings

router = APIRouter(include_in_schema=False)
InternshipId = Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
LauncherId = Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
MAX_ID = 2**31 - 1
# Annotated: one Path() object given as the default of two parameters takes the first's name.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]

# The form posting a message, and a report's, as `Typed` names them.
MESSAGE_FORM = "message"
# A browser can't be given a file back: a form refused for another reason asks for them again.
CHOOSE_AGAIN = "Choose your files again: a refused form can't keep them."


def thread_path(internship_id: str, launcher_id: str) -> str:
    return f"/internships/{internship_id}/threads/{launcher_id}"


@dataclass(frozen=True)
class ConversationPage(PageContext):
    """One thread as its viewer reads it: the internship (`title`, `company`; `internship_link`
    when the viewer may open its page), who it is with (`heading`), a page of messages oldest
    first (`messages`; `earlier`, the cursor of the page before; `newest`, whether this is the
    latest page; `unread_from`, the first the viewer had not read), the form (`writable`) or why
    there is none (`refusal`), with a refused message as typed (`typed`, form "message", or
    "report-<id>" for a report). Ops (`moderator`) read hidden messages and hide or keep
    them, with the reasons of reports waiting (`open_reports`); others report a message once
    (`reported`: those they have)."""

    template: ClassVar[str] = "thread.html"
    internship_id: str
    launcher_id: str
    title: str
    company: str
    heading: str
    internship_link: bool
    messages: list[MessageView]
    earlier: int | None
    newest: bool
    unread_from: int | None
    writable: bool
    refusal: str | None
    moderator: bool
    here: str  # this page's address (with its cursor), for the forms to come back to
    files_hint: str
    max_chars: int = MAX_MESSAGE_CHARS
    typed: Typed = NOTHING_TYPED
    open_reports: dict[int, list[str]] = field(default_factory=dict)
    reported: set[int] = field(default_factory=set)


def _heading(viewer: Caller, launcher_name: str, company: str) -> str:
    if viewer.actor.role == Role.LAUNCHER:
        return f"Conversation with {company}"
    if viewer.actor.role == Role.OPS:
        return f"Conversation between {launcher_name} and {company}"
    return f"Conversation with {launcher_name}"


def files_hint(settings: Settings) -> str:
    # The page's form carries all its files in one request (api.middleware.FILE_UPLOADS).
    return (
        f"Up to {MAX_FILES} files, {megabytes(settings.max_file_bytes)} in all: PDFs, images, "
        "Word, Excel or PowerPoint documents, ZIPs or plain text"
    )


def _reports(
    db: Session, ids: list[int], reader: Reader, moderator: bool
) -> tuple[dict[int, list[str]], set[int]]:
    """Of these messages: for ops, the reasons of the reports waiting; the viewer's own reports."""
    waiting: dict[int, list[str]] = {}
    mine: set[int] = set()
    if not ids:
        return waiting, mine
    for report in db.scalars(
        select(MessageReport).where(MessageReport.message_id.in_(ids)).order_by(MessageReport.id)
    ):
        if moderator and report.decided_at is None:
            waiting.setdefault(report.message_id, []).append(report.reason)
        if (report.reporter_role, report.reporter_id) == (reader.role, reader.id):
            mine.add(report.message_id)
    return waiting, mine


async def _thread_page(
    request: Request,
    viewer: Caller,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    internship_id: str,
    launcher_id: str,
    before: int | None = None,
    typed: Typed = NOTHING_TYPED,
    status: int = 200,
) -> HTMLResponse:
    read = await conversations.read(
        workflows, sessions, internship_id, launcher_id, viewer.actor, before
    )
    moderator = viewer.actor.role == Role.OPS
    ids = [m.id for m in read.page.messages]
    waiting, mine = await reads.run(sessions, _reports, ids, reader_of(viewer.actor), moderator)
    posting = read.state.posting
    here = thread_path(internship_id, launcher_id)
    context = ConversationPage(
        internship_id=internship_id,
        launcher_id=launcher_id,
        title=posting.title,
        company=posting.company,
        heading=_heading(viewer, read.launcher_name, posting.company),
        internship_link=rulebook.can_see(read.state, viewer.actor),
        messages=read.page.messages,
        earlier=read.page.earlier,
        newest=before is None,
        unread_from=read.page.unread_from,
        writable=read.writable,
        refusal=read.refusal,
        moderator=moderator,
        here=here if before is None else f"{here}?before={before}",
        files_hint=files_hint(request.app.state.settings),
        typed=typed,
        open_reports=waiting,
        reported=mine,
    )
    return page(request, viewer, context, status)


@router.get("/internships/{internship_id}/threads/{launcher_id}", response_class=HTMLResponse)
async def thread(
    request: Request,
    viewer: Viewer,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    internship_id: str = InternshipId,
    launcher_id: str = LauncherId,
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> Response:
    """A page of the thread (the newest, or the one before the cursor `before`), marked read.
    Signed out, the sign-in comes back here (the emails about new messages link to it)."""
    return await _thread_page(
        request, viewer, workflows, sessions, internship_id, launcher_id, before
    )


def chosen_files(form: FormData) -> list[UploadFile]:
    """The files sent in the form's `files` input (an input left empty sends a nameless part)."""
    return [
        f for f in form.getlist("files") if isinstance(f, UploadFile) and (f.filename or f.size)
    ]


async def checked_files(
    uploads: list[UploadFile], settings: Settings
) -> tuple[list[tuple[str, bytes]], str | None]:
    """Each file's name and bytes, or what is wrong with the first that is refused (its name
    first). All are checked before any is kept, so a refused one leaves none half-sent; the
    service checks each again as it keeps it."""
    if len(uploads) > MAX_FILES:
        return [], f"Attach at most {MAX_FILES} files at once"
    found = []
    for upload in uploads:
        name = upload.filename or "file"
        data = await upload.read(settings.max_file_bytes + 1)
        try:
            await run_in_threadpool(attachments.check, data, name, settings.max_file_bytes)
        except attachments.AttachmentRefused as err:
            return [], f"{name}: {err}"
        found.append((name, data))
    return found, None


@router.post("/internships/{internship_id}/threads/{launcher_id}", response_class=HTMLResponse)
async def post_message(
    request: Request,
    viewer: Viewer,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    files: FilesDep,
    internship_id: str = InternshipId,
    launcher_id: str = LauncherId,
) -> Response:
    """Post a message with its files; back to the thread at the new message (303). Refused (no
    text nor file, a file not taken, the quota, the thread closed meanwhile): the thread again,
    what was typed kept and the problem beside its field."""
    form = await read_form(request)
    typed_body = str(form.get("body") or "")
    uploads = chosen_files(form)
    here = thread_path(internship_id, launcher_id)

    async def refused(errors: Problems, status: int, message: str = "") -> Response:
        if uploads and "files" not in errors:
            errors["files"] = CHOOSE_AGAIN
        session.flash(
            request, message or "Nothing was sent: please fix what is marked below.", "error"
        )
        typed = Typed(MESSAGE_FORM, {"body": typed_body}, errors)
        return await _thread_page(
            request, viewer, workflows, sessions, internship_id, launcher_id, None, typed, status
        )

    try:
        body = schemas.MessageIn.model_validate({"body": typed_body})
    except ValidationError as err:
        return await refused(problems_of(err), 422)
    sent, problem = await checked_files(uploads, settings)
    if problem:
        return await refused({"files": problem}, 422)
    try:
        await session.spend_form_key(request, form)
    except session.FormAlreadySent:
        session.flash(request, "That message was already sent, so it was not sent again.", "info")
        return redirect(here)
    try:
        ids = [
            (
                await conversations.upload(
                    workflows, sessions, files, settings, internship_id, viewer.actor, name, data
                )
            ).id
            for name, data in sent
        ]
        message = await conversations.post(
            workflows, sessions, internship_id, launcher_id, viewer.actor, body.body, ids, "web"
        )
    except ApiError as err:
        if err.status == 404:
            raise
        where = err.details.get("field")
        if where in ("body", "files"):
            return await refused({str(where): err.message}, err.status)
        return await refused({}, err.status, err.message.rstrip(".") + ". Nothing was sent.")
    session.flash(request, "Your message is sent.")
    return redirect(f"{here}#m-{message.id}")


# ---------------------------------------------------------------- files


@router.get("/files/{file_id}")
async def download(
    viewer: Viewer,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    files: FilesDep,
    file_id: RowId,
) -> Response:
    """A file of a message or a submission, as a download, for those who may read where it is
    attached (404 for everyone else)."""
    found = await conversations.download(workflows, sessions, files, file_id, viewer.actor)
    return attachment_response(found)


# ---------------------------------------------------------------- reports and moderation


def _back(form: FormData, internship_id: str, launcher_id: str, message_id: int) -> str:
    """The page of the thread the form was on (its own address, checked), at the message."""
    here = thread_path(internship_id, launcher_id)
    back = session.safe_next(form.get("back"))
    return f"{back if back.startswith(here) else here}#m-{message_id}"


@router.post("/messages/{message_id}/reports", response_class=HTMLResponse)
async def report_message(
    request: Request,
    viewer: Viewer,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    message_id: RowId,
) -> Response:
    """Report a message to ops, saying why: for anyone who reads it (404 for others)."""
    form = await read_form(request)
    where = await reads.run(sessions, conversations.thread_of_message, message_id)
    if where is None:
        raise not_found("message")
    reason = str(form.get("reason") or "")
    try:
        body = schemas.ReportIn.model_validate({"reason": reason})
    except ValidationError as err:
        session.flash(request, "Nothing was sent: please fix what is marked below.", "error")
        typed = Typed(f"report-{message_id}", {"reason": reason}, problems_of(err))
        return await _thread_page(
            request, viewer, workflows, sessions, *where, typed=typed, status=422
        )
    await conversations.report(workflows, sessions, message_id, viewer.actor, body.reason)
    session.flash(request, "Thank you: the message is reported, and ops will look at it.")
    return redirect(_back(form, *where, message_id))


@router.post("/messages/{message_id}/moderation")
async def moderate_message(
    request: Request, viewer: OpsViewer, sessions: SessionsDep, message_id: RowId
) -> Response:
    """Ops hide a message (kept for the record, its text and files shown to ops alone), or
    keep it and close its reports."""
    form = await read_form(request)
    where = await reads.run(sessions, conversations.thread_of_message, message_id)
    if where is None:
        raise not_found("message")
    hide = form.get("hide") == "true"
    await conversations.moderate(sessions, message_id, hide, "")
    session.flash(
        request,
        "The message is hidden: its text and files are shown to ops alone."
        if hide
        else "The message is kept, and its reports are closed.",
    )
    return redirect(_back(form, *where, message_id))
