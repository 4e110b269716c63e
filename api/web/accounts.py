"""Pages for accounts: sign up, sign in by email link, sign out, the employer's card and the
launcher's payout set-up."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from activities.notifications import RenderedEmail
from api import schemas
from api.deps import SessionsDep, SettingsDep, StripeDep
from api.web import session
from api.web.forms import Problems, problems_of, read_form
from api.web.render import ENV, page, redirect
from api.web.session import MaybeViewer, SignedInEmployer, SignedInLauncher, Viewer, WrongRole
from core.accounts import (
    AccountExists,
    end_web_sessions,
    refresh_payout_account,
    sign_up_employer,
    sign_up_launcher,
)
from core.internship import Role
from core.stripe_api import card_setup_url, onboarding_link

router = APIRouter(include_in_schema=False)
log = logging.getLogger("api.web.accounts")
Next = Annotated[str | None, Form(alias=session.NEXT)]


def sign_in_email(account: session.Account, url: str, minutes: int) -> RenderedEmail:
    context = {"account": account, "url": url, "minutes": minutes}
    text = ENV.get_template("email/sign_in.txt")
    subject = "".join(text.blocks["subject"](text.new_context(context))).strip()
    return RenderedEmail(
        subject=subject,
        text=text.render(context),
        html=ENV.get_template("email/sign_in.html").render(context),
    )


# ---------------------------------------------------------------- sign in and out


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, viewer: MaybeViewer, next: str | None = None) -> Response:
    if viewer is not None:
        return redirect(session.safe_next(next))
    return page(request, "sign_in.html", viewer, next=session.safe_next(next), email="", errors={})


@router.post("/sign-in", response_class=HTMLResponse)
async def request_link(request: Request, settings: SettingsDep, sessions: SessionsDep) -> Response:
    form = await read_form(request)
    next_path = session.safe_next(form.get(session.NEXT))
    email = str(form.get("email", "")).strip()
    if "@" not in email or len(email) > 320:
        errors = {"email": "Enter the email address you signed up with, like name@example.com"}
        return page(request, "sign_in.html", None, 422, next=next_path, email=email, errors=errors)
    accounts = await run_in_threadpool(session.accounts_for, sessions, email, settings.ops_email)
    for account in accounts:
        await run_in_threadpool(
            session.send_sign_in_link, request, account, next_path, sign_in_email
        )
    # The same answer whether or not the address has an account: the page doesn't tell a
    # stranger who is signed up.
    return page(request, "sign_in_sent.html", None, email=email)


@router.get("/sign-in/{token}", response_class=HTMLResponse)
def confirm_sign_in(request: Request, token: str, sessions: SessionsDep) -> Response:
    """Opening the link only shows a button: mail scanners open links, and must not spend
    them."""
    link = session.pending_link(sessions, token)
    return page(request, "sign_in_confirm.html", None, 200 if link else 410, link=link)


@router.post("/sign-in/{token}", response_class=HTMLResponse)
async def sign_in(request: Request, token: str, sessions: SessionsDep) -> Response:
    await read_form(request)  # checks the CSRF token
    redeemed = await run_in_threadpool(session.redeem, sessions, token)
    if redeemed is None:
        return page(request, "sign_in_confirm.html", None, 410, link=None)
    session.start_session(request, redeemed)
    session.flash(request, "You're signed in.")
    return redirect(redeemed.next_path)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await read_form(request)
    session.end_session(request)
    session.flash(request, "You're signed out.")
    return redirect("/")


@router.post("/sign-out/everywhere")
async def sign_out_everywhere(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    """Ends this account's sessions in every browser (a lost laptop, a shared computer)."""
    await read_form(request)
    account = viewer.employer or viewer.launcher
    if account is None:  # ops sessions end when SESSION_SECRET changes
        raise WrongRole("Ops sign out everywhere by changing SESSION_SECRET.")
    await run_in_threadpool(end_web_sessions, sessions, type(account), account.id)
    session.end_session(request)
    session.flash(request, "You're signed out on every device.")
    return redirect("/")


# ---------------------------------------------------------------- sign up


@router.get("/sign-up/{role}", response_class=HTMLResponse)
def sign_up_form(request: Request, role: Role, viewer: MaybeViewer) -> Response:
    if role not in (Role.EMPLOYER, Role.LAUNCHER):
        return redirect("/sign-up/launcher")
    return page(request, f"sign_up_{role.value}.html", viewer, values={}, errors={})


