"""A fake Stripe ledger with Stripe's own rules, behind the harness's money fakes.

The harness's fakes (`harness.charge`, `harness.refund`, `harness.payout`) answer with whatever
their `default` says; `Ledger.install` makes this ledger that default, so every charge, refund
and transfer the workflow asks for lands here and is checked the way Stripe checks it:

- an idempotency key names one request: the same key with the same parameters answers the
  object (or the refusal) Stripe stored under it, and moves no money again; the same key with
  other parameters is Stripe's IdempotencyError, a permanent refusal;
- a PaymentIntent can't give back more than it holds: a refund, or a transfer sourced from it,
  larger than what remains of it (charged - refunded - transferred) is refused for good;
- what each internship was charged, refunded and transferred, which workflow run used each key,
  and the `step` of every refund and transfer are kept for the tests to read.

A test may also script a one-off refusal of the next refund or payout (`refuse_next`), stored
under that request's key as Stripe stores a refusal, so ops' `retry_payment` gets exercised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.payments import (
    ChargeRequest,
    ChargeResult,
    Payments,
    PayoutRequest,
    PayoutResult,
    RefundRequest,
)
from tests.unit.harness import Fake, Harness, refused

T = TypeVar("T")


@dataclass
class PaymentIntent:
    id: str
    internship_id: str
    amount: int
    run_id: str
    refunded: int = 0
    transferred: int = 0

    @property
    def remaining(self) -> int:
        return self.amount - self.refunded - self.transferred


@dataclass(frozen=True)
class Refund:
    id: str
    internship_id: str
    payment_intent_id: str
    amount: int
    step: str  # the workflow's step, as the request names it ("cancellation", "resolution-2")
    run_id: str


@dataclass(frozen=True)
class Transfer:
    id: str
    internship_id: str
    payment_intent_id: str
    destination: str
    amount: int
    step: str  # "payout" or "resolution" (with "-<n>" after a refusal)
    run_id: str


@dataclass
class Account:
    """Everything Stripe knows of one internship."""

    charged: int = 0
    refunded: int = 0
    transferred: int = 0
    intents: list[str] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    # Every idempotency key used for this internship, with the workflow runs that sent it.
    keys: dict[str, set[str]] = field(default_factory=dict)
    # Requests Stripe refused because they named money that isn't there (more than what remains
    # of the charge, a charge that doesn't exist or belongs to another internship, nothing at
    # all), and keys reused with other parameters: each one a bug in whoever asked.
    overdrawn: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    # Refusals this test scripted and Stripe answered (the workflow's wait for ops is expected).
    scripted_refusals: list[str] = field(default_factory=list)


@dataclass
class _Stored:
    """What Stripe keeps under an idempotency key: the request and its answer."""

    params: tuple[object, ...]
    result: object = None
    error: tuple[str, str] | None = None  # (message, code) of a refusal


def _stripe_error(message: str, code: str) -> ApplicationError:
    """What the real activity raises when Stripe refuses for good (`Payments._permanent`)."""
    return refused(Payments.PERMANENT, f"Stripe rejected the request: {message}", code)


def _run_id() -> str:
    """The workflow run asking: the fakes are called inside the activity."""
    return activity.info().workflow_run_id or "?"


class Ledger:
    """Stripe as the money activities see it. Install it on a harness with `install`."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.intents: dict[str, PaymentIntent] = {}
        self._stored: dict[str, _Stored] = {}  # Stripe's idempotency keys are account-wide
        self._refuse_next: set[str] = set()
        self._ids = 0

    def install(self, harness: Harness) -> None:
        """Make this ledger the money fakes' default (any answers already scripted are
        dropped). The harness's activities read the fakes at call time."""
        harness.charge = Fake(lambda req, _n: self.charge(req))
        harness.refund = Fake(lambda req, _n: self.refund(req))
        harness.payout = Fake(lambda req, _n: self.payout(req))

    def account(self, internship_id: str) -> Account:
        return self.accounts.setdefault(internship_id, Account())

    def refuse_next(self, kind: Literal["refund", "payout"]) -> None:
        """Stripe refuses the next new refund (or transfer) for good, once."""
        self._refuse_next.add(kind)

    # ---------------------------------------------------------------- the three calls

    def charge(self, req: ChargeRequest) -> ChargeResult:
        acct = self.account(req.internship_id)
        params = ("charge", req.internship_id, req.amount_cents, req.currency)

        def create() -> ChargeResult:
            if req.amount_cents <= 0:
                acct.overdrawn.append(f"charge of {req.amount_cents}")
                raise _stripe_error("amount must be at least 1", "amount_too_small")
            run = _run_id()
            intent = PaymentIntent(self._new_id("pi"), req.internship_id, req.amount_cents, run)
            self.intents[intent.id] = intent
            acct.intents.append(intent.id)
            acct.charged += req.amount_cents
            return ChargeResult(intent.id, req.amount_cents)

        return self._once(acct, req.idempotency_key, params, create)

    def refund(self, req: RefundRequest) -> str:
        acct = self.account(req.internship_id)
        params = ("refund", req.internship_id, req.payment_intent_id, req.amount_cents)

        def create() -> str:
            self._scripted(acct, "refund", req.idempotency_key)
            intent = self._source(acct, req.internship_id, req.payment_intent_id)
            self._within(acct, intent, req.amount_cents, f"refund ({req.step})")
            refund = Refund(
                self._new_id("re"),
                req.internship_id,
                intent.id,
                req.amount_cents,
                req.step,
                _run_id(),
            )
            intent.refunded += req.amount_cents
            acct.refunded += req.amount_cents
            acct.refunds.append(refund)
            return refund.id

        return self._once(acct, req.idempotency_key, params, create)

    def payout(self, req: PayoutRequest) -> PayoutResult:
        acct = self.account(req.internship_id)
        params = (
            "transfer",
            req.internship_id,
            req.payment_intent_id,
            req.launcher_id,
            req.amount_cents,
            req.currency,
        )

        def create() -> PayoutResult:
            self._scripted(acct, "payout", req.idempotency_key)
            intent = self._source(acct, req.internship_id, req.payment_intent_id)
            self._within(acct, intent, req.amount_cents, f"transfer ({req.step})")
            transfer = Transfer(
                self._new_id("tr"),
                req.internship_id,
                intent.id,
                req.launcher_id,
                req.amount_cents,
                req.step,
                _run_id(),
            )
            intent.transferred += req.amount_cents
            acct.transferred += req.amount_cents
            acct.transfers.append(transfer)
            return PayoutResult(transfer.id, req.amount_cents)

        return self._once(acct, req.idempotency_key, params, create)

    # ---------------------------------------------------------------- Stripe's rules

    def _once(
        self, acct: Account, key: str, params: tuple[object, ...], create: Callable[[], T]
    ) -> T:
        """Stripe's idempotency: the first answer under a key is the answer for good."""
        acct.keys.setdefault(key, set()).add(_run_id())
        stored = self._stored.get(key)
        if stored is not None:
            if stored.params != params:
                acct.conflicts.append(f"{key}: {stored.params} then {params}")
                raise _stripe_error(
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    "idempotency_key_in_use",
                )
            if stored.error is not None:
                raise refused(Payments.PERMANENT, *stored.error)
            return stored.result  # type: ignore[return-value]
        try:
            result = create()
        except ApplicationError as err:
            code = err.details[0]["code"] if err.details else ""
            self._stored[key] = _Stored(params, error=(err.message, code))
            raise
        self._stored[key] = _Stored(params, result=result)
        return result

    def _scripted(self, acct: Account, kind: str, key: str) -> None:
        if kind in self._refuse_next:
            self._refuse_next.discard(kind)
            acct.scripted_refusals.append(f"{kind} {key}")
            raise _stripe_error("charge already refunded", "charge_already_refunded")

    def _source(self, acct: Account, internship_id: str, intent_id: str) -> PaymentIntent:
        intent = self.intents.get(intent_id)
        if intent is None:
            acct.overdrawn.append(f"no such payment_intent {intent_id}")
            raise _stripe_error(f"No such payment_intent: '{intent_id}'", "resource_missing")
        if intent.internship_id != internship_id:
            # Stripe would allow it (one platform account), but it spends someone else's money.
            acct.overdrawn.append(f"{intent_id} belongs to {intent.internship_id}")
            raise _stripe_error(f"{intent_id} is another internship's charge", "foreign_charge")
        return intent

    def _within(self, acct: Account, intent: PaymentIntent, amount: int, what: str) -> None:
        if amount <= 0:
            acct.overdrawn.append(f"{what} of {amount} from {intent.id}")
            raise _stripe_error("amount must be a positive integer", "amount_too_small")
        if amount > intent.remaining:
            acct.overdrawn.append(
                f"{what} of {amount} from {intent.id} with {intent.remaining} remaining "
                f"(charged {intent.amount}, refunded {intent.refunded}, "
                f"transferred {intent.transferred})"
            )
            raise _stripe_error(
                f"The amount ({amount}) exceeds what remains of {intent.id} ({intent.remaining})",
                "amount_too_large",
            )

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self._ids}"
