"""What the workflow and its activities agree on: each activity's registered name, its input
and output dataclasses, and the error types it fails with.

The workflow calls activities through these (`CHARGE_EMPLOYER.execute(request, ...)`), never by
importing `activities/`, which only the worker (and the tests) import; the activities register
under the same names (`@activity.defn(name=CHARGE_EMPLOYER.name)`). A name is part of every
recorded history: renaming one breaks the replay of workflows already running.

Everything here crosses the Temporal boundary (the pydantic data converter), so it is plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from core.internship import InternshipState, Role, TimelineEntry, workflow_id

In = TypeVar("In")
Out = TypeVar("Out")


class ActivityType(Generic[In, Out]):
    """One activity as the workflow calls it: by the name the worker registers it under, with
    its input type and the type its result is decoded into."""

    def __init__(self, name: str, input: type[In], output: type[Out]) -> None:
        self.name = name
        self.input = input
        self.output = output

    def __repr__(self) -> str:
        return f"ActivityType({self.name!r})"

    async def execute(
        self,
        arg: In,
        *,
        start_to_close_timeout: timedelta,
        retry_policy: RetryPolicy | None = None,
        summary: str | None = None,
    ) -> Out:
        """Run it as an ordinary activity (from workflow code only)."""
        result: Out = await workflow.execute_activity(
            self.name,
            arg,
            result_type=self.output,
            start_to_close_timeout=start_to_close_timeout,
            retry_policy=retry_policy,
            summary=summary,
        )
        return result

    async def execute_local(
        self,
        arg: In,
        *,
        start_to_close_timeout: timedelta,
        retry_policy: RetryPolicy | None = None,
        summary: str | None = None,
    ) -> Out:
        """Run it as a local activity, in the same workflow task (from workflow code only)."""
        result: Out = await workflow.execute_local_activity(
            self.name,
            arg,
            result_type=self.output,
            start_to_close_timeout=start_to_close_timeout,
            retry_policy=retry_policy,
            summary=summary,
        )
        return result


# ---------------------------------------------------------------- projection (a local activity)


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


# The database refused this state for good (a value it won't store): retrying can't help.
PROJECTION_REJECTED = "ProjectionRejected"

# Project the state after one event and queue its emails (the worker's outbox relay sends
# them); returns the ids of its outbox rows still to send.
RECORD_TRANSITION = ActivityType("record_transition", TransitionRecord, list[int])


# ---------------------------------------------------------------- payments (Stripe)


def stripe_key(internship_id: str, nonce: str, step: str) -> str:
    """Stripe idempotency key: the same money step of the same posting is one request. The
    nonce is random per posting, so a key can never name another run's money."""
    run = f"{workflow_id(internship_id)}/{nonce}" if nonce else workflow_id(internship_id)
    return f"{run}/{step}"


@dataclass
class ChargeRequest:
    internship_id: str
    employer_id: str
    amount_cents: int
    currency: str
    attempt: int  # part of the idempotency key: a declined card may be retried after a fix
    nonce: str = ""  # the posting's `Posting.nonce` ("" for internships posted before it)

    @property
    def idempotency_key(self) -> str:
        return stripe_key(self.internship_id, self.nonce, f"charge/{self.attempt}")


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
    nonce: str = ""

    @property
    def idempotency_key(self) -> str:
        return stripe_key(self.internship_id, self.nonce, f"transfer/{self.step}")


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
    nonce: str = ""

    @property
    def idempotency_key(self) -> str:
        return stripe_key(self.internship_id, self.nonce, f"refund/{self.step}")


# Error types the money activities fail with (non-retryable): the card was declined (details:
# code, decline_code, message, payment_method), or Stripe refused the request for good.
CARD_DECLINED = "CardDeclined"
PAYMENT_REJECTED = "PaymentRejected"

CHARGE_EMPLOYER = ActivityType("charge_employer", ChargeRequest, ChargeResult)
# Transfer the launcher's share, or say (with a fresh onboarding link) they can't be paid yet.
PAY_LAUNCHER = ActivityType("pay_launcher", PayoutRequest, PayoutResult)
# Refund the employer; returns the Stripe refund id.
REFUND_EMPLOYER = ActivityType("refund_employer", RefundRequest, str)
