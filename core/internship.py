"""The internship workflow's contract: its id, task queue, input, update inputs and state.

The API, the worker, the tests and the bench all speak to the workflow through these types.
Everything here crosses the Temporal boundary (serialized by the pydantic data converter), so
it holds plain data only; who may see and do what is decided in `core.rulebook`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

# The default task queue (deployments may name another in settings).
TASK_QUEUE = "internships"
WORKFLOW_ID_PREFIX = "internship-"


def workflow_id(internship_id: str) -> str:
    """The workflow id of an internship; also its Stripe transfer group and key prefix."""
    return f"{WORKFLOW_ID_PREFIX}{internship_id}"


class Stage(StrEnum):
    POSTED = "posted"
    MATCHED = "matched"
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    PAID = "paid"
    # A resolved dispute still owes the launcher their share: resolved once it is paid.
    SETTLING = "settling"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    RESOLVED = "resolved"


TERMINAL_STAGES = frozenset(
    {Stage.COMPLETED, Stage.EXPIRED, Stage.CANCELLED, Stage.REFUNDED, Stage.RESOLVED}
)


class Role(StrEnum):
    EMPLOYER = "employer"
    LAUNCHER = "launcher"
    OPS = "ops"
    SYSTEM = "system"


class Action(StrEnum):
    """Transitions a caller can ask for; names match the API's resource paths."""

    APPLY = "applications"
    SELECT = "selection"
    KICKOFF = "kickoff"
    SUBMIT = "submissions"
    REVIEW = "review"
    EXTEND = "extension"
    CANCEL = "cancellation"
    WITHDRAW = "withdrawal"
    DISPUTE = "dispute"
    RESOLVE = "resolution"
    FEEDBACK = "feedback"
    INVITE = "invitations"  # an employer asks a launcher to apply
    DECLINE = "invitation-declined"  # the invited launcher says no (yes is applying)


class MemberRole(StrEnum):
    """What a member of an employer organisation may do (`core.rulebook`)."""

    ADMIN = "admin"
    HIRING_MANAGER = "hiring_manager"
    FINANCE = "finance"
    VIEWER = "viewer"


@dataclass
class Policy:
    applicants_reminder: timedelta
    posting_expiry: timedelta
    kickoff_reminder: timedelta
    kickoff_escalation: timedelta
    due_reminder: timedelta
    overdue_escalation: timedelta
    overdue_cancel: timedelta
    review_reminder: timedelta
    review_auto_approve: timedelta
    max_revision_rounds: int
    revision_time: timedelta
    max_extension: timedelta
    payout_reminder: timedelta
    feedback_window: timedelta
    launcher_share_percent: int
    time_scale: float = 1.0
    # A dispute waits this long for ops' decision (ops reminded every `dispute_reminder`), then
    # its default outcome applies. Defaults for internships posted before these existed.
    dispute_reminder: timedelta = timedelta(days=2)
    dispute_decision: timedelta = timedelta(days=7)
    # Open applications (not withdrawn) a posting takes at once; the next launcher is told it
    # is full. Each one is kept in the workflow's history. None in internships posted before
    # the limit: they take any number, as they did.
    max_open_applications: int | None = None

    def scaled(self, duration: timedelta) -> timedelta:
        """A policy or due-date duration as the workflow waits for it (TIME_SCALE applied)."""
        return duration / self.time_scale

    def launcher_share(self, charged_cents: int) -> int:
        """What approved work pays the launcher of what was charged (the platform keeps the
        rest as its fee)."""
        return charged_cents * self.launcher_share_percent // 100

    def dispute_split(
        self, charged_cents: int, outcome: str, launcher_percent: int
    ) -> tuple[int, int]:
        """(paid to the launcher, refunded to the employer) for a dispute's outcome. A split
        gives the launcher `launcher_percent` of their share and refunds the employer the rest
        of the fee: the platform keeps its fee only on the launcher's part."""
        part = {"pay_launcher": 100, "split": launcher_percent, "refund": 0}[outcome]
        return (
            self.launcher_share(charged_cents) * part // 100,
            charged_cents * (100 - part) // 100,
        )


@dataclass
class Actor:
    """Who asks. For an employer, `id` is the organisation (the internships' employer id) and
    the member fields say which colleague and with what rights; None in requests made before
    organisations had members, which acted with every right, as an admin does."""

    role: Role
    id: str
    member_id: str | None = None
    member_role: MemberRole | None = None
    # A hiring manager who acts only on the internships they posted.
    own_only: bool = False


SYSTEM = Actor(Role.SYSTEM, "system")


@dataclass
class Posting:
    """The workflow's input: what the employer posted, plus the policies in force."""

    internship_id: str
    employer_id: str
    company: str
    title: str
    description: str
    category: str
    skills: list[str]
    estimated_hours: int
    fee_cents: int
    currency: str
    duration_days: int
    policy: Policy
    # Random, fixed when the API posts it: every Stripe idempotency key of this internship
    # carries it, so even a second run under the same id could not be handed this run's
    # charge, refund or transfer ("" in internships posted before it: their keys stay as
    # they were).
    nonce: str = ""
    # The member who posted it (None before organisations had members: the founder).
    posted_by: str | None = None
    # Only launchers the employer invited see it and may apply.
    invitation_only: bool = False


# --- Update inputs: one dataclass per transition, each naming who asks. ---


