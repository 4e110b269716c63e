"""The database projection of each workflow, written after every event (a local activity).

Its input and output are `core.activity_contracts`' (`RECORD_TRANSITION`, `TransitionRecord`).
One transaction per event: the internship row, its timeline entry and its outbox emails. The
timeline's (internship, seq) key makes a retried or replayed call a no-op that returns the same
outbox rows, so an email is queued once per event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core import calendars, rulebook, terms, zones
from core.activity_contracts import (
    PROJECTION_REJECTED,
    RECORD_TRANSITION,
    Notice,
    Recipient,
    TransitionRecord,
)
from core.db import (
    PENDING,
    STATEMENT,
    Document,
    Employer,
    Internship,
    InternshipDeadline,
    InternshipInvitation,
    InternshipSkill,
    Launcher,
    Member,
    OutboxEmail,
    TimelineEvent,
)
from core.documents import issue_documents
from core.emails import Templates, internship_context
from core.formats import when
from core.internship import InternshipState, Role, TimelineEntry

log = logging.getLogger("activities.projection")


@dataclass
class Contact:
    name: str
    email: str
    time_zone: str | None = None  # the zone they read moments in (`core.zones`); None: UTC


# Emails that link to the document their event issued (details' `document_url`).
DOCUMENT_EMAILS = frozenset({"kickoff", "cancelled", "paid"})

# Emails that list the terms of the internship (`core.terms`), as accepted at kickoff.
TERMS_EMAILS = frozenset({"kickoff"})

# Events that change a posting's invitations (an application answers one).
INVITATION_EVENTS = frozenset({"invited", "invitation_declined", "applied"})


def project_invitations(db: Session, s: InternshipState) -> None:
    """The internship's invitations as the workflow has them (a few rows, rewritten)."""
    internship_id = s.posting.internship_id
    db.execute(
        delete(InternshipInvitation).where(InternshipInvitation.internship_id == internship_id)
    )
    db.add_all(
        InternshipInvitation(
            internship_id=internship_id,
            launcher_id=i.launcher_id,
            invited_at=i.invited_at,
            invited_by=i.invited_by,
            answer=i.answer,
        )
        for i in s.invitations
    )


# Emails that carry the due date's calendar invitation: the kickoff's and the extension's
# (METHOD:REQUEST), and a cancellation's once a due date was set (METHOD:CANCEL).
INVITATION_EMAILS = frozenset({"kickoff", "extended"})
CANCELLATION_EMAILS = frozenset({"cancelled"})


def project_deadlines(db: Session, s: InternshipState) -> None:
    """The internship's upcoming deadlines as the workflow lists them now (a few rows,
    rewritten), for calendar feeds."""
    internship_id = s.posting.internship_id
    db.execute(delete(InternshipDeadline).where(InternshipDeadline.internship_id == internship_id))
    db.add_all(
        InternshipDeadline(
            internship_id=internship_id,
            position=i,
            kind=d.kind,
            at=d.at,
            happens=d.happens,
            unless=d.unless,
            for_roles=calendars.roles_column(d.for_roles),
            paused=d.paused,
        )
        for i, d in enumerate(s.deadlines)
    )


def _printable(text: str, limit: int) -> str:
    return "".join(c for c in text if c.isprintable())[:limit]


