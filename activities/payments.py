"""Money activities: charge the employer, pay the launcher, refund the employer (Stripe).

Separate charges and transfers, tied together by `transfer_group=internship-<id>`. Every call
carries an idempotency key made of the workflow id, the posting's nonce and the step, so a
retried activity or a replayed workflow never moves money twice, and no other run could ever be
handed this one's charge, refund or transfer. Declines and other permanent errors are
non-retryable and surface to the workflow, which escalates to ops. Names, requests, results and
error types are the workflow's contract, in `core.activity_contracts`.
"""

from __future__ import annotations

from typing import TypeVar

import stripe
from sqlalchemy.orm import sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.activity_contracts import (
    CARD_DECLINED,
    CHARGE_EMPLOYER,
    PAY_LAUNCHER,
    PAYMENT_REJECTED,
    REFUND_EMPLOYER,
    ChargeRequest,
    ChargeResult,
    PayoutRequest,
    PayoutResult,
    RefundRequest,
)
from core.activity_contracts import stripe_key as stripe_key  # still importable from here
from core.db import Employer, Launcher
from core.internship import workflow_id
from core.stripe_api import onboarding_link, payouts_ready

# Errors a retry cannot fix; network errors, 5xx and rate limits are left to Temporal's retry.
PERMANENT_ERRORS = (
    stripe.InvalidRequestError,
    stripe.AuthenticationError,
    stripe.PermissionError,
    stripe.IdempotencyError,
)


P = TypeVar("P", Employer, Launcher)


class Payments:
    CARD_DECLINED = CARD_DECLINED
    PERMANENT = PAYMENT_REJECTED

    def __init__(
        self, client: stripe.StripeClient, sessions: sessionmaker, public_base_url: str
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.public_base_url = public_base_url

    @activity.defn(name=CHARGE_EMPLOYER.name)
    def charge_employer(self, req: ChargeRequest) -> ChargeResult:
        employer = self._party(Employer, req.employer_id)
        card = employer.chargeable_card
        if card is None:  # none added yet, or added before the owner proved their inbox
            message = "No confirmed card on file: add or confirm a card, then kick off again"
            raise ApplicationError(
                message,
                {"code": "no_card", "decline_code": "no_card", "message": message},
                type=self.CARD_DECLINED,
                non_retryable=True,
            )
        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": req.amount_cents,
                    "currency": req.currency,
                    "customer": employer.stripe_customer_id,
                    "payment_method": card,
                    "confirm": True,
                    "off_session": True,
                    # Off-session card charge: no redirect-based methods, so no return_url.
                    "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                    "transfer_group": workflow_id(req.internship_id),
                    "description": f"Micro-internship {req.internship_id}",
                    "metadata": {"internship_id": req.internship_id},
                },
                options={"idempotency_key": req.idempotency_key},
            )
        except stripe.CardError as err:
            decline = {
                "code": err.code,
                "decline_code": getattr(err.error, "decline_code", None) or err.code,
                "message": err.user_message or str(err),
                # Which card: a retry with the same one is the same decline, not a new one.
                "payment_method": card,
            }
            raise ApplicationError(
                f"card declined: {decline['message']}",
                decline,
                type=self.CARD_DECLINED,
                non_retryable=True,
            ) from err
        except PERMANENT_ERRORS as err:
            raise self._permanent(err) from err
        if intent.status != "succeeded":
            message = f"The payment was not completed (status {intent.status})"
            raise ApplicationError(
                message,
                {
                    "code": "payment_incomplete",
                    "decline_code": None,
                    "message": message,
                    "payment_method": card,
                },
                type=self.CARD_DECLINED,
                non_retryable=True,
            )
        return ChargeResult(intent.id, intent.amount_received or intent.amount)

    @activity.defn(name=PAY_LAUNCHER.name)
    def pay_launcher(self, req: PayoutRequest) -> PayoutResult:
        """Transfer the launcher's share, or say (with a fresh link) they can't be paid yet."""
        launcher = self._party(Launcher, req.launcher_id)
        try:
            account = self.client.v1.accounts.retrieve(launcher.stripe_account_id)
            # A payout account set up before its owner proved their inbox waits for their word.
            if not (launcher.payout_confirmed and payouts_ready(account)):
                url = onboarding_link(self.client, account.id, self.public_base_url)
                return PayoutResult(transfer_id=None, onboarding_url=url)
            intent = self.client.v1.payment_intents.retrieve(req.payment_intent_id)
            charge = intent.latest_charge
            charge_id = charge if isinstance(charge, str) else charge.id if charge else None
            if charge_id is None:
                raise ApplicationError(
                    f"payment {intent.id} has no charge to pay out from",
                    type=self.PERMANENT,
                    non_retryable=True,
                )
            transfer = self.client.v1.transfers.create(
                params={
                    "amount": req.amount_cents,
                    "currency": req.currency,
                    "destination": account.id,
                    "transfer_group": workflow_id(req.internship_id),
                    "source_transaction": charge_id,
                    "metadata": {"internship_id": req.internship_id, "step": req.step},
                },
                options={"idempotency_key": req.idempotency_key},
            )
        except PERMANENT_ERRORS as err:
            raise self._permanent(err) from err
        return PayoutResult(transfer_id=transfer.id, amount_cents=transfer.amount)

    @activity.defn(name=REFUND_EMPLOYER.name)
    def refund_employer(self, req: RefundRequest) -> str:
        try:
            refund = self.client.v1.refunds.create(
                params={
                    "payment_intent": req.payment_intent_id,
                    "amount": req.amount_cents,
                    "metadata": {"internship_id": req.internship_id, "step": req.step},
                },
                options={"idempotency_key": req.idempotency_key},
            )
        except PERMANENT_ERRORS as err:
            raise self._permanent(err) from err
        return refund.id

    def _party(self, model: type[P], party_id: str) -> P:
        with self.sessions() as db:
            party = db.get(model, party_id)
        if party is None:
            raise ApplicationError(
                f"{model.__tablename__} {party_id} not found",
                type=self.PERMANENT,
                non_retryable=True,
            )
        return party

    def _permanent(self, err: stripe.StripeError) -> ApplicationError:
        return ApplicationError(
            f"Stripe rejected the request: {err.user_message or err}",
            {"code": err.code},
            type=self.PERMANENT,
            non_retryable=True,
        )
