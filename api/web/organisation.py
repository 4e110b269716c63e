"""The organisation's page (its members, their roles, invitations, where its emails also go)
and joining it from an invitation's link. Every member reads it; only admins see its forms
(and only they may send them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, ClassVar

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api import schemas
from api.deps import Caller, SessionsDep
from api.errors import not_found
from api.inbox_email import invitation_renderer
from api.web import session
from api.web.accounts import account_name, masked
from api.web.forms import Problems, problems_of, read_form
from api.web.render import PageContext, page, redirect
from api.web.session import (
    MaybeViewer,
    SignedInAdmin,
    SignedInEmployer,
    SignedInProfileEditor,
    Viewer,
    WrongRole,
)
from core import organisation, rulebook, zones
from core.db import Employer
from core.internship import MemberRole, Role
from core.rulebook import MEMBER_ROLE_NAMES, OrgRight
from core.settings import Settings

router = APIRouter(include_in_schema=False)

PAGE = "/organisation"
IdPath = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
SecretPath = Annotated[str, Path(max_length=100)]


# ---------------------------------------------------------------- what the page shows


@dataclass(frozen=True)
class RoleChoice:
    value: str
    label: str
    selected: bool


def role_choices(chosen: str) -> list[RoleChoice]:
    return [RoleChoice(r.value, MEMBER_ROLE_NAMES[r], r.value == chosen) for r in MemberRole]


@dataclass(frozen=True)
class MemberRow:
    """One member as the table shows them; `choices` and `own_only` fill their change form
    (as saved, or as just typed when it was refused: `error`)."""

    id: str
    name: str
    email: str
    role_name: str
    duties: str
    joined_at: datetime
    you: bool
    choices: list[RoleChoice]
    own_only: bool
    error: str = ""


@dataclass(frozen=True)
class InvitationRow:
    id: str
    email: str
    role: str  # in words
    invited_by: str
    expires_at: datetime


@dataclass(frozen=True)
class OrganisationPage(PageContext):
    """The company's members (`members`, the viewer's own marked), and for admins
    (`can_manage`) their change and remove buttons, the invitations waiting (`invitations`)
    and the invitation form (`invite`, as typed, with `invite_errors`, its `invite_roles`);
    where the organisation's emails also go (`notify_email`, a form for `can_notify`); the
    card on file for members who may read it (`card_label`, None otherwise; `can_change_card`
    links to the card page)."""

    template: ClassVar[str] = "organisation.html"
    company: str
    members: list[MemberRow]
    can_manage: bool
    can_notify: bool
    can_change_card: bool
    reads_card: bool
    card_label: str | None
    notify_email: str
    invitations: list[InvitationRow]
    invite: dict[str, str]
    invite_roles: list[RoleChoice]
    invitation_days: int
    max_invitations: int = organisation.MAX_OPEN_INVITATIONS
    invite_errors: Problems = field(default_factory=dict)
    notify_errors: Problems = field(default_factory=dict)
    leave_error: str = ""


@dataclass(frozen=True)
class Refusal:
    """A member form refused, shown beside that member (`member_id`) as typed."""

    member_id: str
    message: str
    role: str = ""
    own_only: bool | None = None


def _organisation_page(
    request: Request,
    viewer: Caller,
    sessions: sessionmaker,
    status: int = 200,
    *,
    invite: dict[str, str] | None = None,
    invite_errors: Problems | None = None,
    notify: str | None = None,
    notify_errors: Problems | None = None,
    refusal: Refusal | None = None,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    assert viewer.employer is not None
    with sessions() as db:  # fresh: what this request changed is shown
        org = db.get(Employer, viewer.employer.id)
    assert org is not None
    can_manage = rulebook.member_may(viewer.actor, OrgRight.MEMBERS)
    rows = []
    for m in organisation.members(sessions, org.id):
        role, scope = MemberRole(m.role), m.all_internships
        typed = refusal if refusal is not None and refusal.member_id == m.id else None
        rows.append(
            MemberRow(
                id=m.id,
                name=m.name,
                email=m.email,
                role_name=MEMBER_ROLE_NAMES[role],
                duties=organisation.role_in_words(role, scope),
                joined_at=m.created_at,
                you=m.id == viewer.account_id,
                choices=role_choices(typed.role if typed and typed.role else role.value),
                own_only=typed.own_only
                if typed and typed.own_only is not None
                else not organisation.scope_of(role, scope),
                error=typed.message if typed else "",
            )
        )
    waiting = organisation.pending_invitations(sessions, org.id) if can_manage else []
    names = {r.id: r.name for r in rows}
    typed_invite = invite or {}
    context = OrganisationPage(
        company=org.company,
        members=rows,
        can_manage=can_manage,
        can_notify=rulebook.member_may(viewer.actor, OrgRight.PROFILE),
        can_change_card=rulebook.member_may(viewer.actor, OrgRight.CARD),
        reads_card=rulebook.member_may(viewer.actor, OrgRight.MONEY),
        card_label=org.card_label,
        notify_email=(org.notify_email or "") if notify is None else notify,
        invitations=[
            InvitationRow(
                id=i.id,
                email=i.email,
                role=organisation.role_in_words(MemberRole(i.role), i.all_internships),
                invited_by=names.get(i.invited_by, "A former member"),
                expires_at=i.expires_at,
            )
            for i in waiting
        ],
        invite=typed_invite,
        invite_roles=role_choices(typed_invite.get("role", MemberRole.HIRING_MANAGER.value)),
        invitation_days=settings.colleague_invitation_days,
        invite_errors=invite_errors or {},
        notify_errors=notify_errors or {},
        leave_error=refusal.message if refusal and refusal.member_id == viewer.account_id else "",
    )
    return page(request, viewer, context, status)


@router.get(PAGE, response_class=HTMLResponse)
def organisation_page(
    request: Request, viewer: Viewer, _: SignedInEmployer, sessions: SessionsDep
) -> Response:
    return _organisation_page(request, viewer, sessions)


# ---------------------------------------------------------------- invitations


def _role_fields(form: FormData) -> tuple[str, bool]:
    """The role chosen, and whether "only the internships they post" is ticked."""
    return str(form.get("role") or ""), bool(form.get("own_only"))


@router.post(f"{PAGE}/invitations", response_class=HTMLResponse)
async def invite(request: Request, admin: SignedInAdmin, sessions: SessionsDep) -> Response:
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    role, own_only = _role_fields(form)
    typed = {"email": str(form.get("email") or "").strip(), "role": role}
    if own_only:
        typed["own_only"] = "1"
    try:
        asked = schemas.ColleagueInvitationIn.model_validate(
            {"email": typed["email"], "role": role, "all_internships": not own_only}
        )
    except ValidationError as err:
        return await run_in_threadpool(
            _organisation_page,
            request,
            admin,
            sessions,
            422,
            invite=typed,
            invite_errors=problems_of(err),
        )
    try:
        await session.spend_form_key(request, form)
    except session.FormAlreadySent:
        session.flash(request, "That invitation was sent already.", "info")
        return redirect(f"{PAGE}#invitations-heading")
    assert admin.member is not None
    try:
        row = await run_in_threadpool(
            organisation.invite,
            sessions,
            settings,
            admin.member,
            str(asked.email),
            asked.role,
            asked.all_internships,
            invitation_renderer(settings),
        )
    except organisation.Refused as err:
        return await run_in_threadpool(
            _organisation_page,
            request,
            admin,
            sessions,
            409,
            invite=typed,
            invite_errors={err.field or "email": err.message},
        )
    session.flash(
        request,
        f"Invitation sent to {row.email}: its link works once, for "
        f"{settings.colleague_invitation_days} days.",
    )
    return redirect(f"{PAGE}#invitations-heading")


@router.post(f"{PAGE}/invitations/{{invitation_id}}/revoke")
async def revoke_invitation(
    request: Request, admin: SignedInAdmin, sessions: SessionsDep, invitation_id: IdPath
) -> Response:
    await read_form(request)
    assert admin.employer is not None
    try:
        row = await run_in_threadpool(
            organisation.revoke_invitation, sessions, admin.employer.id, invitation_id
        )
    except organisation.Refused as err:
        if err.kind == "not_found":
            raise not_found("invitation") from err
        session.flash(request, err.message, "error")
        return redirect(PAGE)
    session.flash(request, f"The invitation to {row.email} is withdrawn: its link no longer works.")
    return redirect(f"{PAGE}#invitations-heading")


# ---------------------------------------------------------------- members


@router.post(f"{PAGE}/members/{{member_id}}", response_class=HTMLResponse)
async def change_member(
    request: Request, admin: SignedInAdmin, sessions: SessionsDep, member_id: IdPath
) -> Response:
    form = await read_form(request)
    role, own_only = _role_fields(form)
    assert admin.employer is not None
    try:
        asked = schemas.MemberChangeIn.model_validate(
            {"role": role, "all_internships": not own_only}
        )
        changed = await run_in_threadpool(
            organisation.change_member,
            sessions,
            admin.employer.id,
            member_id,
            asked.role,
            asked.all_internships,
        )
    except ValidationError as err:
        problem = next(iter(problems_of(err).values()))
        refusal = Refusal(member_id, problem, role, own_only)
        return await run_in_threadpool(
            _organisation_page, request, admin, sessions, 422, refusal=refusal
        )
    except organisation.Refused as err:
        if err.kind == "not_found":
            raise not_found("member") from err
        refusal = Refusal(member_id, err.message, role, own_only)
        return await run_in_threadpool(
            _organisation_page, request, admin, sessions, 409, refusal=refusal
        )
    role_now = MemberRole(changed.role)
    session.flash(
        request,
        f"{changed.name} is now: {organisation.role_in_words(role_now, changed.all_internships)}.",
    )
    return redirect(PAGE)


@router.post(f"{PAGE}/members/{{member_id}}/remove", response_class=HTMLResponse)
async def remove_member(
    request: Request,
    viewer: Viewer,
    _: SignedInEmployer,
    sessions: SessionsDep,
    member_id: IdPath,
) -> Response:
    """An admin removes a member, or a member leaves (their own id)."""
    await read_form(request)
    if not organisation.may_remove(viewer.actor, member_id):
        raise WrongRole(rulebook.lacking(OrgRight.MEMBERS))
    assert viewer.employer is not None
    leaving = member_id == viewer.account_id
    try:
        gone = await run_in_threadpool(
            organisation.remove_member,
            sessions,
            viewer.employer.id,
            member_id,
            leaving=leaving,
        )
    except organisation.Refused as err:
        if err.kind == "not_found":
            raise not_found("member") from err
        return await run_in_threadpool(
            _organisation_page,
            request,
            viewer,
            sessions,
            409,
            refusal=Refusal(member_id, err.message),
        )
    if leaving:  # their sessions have ended: this browser's cookie goes too
        await run_in_threadpool(session.end_session, request)
        session.flash(request, f"You left {viewer.employer.company}.")
        return redirect("/")
    session.flash(
        request,
        f"{gone.name} is removed: they are signed out everywhere, and their API tokens no "
        "longer work.",
    )
    return redirect(PAGE)


# ---------------------------------------------------------------- where emails also go


@router.post(f"{PAGE}/notify", response_class=HTMLResponse)
async def notify_address(
    request: Request, editor: SignedInProfileEditor, sessions: SessionsDep
) -> Response:
    form = await read_form(request)
    typed = str(form.get("notify_email") or "").strip()
    assert editor.employer is not None
    try:
        asked = schemas.OrganisationIn.model_validate({"notify_email": typed or None})
    except ValidationError as err:
        return await run_in_threadpool(
            _organisation_page,
            request,
            editor,
            sessions,
            422,
            notify=typed,
            notify_errors=problems_of(err),
        )
    address = str(asked.notify_email) if asked.notify_email else None
    await run_in_threadpool(organisation.set_notify_email, sessions, editor.employer.id, address)
    session.flash(
        request,
        f"Every email about your internships also goes to {address}."
        if address
        else "Emails about your internships go only to the members concerned.",
    )
    return redirect(f"{PAGE}#notify-heading")


# ---------------------------------------------------------------- joining


@dataclass(frozen=True)
class JoinPage(PageContext):
    """ "Join <company> as <role>": the name to join with (`name` as typed, `errors`), or,
    for an invitation that can't be used (`lapsed`, the reason in words), what to do;
    `current_account` names the account this browser is signed in to, which joining signs
    out of."""

    template: ClassVar[str] = "join.html"
    company: str = ""
    role: str = ""
    duties: str = ""
    invited_by: str = ""
    masked_email: str = ""
    name: str = ""
    errors: Problems = field(default_factory=dict)
    lapsed: str = ""
    current_account: str = ""


def _join_page(
    request: Request,
    viewer: Caller | None,
    sessions: sessionmaker,
    secret: str,
    status: int = 200,
    *,
    name: str = "",
    errors: Problems | None = None,
) -> HTMLResponse:
    found = organisation.invitation(sessions, secret)
    if found is None or found.lapsed:
        lapsed = organisation.lapsed_text(found.lapsed if found else "unknown")
        return page(request, viewer, JoinPage(lapsed=lapsed), 410)
    row = found.row
    role = MemberRole(row.role)
    own_only = not organisation.scope_of(role, row.all_internships)
    context = JoinPage(
        company=found.company,
        role=MEMBER_ROLE_NAMES[role].lower(),
        duties=organisation.OWN_ONLY_DUTIES if own_only else organisation.ROLE_DUTIES[role],
        invited_by=found.inviter,
        masked_email=masked(row.email),
        name=name,
        errors=errors or {},
        current_account=account_name(viewer) if viewer is not None else "",
    )
    return page(request, viewer, context, status)


@router.get("/join/{secret}", response_class=HTMLResponse)
def join_form(
    request: Request, viewer: MaybeViewer, sessions: SessionsDep, secret: SecretPath
) -> Response:
    """Opening the link only shows the form: mail scanners open links and must not spend
    them."""
    return _join_page(request, viewer, sessions, secret)


@router.post("/join/{secret}", response_class=HTMLResponse)
async def join(
    request: Request, viewer: MaybeViewer, sessions: SessionsDep, secret: SecretPath
) -> Response:
    form = await read_form(request)
    name = str(form.get("name") or "").strip()
    try:
        schemas.JoinIn.model_validate({"code": secret, "name": name})
    except ValidationError as err:
        return await run_in_threadpool(
            _join_page, request, viewer, sessions, secret, 422, name=name, errors=problems_of(err)
        )
    try:
        member, org = await run_in_threadpool(
            organisation.accept, sessions, secret, name, zones.guessed(form.get("time_zone"))
        )
    except organisation.Refused as err:
        if err.kind == "not_found":
            return await run_in_threadpool(_join_page, request, viewer, sessions, secret)
        errors = {"form": err.message}
        return await run_in_threadpool(
            _join_page, request, viewer, sessions, secret, 409, name=name, errors=errors
        )
    await run_in_threadpool(session.start_session, request, Role.EMPLOYER, member.id)
    role = organisation.role_in_words(MemberRole(member.role), member.all_internships)
    session.flash(request, f"Welcome to {org.company}! You're a member as: {role}.")
    return redirect(session.DASHBOARD)
