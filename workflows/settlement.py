"""Settlement: the money of one internship, moved once.

Charge the employer at kickoff, refund them, pay the launcher their share. Each movement is an
activity with a Stripe idempotency key made of the workflow id and the step, so a retry or a
replay never moves money twice. When Stripe refuses for good, the key must change for the next
try (Stripe stored that answer under it): refusals are counted per step, ops are told, and the
money waits for their `retry_payment` signal. While it waits, `InternshipState.payment_refused`
says what was refused and why (the projection carries it, so ops' queue lists it); ops' retry
clears it and is recorded on the timeline, and a new refusal sets it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from core import errors
    from core.activity_contracts import (
        CARD_DECLINED,
        CHARGE_EMPLOYER,
        PAY_LAUNCHER,
        PAYMENT_REJECTED,
        REFUND_EMPLOYER,
        ChargeRequest,
        Notice,
        PayoutRequest,
        RefundRequest,
    )
    from core.formats import format_money
    from core.internship import SYSTEM, Actor, InternshipState, Policy
    from workflows.recording import Recorder, launcher_of

MONEY_TIMEOUT = timedelta(seconds=30)
# A charge is attempted while the employer waits for the answer: a few quick tries, then the
# kickoff fails with "try again" and ops hear of it.
CHARGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=4),
    maximum_attempts=3,
    non_retryable_error_types=[CARD_DECLINED, PAYMENT_REJECTED],
)
# Refunds and payouts owed must happen however long Stripe is down.
SETTLE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[PAYMENT_REJECTED],
)

# Patch for workflows that were waiting for payout onboarding before payouts re-asked Stripe.
PAYOUT_RECHECKS_STRIPE = "payout-wait-rechecks-stripe"
# Since this patch, a kickoff retried with the card that was just declined doesn't email ops.
DECLINES_TOLD_ONCE = "declined-card-told-once"
# Since this patch, ops' retry of a refused payment is recorded ("payment_retry"), and a retry
# sent between the refusal and the start of the wait is kept rather than dropped.
PAYMENT_RETRY_RECORDED = "payment-retry-recorded"


class Settlement:
    def __init__(
        self, state: InternshipState, policy: Policy, recorder: Recorder, lock: asyncio.Lock
    ) -> None:
        self._state = state
        self._lock = lock
        self._policy = policy
        self._recorder = recorder
        self._charge_refusals = 0
        self._declined_card: str | None = None  # the card behind the last decline
        self._refusals: dict[str, int] = {}  # refund and payout steps Stripe refused, per step
        self._retry_requested = False
        self._retry_by = SYSTEM  # the ops member who asked for the retry
        self._retry_of = ""  # the refusal they retried
        # What a resolved dispute still owes the launcher.
        self.resolution_payout = 0

    # ---------------------------------------------------------------- the arithmetic

    def launcher_share(self) -> int:
        """What approved work pays the launcher: their share of what was charged."""
        return self._policy.launcher_share(self._state.money.charged_cents)

    def resolution_split(self, outcome: str, launcher_percent: int) -> tuple[int, int]:
        """(paid to the launcher, refunded to the employer) for a dispute's outcome."""
        return self._policy.dispute_split(
            self._state.money.charged_cents, outcome, launcher_percent
        )

    def outstanding(self) -> int:
        """Charged and not yet refunded or paid out."""
        m = self._state.money
        return m.charged_cents - m.refunded_cents - m.paid_cents

    def fmt(self, cents: int) -> str:
        return format_money(cents, self._state.posting.currency)

    # ---------------------------------------------------------------- moving money

    async def charge(self) -> None:
        """Charge the employer the fee; a refusal escalates and fails the kickoff clearly."""
        s = self._state
        request = ChargeRequest(
            s.posting.internship_id,
            s.posting.employer_id,
            s.posting.fee_cents,
            s.posting.currency,
            self._charge_refusals + 1,
            s.posting.nonce,
        )
        try:
            charge = await CHARGE_EMPLOYER.execute(
                request,
                start_to_close_timeout=MONEY_TIMEOUT,
                retry_policy=CHARGE_RETRY,
                summary=f"Charge employer {self.fmt(request.amount_cents)}",
            )
        except ActivityError as err:
            await self._charge_refused(err)
        s.money.payment_intent_id = charge.payment_intent_id
        s.money.charged_cents = charge.amount_cents

    async def _charge_refused(self, err: ActivityError) -> NoReturn:
        """Tell ops (once per declined card) and answer the kickoff with what went wrong."""
        cause = err.cause if isinstance(err.cause, ApplicationError) else None
        kind = cause.type if cause else None
        if kind in (CARD_DECLINED, PAYMENT_REJECTED):
            # Stripe stored that answer under this key: the next try needs a new one. After
            # a mere outage the same key is reused, so a charge that did land is not repeated.
            self._charge_refusals += 1
        if kind != CARD_DECLINED:
            await self._recorder.escalate("payment service failed at kickoff")
            raise errors.refusal(
                errors.PAYMENT_UNAVAILABLE,
                "The payment service is unavailable; try the kickoff again later.",
            ) from err
        decline = cause.details[0] if cause and cause.details else {}
        code = decline.get("decline_code")
        message = decline.get("message") or (cause.message if cause else "declined")
        card = decline.get("payment_method")
        same_card = card is not None and card == self._declined_card
        self._declined_card = card
        # Retrying a declined card tells ops nothing new (since DECLINES_TOLD_ONCE).
        if not (same_card and workflow.patched(DECLINES_TOLD_ONCE)):
            await self._recorder.escalate(
                "card declined at kickoff" + (f" ({code})" if code else "")
            )
        raise errors.refusal(
            errors.PAYMENT_DECLINED,
            f"The employer's card was declined ({message}); ops have been told. "
            "Update the payment method and kick off again.",
            {"decline_code": code, "message": message},
        ) from err

    async def refund_outstanding(self, step: str) -> int:
        """Refund whatever is still held; returns the amount."""
        owed = self.outstanding()
        if self._state.money.payment_intent_id and owed > 0:
            await self.refund(owed, step)
            return owed
        return 0

    async def refund(self, amount: int, step: str) -> None:
        """Refund the employer; if Stripe refuses for good, ops are told and the caller fails."""
        m = self._state.money
        assert m.payment_intent_id is not None
        p = self._state.posting
        request = RefundRequest(
            p.internship_id, m.payment_intent_id, amount, self._key(step), p.nonce
        )
        try:
            m.refund_id = await REFUND_EMPLOYER.execute(
                request,
                start_to_close_timeout=MONEY_TIMEOUT,
                retry_policy=SETTLE_RETRY,
                summary=f"Refund employer {self.fmt(amount)}",
            )
        except ActivityError as err:
            # A refund asked for by a request (cancel, resolve) fails that request, which can be
            # asked again; one a deadline made (expiry, overdue auto-cancel) waits for ops.
            waits = workflow.current_update_info() is None
            await self._refused(step, f"refund of {self.fmt(amount)}", err, waits)
            raise errors.refusal(
                errors.PAYMENT_UNAVAILABLE,
                "The refund could not be made; ops have been told and will follow up.",
            ) from err
        m.refunded_cents += amount

    async def pay_launcher(self, amount: int, step: str) -> None:
        """Transfer to the launcher, waiting durably (with reminders) until they can be paid.

        Each round asks Stripe again, so a lost onboarding webhook only delays the payout.
        """
        s = self._state
        assert s.launcher_id is not None and s.money.payment_intent_id is not None
        reminded = False
        while True:
            # Cleared before asking Stripe, so a webhook signal arriving meanwhile is not lost.
            s.payout_account_ready = False
            request = PayoutRequest(
                s.posting.internship_id,
                s.money.payment_intent_id,
                s.launcher_id,
                amount,
                s.posting.currency,
                self._key(step),
                s.posting.nonce,
            )
            try:
                result = await PAY_LAUNCHER.execute(
                    request,
                    start_to_close_timeout=MONEY_TIMEOUT,
                    retry_policy=SETTLE_RETRY,
                    summary=f"Transfer {self.fmt(amount)} to launcher",
                )
            except ActivityError as err:
                await self._refused(step, f"payout of {self.fmt(amount)}", err, waits=True)
                await self.wait_for_ops_retry()
                continue
            if result.transfer_id:
                s.money.transfer_id = result.transfer_id
                s.money.paid_cents += result.amount_cents
                return
            self._recorder.catch_up()  # waiting: ops must find it as approved
            link = {"onboarding_url": result.onboarding_url}
            if reminded:
                await self._recorder.remind("payout_onboarding", [launcher_of(s)], **link)
            else:
                notice = Notice("payout_waiting", [launcher_of(s)], link)
                await self._recorder.record("payout_waiting", SYSTEM, notice)
                reminded = True
            if workflow.patched(PAYOUT_RECHECKS_STRIPE):
                with contextlib.suppress(TimeoutError):
                    await self._await_payout_account()
                continue
            # Workflows that began waiting before the patch: only the webhook's signal ends it.
            while not s.payout_account_ready:
                try:
                    await self._await_payout_account()
                except TimeoutError:
                    async with self._lock:
                        await self._recorder.remind("payout_onboarding", [launcher_of(s)], **link)
            reminded = False

    async def pay_resolution(self) -> int:
        """Pay what a resolved dispute owes the launcher; returns the amount."""
        amount = self.resolution_payout
        await self.pay_launcher(amount, "resolution")
        self.resolution_payout = 0
        return amount

    async def _await_payout_account(self) -> None:
        await workflow.wait_condition(
            lambda: self._state.payout_account_ready,
            timeout=self._policy.scaled(self._policy.payout_reminder),
            timeout_summary="Remind launcher to finish payout onboarding",
        )

    # ---------------------------------------------------------------- refusals and ops' retry

    def retry_requested(self, by: Actor) -> None:
        """Ops' retry_payment signal: the refusal is fixed at Stripe, try the money again."""
        self._retry_requested = True
        self._retry_by, self._retry_of = by, self._state.payment_refused
        self._state.payment_refused = ""
        self._recorder.show_details()

    async def wait_for_ops_retry(self, moved_on: Callable[[], bool] = lambda: False) -> None:
        """Wait for ops' retry_payment signal, or for the stage to move on without it."""
        if not workflow.patched(PAYMENT_RETRY_RECORDED):
            # Before the patch a retry counted only once this wait had begun.
            self._retry_requested = False
        await workflow.wait_condition(lambda: self._retry_requested or moved_on())
        retried = self._retry_requested and not moved_on()
        self._retry_requested = False
        # Nothing waits for ops any more (retried, or the stage moved on without it).
        if self._state.payment_refused:
            self._state.payment_refused = ""
            self._recorder.show_details()
        if retried and workflow.patched(PAYMENT_RETRY_RECORDED):
            async with self._lock:
                await self._recorder.record("payment_retry", self._retry_by, note=self._retry_of)

    def _key(self, step: str) -> str:
        """The idempotency step for a money movement: a new one only after Stripe refused it."""
        refusals = self._refusals.get(step, 0)
        return step if refusals == 0 else f"{step}-{refusals + 1}"

    async def _refused(self, step: str, what: str, err: ActivityError, waits: bool) -> None:
        """Stripe refused for good: the next try needs a new key, and ops are told. If the money
        `waits` for ops' retry, the state says what was refused until they retry."""
        self._refusals[step] = self._refusals.get(step, 0) + 1
        cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause)
        refused = f"{what} refused by Stripe ({cause})"
        if waits:
            # Set before ops are told (the escalation's record carries it); a retry sent from
            # now on counts, even before the wait begins.
            self._state.payment_refused = refused
            self._retry_requested = False
        await self._recorder.escalate(f"{refused}; signal retry_payment once it is fixed")
