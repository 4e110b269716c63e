"""Conversations: one thread per launcher and internship, between that launcher and the
employer's organisation, with ops able to read and write every one.

Who may read and write a thread is the rulebook's (`rulebook.thread_access`), over the
workflow's state; this module keeps the messages, their files and who has read what, in the
database (never in Temporal's history), and tells people of new messages by email: at most one
email per thread and person in each quiet period, listing everything since the last one
(`due_emails`, which the outbox relay runs). Every function takes an open session and leaves the
commit to its caller, so a message, its files and its notices are written together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Update, and_, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import (
    Attachment,
    Internship,
    Launcher,
    Member,
    Message,
    MessageReport,
    OutboxEmail,
    Thread,
    ThreadReader,
)
from core.internship import Actor, Role

OPS_ID = "ops"
# The longest message, and how many files one message or submission carries.
MAX_MESSAGE_CHARS = 5000
MAX_FILES = 10
# Messages per page of a thread, and per email (the rest: "and 3 more").
PAGE = 50
EMAIL_LISTS = 20
# A digest tells of a thread at most this often.
DIGEST = timedelta(days=1)
# Messages in one thread: past this, it is ops' to look at (a bound on every list and page).
MAX_MESSAGES = 2000


@dataclass(frozen=True)
class Reader:
    """A person in a thread: an employer's member (by member id), a launcher, or ops."""

    role: str
    id: str


def reader_of(actor: Actor) -> Reader:
    if actor.role == Role.EMPLOYER:
        return Reader(Role.EMPLOYER.value, actor.member_id or actor.id)
    if actor.role == Role.LAUNCHER:
        return Reader(Role.LAUNCHER.value, actor.id)
    return Reader(Role.OPS.value, OPS_ID)


@dataclass(frozen=True)
class FileView:
    id: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class MessageView:
    id: int
    author_role: str
    author_name: str
    body: str | None  # None once hidden
    created_at: datetime
    via: str
    in_dispute: bool
    hidden: bool
    mine: bool
    files: list[FileView] = field(default_factory=list)


@dataclass(frozen=True)
class ThreadPage:
    """Up to PAGE messages, oldest first; `earlier` is the cursor for the page before."""

    thread_id: int | None
    messages: list[MessageView]
    earlier: int | None
    unread_from: int | None  # the first message the reader had not read before this page


class Refused(ValueError):
    """The message can't be posted as it is; the message says what to do."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.message, self.field = message, field


def _insert_ignoring_conflict(db: Session, model: Any, values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: two requests creating the same row both succeed."""
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    db.execute(dialect.insert(model).values(**values).on_conflict_do_nothing())


def thread_of(db: Session, internship_id: str, launcher_id: str) -> Thread | None:
    return db.scalar(
        select(Thread).where(
            Thread.internship_id == internship_id, Thread.launcher_id == launcher_id
        )
    )


def _thread(db: Session, internship_id: str, launcher_id: str, now: datetime) -> Thread:
    found = thread_of(db, internship_id, launcher_id)
    if found is not None:
        return found
    _insert_ignoring_conflict(
        db,
        Thread,
        {
            "internship_id": internship_id,
            "launcher_id": launcher_id,
            "created_at": now,
            "last_message_id": 0,
        },
    )
    thread = thread_of(db, internship_id, launcher_id)
    assert thread is not None
    return thread


def post(
    db: Session,
    *,
    internship_id: str,
    launcher_id: str,
    by: Actor,
    body: str,
    via: str,
    in_dispute: bool,
    files: Sequence[int],
    recipients: Iterable[Reader],
    now: datetime,
    email_id: str | None = None,
) -> Message:
    """Post a message (with files uploaded before by the same person to this internship) and
    queue the notices of the people it concerns. The rulebook has allowed it already."""
    if not body and not files:
        raise Refused("Write a message or attach a file")
    if len(files) > MAX_FILES:
        raise Refused(f"Attach at most {MAX_FILES} files to one message", "files")
    thread = _thread(db, internship_id, launcher_id, now)
    if thread.last_message_id and _count(db, thread.id) >= MAX_MESSAGES:
        raise Refused(
            "This conversation is full: ask ops to open a new one (contact them from the "
            "internship's page)"
        )
    author = reader_of(by)
    message = Message(
        thread_id=thread.id,
        author_role=author.role,
        author_id=author.id,
        body=body,
        via=via,
        created_at=now,
        in_dispute=in_dispute,
        email_id=email_id,
    )
    db.add(message)
    db.flush()
    attach(db, files, internship_id, author, message_id=message.id)
    sides = {Role.EMPLOYER.value: Role.LAUNCHER.value, Role.LAUNCHER.value: Role.EMPLOYER.value}
    # Two messages posted at once: the later id wins whichever commits last.
    db.execute(
        update(Thread)
        .where(Thread.id == thread.id, Thread.last_message_id < message.id)
        .values(
            last_message_id=message.id,
            last_message_at=now,
            waiting_on=sides.get(author.role, Thread.waiting_on),
        )
    )
    mark_read(db, thread.id, author, message.id)
    for reader in recipients:
        if reader != author:
            _notice(db, thread.id, reader, now)
    return message


