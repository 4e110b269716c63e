"""Accounts of employers and launchers (the API's own records): sign-up, bearer tokens, and
what Stripe says of their cards and payout accounts (the fingerprints `core.identity` compares).

One account per email per role. Tokens are random and shown once; only their SHA-256 is stored,
so a leaked database does not leak credentials. The database is used in short sessions around
the Stripe calls, never held while Stripe answers.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import TypeVar

import stripe
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.db import Employer, Launcher
from core.stripe_api import (
    SavedCard,
    create_customer,
    create_payout_account,
    onboarding_link,
    payout_fingerprints,
    payouts_ready,
    saved_card,
)

Account = TypeVar("Account", Employer, Launcher)


class AccountExists(Exception):
    """An account with this email already exists for this role (or is being created)."""


class TokenAlreadyRotated(Exception):
    """The token was rotated by another request meanwhile."""


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(24)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalized_email(email: str) -> str:
    return email.strip().lower()


def _stripe_key(role: str, email: str) -> str:
    """One Stripe object per account, even when two sign-ups with one email race: the second
    call replays the first (same key), and the database's unique email refuses the second row."""
    return f"{role}-{hashlib.sha256(email.encode()).hexdigest()[:32]}"


def _ensure_new(sessions: sessionmaker, model: type[Account], email: str) -> None:
    with sessions() as db:
        if db.scalar(select(model.id).where(model.email == email)) is not None:
            raise AccountExists(f"an {model.__tablename__[:-1]} account with this email exists")


def _insert(sessions: sessionmaker, account: Account) -> None:
    try:
        with sessions.begin() as db:
            db.add(account)
    except IntegrityError as err:
        raise AccountExists("an account with this email was just created") from err


def sign_up_employer(
    sessions: sessionmaker,
    client: stripe.StripeClient,
    *,
    name: str,
    email: str,
    company: str,
    payment_method: str | None,
) -> tuple[Employer, str]:
    """With `payment_method` None (sign-up on the web), the employer has no card until one is
    added through Stripe Checkout (`core.stripe_api.card_setup_url`)."""
    email = normalized_email(email)
    _ensure_new(sessions, Employer, email)
    employer_id, token = new_id(), new_token("emp")
    try:
        customer_id, card_id = create_customer(
            client, name, email, payment_method, _stripe_key("employer", email)
        )
    except stripe.IdempotencyError as err:  # the same email, other details, at the same time
        raise AccountExists("an employer account with this email is being created") from err
    card = saved_card(client, card_id) if card_id else None
    employer = Employer(
        id=employer_id,
        name=name,
        email=email,
        company=company,
        token_hash=token_hash(token),
        stripe_customer_id=customer_id,
        stripe_payment_method=card_id,
        card_label=card.label if card else None,
        card_fingerprints=[card.fingerprint] if card and card.fingerprint else [],
    )
    _insert(sessions, employer)
    return employer, token


def sign_up_launcher(
    sessions: sessionmaker,
    client: stripe.StripeClient,
    *,
    name: str,
    email: str,
    skills: list[str],
    public_base_url: str,
) -> tuple[Launcher, str, str]:
    """Returns the launcher, their token and their Stripe Express onboarding link."""
    email = normalized_email(email)
    _ensure_new(sessions, Launcher, email)
    launcher_id, token = new_id(), new_token("lnc")
    try:
        account_id = create_payout_account(client, email, _stripe_key("launcher", email))
    except stripe.IdempotencyError as err:
        raise AccountExists("a launcher account with this email is being created") from err
    url = onboarding_link(client, account_id, public_base_url)
    launcher = Launcher(
        id=launcher_id,
        name=name,
        email=email,
        skills=skills,
        token_hash=token_hash(token),
        stripe_account_id=account_id,
    )
    _insert(sessions, launcher)
    return launcher, token, url


def record_card(db: Session, employer_id: str, card: SavedCard) -> None:
    """The employer's card is now `card` (the caller commits); its fingerprint joins those of
    the cards they had before."""
    employer = db.scalar(select(Employer).where(Employer.id == employer_id).with_for_update())
    if employer is None:
        return
    employer.stripe_payment_method, employer.card_label = card.id, card.label
    known = list(employer.card_fingerprints or [])
    if card.fingerprint and card.fingerprint not in known:
        employer.card_fingerprints = [*known, card.fingerprint]


def record_payout_account(
    sessions: sessionmaker, account_id: str, ready: bool, fingerprints: list[str]
) -> str | None:
    """What Stripe says of a launcher's payout account: whether it can be paid, and where it
    pays out to (fingerprints are added to those seen before). Returns the launcher's id, or
    None if the account is nobody's here."""
    with sessions.begin() as db:
        launcher = db.scalar(
            select(Launcher).where(Launcher.stripe_account_id == account_id).with_for_update()
        )
        if launcher is None:
            return None
        launcher.payouts_enabled = ready
        known = list(launcher.payout_fingerprints or [])
        if new := [f for f in fingerprints if f not in known]:
            launcher.payout_fingerprints = known + new
        return launcher.id


def refresh_payout_account(
    sessions: sessionmaker, client: stripe.StripeClient, account_id: str
) -> None:
    """Ask Stripe how a launcher's payout account stands (when they come back from onboarding,
    before the webhook may have said so) and record it; Stripe is asked with no session open."""
    account = client.v1.accounts.retrieve(account_id)
    fingerprints = payout_fingerprints(client, account.to_dict())
    record_payout_account(sessions, account.id, payouts_ready(account), fingerprints)


def end_web_sessions(
    sessions: sessionmaker, model: type[Employer] | type[Launcher], account_id: str
) -> None:
    """Sign the account out everywhere: every web session it has began in an older epoch."""
    with sessions.begin() as db:
        db.execute(
            update(model)
            .where(model.id == account_id)
            .values(session_epoch=model.session_epoch + 1)
        )


def rotate_token(sessions: sessionmaker, account: Employer | Launcher) -> str:
    """A new token for the account; the one it was read with stops working at once, and so
    do the account's web sessions (a rotation answers a leaked credential)."""
    model = type(account)
    token = new_token("emp" if model is Employer else "lnc")
    with sessions.begin() as db:
        changed = db.execute(
            update(model)
            .where(model.id == account.id, model.token_hash == account.token_hash)
            .values(token_hash=token_hash(token), session_epoch=model.session_epoch + 1)
        ).rowcount
    if not changed:
        raise TokenAlreadyRotated("this token was already rotated; use the newer one")
    return token
