"""Stripe webhooks: signature-verified, each event handled once.

`account.updated` tells us a launcher finished payout onboarding: their record is updated (with
the fingerprints of the bank accounts and debit cards it pays out to, which tell who is who) and
every internship waiting to pay them is signalled. `checkout.session.completed` (setup mode) tells
us an employer saved a card through Stripe Checkout: it becomes their default card at Stripe and
the card on their record. The database work runs on a worker thread in short sessions, closed
before Temporal is signalled or Stripe is called, so the event loop and the connection pool never
wait on either.
"""

from __future__ import annotations

from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Header, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from api.deps import SessionsDep, SettingsDep, StripeDep, WorkflowsDep
from api.errors import ApiError
from api.service.internships import payout_account_ready
from core.accounts import record_card, record_payout_account
from core.db import Employer, StripeEvent
from core.stripe_api import card_from_checkout, payout_fingerprints, payouts_ready, saved_card

router = APIRouter(prefix="/v1/stripe", tags=["stripe"])


@router.post("/webhook", summary="Stripe events (signed)")
async def webhook(
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    workflows: WorkflowsDep,
    payments: StripeDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(
            payload, stripe_signature or "", settings.stripe_webhook_secret
        )
    except (ValueError, stripe.SignatureVerificationError) as err:
        raise ApiError(400, "bad_signature", f"webhook rejected: {err}") from err
    fields = event.to_dict()
    data = fields.get("data")
    if not (
        isinstance(fields.get("id"), str)
        and isinstance(fields.get("type"), str)
        and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
    ):
        raise ApiError(
            400, "bad_event", "webhook rejected: an event needs id, type and data.object"
        )
    if await run_in_threadpool(_seen, sessions, event.id):
        return {"status": "duplicate"}
    # Handled before it is marked done: if this fails, Stripe's redelivery tries again.
    if event.type == "account.updated":
        ready = await run_in_threadpool(
            _account_updated, sessions, payments, event.data.object, data["object"]
        )
        if ready:
            await payout_account_ready(workflows, sessions, ready)
    elif event.type == "checkout.session.completed":
        await run_in_threadpool(_card_saved, sessions, payments, data["object"])
    await run_in_threadpool(_mark_handled, sessions, event)
    return {"status": "ok"}


def _seen(sessions: sessionmaker, event_id: str) -> bool:
    with sessions() as db:
        return db.get(StripeEvent, event_id) is not None


def _account_updated(
    sessions: sessionmaker,
    client: stripe.StripeClient,
    account: stripe.Account,
    fields: dict[str, Any],
) -> str | None:
    """Record the launcher's payout status and where the account pays out to (`fields`: the
    account as sent, to tell who is who); the launcher's id if they can be paid now."""
    ready = payouts_ready(account)
    # Read from Stripe (only if the event holds a first page of them) with no session open.
    fingerprints = payout_fingerprints(client, fields)
    launcher_id = record_payout_account(sessions, account.id, ready, fingerprints)
    return launcher_id if ready else None


def _card_saved(
    sessions: sessionmaker, client: stripe.StripeClient, checkout: dict[str, Any]
) -> None:
    """A card saved through Checkout in setup mode becomes the employer's card (at Stripe, then
    on their record); Stripe is called with no database session open."""
    session_id, customer_id = checkout.get("id"), checkout.get("customer")
    if not (
        checkout.get("mode") == "setup"
        and isinstance(session_id, str)
        and isinstance(customer_id, str)
    ):
        return
    with sessions() as db:
        employer_id = db.scalar(
            select(Employer.id).where(Employer.stripe_customer_id == customer_id)
        )
    if employer_id is None:
        return
    _, card_id = card_from_checkout(client, session_id)
    card = saved_card(client, card_id)
    with sessions.begin() as db:
        record_card(db, employer_id, card)


def _mark_handled(sessions: sessionmaker, event: stripe.Event) -> None:
    with sessions() as db:
        db.add(StripeEvent(id=event.id, type=event.type))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()  # a concurrent delivery of the same event got there first
