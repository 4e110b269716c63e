"""Employers: sign-up (by proof of inbox), the card fees are charged to, the company profile."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import stripe
from fastapi import APIRouter, BackgroundTasks, Depends

from api import schemas
from api.deps import (
    CardHolderDep,
    DbDep,
    ProfileEditorDep,
    SessionsDep,
    SettingsDep,
    StripeDep,
)
from api.errors import ApiError
from api.idempotency import idempotency_key
from api.routers.tokens import SIGN_UP_STEPS, ask_the_inbox
from api.service import profiles
from core.accounts import record_card
from core.internship import Role
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
    status_code=202,
    response_model=schemas.SignUpOut,
    summary="Sign up as an employer: the account is created when you use the emailed code",
    description=SIGN_UP_STEPS,
    dependencies=[Depends(idempotency_key)],
)
def create_employer(
    body: schemas.EmployerIn, later: BackgroundTasks, sessions: SessionsDep, settings: SettingsDep
) -> schemas.SignUpOut:
    return ask_the_inbox(later, sessions, settings, Role.EMPLOYER, body, "/card")


@router.put(
    "/me/payment_method",
    response_model=schemas.PaymentMethodOut,
    summary="Replace the card fees are charged to (then retry a declined kickoff)",
)
def change_card(
    body: schemas.PaymentMethodIn, caller: CardHolderDep, db: DbDep, client: StripeDep
) -> schemas.PaymentMethodOut:
    employer = caller.employer
    assert employer is not None
    with card_refusals():
        card_id = replace_card(client, employer.stripe_customer_id, body.payment_method)
    card = saved_card(client, card_id)
    record_card(db, employer.id, card)
    db.commit()
    return schemas.PaymentMethodOut(payment_method=card.id)


@router.patch(
    "/me/profile",
    response_model=schemas.CompanyProfileOut,
    summary="Change my company's profile: the fields sent change, null clears one",
    description="The logo is uploaded on the web settings page. Postings show the profile.",
)
def change_profile(
    body: schemas.CompanyProfileIn, caller: ProfileEditorDep, sessions: SessionsDep
) -> schemas.CompanyProfileOut:
    assert caller.employer is not None
    return profiles.company_profile(profiles.change_company(sessions, caller.employer.id, body))
