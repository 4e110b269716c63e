"""Conversations, as JSON: an internship's threads, their messages (with files), file uploads
and downloads, reports of messages, and ops' moderation.

A message is posted as JSON (`body`, and `files` uploaded before) or as multipart/form-data
(`body` and up to ten `files` parts) in one request. The rulebook decides who reads and writes
each thread (`rulebook.thread_access`); `api.service.conversations` does the work.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData, UploadFile

from api import schemas
from api.deps import (
    Caller,
    CallerDep,
    FilesDep,
    OpsDep,
    SessionsDep,
    SettingsDep,
    WorkflowsDep,
)
from api.errors import ApiError
from api.service import conversations, reads
from api.service.workflows import InternshipWorkflows
from core import attachments
from core.conversations import MAX_FILES, FileView, MessageView
from core.db import Message, MessageReport, Thread
from core.files import FileStore
from core.settings import Settings

router = APIRouter(tags=["conversations"])
InternshipId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
LauncherId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]

MULTIPART_MESSAGE = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/MessageIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "body": {
                            "type": "string",
                            "maxLength": 5000,
                            "pattern": schemas.TEXT_PATTERN,
                        },
                        "files": {
                            "type": "array",
                            "maxItems": MAX_FILES,
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                }
            },
        },
    }
}


def file_out(f: FileView) -> schemas.FileOut:
    return schemas.FileOut(
        id=f.id,
        filename=f.filename,
        content_type=f.content_type,
        size=f.size,
        url=f"/v1/files/{f.id}",
    )


def message_out(m: MessageView) -> schemas.MessageOut:
    return schemas.MessageOut(
        id=m.id,
        author_role=m.author_role,
        author_name=m.author_name,
        body=m.body,
        created_at=m.created_at,
        via=m.via,
        in_dispute=m.in_dispute,
        hidden=m.hidden,
        mine=m.mine,
        files=[file_out(f) for f in m.files],
    )


@router.get(
    "/v1/internships/{internship_id}/threads",
    response_model=list[schemas.ThreadOut],
    summary="The conversations of an internship you may read",
)
async def list_threads(
    internship_id: InternshipId,
    caller: CallerDep,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
) -> list[schemas.ThreadOut]:
    found = await conversations.threads(workflows, sessions, internship_id, caller.actor)
    return [
        schemas.ThreadOut(
            launcher_id=t.launcher_id,
            launcher_name=t.launcher_name,
            selected=t.selected,
            writable=t.writable,
            unread=t.unread,
            waiting_on_you=t.waiting_on_you,
            last_message_at=t.last_message_at,
            messages_url=f"/v1/internships/{internship_id}/threads/{t.launcher_id}/messages",
        )
        for t in found
    ]


@router.get(
    "/v1/internships/{internship_id}/threads/{launcher_id}/messages",
    response_model=schemas.MessagesPage,
    summary="A page of a conversation, oldest first (marks it read)",
)
async def read_messages(
    internship_id: InternshipId,
    launcher_id: LauncherId,
    caller: CallerDep,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    before: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="earlier_cursor of a later page")
    ] = None,
) -> schemas.MessagesPage:
    read = await conversations.read(
        workflows, sessions, internship_id, launcher_id, caller.actor, before
    )
    return schemas.MessagesPage(
        launcher_id=launcher_id,
        writable=read.writable,
        closed_reason=read.refusal,
        messages=[message_out(m) for m in read.page.messages],
        earlier_cursor=read.page.earlier,
    )


@router.post(
    "/v1/internships/{internship_id}/threads/{launcher_id}/messages",
    status_code=201,
    response_model=schemas.MessageOut,
    summary="Post a message, with files (JSON, or multipart/form-data)",
    openapi_extra=MULTIPART_MESSAGE,
)
async def post_message(
    request: Request,
    internship_id: InternshipId,
    launcher_id: LauncherId,
    caller: CallerDep,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    files: FilesDep,
) -> schemas.MessageOut:
    body, uploads = await _message_in(request)
    ids = list(body.files)
    for upload in uploads:
        kept = await _keep(upload, internship_id, caller, workflows, sessions, settings, files)
        ids.append(kept.id)
    message = await conversations.post(
        workflows, sessions, internship_id, launcher_id, caller.actor, body.body, ids, "api"
    )
    return message_out(message)


async def _message_in(request: Request) -> tuple[schemas.MessageIn, list[UploadFile]]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw: Any
    uploads: list[UploadFile] = []
    if media == "multipart/form-data":
        form = await _form(request)
        raw = {"body": form.get("body") or ""}
        if not isinstance(raw["body"], str):
            raise ApiError(422, "invalid_request", "body must be text", {"field": "body"})
        uploads = [f for f in form.getlist("files") if not isinstance(f, str)]
    else:
        try:
            raw = await request.json()
        except ValueError as err:
            raise ApiError(
                422, "invalid_request", "The body is not valid JSON", {"field": "body"}
            ) from err
    try:
        return schemas.MessageIn.model_validate(raw), uploads
    except ValidationError as err:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
        ) from err


async def _form(request: Request) -> FormData:
    try:
        return await request.form(max_files=MAX_FILES, max_fields=20)
    except Exception as err:  # Starlette's MultiPartException and malformed bodies
        raise ApiError(
            422,
            "invalid_request",
            f"The form can't be read ({err}): send at most {MAX_FILES} files and a body",
            {"field": "files"},
        ) from err


async def _keep(
    upload: UploadFile,
    internship_id: str,
    caller: Caller,
    workflows: InternshipWorkflows,
    sessions: sessionmaker,
    settings: Settings,
    files: FileStore,
) -> FileView:
    """One uploaded part kept as a file of the internship."""
    return await conversations.upload(
        workflows,
        sessions,
        files,
        settings,
        internship_id,
        caller.actor,
        upload.filename or "file",
        await _read(upload, settings),
    )


async def _read(upload: UploadFile, settings: Settings) -> bytes:
    """The file's bytes; one over the limit is refused without reading it all."""
    data = await upload.read(settings.max_file_bytes + 1)
    if len(data) > settings.max_file_bytes:
        try:
            attachments.check(data, upload.filename or "file", settings.max_file_bytes)
        except attachments.AttachmentRefused as err:
            raise ApiError(422, "file_refused", str(err), {"field": "files"}) from err
    return data