class Projection:
    # The database refused this state for good (a value it won't store): retrying can't help.
    REJECTED = PROJECTION_REJECTED

    def __init__(
        self,
        sessions: sessionmaker,
        templates: Templates,
        public_base_url: str,
        ops_email: str,
        ops_time_zone: str | None = None,
        emails_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.emails_queued = emails_queued  # wakes this process's outbox relay
        self.templates = templates
        self.public_base_url = public_base_url.rstrip("/")
        self.ops = Contact("Ops team", ops_email, ops_time_zone)

    @activity.defn(name=RECORD_TRANSITION.name)
    def record(self, rec: TransitionRecord) -> list[int]:
        """Project the state after one event; return the ids of its emails still to send.

        A database that is down fails the call so it retries until it is back; a database that
        refuses the data tells ops and fails for good, so the lifecycle goes on without it.
        """
        try:
            outbox = self._project(rec)
        except (IntegrityError, DataError) as err:
            reason = (
                f"the database refused to record '{rec.entry.event}' "
                f"({type(err.orig).__name__}); the lifecycle went on without it"
            )
            self._tell_ops(rec, reason)
            raise ApplicationError(reason, type=self.REJECTED, non_retryable=True) from err
        if outbox:
            self.emails_queued()
        return outbox

    def _project(self, rec: TransitionRecord) -> list[int]:
        s, entry = rec.state, rec.entry
        internship_id = s.posting.internship_id
        with self.sessions.begin() as db:
            row = db.get(Internship, internship_id)
            if row is None:
                row = Internship(id=internship_id, posted_at=s.posted_at)
                db.add(row)
                db.add_all(
                    InternshipSkill(internship_id=internship_id, skill=k)
                    for k in sorted(set(s.posting.skills))
                )
            # The row's last event and the timeline's entries are written together: an event
            # up to `last_seq` is recorded, and its emails are queued.
            if entry.seq > (row.last_seq or 0):
                project_row(row, s, entry.at)
                row.last_seq = entry.seq
                if entry.event in INVITATION_EVENTS:
                    db.flush()
                    project_invitations(db, s)
                db.flush()
                project_deadlines(db, s)
                db.add(timeline_row(internship_id, entry, s.launcher_id))
                # The money this event moved gets its receipt, credit note or statement, in
                # this transaction: recorded once with the event, linked from its emails.
                db.flush()
                documents = issue_documents(db, s, entry.at)
                queued = [
                    email
                    for notice in rec.notices
                    for email in self._queue(
                        db, s, entry, entry.actor_role.value, notice, documents
                    )
                ]
                db.flush()
                return [email.id for email in queued]
            # A retry of an event recorded before: its emails not sent yet.
            return list(
                db.scalars(
                    select(OutboxEmail.id)
                    .where(
                        OutboxEmail.internship_id == internship_id,
                        OutboxEmail.seq == entry.seq,
                        OutboxEmail.status == PENDING,
                    )
                    .order_by(OutboxEmail.id)
                )
            )

    def _tell_ops(self, rec: TransitionRecord, reason: str) -> None:
        """Queue an escalation to ops, built only from values the database will take."""
        p = rec.state.posting
        safe = replace(
            rec.state,
            posting=replace(p, title=_printable(p.title, 200), company=_printable(p.company, 200)),
        )
        notice = Notice("escalation", [Recipient(Role.OPS, "ops")], {"reason": reason, "level": 2})
        try:
            with self.sessions.begin() as db:
                self._queue(db, safe, rec.entry, Role.SYSTEM.value, notice)
        except SQLAlchemyError:
            log.exception("could not queue the ops alert for %s", p.internship_id)
            return
        self.emails_queued()

    def _queue(
        self,
        db: Session,
        s: InternshipState,
        entry: TimelineEntry,
        actor: str,
        notice: Notice,
        documents: Sequence[Document] = (),
    ) -> list[OutboxEmail]:
        p, seq, at = s.posting, entry.seq, entry.at
        details: dict[str, Any] = dict(notice.details)
        if notice.kind in TERMS_EMAILS:  # the terms both parties accepted, as the page says them
            details["terms"] = terms.email_context(terms.terms_in(s))
        if launcher_id := details.pop("launcher_id", None):
            details["launcher_name"] = self._launcher(db, launcher_id).name
        acting = db.get(Member, entry.member_id) if entry.member_id else None
        # The colleague who acted, named to whoever reads it.
        by = acting.name if acting is not None else ""
        addressed = [(to, *person) for to in notice.to for person in self._people(db, s, entry, to)]
        queued = []
        for to, recipient_id, contact in addressed:
            zone = zones.zone(contact.time_zone)
            internship = internship_context(
                internship_id=p.internship_id,
                title=p.title,
                company=p.company,
                category=p.category,
                stage=s.stage.value,
                fee_cents=p.fee_cents,
                currency=p.currency,
                due_at=s.due_at,
                public_base_url=self.public_base_url,
                deadlines=s.deadlines,
                zone=zone,
            )
            told = self._with_document(details, notice.kind, to.role, documents)
            # The workflow wrote the dispute's deadline in UTC: in the reader's zone instead.
            if "decide_by" in told and (decide_by := rulebook.dispute_deadline(s)):
                told = {**told, "decide_by": when(decide_by, zone)}
            email = self.templates.render(
                notice.kind,
                {
                    "recipient": {"name": contact.name, "role": to.role.value},
                    "internship": internship,
                    "event": {"kind": notice.kind, "actor": actor, "at": when(at, zone), "by": by},
                    "details": told,
                },
            )
            queued.append(
                OutboxEmail(
                    internship_id=p.internship_id,
                    seq=seq,
                    kind=notice.kind,
                    recipient_role=to.role.value,
                    recipient_id=recipient_id,
                    to_email=contact.email,
                    subject=email.subject,
                    text_body=email.text,
                    html_body=email.html,
                    calendar=self._invitation(s, entry, notice.kind, to.role, contact.email),
                )
            )
        db.add_all(queued)
        return queued

    def _invitation(
        self, s: InternshipState, entry: TimelineEntry, kind: str, role: Role, email: str
    ) -> str | None:
        """The due date's `.ics` for the parties' kickoff, extension and cancellation emails:
        one UID per internship, the event's timeline seq as SEQUENCE (it only grows)."""
        cancel = kind in CANCELLATION_EMAILS
        if (kind not in INVITATION_EMAILS and not cancel) or role == Role.OPS:
            return None
        if s.due_at is None:  # cancelled before kickoff: no calendar has the event
            return None
        p = s.posting
        return calendars.due_invitation(
            internship_id=p.internship_id,
            title=p.title,
            due_at=s.due_at,
            sequence=entry.seq,
            url=f"{self.public_base_url}/internships/{p.internship_id}",
            host=calendars.host_of(self.public_base_url),
            organizer=self.ops.email,
            attendee=email,
            stamp=entry.at,
            cancel=cancel,
        )

    def _with_document(
        self, details: dict[str, Any], kind: str, role: Role, documents: Sequence[Document]
    ) -> dict[str, Any]:
        """The details, with a link to the document this event issued that the recipient may
        read: the receipt or credit note to the organisation, the statement to the launcher."""
        if kind not in DOCUMENT_EMAILS:
            return details
        for doc in documents:
            if (doc.kind == STATEMENT) == (role == Role.LAUNCHER) and role != Role.OPS:
                return {**details, "document_url": f"{self.public_base_url}/documents/{doc.id}"}
        return details

    def _people(
        self, db: Session, s: InternshipState, entry: TimelineEntry, to: Recipient
    ) -> list[tuple[str, Contact]]:
        """Who an email to `to` reaches, each with the id its outbox row keys on. For an
        employer: the members concerned (the poster and whoever acted, or the admins if both
        have left), and the organisation's shared address if it has one."""
        if to.role == Role.OPS:
            return [("ops", self.ops)]
        if to.role == Role.LAUNCHER:
            launcher = self._launcher(db, to.id)
            return [(to.id, Contact(launcher.name, launcher.email, launcher.time_zone))]
        organisation = db.get(Employer, to.id)
        if organisation is None:
            raise LookupError(f"employer {to.id} not found")
        # Before members existed the founder (whose member id is the organisation's) posted.
        concerned = {s.posting.posted_by or to.id}
        if entry.member_id:  # a colleague acted: they hear of it too
            concerned.add(entry.member_id)
        current = Member.employer_id == to.id, Member.removed_at.is_(None)
        members = list(db.scalars(select(Member).where(Member.id.in_(concerned), *current)))
        if not members:
            members = list(db.scalars(select(Member).where(*current, Member.role == "admin")))
        people = [(m.id, Contact(m.name, m.email, m.time_zone)) for m in members]
        shared = organisation.notify_email
        if shared and shared not in {m.email for m in members}:
            # The shared inbox reads in the zone of the member who posted it (or the first).
            people.append(
                (f"{to.id}:shared", Contact(organisation.company, shared, members[0].time_zone))
            )
        return people

    @staticmethod
    def _launcher(db: Session, launcher_id: str) -> Launcher:
        launcher = db.get(Launcher, launcher_id)
        if launcher is None:
            raise LookupError(f"launcher {launcher_id} not found")
        return launcher


def project_row(row: Internship, s: InternshipState, at: datetime) -> None:
    """The projection row as the state `s` has it (at `at`): what lists and dashboards read."""
    p = s.posting
    row.employer_id, row.launcher_id = p.employer_id, s.launcher_id
    row.posted_by, row.invitation_only = p.posted_by, p.invitation_only
    row.title, row.description, row.company = p.title, p.description, p.company
    row.category, row.estimated_hours = p.category, p.estimated_hours
    row.fee_cents, row.currency, row.duration_days = p.fee_cents, p.currency, p.duration_days
    row.stage, row.due_at, row.overdue = s.stage.value, s.due_at, s.overdue
    row.escalation_level = s.escalation_level
    row.disputed = bool(s.dispute and not s.dispute.outcome)
    row.payment_refused = bool(s.payment_refused)
    row.charged_cents, row.paid_cents = s.money.charged_cents, s.money.paid_cents
    row.refunded_cents = s.money.refunded_cents
    row.launcher_share_cents = p.policy.launcher_share(p.fee_cents)
    by_employer, by_launcher = s.ratings.get("employer"), s.ratings.get("launcher")
    row.employer_rating = by_employer.rating if by_employer else None
    row.employer_comment = by_employer.comment if by_employer else None
    row.launcher_rating = by_launcher.rating if by_launcher else None
    row.launcher_comment = by_launcher.comment if by_launcher else None
    row.updated_at = at


def timeline_row(
    internship_id: str, entry: TimelineEntry, launcher_id: str | None
) -> TimelineEvent:
    """The timeline's entry as the projection keeps it, with who was selected then (an
    `overdue` counts against that launcher)."""
    return TimelineEvent(
        internship_id=internship_id,
        seq=entry.seq,
        at=entry.at,
        stage=entry.stage.value,
        event=entry.event,
        actor_role=entry.actor_role.value,
        actor_id=entry.actor_id,
        note=entry.note,
        launcher_id=launcher_id,
        member_id=entry.member_id,
    )
