"""The app database: profiles and tokens (the API's own) and the lifecycle projection.

Lifecycle rows are written only by the workflow's activities; the API reads them for lists.
SQLite by default, Postgres through DATABASE_URL; Alembic owns the schema (see core/migrations/).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


# Profiles: a headline or school on one line, a company's description, a link's address.
PROFILE_LINE_LENGTH = 120
PROFILE_TEXT_LENGTH = 500
LINK_LENGTH = 300


class Employer(Base):
    """An employer organisation: it owns the internships, the card and the charges; its people
    are `Member`s. `name` and `email` are its contact's, a current member's: the founder's, then,
    once they leave, an admin's who stays (`core.organisation.remove_member`)."""

    __tablename__ = "employers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # One account per email (stored trimmed and in lower case).
    email: Mapped[str] = mapped_column(String(320), unique=True)
    company: Mapped[str] = mapped_column(String(200))
    stripe_customer_id: Mapped[str] = mapped_column(String(64))
    # None until a card is added (web sign-ups add it through Stripe Checkout after signing up).
    stripe_payment_method: Mapped[str | None] = mapped_column(String(64))
    card_label: Mapped[str | None] = mapped_column(String(64))  # "Visa ending in 4242"
    # Stripe's fingerprint of every card the employer attached (one per card number, kept
    # after the card is replaced): the same card as a launcher's payout card is the same person.
    card_fingerprints: Mapped[list[str]] = mapped_column(JSON, default=list)
    # When the account's owner first used a link or code sent to its email (None: never, an
    # account the API created before sign-ups needed one).
    inbox_proven_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # False for a card attached before the inbox was proven: nothing is charged to it until
    # the owner confirms it is theirs (or adds another).
    card_confirmed: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # The company's profile, shown on its postings: a logo (a `core.files` key, random, never
    # the employer's id), its website and a short description. None until the employer adds them.
    logo_key: Mapped[str | None] = mapped_column(String(80))
    website_url: Mapped[str | None] = mapped_column(String(LINK_LENGTH))
    description: Mapped[str | None] = mapped_column(String(PROFILE_TEXT_LENGTH))
    # Where every email about the organisation's internships also goes (a shared inbox), set
    # by an admin; None: only to the members concerned.
    notify_email: Mapped[str | None] = mapped_column(String(320))
    # Who the documents (receipts, credit notes) are made out to, set by an admin; None: the
    # company's name and no address or tax id. Each document keeps a copy as it was at issue.
    billing_name: Mapped[str | None] = mapped_column(String(200))
    billing_address: Mapped[str | None] = mapped_column(String(PROFILE_TEXT_LENGTH))
    tax_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def chargeable_card(self) -> str | None:
        """The card fees may be charged to: None until one is added, and while it waits for
        its owner's word."""
        return self.stripe_payment_method if self.card_confirmed else None


