"""Who is who across roles: nobody hires themselves.

One person may hold an employer account and a launcher account (one account per email per
role), and could then apply to, select and rate their own company's postings. Two accounts are
the same person when either of these matches:

- the email, compared as mail servers deliver it: case does not matter, nor a `+tag` in the
  local part (`Ada+boss@Example.com` and `ada+intern@example.com` reach the same mailbox);
- a card or bank account at Stripe: the fingerprint of a card the employer attached against
  the fingerprints of the external accounts (bank accounts, debit cards) the launcher's payout
  account pays out to. Stripe gives one card number or bank account the same fingerprint.

`same_person` is the pure comparison; `parties_are_one` reads both accounts from the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Employer, Launcher, Member


def mailbox(email: str) -> str:
    """The mailbox an address reaches: lower case, without a `+tag` in the local part."""
    address = email.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    untagged = local.split("+", 1)[0]
    return f"{untagged or local}@{domain}"


@dataclass(frozen=True)
class Identity:
    """What identifies the person behind one account: mailboxes and Stripe fingerprints."""

    emails: frozenset[str]
    fingerprints: frozenset[str]

    @classmethod
    def of(cls, emails: Iterable[str], fingerprints: Iterable[str] = ()) -> Identity:
        return cls(
            frozenset(mailbox(e) for e in emails if e.strip()),
            frozenset(f for f in fingerprints if f),
        )

    @classmethod
    def of_employer(cls, employer: Employer, members: Iterable[str] = ()) -> Identity:
        """An organisation's: its founder's and its members' (`members`) addresses and its
        cards. A colleague can't hire themself through their company either."""
        return cls.of([employer.email, *members], employer.card_fingerprints or [])

    @classmethod
    def of_launcher(cls, launcher: Launcher) -> Identity:
        return cls.of([launcher.email], launcher.payout_fingerprints or [])


def same_person(employer: Identity, launcher: Identity) -> bool:
    """The same mailbox, or the same card or bank account at Stripe."""
    return bool(employer.emails & launcher.emails or employer.fingerprints & launcher.fingerprints)


def organisation_identity(db: Session, employer_id: str) -> Identity | None:
    """The organisation's identity with its current members' addresses (None if unknown)."""
    employer = db.get(Employer, employer_id)
    if employer is None:
        return None
    members = db.scalars(
        select(Member.email).where(Member.employer_id == employer_id, Member.removed_at.is_(None))
    )
    return Identity.of_employer(employer, members)


def parties_are_one(db: Session, employer_id: str, launcher_id: str) -> bool:
    """Whether the employer and the launcher accounts belong to the same person (False when
    either is unknown: there is then nobody to compare)."""
    organisation, launcher = organisation_identity(db, employer_id), db.get(Launcher, launcher_id)
    if organisation is None or launcher is None:
        return False
    return same_person(organisation, Identity.of_launcher(launcher))
