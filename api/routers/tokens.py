"""API tokens by proof of inbox: a sign-up (or a sign-in link's email) carries a one-time code,
and the code, exchanged here, gives the account an API token. Nobody gets a credential for an
address they don't read."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends
from sqlalchemy.orm import sessionmaker

from api import schemas
from api.deps import SessionsDep, SettingsDep, StripeDep
from api.errors import ApiError
from api.idempotency import idempotency_key
from api.inbox_email import renderer
from core import inbox
from core.accounts import issue_token
from core.db import Launcher
from core.formats import plural
from core.internship import Role
from core.settings import Settings
from core.stripe_api import onboarding_link

router = APIRouter(prefix="/v1/tokens", tags=["account"])

SIGN_UP_STEPS = (
    "Answers 202 at once, whether or not the address has an account. We email the address "
    "a link and a code: a new account is created when its owner uses either, and an address "
    "that has this account already is sent a sign-in code instead. Exchange the code for an "
    "API token with `POST /v1/tokens`."
)


def ask_the_inbox(
    later: BackgroundTasks,
    sessions: sessionmaker,
    settings: Settings,
    role: Role,
    body: schemas.EmployerIn | schemas.LauncherIn,
    next_path: str,
) -> schemas.SignUpOut:
    """A sign-up's answer, the same whatever the address: the email (to confirm the new
    account, or to sign in to the one it has) is queued after the answer is sent."""
    details = body.model_dump(mode="json")
    later.add_task(inbox.sign_up, sessions, settings, role, details, next_path, renderer(settings))
    return schemas.SignUpOut(
        email=str(body.email),
        message=(
            f"We sent a link and a code to {body.email}. Exchange the code for your API token "
            "with POST /v1/tokens, or open the link to use the web app. It works once, for "
            f"{plural(settings.sign_in_link_minutes, 'minute')}; nothing arrived? Check spam, "
            "or sign up again for a new one."
        ),
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.TokenIssuedOut,
    summary="Exchange the code from a sign-up or sign-in email for an API token",
    dependencies=[Depends(idempotency_key)],
    responses={
        410: {
            "description": "The code was used already, has expired or was never sent",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    },
)
def exchange_code(
    body: schemas.CodeIn, sessions: SessionsDep, client: StripeDep, settings: SettingsDep
) -> schemas.TokenIssuedOut:
    link = inbox.pending(sessions, body.code)
    if link is not None and link.role == Role.OPS.value:
        raise ApiError(403, "forbidden", "Ops use the token in the settings (OPS_API_TOKEN)")
    redeemed = inbox.redeem(sessions, client, body.code) if link else None
    if redeemed is None:
        raise ApiError(
            410,
            "code_expired",
            "This code was used already, is older than "
            f"{plural(settings.sign_in_link_minutes, 'minute')} or was never sent: sign up "
            "again with the same email for a new one",
            {"field": "code"},
        )
    token = issue_token(sessions, redeemed.role, redeemed.account_id, body.token_name)
    if redeemed.role == Role.EMPLOYER:
        return schemas.TokenIssuedOut(role="employer", id=redeemed.account_id, api_token=token)
    with sessions() as db:
        launcher = db.get(Launcher, redeemed.account_id)
    assert launcher is not None
    url = onboarding_link(client, launcher.stripe_account_id, settings.public_base_url)
    return schemas.TokenIssuedOut(
        role="launcher", id=launcher.id, api_token=token, onboarding_url=url
    )
