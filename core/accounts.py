"""Accounts of employers and launchers (the API's own records): creation, API tokens, and
what Stripe says of their cards and payout accounts (the fingerprints `core.identity` compares).

One account per email per role, created only once the email's owner has used a link or code
sent to it (`core.inbox`). Tokens are random, named and shown once; only their SHA-256 is
stored, so a leaked database does not leak credentials. The database is used in short sessions
around the Stripe calls, never held while Stripe answers.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any, TypeVar

import stripe
from sqlalchemy import Delete, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core import zones
from core.db import ApiToken, Employer, Launcher, Member, WebSession, utcnow
from core.internship import Actor, MemberRole, Role
from core.stripe_api import (
    SavedCard,
    create_customer,
    create_payout_account,
    payout_fingerprints,
    payouts_ready,
    saved_card,
)

Account = TypeVar("Account", Employer, Launcher)

# The roles with an account row (ops are whoever holds OPS_EMAIL's inbox), and their tokens'
# prefixes. An employer's person is a member of their organisation: sign-in links, sessions and
# tokens of the employer role are a member's.
ACCOUNT_MODELS: dict[Role, type[Member] | type[Launcher]] = {
    Role.EMPLOYER: Member,
    Role.LAUNCHER: Launcher,
}
TOKEN_PREFIX = {Role.EMPLOYER: "emp", Role.LAUNCHER: "lnc"}


def holding(model: type[Member] | type[Launcher], email: str) -> Any:
    """The condition for the account of `model` an address holds now (a removed member's row
    holds none)."""
    found = model.email == normalized_email(email)
    return and_(found, Member.removed_at.is_(None)) if model is Member else found


def actor_of(member: Member) -> Actor:
    """The actor the rulebook and the workflow judge for a member: their organisation, and the
    rights their role gives them."""
    role = MemberRole(member.role)
    own_only = role == MemberRole.HIRING_MANAGER and not member.all_internships
    return Actor(Role.EMPLOYER, member.employer_id, member.id, role, own_only)


def member_with_organisation(db: Session, member_id: str) -> tuple[Member, Employer] | None:
    """A current member and their organisation (None if removed or unknown)."""
    found = db.execute(
        select(Member, Employer)
        .join(Employer, Employer.id == Member.employer_id)
        .where(Member.id == member_id, Member.removed_at.is_(None))
    ).first()
    return (found[0], found[1]) if found else None


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


def _existing(sessions: sessionmaker, model: type[Account], email: str) -> Account | None:
    with sessions() as db:
        if model is Employer:  # the organisation whose member the address is
            return db.scalar(
                select(Employer)
                .join(Member, Member.employer_id == Employer.id)
                .where(holding(Member, email))
            )
        return db.scalar(select(model).where(model.email == email))


def founder_of(organisation: Employer) -> Member:
    """The member who signed the organisation up: an admin, under the organisation's id."""
    return Member(
        id=organisation.id,
        employer_id=organisation.id,
        name=organisation.name,
        email=organisation.email,
        role=MemberRole.ADMIN.value,
    )


def _insert(sessions: sessionmaker, account: Account, time_zone: str) -> Account:
    """The new account (an organisation with its founder, an admin whose member id is the
    organisation's, reading moments in `time_zone`), or the one a concurrent request created
    for the same email first."""
    try:
        with sessions.begin() as db:
            db.add(account)
            if isinstance(account, Employer):
                db.flush()
                founder = founder_of(account)
                founder.time_zone = time_zone
                db.add(founder)
        return account
    except IntegrityError:
        found = _existing(sessions, type(account), account.email)
        if found is None:
            raise
        return found


def create_employer(
    sessions: sessionmaker,
    client: stripe.StripeClient,
    *,
    name: str,
    email: str,
    company: str,
    payment_method: str | None = None,
    stripe_key: str | None = None,
    time_zone: str = zones.UTC_NAME,
) -> Employer:
    """The employer account of an email whose owner has just proven it (or the one it has
    already). With `payment_method` None, the employer has no card until one is added through
    Stripe Checkout (`core.stripe_api.card_setup_url`) or the API."""
    email = normalized_email(email)
    if found := _existing(sessions, Employer, email):
        return found
    customer_id, card_id = create_customer(
        client, name, email, payment_method, stripe_key or _stripe_key("employer", email)
    )
    card = saved_card(client, card_id) if card_id else None
    return _insert(
        sessions,
        Employer(
            id=new_id(),
            name=name,
            email=email,
            company=company,
            stripe_customer_id=customer_id,
            stripe_payment_method=card_id,
            card_label=card.label if card else None,
            card_fingerprints=[card.fingerprint] if card and card.fingerprint else [],
            inbox_proven_at=utcnow(),
        ),
        time_zone,
    )


def create_launcher(
    sessions: sessionmaker,
    client: stripe.StripeClient,
    *,
    name: str,
    email: str,
    skills: list[str],
    stripe_key: str | None = None,
    time_zone: str = zones.UTC_NAME,
) -> Launcher:
    """The launcher account (with a Stripe Express payout account to onboard) of an email whose
    owner has just proven it, or the one it has already."""
    email = normalized_email(email)
    if found := _existing(sessions, Launcher, email):
        return found
    account_id = create_payout_account(client, email, stripe_key or _stripe_key("launcher", email))
    return _insert(
        sessions,
        Launcher(
            id=new_id(),
            name=name,
            email=email,
            skills=skills,
            stripe_account_id=account_id,
            inbox_proven_at=utcnow(),
            time_zone=time_zone,
        ),
        time_zone,
    )


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


