"""Launcher sign-up (with a Stripe Express payout account), their Express dashboard and yearly
earnings, and public portfolios."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, Response

from api import schemas
from api.deps import CallerDep, DbDep, LauncherDep, SessionsDep, SettingsDep, StripeDep
from api.errors import ApiError, not_found
from api.idempotency import idempotency_key
from api.routers.documents import earnings_response, wants_json
from api.routers.tokens import SIGN_UP_STEPS, ask_the_inbox
from api.service import documents, profiles, reads
from core.internship import Role
from core.stripe_api import PAYOUTS_FIRST, PayoutsNotSetUp, dashboard_link, onboarding_link

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


@router.post(
    "/me/dashboard_link",
    response_model=schemas.DashboardLinkOut,
    summary="A fresh link into my Stripe Express dashboard: payouts, tax forms (launcher)",
    description=(
        "Single use and short-lived: open it at once (ask again for another). 409 "
        "`payouts_not_set_up` until payout onboarding is finished "
        "(`POST /v1/launchers/me/onboarding_link`)."
    ),
    dependencies=[Depends(idempotency_key)],
)
def new_dashboard_link(
    launcher: LauncherDep, client: StripeDep, response: Response
) -> schemas.DashboardLinkOut:
    try:
        url = dashboard_link(client, launcher.stripe_account_id)
    except PayoutsNotSetUp:
        raise ApiError(
            409,
            "payouts_not_set_up",
            f"{PAYOUTS_FIRST} Get the set-up link with POST /v1/launchers/me/onboarding_link.",
        ) from None
    response.headers["Cache-Control"] = "no-store"  # the link logs in: never cached
    return schemas.DashboardLinkOut(url=url)


def _this_year() -> int:
    return datetime.now(UTC).year


@router.get(
    "/me/earnings",
    response_model=schemas.EarningsOut,
    summary="My earnings of one year: a CSV for my tax return, or JSON (launcher)",
    description=(
        "The payout statements of the calendar year (UTC; this year unless `year` is given), "
        "oldest first, and a total per currency: as the CSV attachment the Payouts page offers "
        "(`text/csv`, the default), or as JSON with `Accept: application/json`."
    ),
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "The year's earnings: CSV (an attachment) unless JSON is asked for",
        }
    },
)
async def earnings(
    request: Request,
    launcher: LauncherDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> schemas.EarningsOut | Response:
    year = year or _this_year()
    rows = await reads.run(sessions, documents.statements, launcher.id, year)
    if wants_json(request.headers.get("accept", "")):
        return documents.earnings_out(rows, year, settings.public_base_url)
    return earnings_response(rows, year)


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
