"""The people of an employer organisation: inviting colleagues, their roles, removing them.

An admin invites a colleague by email with a role; the email carries a one-time secret (a link
for people, the same secret as a code for API clients; only its hash is stored) that works for
COLLEAGUE_INVITATION_DAYS. Using it makes the inbox's owner a member. One organisation per
person: an address that is a member elsewhere must leave first. An organisation always keeps an
admin: the last one can't be demoted, removed or leave. Who may call what is the callers'
check (`core.rulebook.member_may`); what is refused here says what to do instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import ColumnElement, delete, false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core import zones
from core.accounts import new_id, normalized_email, token_hash
from core.db import (
    ApiToken,
    ColleagueInvitation,
    Employer,
    Member,
    OutboxEmail,
    SignInLink,
    WebSession,
    utcnow,
)
from core.emails import RenderedEmail
from core.internship import Actor, MemberRole, Role
from core.rulebook import MEMBER_ROLE_NAMES, OrgRight, member_may
from core.settings import Settings

# Invitations an organisation may have waiting at once (an admin's typo can't flood inboxes).
MAX_OPEN_INVITATIONS = 50
# What each role may do, in the words an invitation and the members list use.
ROLE_DUTIES = {
    MemberRole.ADMIN: "manage the members, the card and the company's profile, and post and "
    "run internships",
    MemberRole.HIRING_MANAGER: "post internships and run them",
    MemberRole.FINANCE: "read the charges, receipts and the card",
    MemberRole.VIEWER: "read the company's internships",
}
OWN_ONLY_DUTIES = "post internships and run the ones they post"


def role_in_words(role: MemberRole, all_internships: bool = True) -> str:
    """ "Hiring manager (post internships and run the ones they post)"."""
    own_only = role == MemberRole.HIRING_MANAGER and not all_internships
    return f"{MEMBER_ROLE_NAMES[role]} ({OWN_ONLY_DUTIES if own_only else ROLE_DUTIES[role]})"


def scope_of(role: MemberRole, all_internships: bool) -> bool:
    """Only a hiring manager is limited to their own internships; other roles keep True."""
    return all_internships or role != MemberRole.HIRING_MANAGER


def may_remove(actor: Actor, member_id: str) -> bool:
    """An admin removes anyone; any member may remove themself (leave)."""
    return member_may(actor, OrgRight.MEMBERS) or actor.member_id == member_id


Kind = Literal["not_found", "conflict", "invalid"]


class Refused(Exception):
    """A step this organisation can't take now, and what to do instead (`field`: the form
    field the message goes beside)."""

    def __init__(self, kind: Kind, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.kind, self.code, self.message, self.field = kind, code, message, field


# ---------------------------------------------------------------- the invitation email


@dataclass(frozen=True)
class InvitationLetter:
    """What the invitation email says: who invites whom to which company, as what, and the
    link and code that work `days`."""

    company: str
    inviter: str
    email: str
    role: str  # in words, `role_in_words`
    url: str
    code: str
    days: int


Render = Callable[[InvitationLetter], RenderedEmail]


# ---------------------------------------------------------------- reading


def members(sessions: sessionmaker, organisation_id: str) -> list[Member]:
    """The current members, earliest first."""
    with sessions() as db:
        return list(
            db.scalars(
                select(Member)
                .where(Member.employer_id == organisation_id, Member.removed_at.is_(None))
                .order_by(Member.created_at, Member.id)
            )
        )


def _waiting(organisation_id: str) -> list[ColumnElement[bool]]:
    return [
        ColleagueInvitation.employer_id == organisation_id,
        ColleagueInvitation.accepted_at.is_(None),
        ColleagueInvitation.revoked_at.is_(None),
        ColleagueInvitation.expires_at > utcnow(),
    ]


def pending_invitations(sessions: sessionmaker, organisation_id: str) -> list[ColleagueInvitation]:
    """Invitations not yet used, revoked or expired, newest first."""
    with sessions() as db:
        return list(
            db.scalars(
                select(ColleagueInvitation)
                .where(*_waiting(organisation_id))
                .order_by(ColleagueInvitation.created_at.desc())
            )
        )


@dataclass(frozen=True)
class Invitation:
    """An invitation as its link shows it: to which company, from whom, and whether it can
    still be used (`lapsed`: "" if it can, else "expired", "revoked" or "accepted")."""

    row: ColleagueInvitation
    company: str
    inviter: str
    lapsed: str


def invitation(sessions: sessionmaker, secret: str) -> Invitation | None:
    """The invitation a secret belongs to (None if it was never sent)."""
    with sessions() as db:
        found = db.execute(
            select(ColleagueInvitation, Employer.company, Member.name)
            .join(Employer, Employer.id == ColleagueInvitation.employer_id)
            .outerjoin(Member, Member.id == ColleagueInvitation.invited_by)
            .where(ColleagueInvitation.token_hash == token_hash(secret))
        ).first()
    if found is None:
        return None
    row, company, inviter = found
    return Invitation(row, company, inviter or "An admin", _lapsed(row))


def _lapsed(row: ColleagueInvitation | None) -> str:
    if row is None:
        return "unknown"
    if row.accepted_at is not None:
        return "accepted"
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expires_at <= utcnow() else ""


# ---------------------------------------------------------------- writing


def _locked(db: Session, organisation_id: str) -> Employer:
    """The organisation, locked until the transaction ends: two admins changing members at
    once take turns, so each sees what the other did (the last admin stays). Postgres: the row
    lock. SQLite: a write first, which takes the database's one write lock."""
    if db.get_bind().dialect.name != "postgresql":
        db.execute(update(Employer).where(false()).values(notify_email=None))
    organisation = db.scalar(
        select(Employer).where(Employer.id == organisation_id).with_for_update()
    )
    if organisation is None:
        raise Refused("not_found", "not_found", "organisation not found")
    return organisation


