"""Dependencies: the database session, the internships' workflows, Stripe, and who is calling."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

import stripe
from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.service.workflows import InternshipWorkflows
from core import rulebook
from core.accounts import account_of_token, actor_of
from core.db import Employer, Launcher, Member
from core.files import FileStore
from core.internship import Actor, Role
from core.rulebook import OrgRight
from core.settings import Settings

# Dependencies that only read the app's state are coroutines: FastAPI runs a plain function
# dependency on a worker thread, and the hand-off cost more CPU than the work. `settings_of` and
# `sessions_of` are the same reads for plain calls.


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def sessions_of(request: Request) -> sessionmaker:
    return request.app.state.sessions


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


async def get_sessions(request: Request) -> sessionmaker:
    return sessions_of(request)


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


async def get_workflows(request: Request) -> InternshipWorkflows:
    return request.app.state.workflows


async def get_stripe(request: Request) -> stripe.StripeClient:
    return request.app.state.stripe


async def get_files(request: Request) -> FileStore:
    return request.app.state.files


SettingsDep = Annotated[Settings, Depends(get_settings)]
# For sync endpoints (run on a worker thread); async ones use short sessions via SessionsDep.
DbDep = Annotated[Session, Depends(get_db)]
SessionsDep = Annotated[sessionmaker, Depends(get_sessions)]
WorkflowsDep = Annotated[InternshipWorkflows, Depends(get_workflows)]
StripeDep = Annotated[stripe.StripeClient, Depends(get_stripe)]
FilesDep = Annotated[FileStore, Depends(get_files)]


@dataclass(frozen=True)
class Caller:
    """Who is calling: the actor the workflow and the rulebook judge, and their record (for an
    employer, the organisation and the member who calls)."""

    actor: Actor
    employer: Employer | None = None
    launcher: Launcher | None = None
    member: Member | None = None

    @staticmethod
    def of_member(member: Member, organisation: Employer) -> Caller:
        return Caller(actor_of(member), employer=organisation, member=member)

    @property
    def account_id(self) -> str:
        """Whose sessions and tokens are the caller's: an employer's are their member's (the
        actor's id is their organisation's)."""
        return self.member.id if self.member is not None else self.actor.id

    @property
    def time_zone(self) -> str | None:
        """The zone they read moments in; None for ops (their zone is a setting)."""
        person = self.member or self.launcher
        return person.time_zone if person is not None else None


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_ops_token(settings: Settings, authorization: str | None) -> bool:
    token = bearer(authorization)
    return token is not None and secrets.compare_digest(
        token.encode(), settings.ops_api_token.encode()
    )


async def current_caller(
    request: Request, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """Resolved in a session of its own (on a worker thread), closed before the endpoint waits
    on Temporal or Stripe: a request never holds a pooled connection while it waits."""
    if bearer(authorization) is None:
        raise ApiError(
            401, "unauthorized", "Send your API token as 'Authorization: Bearer <token>'"
        )
    # The idempotency layer may have resolved this request's caller already.
    caller = getattr(request.state, "caller", None) or await run_in_threadpool(
        caller_of, sessions_of(request), settings, authorization
    )
    if caller is None:
        raise ApiError(401, "unauthorized", "Unknown API token")
    return caller


def caller_of(
    sessions: sessionmaker, settings: Settings, authorization: str | None
) -> Caller | None:
    """The account an `Authorization` header stands for, however it is written; None if none."""
    token = bearer(authorization)
    if token is None:
        return None
    if is_ops_token(settings, authorization):
        return Caller(Actor(Role.OPS, "ops"))
    account = account_of_token(sessions, token)
    if isinstance(account, tuple):
        return Caller.of_member(*account)
    if isinstance(account, Launcher):
        return Caller(Actor(Role.LAUNCHER, account.id), launcher=account)
    return None


CallerDep = Annotated[Caller, Depends(current_caller)]


def _forbidden(role: Role) -> ApiError:
    article = "an" if role == Role.EMPLOYER else "a"
    return ApiError(403, "forbidden", f"Only {article} {role.value} may do this")


async def current_employer(caller: CallerDep) -> Employer:
    if caller.employer is None:
        raise _forbidden(Role.EMPLOYER)
    return caller.employer


async def current_launcher(caller: CallerDep) -> Launcher:
    if caller.launcher is None:
        raise _forbidden(Role.LAUNCHER)
    return caller.launcher


async def current_ops(caller: CallerDep) -> Actor:
    if caller.actor.role != Role.OPS:
        raise _forbidden(Role.OPS)
    return caller.actor


async def current_member(caller: CallerDep) -> Caller:
    """The caller, a member of an employer organisation (whatever their role)."""
    if caller.employer is None or caller.member is None:
        raise _forbidden(Role.EMPLOYER)
    return caller


def employer_with(right: OrgRight) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency: the caller, a member of an employer organisation holding `right`."""

    async def member_holding(caller: CallerDep) -> Caller:
        if caller.employer is None:
            raise _forbidden(Role.EMPLOYER)
        if not rulebook.member_may(caller.actor, right):
            raise ApiError(403, "forbidden", rulebook.lacking(right), {"needs": right.value})
        return caller

    return member_holding


EmployerDep = Annotated[Employer, Depends(current_employer)]
MemberDep = Annotated[Caller, Depends(current_member)]
PosterDep = Annotated[Caller, Depends(employer_with(OrgRight.POST))]
CardHolderDep = Annotated[Caller, Depends(employer_with(OrgRight.CARD))]
ProfileEditorDep = Annotated[Caller, Depends(employer_with(OrgRight.PROFILE))]
AdminDep = Annotated[Caller, Depends(employer_with(OrgRight.MEMBERS))]
OpsDep = Annotated[Actor, Depends(current_ops)]
LauncherDep = Annotated[Launcher, Depends(current_launcher)]
