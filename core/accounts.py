"""Sign-up and bearer tokens for employers and launchers (the API's own records).

Tokens are random and shown once; only their SHA-256 is stored, so a leaked database does not
leak credentials.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

import stripe
from sqlalchemy.orm import Session

from core.db import Employer, Launcher
from core.stripe_api import create_customer, create_payout_account, onboarding_link


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(24)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_up_employer(
    db: Session,
    client: stripe.StripeClient,
    *,
    name: str,
    email: str,
    company: str,
    payment_method: str,
) -> tuple[Employer, str]:
    employer_id, token = new_id(), new_token("emp")
    customer_id, card_id = create_customer(client, name, email, payment_method, employer_id)
    employer = Employer(
        id=employer_id,
        name=name,
        email=email,
        company=company,
        token_hash=token_hash(token),
        stripe_customer_id=customer_id,
        stripe_payment_method=card_id,
    )
    db.add(employer)
    db.commit()
    return employer, token


def sign_up_launcher(
    db: Session,
    client: stripe.StripeClient,
    *,
    name: str,
    email: str,
    skills: list[str],
    public_base_url: str,
) -> tuple[Launcher, str, str]:
    """Returns the launcher, their token and their Stripe Express onboarding link."""
    launcher_id, token = new_id(), new_token("lnc")
    account_id = create_payout_account(client, email, launcher_id)
    url = onboarding_link(client, account_id, public_base_url)
    launcher = Launcher(
        id=launcher_id,
        name=name,
        email=email,
        skills=skills,
        token_hash=token_hash(token),
        stripe_account_id=account_id,
    )
    db.add(launcher)
    db.commit()
    return launcher, token, url
