"""Employer sign-up: a Stripe customer with the card the fees will be charged to."""

from __future__ import annotations

import stripe
from fastapi import APIRouter

from api import schemas
from api.deps import DbDep, StripeDep
from api.errors import ApiError
from core.accounts import sign_up_employer

router = APIRouter(prefix="/v1/employers", tags=["employers"])


@router.post(
    "",
    status_code=201,
    response_model=schemas.EmployerOut,
    summary="Sign up as an employer (keep the api_token: it is shown once)",
)
def create_employer(body: schemas.EmployerIn, db: DbDep, client: StripeDep) -> schemas.EmployerOut:
    try:
        employer, token = sign_up_employer(
            db,
            client,
            name=body.name,
            email=body.email,
            company=body.company,
            payment_method=body.payment_method,
        )
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
    return schemas.EmployerOut(id=employer.id, api_token=token)