def _sessions_of(role: Role, account_id: str) -> Delete:
    """Every web session of an account (ops: account "ops"), to end."""
    return delete(WebSession).where(
        WebSession.role == role.value, WebSession.account_id == account_id
    )


def end_web_sessions(sessions: sessionmaker, role: Role, account_id: str) -> int:
    """Sign the account out everywhere (ops: account "ops"); how many sessions ended."""
    with sessions.begin() as db:
        ended = db.execute(_sessions_of(role, account_id)).rowcount
    return int(ended or 0)


def prove_inbox(sessions: sessionmaker, role: Role, account_id: str) -> bool:
    """The owner used a link or code sent to the account's email. The first time, for an
    account the API created before sign-ups needed that proof, every credential it had (its
    creator's, who may not be the owner) stops working. True on that first time."""
    # An employer's proof is its founder's (the member whose id is the organisation's): members
    # who joined later proved their inbox with the invitation's link.
    proven: dict[Role, type[Employer] | type[Launcher]] = {
        Role.EMPLOYER: Employer,
        Role.LAUNCHER: Launcher,
    }
    model = proven.get(role)
    if model is None:
        return False
    with sessions.begin() as db:
        first = db.execute(
            update(model)
            .where(model.id == account_id, model.inbox_proven_at.is_(None))
            .values(inbox_proven_at=utcnow())
        ).rowcount
        if first:
            db.execute(
                delete(ApiToken).where(
                    ApiToken.role == role.value, ApiToken.account_id == account_id
                )
            )
            db.execute(_sessions_of(role, account_id))
    return bool(first)


def confirm_card(sessions: sessionmaker, employer_id: str) -> None:
    """The owner says the card on file, attached before they proved their inbox, is theirs."""
    with sessions.begin() as db:
        db.execute(update(Employer).where(Employer.id == employer_id).values(card_confirmed=True))


def confirm_payout_account(sessions: sessionmaker, launcher_id: str) -> None:
    """The owner says the payout account, set up before they proved their inbox, is theirs."""
    with sessions.begin() as db:
        db.execute(update(Launcher).where(Launcher.id == launcher_id).values(payout_confirmed=True))


# ---------------------------------------------------------------- API tokens

# Tokens an account may hold at once (each named, listed, revocable).
MAX_TOKENS = 20
# How stale a token's "last used" may get before a request writes it again: not one write per
# API call.
LAST_USE_PRECISION = timedelta(minutes=5)


class TooManyTokens(Exception):
    """The account holds MAX_TOKENS already: revoke one first."""


def issue_token(sessions: sessionmaker, role: Role, account_id: str, name: str) -> str:
    """A new token for the account, shown once (only its hash is kept)."""
    token = new_token(TOKEN_PREFIX[role])
    with sessions.begin() as db:
        held = db.scalar(
            select(func.count())
            .select_from(ApiToken)
            .where(ApiToken.role == role.value, ApiToken.account_id == account_id)
        )
        if (held or 0) >= MAX_TOKENS:
            raise TooManyTokens(
                f"This account has {MAX_TOKENS} API tokens already: revoke one you no longer use"
            )
        db.add(
            ApiToken(
                id=new_id(),
                role=role.value,
                account_id=account_id,
                name=name.strip()[:100] or "API token",
                token_hash=token_hash(token),
            )
        )
    return token


def tokens_of(sessions: sessionmaker, role: Role, account_id: str) -> list[ApiToken]:
    with sessions() as db:
        return list(
            db.scalars(
                select(ApiToken)
                .where(ApiToken.role == role.value, ApiToken.account_id == account_id)
                .order_by(ApiToken.created_at.desc())
            )
        )


def revoke_token(sessions: sessionmaker, role: Role, account_id: str, token_id: str) -> bool:
    """Only the account's own tokens; False if it has no such token (any more)."""
    with sessions.begin() as db:
        gone = db.execute(
            delete(ApiToken).where(
                ApiToken.id == token_id,
                ApiToken.role == role.value,
                ApiToken.account_id == account_id,
            )
        ).rowcount
    return bool(gone)


def rotate_token(sessions: sessionmaker, role: Role, account_id: str, token: str) -> str:
    """A new token in place of `token` (same name); the old one stops working at once, and so
    do the account's web sessions (a rotation answers a leaked credential)."""
    fresh = new_token(TOKEN_PREFIX[role])
    with sessions.begin() as db:
        changed = db.execute(
            update(ApiToken)
            .where(
                ApiToken.token_hash == token_hash(token),
                ApiToken.role == role.value,
                ApiToken.account_id == account_id,
            )
            .values(token_hash=token_hash(fresh), created_at=utcnow(), last_used_at=None)
        ).rowcount
        db.execute(_sessions_of(role, account_id))
    if not changed:
        raise TokenAlreadyRotated("this token was already rotated; use the newer one")
    return fresh


def account_of_token(
    sessions: sessionmaker, token: str
) -> tuple[Member, Employer] | Launcher | None:
    """The account a token belongs to (a member with their organisation, or a launcher),
    noting when it was last used; None if none."""
    now = utcnow()
    with sessions() as db:
        held = db.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
        if held is None:
            return None
        account: tuple[Member, Employer] | Launcher | None = (
            member_with_organisation(db, held.account_id)
            if held.role == Role.EMPLOYER.value
            else db.get(Launcher, held.account_id)
        )
        if account is not None and (
            held.last_used_at is None or now - held.last_used_at > LAST_USE_PRECISION
        ):
            held.last_used_at = now
            db.commit()
        return account
