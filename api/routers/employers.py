"""Employers: sign-up with the card fees are charged to, and replacing that card."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import stripe
from fastapi import APIRouter, Depends

from api import schemas
from api.deps import DbDep, EmployerDep, SessionsDep, StripeDep
from api.errors import ApiError
from api.idempotency import idempotency_key
from core.accounts import record_card, sign_up_employer
from core.stripe_api import replace_card, saved_card

router = APIRouter(prefix="/v1/employers", tags=["employers"])


@contextmanager
def card_refusals() -> Iterator[None]:
    """Stripe refusing the card is the caller's input problem: 422 or 402, never 5xx."""
    try:
        yield
    except stripe.InvalidRequestError as err:
        raise ApiError(
            422,
            "invalid_request",
            f"payment_method was refused by Stripe: {err.user_message or err}",
            {"field": "payment_method"},
        ) from err
    except stripe.CardError as err:
        raise ApiError(
            402,
            "payment_declined",
            f"The card was declined: {err.user_message}",
            {"field": "payment_method"},
        ) from err


@router.post(
    "",
    status_code=201,
    response_model=schemas.EmployerOut,
    summary="Sign up as an employer (keep the api_token: it is shown once)",
    dependencies=[Depends(idempotency_key)],
)
def create_employer(
    body: schemas.EmployerIn, sessions: SessionsDep, client: StripeDep
) -> schemas.EmployerOut:
    with card_refusals():
        employer, token = sign_up_employer(
            sessions,
            client,
            name=body.name,
            email=body.email,
            company=body.company,
            payment_method=body.payment_method,
        )
    return schemas.EmployerOut(id=employer.id, api_token=token)


@router.put(
    "/me/payment_method",
    response_model=schemas.PaymentMethodOut,
    summary="Replace the card fees are charged to (then retry a declined kickoff)",
)
def change_card(
    body: schemas.PaymentMethodIn, employer: EmployerDep, db: DbDep, client: StripeDep
) -> schemas.PaymentMethodOut:
    with card_refusals():
        card_id = replace_card(client, employer.stripe_customer_id, body.payment_method)
    card = saved_card(client, card_id)
    record_card(db, employer.id, card)
    db.commit()
    return schemas.PaymentMethodOut(payment_method=card.id)