def _member_elsewhere(db: Session, email: str, organisation_id: str) -> Member | None:
    return db.scalar(
        select(Member).where(
            Member.email == email,
            Member.removed_at.is_(None),
            Member.employer_id != organisation_id,
        )
    )


ANOTHER_COMPANY = (
    "belongs to another company's account: they must leave it first (one company per person), "
    "then you can invite them again"
)


def invite(
    sessions: sessionmaker,
    settings: Settings,
    inviter: Member,
    email: str,
    role: MemberRole,
    all_internships: bool,
    render: Render,
) -> ColleagueInvitation:
    """Store an invitation and queue its email. An earlier invitation to the same address
    waiting still is revoked: the newest one is the one that works."""
    email = normalized_email(email)
    secret = secrets.token_urlsafe(32)
    digest = token_hash(secret)
    days = settings.colleague_invitation_days
    base = settings.public_base_url.rstrip("/")
    with sessions.begin() as db:
        organisation = _locked(db, inviter.employer_id)
        current = db.scalar(
            select(Member).where(
                Member.email == email,
                Member.removed_at.is_(None),
                Member.employer_id == organisation.id,
            )
        )
        if current is not None:
            raise Refused(
                "conflict",
                "already_member",
                f"{email} is already a member of {organisation.company}: change their role instead",
                "email",
            )
        if _member_elsewhere(db, email, organisation.id) is not None:
            raise Refused("conflict", "member_elsewhere", f"{email} {ANOTHER_COMPANY}", "email")
        waiting = (
            select(ColleagueInvitation.id)
            .where(*_waiting(organisation.id))
            .where(ColleagueInvitation.email == email)
        )
        now = utcnow()
        db.execute(
            update(ColleagueInvitation)
            .where(ColleagueInvitation.id.in_(waiting.scalar_subquery()))
            .values(revoked_at=now)
        )
        open_count = db.scalar(
            select(func.count()).select_from(ColleagueInvitation).where(*_waiting(organisation.id))
        )
        if (open_count or 0) >= MAX_OPEN_INVITATIONS:
            raise Refused(
                "conflict",
                "too_many_invitations",
                f"{organisation.company} has {MAX_OPEN_INVITATIONS} invitations waiting "
                "already: revoke those nobody will use, or wait for them to expire",
                "email",
            )
        all_internships = scope_of(role, all_internships)
        row = ColleagueInvitation(
            id=new_id(),
            employer_id=organisation.id,
            email=email,
            role=role.value,
            all_internships=all_internships,
            token_hash=digest,
            invited_by=inviter.id,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        rendered = render(
            InvitationLetter(
                company=organisation.company,
                inviter=inviter.name,
                email=email,
                role=role_in_words(role, all_internships),
                url=f"{base}/join/{secret}",
                code=secret,
                days=days,
            )
        )
        db.add(row)
        db.add(
            OutboxEmail(
                # Not an internship's email: keyed by the secret, so it is sent once.
                internship_id=f"invite-{digest[:30]}",
                seq=0,
                kind="colleague_invitation",
                recipient_role=Role.EMPLOYER.value,
                recipient_id="invited",
                to_email=email,
                subject=rendered.subject[:300],
                text_body=rendered.text,
                html_body=rendered.html,
            )
        )
    return row


LAPSED = {
    "accepted": "This invitation was used already",
    "revoked": "This invitation was withdrawn",
    "expired": "This invitation has expired",
}


def lapsed_text(lapsed: str) -> str:
    """Why an invitation can't be used, and what to do."""
    return (
        f"{LAPSED.get(lapsed, 'This invitation link is unknown')}: ask an admin of the company "
        "for a new one"
    )


def accept(
    sessions: sessionmaker, secret: str, name: str, time_zone: str = zones.UTC_NAME
) -> tuple[Member, Employer]:
    """Spend the invitation once and make its address a member with the invited role. Raises
    Refused: "gone" ones (used, withdrawn, expired, unknown) as not_found, and an address that
    became a member elsewhere meanwhile as a conflict (the invitation stays usable, for once
    they have left)."""
    digest = token_hash(secret)
    now = utcnow()
    try:
        with sessions.begin() as db:
            spent = db.execute(
                update(ColleagueInvitation)
                .where(
                    ColleagueInvitation.token_hash == digest,
                    ColleagueInvitation.accepted_at.is_(None),
                    ColleagueInvitation.revoked_at.is_(None),
                    ColleagueInvitation.expires_at > now,
                )
                .values(accepted_at=now)
            ).rowcount
            row = db.scalar(
                select(ColleagueInvitation).where(ColleagueInvitation.token_hash == digest)
            )
            if not spent or row is None:
                raise Refused("not_found", "invitation_gone", lapsed_text(_lapsed(row)))
            organisation = db.get(Employer, row.employer_id)
            assert organisation is not None
            if _member_elsewhere(db, row.email, organisation.id) is not None:
                raise Refused(
                    "conflict",
                    "member_elsewhere",
                    f"{row.email} belongs to another company's account: leave it first (one "
                    "company per person), then use this invitation again",
                )
            member = Member(
                id=new_id(),
                employer_id=organisation.id,
                name=name,
                email=row.email,
                role=row.role,
                all_internships=row.all_internships,
                created_at=now,
                time_zone=time_zone,
            )
            db.add(member)
            db.flush()
    except IntegrityError as err:  # a member of this one already (joined by another invitation)
        raise Refused(
            "conflict",
            "already_member",
            "This address is a member of a company's account already: sign in instead",
        ) from err
    return member, organisation


def _current(db: Session, organisation_id: str, member_id: str) -> Member:
    member = db.scalar(
        select(Member).where(
            Member.id == member_id,
            Member.employer_id == organisation_id,
            Member.removed_at.is_(None),
        )
    )
    if member is None:
        raise Refused("not_found", "not_found", "member not found")
    return member


def _last_admin(db: Session, member: Member) -> bool:
    if member.role != MemberRole.ADMIN.value:
        return False
    admins = db.scalar(
        select(func.count())
        .select_from(Member)
        .where(
            Member.employer_id == member.employer_id,
            Member.removed_at.is_(None),
            Member.role == MemberRole.ADMIN.value,
        )
    )
    return (admins or 0) <= 1


def change_member(
    sessions: sessionmaker,
    organisation_id: str,
    member_id: str,
    role: MemberRole | None,
    all_internships: bool | None,
) -> Member:
    """A member's role, and for a hiring manager whether they act on every internship (None:
    unchanged). The last admin stays an admin."""
    with sessions.begin() as db:
        organisation = _locked(db, organisation_id)
        member = _current(db, organisation_id, member_id)
        new_role = role or MemberRole(member.role)
        if new_role != MemberRole.ADMIN and _last_admin(db, member):
            raise Refused(
                "conflict",
                "last_admin",
                f"{member.name} is the last admin of {organisation.company}: make another "
                "member an admin first, then change this role",
                "role",
            )
        scope = member.all_internships if all_internships is None else all_internships
        member.role = new_role.value
        member.all_internships = scope_of(new_role, scope)
    return member


def remove_member(
    sessions: sessionmaker, organisation_id: str, member_id: str, *, leaving: bool = False
) -> Member:
    """The member is removed (their row stays, for the names on timelines), and at once every
    credential they hold ends: web sessions, API tokens, sign-in links not yet used. The last
    admin can't be removed, nor leave."""
    with sessions.begin() as db:
        organisation = _locked(db, organisation_id)
        member = _current(db, organisation_id, member_id)
        if _last_admin(db, member):
            who = "You're" if leaving else f"{member.name} is"
            then = "leave" if leaving else "remove them"
            raise Refused(
                "conflict",
                "last_admin",
                f"{who} the last admin of {organisation.company}: make another member an "
                f"admin first, then {then}",
            )
        member.removed_at = utcnow()
        if organisation.email == member.email:
            _hand_over_contact(db, organisation)
        mine = (Role.EMPLOYER.value, member.id)
        db.execute(
            delete(WebSession).where(WebSession.role == mine[0], WebSession.account_id == mine[1])
        )
        db.execute(delete(ApiToken).where(ApiToken.role == mine[0], ApiToken.account_id == mine[1]))
        db.execute(
            delete(SignInLink).where(
                SignInLink.role == mine[0],
                SignInLink.account_id == mine[1],
                SignInLink.used_at.is_(None),
            )
        )
    return member


def _hand_over_contact(db: Session, organisation: Employer) -> None:
    """The organisation's contact (its name and email, its Stripe customer's) left: the admin
    who joined first among those who stay takes over. Its email is then always a current
    member's, so an address that left is free to sign a company up anew."""
    db.flush()
    successor = db.scalar(
        select(Member)
        .where(
            Member.employer_id == organisation.id,
            Member.removed_at.is_(None),
            Member.role == MemberRole.ADMIN.value,
        )
        .order_by(Member.created_at, Member.id)
        .limit(1)
    )
    assert successor is not None  # the last admin can't leave
    organisation.name, organisation.email = successor.name, successor.email


def revoke_invitation(
    sessions: sessionmaker, organisation_id: str, invitation_id: str
) -> ColleagueInvitation:
    """Withdraw an invitation not yet used (again: nothing changes)."""
    with sessions.begin() as db:
        row = db.scalar(
            select(ColleagueInvitation)
            .where(
                ColleagueInvitation.id == invitation_id,
                ColleagueInvitation.employer_id == organisation_id,
            )
            .with_for_update()
        )
        if row is None:
            raise Refused("not_found", "not_found", "invitation not found")
        if row.accepted_at is not None:
            raise Refused(
                "conflict",
                "invitation_accepted",
                f"{row.email} accepted this invitation already: remove them from the members "
                "instead",
            )
        if row.revoked_at is None:
            row.revoked_at = utcnow()
    return row


def set_notify_email(sessions: sessionmaker, organisation_id: str, email: str | None) -> Employer:
    """Where every email about the organisation's internships also goes (None: nowhere
    else)."""
    with sessions.begin() as db:
        organisation = _locked(db, organisation_id)
        organisation.notify_email = normalized_email(email) if email else None
    return organisation


BILLING_FIELDS = ("billing_name", "billing_address", "tax_id")


def set_billing_details(
    sessions: sessionmaker, organisation_id: str, **changes: str | None
) -> Employer:
    """Who the organisation's receipts and credit notes are made out to, from the next one
    on (each document issued keeps the details it was issued with). Blank clears a field."""
    with sessions.begin() as db:
        organisation = _locked(db, organisation_id)
        for field, value in changes.items():
            if field not in BILLING_FIELDS:
                raise ValueError(f"not a billing detail: {field}")
            cleaned = "\n".join(line.strip() for line in (value or "").strip().splitlines())
            setattr(organisation, field, cleaned or None)
    return organisation