def attach(db: Session, files: Sequence[int], internship_id: str, by: Reader, **to: int) -> None:
    """Attach files `by` uploaded to this internship, and nothing else yet, to a message
    (`message_id=`) or a submission (`submission_round=`)."""
    if not files:
        return
    if len(set(files)) > MAX_FILES:
        raise Refused(f"Attach at most {MAX_FILES} files at once", "files")
    stmt: Update = (
        update(Attachment)
        .where(
            Attachment.id.in_(set(files)),
            Attachment.internship_id == internship_id,
            Attachment.uploaded_by_role == by.role,
            Attachment.uploaded_by_id == by.id,
            Attachment.message_id.is_(None),
            # Attached to this submission already: a retried request finds it so.
            or_(
                Attachment.submission_round.is_(None),
                Attachment.submission_round == to.get("submission_round", 0),
            ),
        )
        .values(**to)
    )
    if len(db.scalars(stmt.returning(Attachment.id)).all()) != len(set(files)):
        raise Refused(
            "A file is not one you uploaded to this internship, or is attached already: "
            "upload it again",
            "files",
        )


def detach_submission(db: Session, files: Sequence[int], internship_id: str) -> None:
    """Let go of files attached to a submission the workflow refused."""
    db.execute(
        update(Attachment)
        .where(Attachment.id.in_(set(files)), Attachment.internship_id == internship_id)
        .values(submission_round=None)
    )


def _count(db: Session, thread_id: int) -> int:
    return db.scalar(select(func.count()).where(Message.thread_id == thread_id)) or 0


def _reader_row(db: Session, thread_id: int, reader: Reader) -> None:
    _insert_ignoring_conflict(
        db,
        ThreadReader,
        {
            "thread_id": thread_id,
            "reader_role": reader.role,
            "reader_id": reader.id,
            "last_read_id": 0,
            "last_emailed_id": 0,
            "emails_sent": 0,
        },
    )


def _is(reader: Reader, thread_id: int) -> ColumnElement[bool]:
    return and_(
        ThreadReader.thread_id == thread_id,
        ThreadReader.reader_role == reader.role,
        ThreadReader.reader_id == reader.id,
    )


def _notice(db: Session, thread_id: int, reader: Reader, now: datetime) -> None:
    """Something new for `reader`: an email is due now, unless one is due already (the relay
    holds it to the reader's quiet period when it comes to it)."""
    _reader_row(db, thread_id, reader)
    db.execute(
        update(ThreadReader)
        .where(_is(reader, thread_id), ThreadReader.email_due_at.is_(None))
        .values(email_due_at=now)
    )


def mark_read(db: Session, thread_id: int, reader: Reader, up_to: int) -> None:
    _reader_row(db, thread_id, reader)
    db.execute(
        update(ThreadReader)
        .where(_is(reader, thread_id), ThreadReader.last_read_id < up_to)
        .values(last_read_id=up_to)
    )


def page(
    db: Session,
    internship_id: str,
    launcher_id: str,
    viewer: Actor,
    *,
    before: int | None = None,
    moderator: bool = False,
) -> ThreadPage:
    """A page of the thread as `viewer` reads it (a hidden message's text and files only for
    ops, `moderator`), marking it read."""
    thread = thread_of(db, internship_id, launcher_id)
    if thread is None:
        return ThreadPage(None, [], None, None)
    reader = reader_of(viewer)
    query = select(Message).where(Message.thread_id == thread.id)
    if before is not None:
        query = query.where(Message.id < before)
    rows = list(db.scalars(query.order_by(Message.id.desc()).limit(PAGE + 1)))
    earlier = rows[PAGE - 1].id if len(rows) > PAGE else None
    rows = list(reversed(rows[:PAGE]))
    last_read = db.scalar(select(ThreadReader.last_read_id).where(_is(reader, thread.id)))
    unread_from = next(
        (
            m.id
            for m in rows
            if m.id > (last_read or 0) and (m.author_role, m.author_id) != (reader.role, reader.id)
        ),
        None,
    )
    shown = views(db, rows, reader, moderator)
    if rows and before is None:
        mark_read(db, thread.id, reader, rows[-1].id)
    return ThreadPage(thread.id, shown, earlier, unread_from)