class Member(Base):
    """A person of an employer organisation, with a role (`core.internship.MemberRole`). Web
    sessions and API tokens of employers are a member's; the founder's member id is the
    organisation's id, so credentials from before members existed keep their meaning. A
    removed member's row stays (the timeline names them) with `removed_at` set."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    employer_id: Mapped[str] = mapped_column(ForeignKey("employers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    # A hiring manager may act on every internship of the organisation, or only their own.
    all_internships: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # How new messages are emailed to them (`MESSAGE_EMAILS`).
    message_emails: Mapped[str] = mapped_column(
        String(16), default="immediate", server_default="immediate"
    )
    # The zone every moment is written in for them (`core.zones`): guessed at sign-up, theirs
    # to change in settings.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # One organisation per person: an email is a member of at most one, while not removed.
    __table_args__ = (
        Index(
            "uq_members_email_current",
            "email",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
    )


class ColleagueInvitation(Base):
    """An admin's invitation to join the organisation with a role: a one-time link sent to the
    email (only its hash is kept), which expires, can be revoked and is spent once."""

    __tablename__ = "colleague_invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    employer_id: Mapped[str] = mapped_column(ForeignKey("employers.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    all_internships: Mapped[bool] = mapped_column(Boolean, default=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(40))  # the admin's member id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Launcher(Base):
    __tablename__ = "launchers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    stripe_account_id: Mapped[str] = mapped_column(String(64), unique=True)
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Stripe's fingerprints of the payout account's external accounts (bank accounts, debit
    # cards), every one Stripe has reported, kept after it is replaced.
    payout_fingerprints: Mapped[list[str]] = mapped_column(JSON, default=list)
    inbox_proven_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # False for a payout account set up before the inbox was proven: nothing is paid to it
    # until the owner confirms it is theirs.
    payout_confirmed: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # Whether anyone may read the portfolio (completed work and ratings) without signing in.
    portfolio_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The profile employers choose from (all None until the launcher fills it in); the avatar
    # is a `core.files` key (random, never the launcher's id).
    headline: Mapped[str | None] = mapped_column(String(PROFILE_LINE_LENGTH))
    school: Mapped[str | None] = mapped_column(String(PROFILE_LINE_LENGTH))
    graduation_year: Mapped[int | None] = mapped_column(Integer)
    website_url: Mapped[str | None] = mapped_column(String(LINK_LENGTH))
    linkedin_url: Mapped[str | None] = mapped_column(String(LINK_LENGTH))
    github_url: Mapped[str | None] = mapped_column(String(LINK_LENGTH))
    avatar_key: Mapped[str | None] = mapped_column(String(80))
    # Which profile parts the public portfolio shows (`PUBLIC_PROFILE_PARTS`); employers and
    # ops see them all.
    public_parts: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Whether employers may invite them to apply (they can turn it off).
    takes_invitations: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # How new messages are emailed to them (`MESSAGE_EMAILS`).
    message_emails: Mapped[str] = mapped_column(
        String(16), default="immediate", server_default="immediate"
    )
    # The zone every moment is written in for them (`core.zones`): guessed at sign-up, theirs
    # to change in settings.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The stages after which nothing more is paid (core.internship.TERMINAL_STAGES; the models
# don't import the lifecycle).
ENDED_STAGES = frozenset({"completed", "expired", "cancelled", "refunded", "resolved"})


class Internship(Base):
    """One row per internship, rewritten from the workflow's state after every event."""

    __tablename__ = "internships"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    employer_id: Mapped[str] = mapped_column(ForeignKey("employers.id"), index=True)
    launcher_id: Mapped[str | None] = mapped_column(ForeignKey("launchers.id"), index=True)
    # The member who posted it (None before members existed: the founder, whose id is the
    # organisation's).
    posted_by: Mapped[str | None] = mapped_column(String(40), index=True)
    invitation_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    company: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(32))
    estimated_hours: Mapped[int] = mapped_column(Integer)
    fee_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    duration_days: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    charged_cents: Mapped[int] = mapped_column(Integer, default=0)
    paid_cents: Mapped[int] = mapped_column(Integer, default=0)
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0)
    # What approved work pays the launcher: their share of the fee, by the policy the
    # internship was posted under.
    launcher_share_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Stripe refused a refund or payout for good; ops retry it once the cause is fixed.
    payment_refused: Mapped[bool] = mapped_column(Boolean, default=False)
    # Ratings each side gave the other; shown only once the internship is completed.
    employer_rating: Mapped[int | None] = mapped_column(Integer)
    employer_comment: Mapped[str | None] = mapped_column(Text)
    launcher_rating: Mapped[int | None] = mapped_column(Integer)
    launcher_comment: Mapped[str | None] = mapped_column(Text)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def launcher_receives_cents(self) -> int:
        """What the launcher is paid: what was paid, once something was or the internship
        ended; until then their share, to come when the work is approved."""
        if self.paid_cents or self.stage in ENDED_STAGES:
            return self.paid_cents
        return self.launcher_share_cents

    __table_args__ = (
        # The list endpoint's filters and its (posted_at, id) cursor order.
        Index("ix_internships_stage_posted", "stage", "posted_at", "id"),
        Index("ix_internships_category_posted", "category", "posted_at", "id"),
        Index("ix_internships_posted", "posted_at", "id"),
    )


