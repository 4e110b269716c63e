"""The unit layer's harness: the workflow with its activities replaced by name.

Each test gets its own worker on a fresh task queue, running the real `InternshipWorkflow` with
fakes registered under the activities' names (`record_transition` as the workflow's local
activity, `charge_employer`, `pay_launcher` and `refund_employer` as regular ones). The fakes
keep what they received, so a test reads the timeline as it was projected, the emails as they
were queued and the money as it was asked for, and they answer what the test scripted (a
declined card, a payout account not ready, a refund Stripe refuses) or else succeed.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Generic, TypeVar
from uuid import uuid4

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.payments import (
    ChargeRequest,
    ChargeResult,
    Payments,
    PayoutRequest,
    PayoutResult,
    RefundRequest,
)
from activities.projection import Notice, Projection, Recipient, TransitionRecord
from api.service.workflows import start_internship
from core.internship import (
    Actor,
    Application,
    InternshipState,
    Kickoff,
    Posting,
    Role,
    Selection,
    Stage,
    Submission,
)
from core.settings import Settings
from tests.conftest import eventually
from workflows.internship import InternshipWorkflow

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

# The policies as core/settings.py defines them, whatever this shell's environment says:
# reminders and deadlines below are counted in these days.
POLICY = Settings.model_construct().policy()

EMPLOYER = Actor(Role.EMPLOYER, "emp-ada")
LAUNCHER = Actor(Role.LAUNCHER, "lnc-lin")
OPS = Actor(Role.OPS, "ops-olu")
OPS_TEAM = Recipient(Role.OPS, "ops")  # how the workflow addresses ops' shared inbox
FEE = 40_000
SHARE = FEE * 90 // 100  # the launcher's 90 %

Handle = WorkflowHandle[InternshipWorkflow, InternshipState]


def posting(**overrides: Any) -> Posting:
    """What EMPLOYER posts: $400 for a week's work, under the default policies."""
    base = Posting(
        internship_id=f"int-{uuid4().hex[:12]}",
        employer_id=EMPLOYER.id,
        company="Acme",
        title="Blog article on onboarding",
        description="1,200 words, two sources",
        category="marketing",
        skills=["writing"],
        estimated_hours=10,
        fee_cents=FEE,
        currency="usd",
        duration_days=7,
        policy=POLICY,
    )
    return replace(base, **overrides)


# ------------------------------------------------------------------ what Stripe may answer


def refused(kind: str, message: str, code: str) -> ApplicationError:
    """A refusal a money activity raises: Stripe's answer, final for this idempotency key."""
    return ApplicationError(message, {"code": code}, type=kind, non_retryable=True)


def card_declined(card: str = "pm_card_visa") -> ApplicationError:
    """What `charge_employer` raises when Stripe declines the employer's `card`."""
    decline = {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "payment_method": card,
    }
    message = f"card declined: {decline['message']}"
    return ApplicationError(message, decline, type=Payments.CARD_DECLINED, non_retryable=True)


def stripe_rejected() -> ApplicationError:
    """What a money activity raises when Stripe refuses the request for good."""
    message = "Stripe rejected the request: charge already refunded"
    return refused(Payments.PERMANENT, message, "charge_already_refunded")


ONBOARDING_URL = "https://connect.stripe.test/setup/acct_lin"


def not_onboarded() -> PayoutResult:
    """What `pay_launcher` answers while the launcher's payout account is not ready."""
    return PayoutResult(transfer_id=None, onboarding_url=ONBOARDING_URL)


# ------------------------------------------------------------------ the fakes

Req = TypeVar("Req")
Res = TypeVar("Res")


class Fake(Generic[Req, Res]):
    """One money activity: every request it received, and the answers a test scripted for the
    next calls (a result, or an exception to raise); once they run out, `default` answers."""

    def __init__(self, default: Callable[[Req, int], Res]) -> None:
        self.calls: list[Req] = []
        self._default = default
        self._script: deque[Res | Exception] = deque()

    def then(self, *answers: Res | Exception) -> None:
        self._script.extend(answers)

    def __call__(self, req: Req) -> Res:
        self.calls.append(req)
        if not self._script:
            return self._default(req, len(self.calls))
        answer = self._script.popleft()
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass(frozen=True)
class Email:
    """One email the projection queued: for which event, of which kind, to whom."""

    outbox_id: int
    event: str
    kind: str
    to: Recipient
    details: dict[str, Any]


