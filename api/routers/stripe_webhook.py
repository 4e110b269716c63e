"""Stripe webhooks: signature-verified, each event handled once.

`account.updated` tells us a launcher finished payout onboarding; internships waiting to pay
them are signalled so the payout goes out without waiting for the next reminder.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import stripe
from fastapi import APIRouter, Header, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from temporalio.service import RPCError

from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.lifecycle import handle
from core.db import Internship, Launcher, StripeEvent
from core.internship import Stage
from core.stripe_api import payouts_ready
from workflows.internship import InternshipWorkflow

router = APIRouter(prefix="/v1/stripe", tags=["stripe"])
# Stages that may be waiting for the launcher's payout account (a dispute resolved before
# the `settling` stage existed waited as `resolved`).
WAITING_FOR_PAYOUT = (Stage.APPROVED.value, Stage.SETTLING.value, Stage.RESOLVED.value)


@router.post("/webhook", summary="Stripe events (signed)")
async def webhook(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    client: TemporalDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(
            payload, stripe_signature or "", settings.stripe_webhook_secret
        )
    except (ValueError, stripe.SignatureVerificationError) as err:
        raise ApiError(400, "bad_signature", f"webhook rejected: {err}") from err
    if db.get(StripeEvent, event.id):
        return {"status": "duplicate"}
    # Handled before it is marked done: if this fails, Stripe's redelivery tries again.
    if event.type == "account.updated":
        await _account_updated(event.data.object, db, client)
    db.add(StripeEvent(id=event.id, type=event.type))
    try:
        db.commit()
    except IntegrityError:
        db.rollback()  # a concurrent delivery of the same event got there first
    return {"status": "ok"}


async def _account_updated(account: stripe.Account, db: DbDep, client: TemporalDep) -> None:
    launcher = db.scalar(select(Launcher).where(Launcher.stripe_account_id == account.id))
    if launcher is None:
        return
    launcher.payouts_enabled = payouts_ready(account)
    db.commit()
    if not launcher.payouts_enabled:
        return
    waiting = db.scalars(
        select(Internship.id).where(
            Internship.launcher_id == launcher.id, Internship.stage.in_(WAITING_FOR_PAYOUT)
        )
    ).all()
    for internship_id in waiting:
        # A workflow that finished meanwhile has nothing waiting any more.
        with contextlib.suppress(RPCError):
            await handle(client, internship_id).signal(InternshipWorkflow.payout_account_ready)
