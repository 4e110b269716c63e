"""Launcher sign-up (with a Stripe Express payout account) and public portfolios."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query

from api import schemas
from api.deps import CallerDep, DbDep, LauncherDep, SessionsDep, SettingsDep, StripeDep
from api.errors import not_found
from api.idempotency import idempotency_key
from api.routers.tokens import SIGN_UP_STEPS, ask_the_inbox
from api.service import profiles, reads
from core.internship import Role
from core.stripe_api import onboarding_link

router = APIRouter(prefix="/v1/launchers", tags=["launchers"])


@router.post(
    "",
    status_code=202,
    response_model=schemas.SignUpOut,
    summary="Sign up as a Career Launcher: the account is created when you use the emailed code",
    description=SIGN_UP_STEPS,
    dependencies=[Depends(idempotency_key)],
)
def create_launcher(
    body: schemas.LauncherIn, later: BackgroundTasks, sessions: SessionsDep, settings: SettingsDep
) -> schemas.SignUpOut:
    return ask_the_inbox(later, sessions, settings, Role.LAUNCHER, body, "/payouts")


@router.post(
    "/me/onboarding_link",
    response_model=schemas.OnboardingLinkOut,
    summary="A fresh payout onboarding link (links expire)",
    dependencies=[Depends(idempotency_key)],
)
def new_onboarding_link(
    launcher: LauncherDep, client: StripeDep, settings: SettingsDep
) -> schemas.OnboardingLinkOut:
    url = onboarding_link(client, launcher.stripe_account_id, settings.public_base_url)
    return schemas.OnboardingLinkOut(onboarding_url=url)


@router.patch(
    "/me/profile",
    response_model=schemas.LauncherProfileOut,
    summary="Change my profile: the fields sent change, null clears one (launcher)",
    description=(
        "The photo is uploaded on the web settings page. `public_parts` lists what the public "
        "portfolio page shows besides the name and skills; employers and ops see every part. "
        "`takes_invitations`: whether employers may invite me to apply (on by default)."
    ),
)
def change_profile(
    body: schemas.LauncherProfileIn, launcher: LauncherDep, sessions: SessionsDep
) -> schemas.LauncherProfileOut:
    saved = profiles.change_launcher(sessions, launcher.id, body)
    return profiles.launcher_profile(saved, whole=True, own=True)


@router.get(
    "/me/recommendations",
    response_model=list[schemas.RecommendationOut],
    summary="Open postings that fit me best, with the reasons (launcher)",
)
def recommendations(
    launcher: LauncherDep, db: DbDep, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> list[schemas.RecommendationOut]:
    return reads.recommendations(db, launcher, limit)


@router.get(
    "/me/invitations",
    response_model=list[schemas.LauncherInvitationOut],
    summary="Invitations to apply I received: open ones and those I answered (launcher)",
    description=(
        'Newest first, at most 100. `answer` is "" while open (apply, or decline with '
        '`POST /v1/internships/{id}/invitation-declined`), then "accepted" or "declined".'
    ),
)
def invitations(launcher: LauncherDep, db: DbDep) -> list[schemas.LauncherInvitationOut]:
    return reads.launcher_invitations(db, launcher.id)


@router.get(
    "/{launcher_id}/portfolio",
    response_model=schemas.Portfolio,
    summary="Completed internships with the ratings employers gave",
    description=(
        "Any API token may read any launcher's portfolio. The launcher's choice of a public "
        "portfolio (web settings) decides only who sees its web page without signing in. "
        "`profile` holds every part for employers, ops and the launcher, and only the parts "
        "the launcher made public (`public_parts`) for other launchers."
    ),
)
def portfolio(
    launcher_id: Annotated[str, Path(max_length=40)], caller: CallerDep, db: DbDep
) -> schemas.Portfolio:
    found = reads.portfolio(db, launcher_id, caller.actor)
    if found is None:
        raise not_found("launcher")
    return found