@dataclass
class Application:
    by: Actor
    pitch: str
    # The hash of the terms the launcher accepted (`core.terms`): the workflow refuses another
    # internship's and records it on the timeline. "" in requests from before terms were
    # accepted explicitly (nothing checked, nothing recorded).
    accepted_terms: str = ""


@dataclass
class Selection:
    by: Actor
    launcher_id: str


@dataclass
class Kickoff:
    by: Actor
    # The hash of the terms the employer accepted, as `Application.accepted_terms`.
    accepted_terms: str = ""


@dataclass
class Submission:
    by: Actor
    url: str  # "" when the work is files only
    note: str
    # The deliverable's files (`core.db.Attachment` ids; the bytes stay in the file store).
    files: list[int] = field(default_factory=list)


@dataclass
class Review:
    by: Actor
    decision: str  # "approve" | "request_revision"
    feedback: str = ""


@dataclass
class Extension:
    by: Actor
    due_at: datetime


@dataclass
class Cancellation:
    by: Actor
    reason: str
    refund: bool = True


@dataclass
class Withdrawal:
    by: Actor


@dataclass
class Dispute:
    by: Actor
    reason: str


@dataclass
class Resolution:
    by: Actor
    outcome: str  # "pay_launcher" | "split" | "refund"
    launcher_percent: int = 0
    note: str = ""


@dataclass
class DisputeMessage:
    """Someone wrote in a conversation while the dispute is open: the dispute's record (the
    timeline) names the message, which stays in the database."""

    by: Actor
    message_id: int


@dataclass
class Feedback:
    by: Actor
    rating: int
    comment: str = ""


@dataclass
class Invitation:
    by: Actor
    launcher_id: str


@dataclass
class Declination:
    by: Actor


# --- What the workflow exposes and records. ---


@dataclass
class ApplicantView:
    launcher_id: str
    pitch: str
    applied_at: datetime
    withdrawn: bool = False
    passed_over: bool = False  # told another launcher was selected


@dataclass
class SubmissionView:
    round: int
    url: str
    note: str
    submitted_at: datetime
    files: list[int] = field(default_factory=list)


@dataclass
class TimelineEntry:
    seq: int
    at: datetime
    stage: Stage
    event: str
    actor_role: Role
    actor_id: str
    note: str = ""
    # The employer's member who acted (None for others, and before members existed).
    member_id: str | None = None


@dataclass
class InvitationView:
    launcher_id: str
    invited_at: datetime
    invited_by: str | None  # the member who invited
    answer: str = ""  # "", "accepted" (they applied) or "declined"


@dataclass
class Rating:
    rating: int
    comment: str
    at: datetime


@dataclass
class Money:
    """Stripe object ids the lifecycle created, so nothing is charged or paid twice."""

    payment_intent_id: str | None = None
    charged_cents: int = 0
    transfer_id: str | None = None
    paid_cents: int = 0
    refund_id: str | None = None
    refunded_cents: int = 0


@dataclass
class DisputeView:
    opened_by: Role
    reason: str
    opened_at: datetime
    outcome: str | None = None
    note: str = ""


@dataclass(frozen=True)
class UpcomingDeadline:
    """A deadline of the current stage that has not fired yet, as people read it: `happens` on
    `at` unless `unless` ("The work is approved automatically" on … "unless you request a
    revision"). The workflow lists them from the very timers it waits on, so no page or email
    computes a policy's date itself. The phrases carry no date: each reader's page or email
    writes `at` for them."""

    kind: str  # stable: posting_expires, kickoff_escalation, due, overdue_escalation, ...
    at: datetime
    happens: str
    unless: str = ""  # "" when nothing stops it (the feedback window closes regardless)
    for_roles: tuple[str, ...] | None = None  # the roles it is worded for; None: everyone
    # The stage's own deadlines are on hold while this one runs (an open dispute's decision).
    paused: bool = False


@dataclass
class InternshipState:
    """The full state of one internship, returned by the `state` query (and by the workflow
    when it ends). Updates answer with it as their caller may read it
    (`core.rulebook.as_seen_by`)."""

    posting: Posting
    stage: Stage
    posted_at: datetime
    launcher_id: str | None = None
    due_at: datetime | None = None
    original_due_at: datetime | None = None
    overdue: bool = False
    escalation_level: int = 0
    # What Stripe refused for good and why, while the money waits for ops' retry ("" if not).
    payment_refused: str = ""
    revision_rounds: int = 0
    payout_account_ready: bool = False
    applicants: list[ApplicantView] = field(default_factory=list)
    invitations: list[InvitationView] = field(default_factory=list)
    submissions: list[SubmissionView] = field(default_factory=list)
    money: Money = field(default_factory=Money)
    dispute: DisputeView | None = None
    # Keyed by the role of the author: "employer" rates the launcher and vice versa.
    ratings: dict[str, Rating] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    # Since the patch `delivered-work-kept` (set when the workflow starts): delivered work is
    # refunded only by ops, disputes end by a deadline, and a launcher with nothing delivered
    # can't stop the overdue cancellation with a dispute. False in workflows started before.
    delivered_work_kept: bool = False
    # What happens next and when, soonest first: the current round's timers not yet fired
    # (reminders left out), refreshed by the workflow each time it records an event.
    deadlines: list[UpcomingDeadline] = field(default_factory=list)

    @property
    def disputed(self) -> bool:
        """A dispute is open: the stage is frozen until ops resolve it."""
        return self.dispute is not None and self.dispute.outcome is None
