"""Conversations on an internship, on a caller's behalf: the threads they may read, a page of
one, posting a message (with files), uploading and downloading files, reports and hiding.

The rulebook decides over the workflow's state (`rulebook.thread_access`), read once per call;
`core.conversations` keeps the messages. No session is held while Temporal or the file store
is asked anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api.errors import ApiError, not_found, refusal_error
from api.service import reads
from api.service.workflows import InternshipWorkflows, NoSuchRun
from core import attachments, conversations, errors, files, replies, rulebook
from core.accounts import actor_of, member_with_organisation
from core.conversations import FileView, MessageView, ThreadPage
from core.db import Attachment, Internship, Launcher, Message, Thread
from core.images import megabytes
from core.internship import Actor, InternshipState, Role
from core.settings import Settings

T = TypeVar("T")
log = logging.getLogger("api.conversations")


@dataclass(frozen=True)
class ThreadSummary:
    launcher_id: str
    launcher_name: str
    selected: bool
    writable: bool
    messages: bool  # any message yet
    unread: int
    waiting_on_you: bool
    last_message_at: datetime | None


@dataclass(frozen=True)
class ThreadRead:
    state: InternshipState
    launcher_id: str
    launcher_name: str
    writable: bool
    refusal: str | None  # why not, in words, when not writable
    page: ThreadPage


@dataclass(frozen=True)
class Download:
    data: bytes
    filename: str
    content_type: str


def _now() -> datetime:
    return datetime.now(UTC)


async def _state(workflows: InternshipWorkflows, internship_id: str) -> InternshipState:
    try:
        return await workflows.state(internship_id)
    except NoSuchRun as err:
        raise not_found() from err


async def _readable(
    workflows: InternshipWorkflows, internship_id: str, launcher_id: str, viewer: Actor
) -> InternshipState:
    state = await _state(workflows, internship_id)
    access = rulebook.thread_access(state, viewer, launcher_id)
    if access == rulebook.ThreadAccess.NONE:
        raise not_found("conversation")
    return state


def _side(viewer: Actor) -> str:
    return Role.LAUNCHER.value if viewer.role == Role.LAUNCHER else Role.EMPLOYER.value


async def threads(
    workflows: InternshipWorkflows, sessions: sessionmaker, internship_id: str, viewer: Actor
) -> list[ThreadSummary]:
    """The threads of an internship `viewer` may read: a launcher's own, all of them for the
    organisation and ops (404 for whoever has none)."""
    state = await _state(workflows, internship_id)
    if not rulebook.threads_seen(state, viewer):
        raise not_found()
    return await thread_summaries(sessions, state, viewer)


async def thread_summaries(
    sessions: sessionmaker, state: InternshipState, viewer: Actor
) -> list[ThreadSummary]:
    """`threads` over a state read already (the internship's page has one): none for whoever
    may read none."""
    internship_id = state.posting.internship_id
    launchers = rulebook.threads_seen(state, viewer)
    if not launchers:
        return []
    reader = conversations.reader_of(viewer)

    def read(db: Session) -> list[ThreadSummary]:
        rows = {
            t.launcher_id: t
            for t in db.scalars(
                select(Thread).where(
                    Thread.internship_id == internship_id, Thread.launcher_id.in_(launchers)
                )
            )
        }
        names = {
            id_: name
            for id_, name in db.execute(
                select(Launcher.id, Launcher.name).where(Launcher.id.in_(launchers))
            )
        }
        unread = conversations.unread_by_thread(db, reader, [t.id for t in rows.values()])
        summaries = []
        for lid in launchers:
            thread = rows.get(lid)
            access = rulebook.thread_access(state, viewer, lid)
            summaries.append(
                ThreadSummary(
                    launcher_id=lid,
                    launcher_name=names.get(lid, ""),
                    selected=lid == state.launcher_id,
                    writable=access == rulebook.ThreadAccess.WRITE,
                    messages=thread is not None and thread.last_message_id > 0,
                    unread=unread.get(thread.id, 0) if thread else 0,
                    waiting_on_you=thread is not None
                    and access == rulebook.ThreadAccess.WRITE
                    and thread.waiting_on == _side(viewer)
                    and viewer.role != Role.OPS,
                    last_message_at=thread.last_message_at if thread else None,
                )
            )
        return summaries

    return await reads.run(sessions, read)


async def _writing(sessions: sessionmaker, work: Callable[[Session], T]) -> T:
    """`work` in one transaction on a worker thread, off the event loop."""

    def in_transaction() -> T:
        with sessions.begin() as db:
            return work(db)

    return await run_in_threadpool(in_transaction)


def _names(db: Session, launcher_id: str) -> str:
    return db.scalar(select(Launcher.name).where(Launcher.id == launcher_id)) or ""


async def read(
    workflows: InternshipWorkflows,
    sessions: sessionmaker,
    internship_id: str,
    launcher_id: str,
    viewer: Actor,
    before: int | None = None,
) -> ThreadRead:
    """A page of one thread (the newest, or the one before the cursor `before`), marked read."""
    state = await _readable(workflows, internship_id, launcher_id, viewer)
    refused = rulebook.message_refusal(state, viewer, launcher_id)

    def work(db: Session) -> ThreadRead:
        page = conversations.page(
            db,
            internship_id,
            launcher_id,
            viewer,
            before=before,
            moderator=viewer.role == Role.OPS,
        )
        return ThreadRead(
            state=state,
            launcher_id=launcher_id,
            launcher_name=_names(db, launcher_id),
            writable=refused is None,
            refusal=refused.message if refused else None,
            page=page,
        )

    return await _writing(sessions, work)


async def post(
    workflows: InternshipWorkflows,
    sessions: sessionmaker,
    internship_id: str,
    launcher_id: str,
    viewer: Actor,
    body: str,
    file_ids: list[int],
    via: str,
    email_id: str | None = None,
) -> MessageView:
    """Post a message as `viewer` (ops' marked as ops): 404, 403 or 409 as the rulebook says;
    422 for a message with neither text nor files, or files that aren't the caller's."""
    state = await _state(workflows, internship_id)
    refused = rulebook.message_refusal(state, viewer, launcher_id)
    if refused is not None:
        details = rulebook.refusal_details(refused, state, viewer)
        raise refusal_error(refused.kind, refused.message, details)

    def work(db: Session) -> MessageView:
        internship = db.get(Internship, internship_id)
        if internship is None:  # the projection has not recorded the posting yet
            raise ApiError(409, "not_ready", "The internship is being set up: try again shortly")
        author = conversations.reader_of(viewer)
        message = conversations.post(
            db,
            internship_id=internship_id,
            launcher_id=launcher_id,
            by=viewer,
            body=body,
            via=via,
            in_dispute=state.disputed,
            files=file_ids,
            recipients=conversations.recipients(db, internship, launcher_id, author),
            now=_now(),
            email_id=email_id,
        )
        db.flush()
        return conversations.views(db, [message], author, moderator=False)[0]

    try:
        posted = await _writing(sessions, work)
    except conversations.Refused as err:
        raise ApiError(422, "invalid_message", err.message, {"field": err.field}) from err
    if state.disputed:
        # The dispute's record links to the message. It is posted already: a Temporal that
        # does not answer now costs the link, never a second message from a retry.
        try:
            await workflows.message_in_dispute(internship_id, viewer, posted.id)
        except (NoSuchRun, RPCError):
            log.warning("message %s not linked from the dispute's record", posted.id)
    return posted


async def upload(
    workflows: InternshipWorkflows,
    sessions: sessionmaker,
    store: files.FileStore,
    settings: Settings,
    internship_id: str,
    viewer: Actor,
    filename: str,
    data: bytes,
) -> FileView:
    """Keep a file to attach to a message or a submission of this internship: for those who
    may write in one of its threads or submit its work. Its type is read from its content;
    it counts against the internship's quota."""
    _may_upload(await _state(workflows, internship_id), viewer)
    try:
        checked = await run_in_threadpool(
            attachments.check, data, filename, settings.max_file_bytes
        )
    except attachments.AttachmentRefused as err:
        raise ApiError(422, "file_refused", str(err), {"field": "files"}) from err
    key = files.new_key(checked.extension)
    await run_in_threadpool(store.put, key, data)
    uploader = conversations.reader_of(viewer)
    quota = settings.internship_files_quota_bytes

    def work(db: Session) -> FileView | None:
        # One upload at a time per internship counts the quota (Postgres: the row lock).
        db.scalar(select(Internship.id).where(Internship.id == internship_id).with_for_update())
        used = db.scalar(
            select(func.coalesce(func.sum(Attachment.size), 0)).where(
                Attachment.internship_id == internship_id
            )
        )
        if (used or 0) + checked.size > quota:
            return None
        row = Attachment(
            internship_id=internship_id,
            key=key,
            filename=checked.filename,
            content_type=checked.content_type,
            size=checked.size,
            uploaded_by_role=uploader.role,
            uploaded_by_id=uploader.id,
            created_at=_now(),
        )
        db.add(row)
        db.flush()
        return FileView(row.id, row.filename, row.content_type, row.size)

    kept = await _writing(sessions, work)
    if kept is None:
        await run_in_threadpool(store.delete, key)
        raise ApiError(
            413,
            "quota_exceeded",
            f"This internship holds {megabytes(quota)} of files at most: share a link to the "
            "rest, or ask ops to raise the limit",
            {"field": "files"},
        )
    return kept


def _may_upload(state: InternshipState, viewer: Actor) -> None:
    """404 for whoever has nowhere to attach a file here, 403 for a member who reads but may
    not act, 409 for a launcher whose thread closed."""
    if viewer.role == Role.OPS:
        return
    if viewer.role == Role.LAUNCHER:
        refused = rulebook.message_refusal(state, viewer, viewer.id)
    elif rulebook.relation(state, viewer) == rulebook.Relation.OWNER:
        if rulebook.member_acts_on(state, viewer):
            return
        refused = rulebook.Refusal(errors.FORBIDDEN, rulebook.lacking(rulebook.OrgRight.LIFECYCLE))
    else:
        refused = rulebook.Refusal(errors.NOT_FOUND, "internship not found")
    if refused is not None:
        details = rulebook.refusal_details(refused, state, viewer)
        raise refusal_error(refused.kind, refused.message, details)


async def download(
    workflows: InternshipWorkflows,
    sessions: sessionmaker,
    store: files.FileStore,
    file_id: int,
    viewer: Actor,
) -> Download:
    """A file, for those who may read where it is attached: its thread (a hidden message's
    files for ops alone), the work (a submission's, kept after the internship ends), or the
    uploader, before it is attached. 404 for everyone else."""

    def find(db: Session) -> tuple[Attachment, Message | None, str | None] | None:
        row = db.get(Attachment, file_id)
        if row is None:
            return None
        message = db.get(Message, row.message_id) if row.message_id else None
        thread = db.get(Thread, message.thread_id) if message else None
        return row, message, thread.launcher_id if thread else None

    found = await reads.run(sessions, find)
    if found is None:
        raise not_found("file")
    row, message, launcher_id = found
    if not await _may_download(workflows, row, message, launcher_id, viewer):
        raise not_found("file")
    data = await run_in_threadpool(store.get, row.key)
    if data is None:
        raise not_found("file")
    return Download(data, row.filename, row.content_type)


async def _may_download(
    workflows: InternshipWorkflows,
    row: Attachment,
    message: Message | None,
    launcher_id: str | None,
    viewer: Actor,
) -> bool:
    uploader = conversations.reader_of(viewer)
    if message is None and row.submission_round is None:
        return (row.uploaded_by_role, row.uploaded_by_id) == (uploader.role, uploader.id)
    if message is not None and message.hidden_at is not None and viewer.role != Role.OPS:
        return False
    try:
        state = await workflows.state(row.internship_id)
    except NoSuchRun:
        return False
    if launcher_id is not None:
        return rulebook.thread_access(state, viewer, launcher_id) != rulebook.ThreadAccess.NONE
    return rulebook.visibility(state, viewer).work


async def report(
    workflows: InternshipWorkflows,
    sessions: sessionmaker,
    message_id: int,
    viewer: Actor,
    reason: str,
) -> None:
    """Report a message to ops: anyone who reads it may."""
    where = await reads.run(sessions, thread_of_message, message_id)
    if where is None:
        raise not_found("message")
    await _readable(workflows, where[0], where[1], viewer)
    await _writing(
        sessions, lambda db: conversations.report(db, message_id, viewer, reason, _now())
    )


async def moderate(sessions: sessionmaker, message_id: int, hide: bool, reason: str) -> None:
    """Ops hide a message (kept, shown as hidden, its files no longer served), or keep it and
    close its reports."""
    if await reads.run(sessions, thread_of_message, message_id) is None:
        raise not_found("message")

    def work(db: Session) -> None:
        if hide:
            conversations.hide(db, message_id, reason, _now())
        else:
            conversations.decide_reports(db, message_id, _now())

    await _writing(sessions, work)


def thread_of_message(db: Session, message_id: int) -> tuple[str, str] | None:
    """The internship and launcher of a message's thread (None: no such message)."""
    row = db.execute(
        select(Thread.internship_id, Thread.launcher_id)
        .join(Message, Message.thread_id == Thread.id)
        .where(Message.id == message_id)
    ).first()
    return (row[0], row[1]) if row else None


# ---------------------------------------------------------------- replies by email


async def post_reply(
    workflows: InternshipWorkflows, sessions: sessionmaker, settings: Settings, raw: bytes
) -> MessageView | None:
    """Post a reply received by email into the thread its address names, as the person it was
    made for, once that person's address sent it (None: posted before, a webhook delivered
    twice). ReplyRefused for a forged or expired address, another sender, or an automatic
    reply; the rulebook's refusal (a closed thread) as for any message."""
    # Parsing a large email takes a tenth of a second: off the event loop.
    reply = await run_in_threadpool(
        partial(
            replies.read_reply,
            raw,
            secret=replies.reply_secret(settings),
            domain=settings.reply_domain,
            now=_now(),
            max_bytes=settings.max_large_body_bytes,
        )
    )
    found = await reads.run(sessions, _replier, reply.to, settings.ops_email)
    if found is None:
        raise replies.ReplyRefused("forged", "no such conversation or person")
    actor, email, internship_id, launcher_id = found
    if reply.message.from_address != email.lower():
        raise replies.ReplyRefused(
            "wrong sender", "the reply came from another address than the one it was sent to"
        )
    try:
        return await post(
            workflows,
            sessions,
            internship_id,
            launcher_id,
            actor,
            reply.message.text[: conversations.MAX_MESSAGE_CHARS],
            [],
            "email",
            reply.message.message_id,
        )
    except IntegrityError:  # this email was posted before
        return None


def _replier(
    db: Session, to: replies.ReplyTo, ops_email: str
) -> tuple[Actor, str, str, str] | None:
    """The person a reply address was made for (their actor and email) and the thread's
    internship and launcher; None if either is gone (a removed member, say)."""
    thread = db.get(Thread, to.thread_id)
    if thread is None:
        return None
    where = (thread.internship_id, thread.launcher_id)
    if to.recipient_role == Role.OPS.value:
        return Actor(Role.OPS, conversations.OPS_ID), ops_email, *where
    if to.recipient_role == Role.LAUNCHER.value:
        launcher = db.get(Launcher, to.recipient_id)
        if launcher is None or launcher.id != thread.launcher_id:
            return None
        return Actor(Role.LAUNCHER, launcher.id), launcher.email, *where
    member = member_with_organisation(db, to.recipient_id)
    if member is None:
        return None
    return actor_of(member[0]), member[0].email, *where