@router.post(
    "/v1/internships/{internship_id}/files",
    status_code=201,
    response_model=schemas.FileOut,
    summary="Upload a file, to attach to a message or a submission by its id",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_file(
    request: Request,
    internship_id: InternshipId,
    caller: CallerDep,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    files: FilesDep,
) -> schemas.FileOut:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the file as multipart/form-data, in a part named 'file'",
        )
    form = await _form(request)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ApiError(422, "invalid_request", "Send the file in a part named 'file'")
    kept = await _keep(upload, internship_id, caller, workflows, sessions, settings, files)
    return file_out(kept)


@router.get(
    "/v1/files/{file_id}",
    summary="Download a file (as an attachment: never shown inline)",
    response_class=Response,
    # The file as it was sent: its type is whatever the content is (PDF, PNG, ...).
    responses={
        200: {
            "description": "The file, as an attachment",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def download_file(
    file_id: Id,
    caller: CallerDep,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
    files: FilesDep,
) -> Response:
    found = await conversations.download(workflows, sessions, files, file_id, caller.actor)
    return attachment_response(found)


def attachment_response(found: conversations.Download) -> Response:
    """A file as a download: never rendered by the browser, never cached by anyone else."""
    return Response(
        found.data,
        media_type=found.content_type,
        headers={
            "Content-Disposition": attachments.content_disposition(found.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.post(
    "/v1/messages/{message_id}/reports",
    status_code=204,
    summary="Report a message to ops",
)
async def report_message(
    message_id: Id,
    body: schemas.ReportIn,
    caller: CallerDep,
    workflows: WorkflowsDep,
    sessions: SessionsDep,
) -> Response:
    await conversations.report(workflows, sessions, message_id, caller.actor, body.reason)
    return Response(status_code=204)


@router.post(
    "/v1/ops/messages/{message_id}/moderation",
    status_code=204,
    summary="Hide a reported message, or keep it (ops)",
)
async def moderate_message(
    message_id: Id, body: schemas.ModerationIn, _ops: OpsDep, sessions: SessionsDep
) -> Response:
    await conversations.moderate(sessions, message_id, body.hide, body.reason)
    return Response(status_code=204)


@router.get(
    "/v1/ops/reports",
    response_model=list[schemas.ReportOut],
    summary="Reports of messages waiting for ops' decision, oldest first",
)
async def open_reports(_ops: OpsDep, sessions: SessionsDep) -> list[schemas.ReportOut]:
    return await reads.run(sessions, reports_waiting)


def reports_waiting(db: Session, limit: int = 100) -> list[schemas.ReportOut]:
    rows = db.execute(
        select(MessageReport, Message, Thread)
        .join(Message, Message.id == MessageReport.message_id)
        .join(Thread, Thread.id == Message.thread_id)
        .where(MessageReport.decided_at.is_(None))
        .order_by(MessageReport.id)
        .limit(limit)
    )
    return [
        schemas.ReportOut(
            id=report.id,
            message_id=message.id,
            internship_id=thread.internship_id,
            launcher_id=thread.launcher_id,
            reason=report.reason,
            reported_at=report.created_at,
            excerpt=message.body[:300],
            hidden=message.hidden_at is not None,
        )
        for report, message, thread in rows
    ]