def views(
    db: Session, rows: Sequence[Message], reader: Reader, moderator: bool
) -> list[MessageView]:
    names = author_names(db, rows)
    files: dict[int, list[FileView]] = {}
    if rows:
        for a in db.scalars(
            select(Attachment)
            .where(Attachment.message_id.in_([m.id for m in rows]))
            .order_by(Attachment.id)
        ):
            files.setdefault(a.message_id or 0, []).append(
                FileView(a.id, a.filename, a.content_type, a.size)
            )
    found = []
    for m in rows:
        shown = m.hidden_at is None or moderator
        found.append(
            MessageView(
                id=m.id,
                author_role=m.author_role,
                author_name=names.get((m.author_role, m.author_id), ""),
                body=m.body if shown else None,
                created_at=m.created_at,
                via=m.via,
                in_dispute=m.in_dispute,
                hidden=m.hidden_at is not None,
                mine=(m.author_role, m.author_id) == (reader.role, reader.id),
                files=files.get(m.id, []) if shown else [],
            )
        )
    return found


def author_names(db: Session, rows: Sequence[Message]) -> dict[tuple[str, str], str]:
    members = {m.author_id for m in rows if m.author_role == Role.EMPLOYER.value}
    launchers = {m.author_id for m in rows if m.author_role == Role.LAUNCHER.value}
    names = {(Role.OPS.value, OPS_ID): "Ops team"}
    if members:
        company = db.scalar(
            select(Internship.company)
            .join(Thread, Thread.internship_id == Internship.id)
            .where(Thread.id == rows[0].thread_id)
        )
        for id_, name in db.execute(select(Member.id, Member.name).where(Member.id.in_(members))):
            names[(Role.EMPLOYER.value, id_)] = f"{name} ({company})"
    if launchers:
        for id_, name in db.execute(
            select(Launcher.id, Launcher.name).where(Launcher.id.in_(launchers))
        ):
            names[(Role.LAUNCHER.value, id_)] = name
    return names


# ---------------------------------------------------------------- who hears


def employer_side(db: Session, thread_id: int | None, internship: Internship) -> list[Reader]:
    """The members told of a launcher's message: the one who posted the internship and those
    who wrote in the thread, while they are members; when none is, the admins."""
    ids = {internship.posted_by or internship.employer_id}
    if thread_id is not None:
        ids |= set(
            db.scalars(
                select(Message.author_id).where(
                    Message.thread_id == thread_id, Message.author_role == Role.EMPLOYER.value
                )
            )
        )
    current = select(Member.id).where(
        Member.employer_id == internship.employer_id, Member.removed_at.is_(None)
    )
    found = list(db.scalars(current.where(Member.id.in_(ids))))
    if not found:
        found = list(db.scalars(current.where(Member.role == "admin")))
    return [Reader(Role.EMPLOYER.value, id_) for id_ in sorted(found)]


def recipients(
    db: Session, internship: Internship, launcher_id: str, author: Reader
) -> list[Reader]:
    """Who hears of a message: the other side (ops' messages: both sides)."""
    thread = thread_of(db, internship.id, launcher_id)
    launcher = [Reader(Role.LAUNCHER.value, launcher_id)]
    employers = employer_side(db, thread.id if thread else None, internship)
    if author.role == Role.LAUNCHER.value:
        return employers
    if author.role == Role.EMPLOYER.value:
        return launcher
    return launcher + employers


# ---------------------------------------------------------------- unread and waiting


def unread_by_thread(db: Session, reader: Reader, thread_ids: Sequence[int]) -> dict[int, int]:
    """How many messages of each thread `reader` has not read (their own don't count)."""
    if not thread_ids:
        return {}
    last_read = func.coalesce(
        select(ThreadReader.last_read_id)
        .where(
            ThreadReader.thread_id == Message.thread_id,
            ThreadReader.reader_role == reader.role,
            ThreadReader.reader_id == reader.id,
        )
        .scalar_subquery(),
        0,
    )
    rows = db.execute(
        select(Message.thread_id, func.count())
        .where(
            Message.thread_id.in_(thread_ids),
            Message.id > last_read,
            or_(Message.author_role != reader.role, Message.author_id != reader.id),
            Message.hidden_at.is_(None),
        )
        .group_by(Message.thread_id)
    )
    return {thread_id: count for thread_id, count in rows}


# ---------------------------------------------------------------- moderation


def report(db: Session, message_id: int, by: Actor, reason: str, now: datetime) -> None:
    """Report a message for ops (once per person: a second report changes nothing)."""
    who = reader_of(by)
    _insert_ignoring_conflict(
        db,
        MessageReport,
        {
            "message_id": message_id,
            "reporter_role": who.role,
            "reporter_id": who.id,
            "reason": reason,
            "created_at": now,
        },
    )


