"""Proof of inbox: one-time secrets sent by email, the only way to an account's credentials.

Each secret is both a link (`/sign-in/<secret>`, for people) and a code (exchanged through
`POST /v1/tokens`, for API clients); only its hash is stored, it expires after
SIGN_IN_LINK_MINUTES and it is spent once. A link signs in to an account, or, for a sign-up,
creates the account from the details given when the email's owner uses it, so nobody can
claim an address they don't read. Emails are queued in the outbox (the worker's relay sends
them): nothing here waits on SMTP.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe
from sqlalchemy import false, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core import zones
from core.accounts import (
    ACCOUNT_MODELS,
    create_employer,
    create_launcher,
    holding,
    normalized_email,
    prove_inbox,
    token_hash,
)
from core.db import Employer, Launcher, OutboxEmail, SignInLink, utcnow
from core.emails import RenderedEmail
from core.internship import Role
from core.settings import Settings

# Links an address may have outstanding at once: asking again and again (or someone else
# asking for your address) can't flood an inbox.
MAX_OPEN_LINKS = 5


@dataclass(frozen=True)
class Account:
    """Who a link is for: an account, or (id "") the account a sign-up would create."""

    role: Role
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Letter:
    """What the email says: `kind` is "sign_in", "sign_up" (confirm a new account) or
    "existing" (a sign-up for an address that has this account already: sign in instead)."""

    kind: str
    account: Account
    url: str
    code: str
    minutes: int


Render = Callable[[Letter], RenderedEmail]


def accounts_for(sessions: sessionmaker, email: str, ops_email: str) -> list[Account]:
    """Every account this address holds: an employer, a launcher, ops (one email may be
    several)."""
    email = normalized_email(email)
    found: list[Account] = []
    with sessions() as db:
        for role, model in ACCOUNT_MODELS.items():
            if row := db.scalar(select(model).where(holding(model, email))):
                found.append(Account(role, row.id, row.name, row.email))
    if email == normalized_email(ops_email):
        found.append(Account(Role.OPS, "ops", "Ops team", email))
    return found


def send(
    sessions: sessionmaker,
    settings: Settings,
    letter_kind: str,
    account: Account,
    next_path: str,
    render: Render,
    sign_up: dict[str, Any] | None = None,
) -> bool:
    """Store a new secret for `account` (or for the sign-up `sign_up` describes) and queue its
    email. False if the address has MAX_OPEN_LINKS unexpired ones already (none is sent)."""
    secret = secrets.token_urlsafe(32)
    digest = token_hash(secret)
    url = f"{settings.public_base_url.rstrip('/')}/sign-in/{secret}"
    minutes = settings.sign_in_link_minutes
    email = render(Letter(letter_kind, account, url, secret, minutes))
    with sessions.begin() as db:
        _one_at_a_time(db, f"{account.role.value}:{account.id or account.email}")
        open_links = db.scalar(
            select(func.count())
            .select_from(SignInLink)
            .where(
                SignInLink.role == account.role.value,
                # A sign-up's links count against its address; an account's against the account.
                SignInLink.account_id == account.id
                if account.id
                else SignInLink.sign_up["email"].as_string() == account.email,
                SignInLink.used_at.is_(None),
                SignInLink.expires_at > utcnow(),
            )
        )
        if (open_links or 0) >= MAX_OPEN_LINKS:
            return False
        db.add(
            SignInLink(
                token_hash=digest,
                role=account.role.value,
                account_id=account.id or None,
                sign_up=sign_up,
                next_path=next_path,
                expires_at=utcnow() + timedelta(minutes=minutes),
            )
        )
        db.add(
            OutboxEmail(
                # Not an internship's email: keyed by the secret, so it is sent once.
                internship_id=f"sign-in-{digest[:30]}",
                seq=0,
                kind=letter_kind,
                recipient_role=account.role.value,
                recipient_id=account.id or "new",
                to_email=account.email,
                subject=email.subject[:300],
                text_body=email.text,
                html_body=email.html,
            )
        )
    return True


def sign_up(
    sessions: sessionmaker,
    settings: Settings,
    role: Role,
    details: dict[str, Any],
    next_path: str,
    render: Render,
) -> None:
    """A sign-up asks the address's owner: to confirm the new account, or, if the address has
    this account already, to sign in to it. Whoever asked learns neither (run it after the
    answer is sent, so both take the same time)."""
    details = {**details, "email": normalized_email(details["email"])}
    model = ACCOUNT_MODELS[role]
    with sessions() as db:
        row = db.scalar(select(model).where(holding(model, details["email"])))
    if row is not None:
        found = Account(role, row.id, row.name, row.email)
        send(sessions, settings, "existing", found, "/dashboard", render)
    else:
        new = Account(role, "", details["name"], details["email"])
        send(sessions, settings, "sign_up", new, next_path, render, sign_up=details)


def sign_in(
    sessions: sessionmaker, settings: Settings, email: str, next_path: str, render: Render
) -> None:
    """A link to every account the address holds (none: no email, and nobody is told)."""
    for account in accounts_for(sessions, email, settings.ops_email):
        send(sessions, settings, "sign_in", account, next_path, render)


def _one_at_a_time(db: Session, address: str) -> None:
    """Counting an address's open links and adding one is a single step: two requests at once
    (the emails are queued after the answers, so they overlap) must not both see room for one
    more. Postgres: a lock on the address until the transaction ends. SQLite: a write first,
    which takes the database's one write lock for the rest of the transaction."""
    if db.get_bind().dialect.name == "postgresql":
        key = int(hashlib.sha256(address.encode()).hexdigest()[:15], 16)
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        db.execute(update(SignInLink).where(false()).values(used_at=None))


