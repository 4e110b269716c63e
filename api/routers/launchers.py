"""Launcher sign-up (with a Stripe Express payout account) and public portfolios."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import select

from api import schemas
from api.deps import CallerDep, DbDep, LauncherDep, SessionsDep, SettingsDep, StripeDep
from api.errors import not_found
from api.idempotency import idempotency_key
from api.presenters import internship_summaries
from core import matching
from core.accounts import sign_up_launcher
from core.db import Internship, Launcher, TimelineEvent
from core.internship import Stage
from core.stripe_api import onboarding_link

# How many of the newest open postings recommendations choose from.
RECOMMEND_FROM = 200

router = APIRouter(prefix="/v1/launchers", tags=["launchers"])


@router.post(
    "",
    status_code=201,
    response_model=schemas.LauncherOut,
    summary="Sign up as a Career Launcher; open onboarding_url to get paid",
    dependencies=[Depends(idempotency_key)],
)
def create_launcher(
    body: schemas.LauncherIn, sessions: SessionsDep, client: StripeDep, settings: SettingsDep
) -> schemas.LauncherOut:
    launcher, token, url = sign_up_launcher(
        sessions,
        client,
        name=body.name,
        email=body.email,
        skills=body.skills,
        public_base_url=settings.public_base_url,
    )
    return schemas.LauncherOut(id=launcher.id, api_token=token, onboarding_url=url)


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


@router.get(
    "/me/recommendations",
    response_model=list[schemas.RecommendationOut],
    summary="Open postings that fit me best, with the reasons (launcher)",
)
def recommendations(
    launcher: LauncherDep, db: DbDep, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> list[schemas.RecommendationOut]:
    """The newest open postings, ranked by how well the launcher's skills fit; the record part
    of the score is the launcher's own, the same for every posting."""
    open_postings = db.scalars(
        select(Internship)
        .where(Internship.stage == Stage.POSTED.value)
        .order_by(Internship.posted_at.desc())
        .limit(RECOMMEND_FROM)
    ).all()
    record = matching.records(db, [launcher.id]).get(launcher.id, matching.Record())
    ranked = []
    for summary in internship_summaries(db, open_postings):
        fit = matching.fit(summary.skills, launcher.skills, record)
        ranked.append(
            schemas.RecommendationOut(internship=summary, score=fit.score, reasons=fit.reasons)
        )
    ranked.sort(key=lambda r: -r.score)  # stable: newest first among equals
    return ranked[:limit]


@router.get(
    "/{launcher_id}/portfolio",
    response_model=schemas.Portfolio,
    summary="Completed internships with the ratings employers gave",
)
def portfolio(
    launcher_id: Annotated[str, Path(max_length=40)], caller: CallerDep, db: DbDep
) -> schemas.Portfolio:
    launcher = db.get(Launcher, launcher_id)
    if launcher is None:
        raise not_found("launcher")
    completed_at = (
        select(TimelineEvent.at)
        .where(TimelineEvent.internship_id == Internship.id, TimelineEvent.event == "completed")
        .scalar_subquery()
    )
    rows = db.execute(
        select(Internship, completed_at)
        .where(Internship.launcher_id == launcher_id, Internship.stage == Stage.COMPLETED.value)
        .order_by(completed_at.desc())
    ).all()
    items = [
        schemas.PortfolioItem(
            internship_id=r.id,
            title=r.title,
            company=r.company,
            category=r.category,
            completed_at=at,
            rating=r.employer_rating,
            comment=r.employer_comment,
        )
        for r, at in rows
    ]
    ratings = [i.rating for i in items if i.rating is not None]
    return schemas.Portfolio(
        launcher_id=launcher.id,
        name=launcher.name,
        skills=launcher.skills,
        completed=items,
        average_rating=round(sum(ratings) / len(ratings), 2) if ratings else None,
    )