class InternshipSkill(Base):
    __tablename__ = "internship_skills"

    internship_id: Mapped[str] = mapped_column(ForeignKey("internships.id"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class InternshipInvitation(Base):
    """A launcher invited to apply to a posting, and their answer: the workflow's invitations
    as the projection keeps them, so lists find invitation-only postings and dashboards the
    invitations waiting for an answer."""

    __tablename__ = "internship_invitations"

    internship_id: Mapped[str] = mapped_column(ForeignKey("internships.id"), primary_key=True)
    launcher_id: Mapped[str] = mapped_column(ForeignKey("launchers.id"), primary_key=True)
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    invited_by: Mapped[str | None] = mapped_column(String(40))
    answer: Mapped[str] = mapped_column(String(16), default="")

    __table_args__ = (Index("ix_internship_invitations_launcher", "launcher_id", "answer"),)


class InternshipDeadline(Base):
    """One of an internship's upcoming deadlines as of its last recorded event (the workflow's
    `InternshipState.deadlines`, rewritten with each event), so calendar feeds read them
    without asking Temporal (`core.calendars`)."""

    __tablename__ = "internship_deadlines"

    internship_id: Mapped[str] = mapped_column(ForeignKey("internships.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # soonest first
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    happens: Mapped[str] = mapped_column(Text)
    unless: Mapped[str] = mapped_column(Text, default="")
    # ",employer,launcher," (`core.calendars.roles_column`); NULL: worded for everyone.
    for_roles: Mapped[str | None] = mapped_column(String(64))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)


class TimelineEvent(Base):
    __tablename__ = "timeline_events"
    __table_args__ = (
        # A launcher's applications: the pages mark the postings they applied to.
        Index("ix_timeline_events_actor", "actor_id", "event"),
        # A launcher's record: the internships they were overdue on, whoever finished them.
        Index("ix_timeline_events_launcher", "launcher_id", "event"),
    )

    internship_id: Mapped[str] = mapped_column(ForeignKey("internships.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    stage: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    # The launcher selected when the event happened (None when nobody was, and on events
    # recorded before this column existed: those count against the internship's launcher).
    launcher_id: Mapped[str | None] = mapped_column(String(40))
    # The employer's member who acted (None for others and before members existed).
    member_id: Mapped[str | None] = mapped_column(String(40))


# ---------------------------------------------------------------- documents

# A receipt for each charge, a credit note for each refund, a statement for each payout.
RECEIPT, CREDIT_NOTE, STATEMENT = "receipt", "credit_note", "statement"
DOCUMENT_KINDS = (RECEIPT, CREDIT_NOTE, STATEMENT)


class Document(Base):
    """A receipt, credit note or statement: issued by the projection in the transaction that
    records the money moving (`core.documents.issue_documents`), never changed after. Numbered
    in one sequence per organisation for all three kinds (`DocumentCounter`); the parties and
    billing details are copied as they were at issue."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    employer_id: Mapped[str] = mapped_column(ForeignKey("employers.id"))
    internship_id: Mapped[str] = mapped_column(ForeignKey("internships.id"), index=True)
    # The launcher of the internship when issued (the payee of a statement; None if nobody).
    launcher_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The charge's PaymentIntent, the refund or the transfer: one money event, one document.
    stripe_id: Mapped[str] = mapped_column(String(64), unique=True)
    internship_title: Mapped[str] = mapped_column(String(200))
    billing_name: Mapped[str] = mapped_column(String(200))
    billing_address: Mapped[str] = mapped_column(String(PROFILE_TEXT_LENGTH), default="")
    tax_id: Mapped[str] = mapped_column(String(64), default="")
    billing_email: Mapped[str] = mapped_column(String(320))
    launcher_name: Mapped[str] = mapped_column(String(200), default="")
    launcher_email: Mapped[str] = mapped_column(String(320), default="")

    __table_args__ = (
        UniqueConstraint("employer_id", "number", name="uq_documents_number"),
        # The Billing page and GET /v1/receipts: an organisation's documents, newest first.
        Index("ix_documents_employer", "employer_id", "id"),
        # A launcher's statements and yearly earnings.
        Index("ix_documents_launcher", "launcher_id", "kind", "issued_at"),
    )


class DocumentCounter(Base):
    """The last number an organisation's documents took. Issuing increments it in the
    document's own transaction, so the row lock orders concurrent issuers and a rollback takes
    its number back: no gaps and no repeats."""

    __tablename__ = "document_counters"

    employer_id: Mapped[str] = mapped_column(ForeignKey("employers.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


# ---------------------------------------------------------------- conversations

# How a person hears of new messages: at once (then at most one email per thread in each quiet
# period), in a daily digest (at most one email per thread a day), or not at all. Lifecycle
# emails are not affected.
MESSAGE_EMAILS = ("immediate", "digest", "off")


class Thread(Base):
    """The conversation between one launcher and the organisation about one internship: an
    applicant's question before selection, then the work itself. Messages and files live here
    and in the file store, never in the workflow's history."""

    __tablename__ = "threads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    internship_id: Mapped[str] = mapped_column(ForeignKey("internships.id"))
    launcher_id: Mapped[str] = mapped_column(ForeignKey("launchers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_id: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The side expected to answer ("employer" or "launcher"): the other side wrote last (ops'
    # messages wait on nobody).
    waiting_on: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (UniqueConstraint("internship_id", "launcher_id", name="uq_threads"),)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id"))
    author_role: Mapped[str] = mapped_column(String(16))
    # A member's id, a launcher's id, or "ops".
    author_id: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(8))  # "web", "api" or "email"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Posted while the internship was in dispute: the dispute's record links to it.
    in_dispute: Mapped[bool] = mapped_column(Boolean, default=False)
    # Hidden by ops (kept for audit): its text and files are no longer shown.
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    # A reply by email: its Message-ID, so a webhook delivered twice posts it once.
    email_id: Mapped[str | None] = mapped_column(String(320))

    __table_args__ = (
        Index("ix_messages_thread", "thread_id", "id"),
        UniqueConstraint("thread_id", "email_id", name="uq_messages_email"),
    )


class Attachment(Base):
    """A file of a message or of a submission, its bytes in the file store under `key`.
    Uploaded first (`message_id` and `submission_round` None), then attached once."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    internship_id: Mapped[str] = mapped_column(ForeignKey("internships.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    submission_round: Mapped[int | None] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by_role: Mapped[str] = mapped_column(String(16))
    uploaded_by_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageReport(Base):
    """Someone's report of a message, for ops' queue until they decide on it."""

    __tablename__ = "message_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    reporter_role: Mapped[str] = mapped_column(String(16))
    reporter_id: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When ops hid the message or kept it.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("message_id", "reporter_role", "reporter_id", name="uq_message_reports"),
        Index("ix_message_reports_open", "decided_at", "id"),
    )


class ThreadReader(Base):
    """Where one person stands in one thread: what they have read, and the email telling them
    of what they have not (at most one per quiet period, listing everything since the last)."""

    __tablename__ = "thread_readers"

    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id"), primary_key=True)
    reader_role: Mapped[str] = mapped_column(String(16), primary_key=True)
    reader_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_read_id: Mapped[int] = mapped_column(Integer, default=0)
    # The next email is due then (None: nothing waits to be told).
    email_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_emailed_id: Mapped[int] = mapped_column(Integer, default=0)
    emails_sent: Mapped[int] = mapped_column(Integer, default=0)


PENDING, SENT, FAILED = "pending", "sent", "failed"


class OutboxEmail(Base):
    """One email per (internship, event, recipient): the unique key makes retries send once."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    internship_id: Mapped[str] = mapped_column(String(40), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    recipient_role: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(String(40))
    to_email: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(LINK_LENGTH))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)  # PENDING, SENT or FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Not before: a relay's lease while it sends, or the backoff after a temporary refusal.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where a reply goes (a thread's signed reply address), when replying means something.
    reply_to: Mapped[str | None] = mapped_column(String(320))
    # An `.ics` invitation sent with it (`core.calendars.due_invitation`: its METHOD inside).
    calendar: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_outbox_status_id", "status", "id"),
        Index("ix_outbox_status_to_email", "status", "to_email", "id"),
        UniqueConstraint(
            "internship_id",
            "seq",
            "kind",
            "recipient_role",
            "recipient_id",
            name="uq_outbox_event_recipient",
        ),
    )


class IdempotentRequest(Base):
    """The answer to one Idempotency-Key of one caller, replayed for 24 hours."""

    __tablename__ = "idempotent_requests"

    caller: Mapped[str] = mapped_column(String(64), primary_key=True)  # hash of the credential
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))  # method, path and body
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while in progress
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """An account's API token: shown once, stored as its SHA-256, named by its owner."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # employer or launcher
    account_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_api_tokens_account", "role", "account_id"),)


class WebSession(Base):
    """A signed-in browser: the cookie holds only the session's id, whose hash is the key, so
    signing out (here or everywhere) ends it for good."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # employer, launcher or ops
    account_id: Mapped[str] = mapped_column(String(40))
    # Ops sessions: the OPS_EMAIL they were opened with (a new address ends them).
    ops_email: Mapped[str | None] = mapped_column(String(320))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (Index("ix_web_sessions_account", "role", "account_id"),)


class SignInLink(Base):
    """A one-time link (and API code: the same secret) sent by email: only its hash is stored,
    and it is used once. It signs in to an account, or, for a sign-up, creates the account
    from `sign_up` (the details given) when the inbox's owner uses it."""

    __tablename__ = "sign_in_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # employer, launcher or ops
    account_id: Mapped[str | None] = mapped_column(String(40))  # None for a sign-up
    sign_up: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    next_path: Mapped[str] = mapped_column(String(500), default="/")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The links an account has outstanding (at most a few at once).
    __table_args__ = (Index("ix_sign_in_links_account", "role", "account_id"),)


class CalendarFeed(Base):
    """A person's private calendar feed (`core.calendars`): the secret in its address is the
    credential, so only its hash is kept; revoked when its owner makes a new one or turns it
    off (the row stays, revoked)."""

    __tablename__ = "calendar_feeds"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # employer (a member) or launcher
    account_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_calendar_feeds_account", "role", "account_id"),)


class StripeEvent(Base):
    """Webhook events already handled (Stripe delivers at least once)."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Schema objects the migrations make that no model describes: the full-text index of the
# internships' words (migration 0009; queried by api/service/search.py), an FTS5 table and its
# shadow tables on SQLite, a GIN index on Postgres.
FULL_TEXT_INDEX = "internships_fts"
FULL_TEXT_PG_INDEX = "ix_internships_search"


def modelled(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's `include_name`: whether the models describe this object (autogenerate and
    the schema check compare only those)."""
    if type_ == "table" and name and name.startswith(FULL_TEXT_INDEX):
        return False
    return not (type_ == "index" and name == FULL_TEXT_PG_INDEX)


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class SQLiteWriterTurn:
    """SQLite has one writer at a time. Left to its busy handler, a waiting writer polls with
    sleeps of up to 100 ms while others cut in, and under load some wait for seconds (inside a
    workflow task, when the writer is a projection). In one process, this lock hands the turn
    over as soon as it is free: a connection takes it at its first write and gives it back
    when it returns to the pool, after its commit or rollback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def watch(self, engine: Engine) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _first_write(conn: Any, _c: Any, statement: str, *_: Any) -> None:
            info = conn.connection.info  # the pooled connection's, as `checkin` sees it
            if info.get("writer") or not _is_write(statement):
                return
            if self._owner == threading.get_ident():
                return  # this thread's other connection has the turn: SQLite's handler decides
            self._lock.acquire()
            self._owner = threading.get_ident()
            info["writer"] = True

        @event.listens_for(engine, "checkin")
        def _returned(_dbapi: Any, record: Any) -> None:
            self._give_back(record)

        @event.listens_for(engine, "invalidate")
        def _dropped(_dbapi: Any, record: Any, _exc: Any) -> None:
            self._give_back(record)

    def _give_back(self, record: Any) -> None:
        if record is not None and record.info.pop("writer", False):
            self._owner = None
            self._lock.release()


def _is_write(statement: str) -> bool:
    return statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")


def make_engine(url: str, **pool: Any) -> Engine:
    """`pool`: pool_size, max_overflow and pool_timeout (see Settings.pool_options)."""
    url = normalize_url(url)
    # A server's connection may have been dropped (a restart, a proxy's idle timeout): test it
    # as it leaves the pool. A SQLite file has no connection to lose, so no query for nothing.
    kwargs: dict[str, Any] = {"pool_pre_ping": not url.startswith("sqlite"), **pool}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while the worker writes; busy_timeout waits out the writer.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # Durable across a crash of the process (WAL); only an OS crash may lose a commit.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        SQLiteWriterTurn().watch(engine)

    return engine


def make_sessions(url: str, **pool: Any) -> sessionmaker:
    return sessionmaker(make_engine(url, **pool), expire_on_commit=False)