def pending(sessions: sessionmaker, secret: str) -> SignInLink | None:
    """The link if it can still be used (unspent and unexpired)."""
    with sessions() as db:
        link = db.get(SignInLink, token_hash(secret))
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        return None
    return link


def lapsed(sessions: sessionmaker, secret: str) -> SignInLink | None:
    """The link, used or not, expired or not (None if it was never sent): what a new one
    replaces."""
    with sessions() as db:
        return db.get(SignInLink, token_hash(secret))


def address_of(sessions: sessionmaker, link: SignInLink, ops_email: str) -> str:
    """The address a link was sent to ("" if its account is gone)."""
    if link.sign_up is not None:
        return str(link.sign_up["email"])
    if link.role == Role.OPS.value:
        return normalized_email(ops_email)
    return opens(sessions, link).email


def renew(
    sessions: sessionmaker, settings: Settings, link: SignInLink, address: str, render: Render
) -> None:
    """A new link in place of `link` (used or expired), to the same address and place: a
    sign-up not yet used asks again to create its account (or to sign in, if the address has
    one by now); any other, a sign-in link to each account the address holds."""
    if not address:
        return
    if link.sign_up is not None and link.used_at is None:
        sign_up(sessions, settings, Role(link.role), link.sign_up, link.next_path, render)
    else:
        sign_in(sessions, settings, address, link.next_path, render)


def opens(sessions: sessionmaker, link: SignInLink) -> Account:
    """The account a pending link opens (for a sign-up, the one it would create)."""
    role = Role(link.role)
    if link.sign_up is not None:
        return Account(role, "", link.sign_up["name"], link.sign_up["email"])
    model = ACCOUNT_MODELS.get(role)
    with sessions() as db:
        row = db.get(model, link.account_id) if model and link.account_id else None
    if row is None:  # ops have no row
        return Account(role, link.account_id or "", "Ops team", "")
    return Account(role, row.id, row.name, row.email)


@dataclass(frozen=True)
class Redeemed:
    role: Role
    account_id: str
    next_path: str
    created: bool  # the link was a sign-up's, and this is the account it made


def redeem(sessions: sessionmaker, client: stripe.StripeClient, secret: str) -> Redeemed | None:
    """Spend the secret: exactly one request can (two clicks race on one row update). A
    sign-up's account is created first (Stripe is asked with no session open; a retry after a
    failure finds the same account), so a spent link always has its account."""
    link = pending(sessions, secret)
    if link is None:
        return None
    role = Role(link.role)
    account_id, created = link.account_id, False
    if link.sign_up is not None:
        account_id, created = _create(sessions, client, role, link.sign_up, link.token_hash)
    now = utcnow()
    with sessions.begin() as db:
        spent = db.execute(
            update(SignInLink)
            .where(
                SignInLink.token_hash == link.token_hash,
                SignInLink.used_at.is_(None),
                SignInLink.expires_at > now,
            )
            .values(used_at=now, account_id=account_id)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            return None
    assert account_id is not None
    prove_inbox(sessions, role, account_id)
    return Redeemed(role, account_id, link.next_path, created)


def _zone(details: dict[str, Any]) -> str:
    """The zone the sign-up gave (sign-ups sent before zones existed: UTC)."""
    return zones.guessed(details.get("time_zone"))


def _create(
    sessions: sessionmaker,
    client: stripe.StripeClient,
    role: Role,
    details: dict[str, Any],
    digest: str,
) -> tuple[str, bool]:
    """The account a sign-up asked for (or the one the address has by now), and whether it
    is new. One Stripe object per sign-up link, however often this is retried."""
    model = ACCOUNT_MODELS[role]
    with sessions() as db:
        existing = db.scalar(select(model.id).where(holding(model, details["email"])))
    if existing is not None:  # signed up again meanwhile, by another link to the same inbox
        return existing, False
    key = f"{role.value}-signup-{digest[:32]}"
    if role == Role.EMPLOYER:
        account: Employer | Launcher = create_employer(
            sessions,
            client,
            name=details["name"],
            email=details["email"],
            company=details["company"],
            stripe_key=key,
            time_zone=_zone(details),
        )
    else:
        account = create_launcher(
            sessions,
            client,
            name=details["name"],
            email=details["email"],
            skills=list(details["skills"]),
            stripe_key=key,
            time_zone=_zone(details),
        )
    return account.id, True