class Harness:
    """The fakes of one test, what they received, and the workflow calls tests make."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self.env = env
        self.client = env.client
        self.task_queue = f"unit-{uuid4()}"
        self.records: list[TransitionRecord] = []  # each projected event, in order
        self.outbox: list[Email] = []  # each email queued, in order
        self.charge: Fake[ChargeRequest, ChargeResult] = Fake(
            lambda req, n: ChargeResult(f"pi_{n}", req.amount_cents)
        )
        self.payout: Fake[PayoutRequest, PayoutResult] = Fake(
            lambda req, n: PayoutResult(f"tr_{n}", req.amount_cents)
        )
        self.refund: Fake[RefundRequest, str] = Fake(lambda req, n: f"re_{n}")
        self._outbox_of_event: dict[tuple[str, int], list[int]] = {}
        # Events the database will refuse for good, once each (a value it won't store).
        self.unrecordable: set[str] = set()
        self.handles: list[Handle] = []

    # ---------------------------------------------------------------- the activities

    def activities(self) -> Sequence[Callable[..., Any]]:
        @activity.defn(name="record_transition")
        async def record_transition(rec: TransitionRecord) -> list[int]:
            return self._record(rec)

        @activity.defn(name="charge_employer")
        async def charge_employer(req: ChargeRequest) -> ChargeResult:
            return self.charge(req)

        @activity.defn(name="pay_launcher")
        async def pay_launcher(req: PayoutRequest) -> PayoutResult:
            return self.payout(req)

        @activity.defn(name="refund_employer")
        async def refund_employer(req: RefundRequest) -> str:
            return self.refund(req)

        return [record_transition, charge_employer, pay_launcher, refund_employer]

    def _record(self, rec: TransitionRecord) -> list[int]:
        """Like the projection: one event per internship and timeline seq (a retry or a replay
        records nothing new and returns the same emails)."""
        if rec.entry.event in self.unrecordable:
            self.unrecordable.discard(rec.entry.event)
            raise ApplicationError(
                f"the database refused to record '{rec.entry.event}'",
                type=Projection.REJECTED,
                non_retryable=True,
            )
        key = (rec.state.posting.internship_id, rec.entry.seq)
        if key not in self._outbox_of_event:
            self.records.append(rec)
            ids = []
            for notice in rec.notices:
                for to in notice.to:
                    email = Email(
                        len(self.outbox) + 1, rec.entry.event, notice.kind, to, notice.details
                    )
                    self.outbox.append(email)
                    ids.append(email.outbox_id)
            self._outbox_of_event[key] = ids
        return self._outbox_of_event[key]

    # ---------------------------------------------------------------- what they received

    @property
    def events(self) -> list[str]:
        return [r.entry.event for r in self.records]

    def sent(self) -> list[tuple[str, Role, str]]:
        """(kind, recipient role, recipient id) of every email queued, in order."""
        return [(e.kind, e.to.role, e.to.id) for e in self.outbox]

    def notices(self, event: str) -> list[Notice]:
        """The notices the projection received with each `event`."""
        return [n for r in self.records if r.entry.event == event for n in r.notices]

    async def recorded(self, event: str, count: int = 1) -> list[TransitionRecord]:
        """Wait for work the workflow does on its own (an activity's answer), never a timer."""

        async def probe() -> list[TransitionRecord]:
            found = [r for r in self.records if r.entry.event == event]
            return found if len(found) >= count else []

        return await eventually(probe, within=10)

    # ---------------------------------------------------------------- driving the workflow

    async def start(self, **overrides: Any) -> Handle:
        """Start an internship the way the API does, on this test's task queue, and wait for
        its first workflow task: an update sent sooner would be recorded before "posted"
        (see test_an_application_with_the_first_task_is_recorded_after_posted)."""
        p = posting(**overrides)
        handle = await start_internship(self.client, p, self.task_queue)
        self.handles.append(handle)

        async def posted() -> bool:
            return any(
                r.entry.event == "posted" and r.state.posting.internship_id == p.internship_id
                for r in self.records
            )

        await eventually(posted, within=10)
        return handle

    async def matched(self, **overrides: Any) -> Handle:
        h = await self.start(**overrides)
        await h.execute_update(InternshipWorkflow.apply, Application(LAUNCHER, "I write well"))
        await h.execute_update(InternshipWorkflow.select, Selection(EMPLOYER, LAUNCHER.id))
        return h

    async def in_progress(self, **overrides: Any) -> Handle:
        h = await self.matched(**overrides)
        await h.execute_update(InternshipWorkflow.kickoff, Kickoff(EMPLOYER))
        return h

    async def in_review(self, **overrides: Any) -> Handle:
        h = await self.in_progress(**overrides)
        await h.execute_update(
            InternshipWorkflow.submit, Submission(LAUNCHER, "https://docs.test/article", "Draft 1")
        )
        return h

    async def skip(self, duration: timedelta) -> None:
        """Let `duration` pass on the test server's clock: timers fire, nobody sleeps."""
        await self.env.sleep(duration)

    async def close(self) -> None:
        """Replay every workflow the test started (it must be deterministic), then stop those
        still running, so their timers don't fire while later tests skip time."""
        replayer = Replayer(
            workflows=[InternshipWorkflow], data_converter=self.client.data_converter
        )
        for handle in self.handles:
            await replayer.replay_workflow(await handle.fetch_history())
            with contextlib.suppress(RPCError):  # already finished
                await handle.terminate("unit test finished")


async def state(h: Handle) -> InternshipState:
    return await h.query(InternshipWorkflow.state)


async def reaches(h: Handle, stage: Stage) -> InternshipState:
    """Wait for a stage the workflow reaches on its own (after a payout), never for a timer."""

    async def probe() -> InternshipState | None:
        s = await state(h)
        return s if s.stage == stage else None

    return await eventually(probe, within=10)


async def rejected(call: Awaitable[object]) -> ApplicationError:
    """The update was refused; returns the refusal (its type is the API's status)."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause
