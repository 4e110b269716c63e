"""The caller's organisation: its members and their roles, invitations of colleagues (admins),
leaving, and joining with an invitation's code (which proves the inbox, so it needs no token)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api import schemas
from api.deps import AdminDep, MemberDep, ProfileEditorDep, SessionsDep, SettingsDep
from api.errors import ApiError
from api.idempotency import idempotency_key
from api.inbox_email import invitation_renderer
from core import organisation, rulebook
from core.accounts import issue_token
from core.db import ColleagueInvitation, Employer, Member
from core.internship import MemberRole, Role
from core.rulebook import OrgRight

router = APIRouter(prefix="/v1/organisation", tags=["organisation"])

IdPath = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
STATUSES = {"not_found": 404, "conflict": 409, "invalid": 422}


@contextmanager
def refusals() -> Iterator[None]:
    """What the organisation refuses, in the API's error shape (with the field, if one)."""
    try:
        yield
    except organisation.Refused as err:
        details = {"field": err.field} if err.field else {}
        raise ApiError(STATUSES[err.kind], err.code, err.message, details) from err


def member_out(member: Member) -> schemas.MemberOut:
    return schemas.MemberOut(
        id=member.id,
        name=member.name,
        email=member.email,
        role=MemberRole(member.role),
        all_internships=member.all_internships,
        joined_at=member.created_at,
        removed_at=member.removed_at,
    )


def invitation_out(row: ColleagueInvitation) -> schemas.ColleagueInvitationOut:
    return schemas.ColleagueInvitationOut(
        id=row.id,
        email=row.email,
        role=MemberRole(row.role),
        all_internships=row.all_internships,
        invited_by=row.invited_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        accepted_at=row.accepted_at,
        revoked_at=row.revoked_at,
    )


def _organisation(caller: MemberDep, sessions: SessionsDep) -> schemas.OrganisationOut:
    assert caller.employer is not None and caller.member is not None
    with sessions() as db:  # fresh: a change this request made is shown
        org = db.get(Employer, caller.employer.id)
    assert org is not None
    money = rulebook.member_may(caller.actor, OrgRight.MONEY)
    return schemas.OrganisationOut(
        id=org.id,
        company=org.company,
        you=member_out(caller.member),
        notify_email=org.notify_email,
        card_label=org.card_label if money else None,
        members=[member_out(m) for m in organisation.members(sessions, org.id)],
        billing_name=org.billing_name,
        billing_address=org.billing_address,
        tax_id=org.tax_id,
    )


@router.get(
    "",
    response_model=schemas.OrganisationOut,
    summary="My organisation: its members and their roles, my own role",
)
def read_organisation(caller: MemberDep, sessions: SessionsDep) -> schemas.OrganisationOut:
    return _organisation(caller, sessions)


@router.patch(
    "",
    response_model=schemas.OrganisationOut,
    summary="Change where the organisation's emails also go, and its billing details (admins)",
)
def change_organisation(
    body: schemas.OrganisationIn, caller: ProfileEditorDep, sessions: SessionsDep
) -> schemas.OrganisationOut:
    assert caller.employer is not None
    if "notify_email" in body.model_fields_set:
        address = str(body.notify_email) if body.notify_email else None
        with refusals():
            organisation.set_notify_email(sessions, caller.employer.id, address)
    billing = {
        f: getattr(body, f) for f in organisation.BILLING_FIELDS if f in body.model_fields_set
    }
    if billing:
        organisation.set_billing_details(sessions, caller.employer.id, **billing)
    return _organisation(caller, sessions)


@router.get(
    "/invitations",
    response_model=list[schemas.ColleagueInvitationOut],
    summary="Invitations waiting to be used (admins)",
)
def list_invitations(
    caller: AdminDep, sessions: SessionsDep
) -> list[schemas.ColleagueInvitationOut]:
    assert caller.employer is not None
    return [
        invitation_out(r) for r in organisation.pending_invitations(sessions, caller.employer.id)
    ]


@router.post(
    "/invitations",
    status_code=201,
    response_model=schemas.ColleagueInvitationOut,
    summary="Invite a colleague by email, with a role (admins)",
    description="They are emailed a link and a code that work once; the code joins with "
    "`POST /v1/organisation/join`. A newer invitation to the same address replaces one "
    "waiting. One company per person: a member of another company must leave it first.",
    dependencies=[Depends(idempotency_key)],
)
def invite(
    body: schemas.ColleagueInvitationIn,
    caller: AdminDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> schemas.ColleagueInvitationOut:
    assert caller.member is not None
    with refusals():
        row = organisation.invite(
            sessions,
            settings,
            caller.member,
            str(body.email),
            body.role,
            body.all_internships,
            invitation_renderer(settings),
        )
    return invitation_out(row)


@router.delete(
    "/invitations/{invitation_id}",
    response_model=schemas.ColleagueInvitationOut,
    summary="Withdraw an invitation not yet used (admins)",
)
def revoke_invitation(
    caller: AdminDep, sessions: SessionsDep, invitation_id: IdPath
) -> schemas.ColleagueInvitationOut:
    assert caller.employer is not None
    with refusals():
        return invitation_out(
            organisation.revoke_invitation(sessions, caller.employer.id, invitation_id)
        )


@router.patch(
    "/members/{member_id}",
    response_model=schemas.MemberOut,
    summary="Change a member's role or scope (admins); the last admin stays an admin",
)
def change_member(
    body: schemas.MemberChangeIn, caller: AdminDep, sessions: SessionsDep, member_id: IdPath
) -> schemas.MemberOut:
    assert caller.employer is not None
    with refusals():
        return member_out(
            organisation.change_member(
                sessions, caller.employer.id, member_id, body.role, body.all_internships
            )
        )


@router.delete(
    "/members/{member_id}",
    response_model=schemas.MemberOut,
    summary="Remove a member (admins), or leave (your own id): their sessions and tokens end",
)
def remove_member(caller: MemberDep, sessions: SessionsDep, member_id: IdPath) -> schemas.MemberOut:
    assert caller.employer is not None
    if not organisation.may_remove(caller.actor, member_id):
        raise ApiError(
            403, "forbidden", rulebook.lacking(OrgRight.MEMBERS), {"needs": OrgRight.MEMBERS.value}
        )
    leaving = member_id == caller.account_id
    with refusals():
        return member_out(
            organisation.remove_member(sessions, caller.employer.id, member_id, leaving=leaving)
        )


@router.post(
    "/join",
    status_code=201,
    response_model=schemas.JoinedOut,
    summary="Join an organisation with the code from its invitation, for an API token",
    dependencies=[Depends(idempotency_key)],
    responses={
        410: {
            "description": "The invitation was used already, withdrawn, has expired or was "
            "never sent",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    },
)
def join(body: schemas.JoinIn, sessions: SessionsDep) -> schemas.JoinedOut:
    try:
        member, org = organisation.accept(sessions, body.code, body.name, body.time_zone)
    except organisation.Refused as err:
        status = 410 if err.kind == "not_found" else STATUSES[err.kind]
        raise ApiError(status, err.code, err.message, {"field": "code"}) from err
    token = issue_token(sessions, Role.EMPLOYER, member.id, body.token_name)
    return schemas.JoinedOut(company=org.company, member=member_out(member), api_token=token)