@router.post("/sign-up/{role}", response_class=HTMLResponse)
async def sign_up(
    request: Request,
    role: Role,
    sessions: SessionsDep,
    client: StripeDep,
    settings: SettingsDep,
) -> Response:
    if role not in (Role.EMPLOYER, Role.LAUNCHER):
        return redirect("/sign-up/launcher")
    form = await read_form(request)
    values = {k: str(v) for k, v in form.items()}
    template = f"sign_up_{role.value}.html"
    try:
        if role == Role.EMPLOYER:
            employer = schemas.EmployerProfileIn.model_validate(
                {k: values.get(k, "") for k in ("name", "email", "company")}, strict=False
            )
            account: Any = await run_in_threadpool(
                lambda: sign_up_employer(
                    sessions,
                    client,
                    name=employer.name,
                    email=str(employer.email),
                    company=employer.company,
                    payment_method=None,
                )[0]
            )
            next_path = "/card"
        else:
            launcher = schemas.LauncherIn.model_validate(
                {
                    "name": values.get("name", ""),
                    "email": values.get("email", ""),
                    "skills": [s.strip() for s in values.get("skills", "").split(",")],
                },
                strict=False,
            )
            account = await run_in_threadpool(
                lambda: sign_up_launcher(
                    sessions,
                    client,
                    name=launcher.name,
                    email=str(launcher.email),
                    skills=launcher.skills,
                    public_base_url=settings.public_base_url,
                )[0]
            )
            next_path = "/payouts"
    except ValidationError as err:
        return page(request, template, None, 422, values=values, errors=problems_of(err))
    except AccountExists:
        errors: Problems = {"email": "An account with this email exists already: sign in instead."}
        return page(request, template, None, 409, values=values, errors=errors)
    found = session.Account(role, account.id, account.name, account.email)
    await run_in_threadpool(session.send_sign_in_link, request, found, next_path, sign_in_email)
    return page(request, "sign_in_sent.html", None, email=account.email, new_account=True)


# ---------------------------------------------------------------- card and payouts


@router.get("/card", response_class=HTMLResponse)
def card(
    request: Request, viewer: Viewer, employer: SignedInEmployer, done: bool = False
) -> Response:
    return page(request, "card.html", viewer, employer=employer, returned=done)


@router.post("/card")
async def add_card(
    request: Request, employer: SignedInEmployer, client: StripeDep, settings: SettingsDep
) -> Response:
    """Off to Stripe Checkout (setup mode); Stripe's webhook attaches the card."""
    form = await read_form(request)
    base = settings.public_base_url.rstrip("/")
    url = await run_in_threadpool(
        card_setup_url,
        client,
        employer.stripe_customer_id,
        f"{base}/card?done=true",
        f"{base}/card",
        # One Checkout Session per form sent: a double click reuses it, a new visit doesn't.
        f"card-{employer.id}-{form.get('form_key') or secrets.token_urlsafe(12)}",
    )
    return redirect(url)


@router.get("/payouts", response_class=HTMLResponse)
def payouts(request: Request, viewer: Viewer, launcher: SignedInLauncher) -> Response:
    return page(request, "payouts.html", viewer, launcher=launcher)


@router.post("/payouts")
async def set_up_payouts(
    request: Request, launcher: SignedInLauncher, client: StripeDep, settings: SettingsDep
) -> Response:
    """Off to Stripe's payout onboarding (links expire, so each visit gets a fresh one)."""
    await read_form(request)
    url = await run_in_threadpool(
        onboarding_link, client, launcher.stripe_account_id, settings.public_base_url
    )
    return redirect(url)


@router.get("/onboarding/complete", response_class=HTMLResponse)
def onboarding_complete(
    request: Request, viewer: MaybeViewer, sessions: SessionsDep, client: StripeDep
) -> Response:
    """Where Stripe's onboarding returns to: the payout account is read from Stripe at once
    (its webhook may come later, and says the same)."""
    if viewer is not None and viewer.launcher is not None:
        try:
            refresh_payout_account(sessions, client, viewer.launcher.stripe_account_id)
        except stripe.StripeError:
            log.warning("payout account not read on return from onboarding", exc_info=True)
        session.flash(request, "Thanks: Stripe has your payout details.")
        return redirect("/payouts")
    return page(request, "onboarding_complete.html", viewer)
