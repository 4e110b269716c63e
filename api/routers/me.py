"""The caller's own account: who am I, and a new token for me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header

from api import schemas
from api.deps import CallerDep, SessionsDep, SettingsDep, bearer
from api.errors import ApiError
from api.idempotency import idempotency_key
from api.service import profiles
from core.accounts import rotate_token

router = APIRouter(prefix="/v1/me", tags=["account"])


@router.get("", response_model=schemas.MeOut, summary="Who this token belongs to")
def me(caller: CallerDep, settings: SettingsDep) -> schemas.MeOut:
    if (employer := caller.employer) and (member := caller.member):
        return schemas.MeOut(
            role="employer",
            id=employer.id,
            name=member.name,
            email=member.email,
            company=employer.company,
            company_profile=profiles.company_profile(employer),
            time_zone=member.time_zone,
            member_id=member.id,
            member_role=caller.actor.member_role,
            own_internships_only=caller.actor.own_only,
        )
    if launcher := caller.launcher:
        return schemas.MeOut(
            role="launcher",
            id=launcher.id,
            name=launcher.name,
            email=launcher.email,
            time_zone=launcher.time_zone,
            skills=launcher.skills,
            payouts_enabled=launcher.payouts_enabled,
            profile=profiles.launcher_profile(launcher, whole=True, own=True),
        )
    return schemas.MeOut(
        role="ops",
        id="ops",
        name="Ops team",
        email=settings.ops_email,
        time_zone=settings.ops_time_zone,
    )


@router.post(
    "/token",
    response_model=schemas.TokenOut,
    summary=(
        "Rotate my API token: the new one is shown once; the old one, and every web session "
        "of the account, stop working"
    ),
    dependencies=[Depends(idempotency_key)],
)
def new_token(
    caller: CallerDep,
    sessions: SessionsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> schemas.TokenOut:
    account = caller.employer or caller.launcher
    token = bearer(authorization)
    if account is None or token is None:
        raise ApiError(403, "forbidden", "The ops token is set in the settings (OPS_API_TOKEN)")
    return schemas.TokenOut(
        api_token=rotate_token(sessions, caller.actor.role, caller.account_id, token)
    )