def hide(db: Session, message_id: int, reason: str, now: datetime) -> None:
    """Ops hide a message: kept for audit, shown as hidden, its files no longer served."""
    db.execute(
        update(Message)
        .where(Message.id == message_id, Message.hidden_at.is_(None))
        .values(hidden_at=now, hidden_reason=reason)
    )
    decide_reports(db, message_id, now)


def decide_reports(db: Session, message_id: int, now: datetime) -> None:
    db.execute(
        update(MessageReport)
        .where(MessageReport.message_id == message_id, MessageReport.decided_at.is_(None))
        .values(decided_at=now)
    )


# ---------------------------------------------------------------- emails


@dataclass(frozen=True)
class DueEmail:
    """One email to render and queue: the thread, its reader and what arrived."""

    thread: Thread
    internship: Internship
    reader: Reader
    to_email: str
    name: str
    messages: list[MessageView]
    more: int  # messages beyond the ones listed
    seq: int  # this reader's email number in this thread
    preference: str  # how they hear of messages: immediate or digest
    time_zone: str  # the zone their email writes moments in


class Addressee(NamedTuple):
    email: str
    name: str
    how: str  # how they hear of messages (`MESSAGE_EMAILS`)
    time_zone: str


def addressee(db: Session, reader: Reader) -> Addressee | None:
    """Where and how a current member or a launcher hears of messages."""
    person: type[Member] | type[Launcher]
    current: ColumnElement[bool]
    if reader.role == Role.EMPLOYER.value:
        person, current = Member, Member.removed_at.is_(None)
    elif reader.role == Role.LAUNCHER.value:
        person, current = Launcher, true()
    else:
        return None
    row = db.execute(
        select(person.email, person.name, person.message_emails, person.time_zone).where(
            person.id == reader.id, current
        )
    ).first()
    return Addressee(*row) if row else None


def due_emails(db: Session, now: datetime, quiet: timedelta, limit: int = 50) -> list[DueEmail]:
    """The readers whose email is due (claimed for this transaction: on Postgres, rows another
    relay holds are skipped), each with what arrived since their last email. Readers told
    nothing new, or who turned emails off, are cleared; those inside their quiet period wait
    until it ends. The caller queues each email and calls `emailed`, in the same transaction."""
    due = list(
        db.scalars(
            select(ThreadReader)
            .where(ThreadReader.email_due_at <= now)
            .order_by(ThreadReader.email_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    emails = []
    for row in due:
        reader = Reader(row.reader_role, row.reader_id)
        found = addressee(db, reader)
        thread = db.get(Thread, row.thread_id)
        if found is None or thread is None or found.how == "off":
            row.email_due_at = None
            row.last_emailed_id = max(row.last_emailed_id, thread.last_message_id if thread else 0)
            continue
        period = quiet if found.how == "immediate" else DIGEST
        if row.last_emailed_at is not None and now < row.last_emailed_at + period:
            row.email_due_at = row.last_emailed_at + period
            continue
        since = max(row.last_emailed_id, row.last_read_id)
        news = list(
            db.scalars(
                select(Message)
                .where(
                    Message.thread_id == thread.id,
                    Message.id > since,
                    or_(Message.author_role != reader.role, Message.author_id != reader.id),
                    Message.hidden_at.is_(None),
                )
                .order_by(Message.id)
            )
        )
        if not news:
            row.email_due_at = None
            continue
        internship = db.get(Internship, thread.internship_id)
        assert internship is not None
        listed = news[-EMAIL_LISTS:]
        emails.append(
            DueEmail(
                thread=thread,
                internship=internship,
                reader=reader,
                to_email=found.email,
                name=found.name,
                messages=views(db, listed, reader, moderator=False),
                more=len(news) - len(listed),
                seq=row.emails_sent + 1,
                preference=found.how,
                time_zone=found.time_zone,
            )
        )
        row.email_due_at = None
        row.last_emailed_at = now
        row.last_emailed_id = news[-1].id
        row.emails_sent += 1
    return emails


def queue(db: Session, email: DueEmail, subject: str, text: str, html: str, reply_to: str) -> None:
    db.add(
        OutboxEmail(
            internship_id=email.internship.id,
            seq=email.seq,
            kind=f"messages-{email.thread.id}",
            recipient_role=email.reader.role,
            recipient_id=email.reader.id,
            to_email=email.to_email,
            subject=subject[:300],
            text_body=text,
            html_body=html,
            reply_to=reply_to,
        )
    )
