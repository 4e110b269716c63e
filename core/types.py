"""Dataclasses shared by the workflow, its activities and the API.

Everything here crosses the Temporal boundary (serialized by the pydantic data converter), so it
holds plain data only: no clients, no behaviour that touches I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    POSTED = "posted"
    MATCHED = "matched"
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    PAID = "paid"
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


# Which actions each stage admits (who may take them is checked separately). A dispute freezes
# the stage: only its resolution, or an ops cancellation, moves on.
STAGE_ACTIONS: dict[Stage, frozenset[Action]] = {
    Stage.POSTED: frozenset({Action.APPLY, Action.SELECT, Action.CANCEL, Action.WITHDRAW}),
    Stage.MATCHED: frozenset({Action.KICKOFF, Action.CANCEL, Action.WITHDRAW}),
    Stage.IN_PROGRESS: frozenset(
        {Action.SUBMIT, Action.EXTEND, Action.CANCEL, Action.WITHDRAW, Action.DISPUTE}
    ),
    Stage.IN_REVIEW: frozenset({Action.REVIEW, Action.CANCEL, Action.DISPUTE}),
    # Approved work is owed its payout: nothing may stop it, however long onboarding takes.
    Stage.APPROVED: frozenset(),
    Stage.PAID: frozenset({Action.FEEDBACK}),
}
DISPUTED_ACTIONS = frozenset({Action.RESOLVE, Action.CANCEL})

# Who may ask for each action at all (ownership is checked against the internship).
ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.APPLY: frozenset({Role.LAUNCHER}),
    Action.SELECT: frozenset({Role.EMPLOYER}),
    Action.KICKOFF: frozenset({Role.EMPLOYER}),
    Action.SUBMIT: frozenset({Role.LAUNCHER}),
    Action.REVIEW: frozenset({Role.EMPLOYER}),
    Action.EXTEND: frozenset({Role.EMPLOYER, Role.OPS}),
    Action.CANCEL: frozenset({Role.EMPLOYER, Role.OPS}),
    Action.WITHDRAW: frozenset({Role.LAUNCHER}),
    Action.DISPUTE: frozenset({Role.EMPLOYER, Role.LAUNCHER}),
    Action.RESOLVE: frozenset({Role.OPS}),
    Action.FEEDBACK: frozenset({Role.EMPLOYER, Role.LAUNCHER}),
}


def allowed_actions(stage: Stage, disputed: bool, role: Role | None = None) -> list[Action]:
    """What the stage admits now; with `role`, only what that role may ask for (an open
    dispute is for ops alone to settle)."""
    if stage in TERMINAL_STAGES or (disputed and role not in (None, Role.OPS)):
        return []
    actions = DISPUTED_ACTIONS if disputed else STAGE_ACTIONS[stage]
    permitted = [a for a in actions if role is None or role in ACTION_ROLES[a]]
    return sorted(permitted, key=list(Action).index)


CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def format_money(cents: int, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency.lower())
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


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

    def scaled(self, duration: timedelta) -> timedelta:
        """A policy or due-date duration as the workflow waits for it (TIME_SCALE applied)."""
        return duration / self.time_scale


@dataclass
class Actor:
    role: Role
    id: str


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


# --- Update inputs: one dataclass per transition, each naming who asks. ---


@dataclass
class Application:
    by: Actor
    pitch: str


@dataclass
class Selection:
    by: Actor
    launcher_id: str


@dataclass
class Kickoff:
    by: Actor


@dataclass
class Submission:
    by: Actor
    url: str
    note: str


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
class Feedback:
    by: Actor
    rating: int
    comment: str = ""


# --- What the workflow exposes and records. ---


@dataclass
class ApplicantView:
    launcher_id: str
    pitch: str
    applied_at: datetime
    withdrawn: bool = False


@dataclass
class SubmissionView:
    round: int
    url: str
    note: str
    submitted_at: datetime


@dataclass
class TimelineEntry:
    seq: int
    at: datetime
    stage: Stage
    event: str
    actor_role: Role
    actor_id: str
    note: str = ""


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


@dataclass
class InternshipState:
    """The full state of one internship, returned by the `state` query and every update."""

    posting: Posting
    stage: Stage
    posted_at: datetime
    launcher_id: str | None = None
    due_at: datetime | None = None
    original_due_at: datetime | None = None
    overdue: bool = False
    escalation_level: int = 0
    revision_rounds: int = 0
    payout_account_ready: bool = False
    applicants: list[ApplicantView] = field(default_factory=list)
    submissions: list[SubmissionView] = field(default_factory=list)
    money: Money = field(default_factory=Money)
    dispute: DisputeView | None = None
    # Keyed by the role of the author: "employer" rates the launcher and vice versa.
    ratings: dict[str, Rating] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)


def can_see(state: InternshipState, actor: Actor) -> bool:
    """Ops see everything, employers their own, launchers open postings and their own."""
    if actor.role == Role.OPS:
        return True
    if actor.role == Role.EMPLOYER:
        return actor.id == state.posting.employer_id
    return actor.role == Role.LAUNCHER and (
        state.stage == Stage.POSTED
        or actor.id == state.launcher_id
        or any(a.launcher_id == actor.id for a in state.applicants)
    )


@dataclass
class Recipient:
    role: Role
    id: str


@dataclass
class Notice:
    """One email event: the template `kind`, who gets it, and template details (no PII)."""

    kind: str
    to: list[Recipient]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class TransitionRecord:
    """What the projection activity writes: the state after one event, and its notices."""

    state: InternshipState
    entry: TimelineEntry
    notices: list[Notice] = field(default_factory=list)


@dataclass
class ChargeRequest:
    internship_id: str
    employer_id: str
    amount_cents: int
    currency: str
    attempt: int  # part of the idempotency key: a declined card may be retried after a fix


@dataclass
class ChargeResult:
    payment_intent_id: str
    amount_cents: int


@dataclass
class PayoutRequest:
    internship_id: str
    payment_intent_id: str
    launcher_id: str
    amount_cents: int
    currency: str
    step: str  # part of the idempotency key: "payout", "resolution"


@dataclass
class PayoutResult:
    transfer_id: str | None  # None: the launcher's payout account is not ready yet
    amount_cents: int = 0
    onboarding_url: str | None = None


@dataclass
class RefundRequest:
    internship_id: str
    payment_intent_id: str
    amount_cents: int
    step: str
