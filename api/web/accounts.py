"""Pages for accounts: sign up, sign in by email link, sign out, the employer's card and the
launcher's payout set-up."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

import stripe
from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.deps import SessionsDep, SettingsDep, StripeDep, TemporalDep
from api.inbox_email import renderer
from api.routers.stripe_webhook import payout_account_ready
from api.web import session
from api.web.forms import problems_of, read_form
from api.web.render import page, redirect
from api.web.session import MaybeViewer, SignedInEmployer, SignedInLauncher, Viewer
from core import inbox
from core.accounts import (
    confirm_card,
    confirm_payout_account,
    end_web_sessions,
    refresh_payout_account,
)
from core.internship import Role
from core.stripe_api import card_setup_url, onboarding_link

router = APIRouter(include_in_schema=False)
log = logging.getLogger("api.web.accounts")
Next = Annotated[str | None, Form(alias=session.NEXT)]


# ---------------------------------------------------------------- sign in and out


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, viewer: MaybeViewer, next: str | None = None) -> Response:
    if viewer is not None:
        return redirect(session.safe_next(next))
    return page(request, "sign_in.html", viewer, next=session.safe_next(next), email="", errors={})


@router.post("/sign-in", response_class=HTMLResponse)
async def request_link(
    request: Request, later: BackgroundTasks, settings: SettingsDep, sessions: SessionsDep
) -> Response:
    form = await read_form(request)
    next_path = session.safe_next(form.get(session.NEXT))
    email = str(form.get("email", "")).strip()
    if "@" not in email or len(email) > 320:
        errors = {"email": "Enter the email address you signed up with, like name@example.com"}
        return page(request, "sign_in.html", None, 422, next=next_path, email=email, errors=errors)
    # After the answer, which is the same whether or not the address has an account: neither
    # the page nor the time it takes tells a stranger who is signed up.
    later.add_task(inbox.sign_in, sessions, settings, email, next_path, renderer(settings))
    return page(request, "sign_in_sent.html", None, email=email)


def masked(email: str) -> str:
    """Enough of an address to recognise it as yours (or not): "a***@example.com"."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


@router.get("/sign-in/{token}", response_class=HTMLResponse)
def confirm_sign_in(
    request: Request, token: str, viewer: MaybeViewer, sessions: SessionsDep
) -> Response:
    """Opening the link only shows a button, naming the account it opens: mail scanners open
    links and must not spend them, and a forwarded link must not swap accounts unseen."""
    link = inbox.pending(sessions, token)
    opens = inbox.opens(sessions, link) if link else None
    return page(
        request,
        "sign_in_confirm.html",
        viewer,
        200 if link else 410,
        link=link,
        opens=opens,
        masked_email=masked(opens.email) if opens and opens.email else "",
        new_account=bool(link and link.sign_up is not None),
    )


@router.post("/sign-in/{token}", response_class=HTMLResponse)
async def sign_in(
    request: Request, token: str, sessions: SessionsDep, client: StripeDep
) -> Response:
    await read_form(request)  # checks the CSRF token
    redeemed = await run_in_threadpool(inbox.redeem, sessions, client, token)
    if redeemed is None:
        return page(request, "sign_in_confirm.html", None, 410, link=None)
    await run_in_threadpool(session.start_session, request, redeemed.role, redeemed.account_id)
    session.flash(
        request, "Welcome! Your account is ready." if redeemed.created else "You're signed in."
    )
    return redirect(redeemed.next_path)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await read_form(request)
    await run_in_threadpool(session.end_session, request)
    session.flash(request, "You're signed out.")
    return redirect("/")


@router.post("/sign-out/everywhere")
async def sign_out_everywhere(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    """Ends this account's sessions in every browser (a lost laptop, a shared computer)."""
    await read_form(request)
    await run_in_threadpool(end_web_sessions, sessions, viewer.actor.role, viewer.actor.id)
    await run_in_threadpool(session.end_session, request)
    session.flash(request, "You're signed out on every device.")
    return redirect("/")


# ---------------------------------------------------------------- sign up

SIGN_UP_FORMS: dict[Role, tuple[type[schemas.EmployerIn] | type[schemas.LauncherIn], str]] = {
    Role.EMPLOYER: (schemas.EmployerIn, "/card"),
    Role.LAUNCHER: (schemas.LauncherIn, "/payouts"),
}


@router.get("/sign-up/{role}", response_class=HTMLResponse)
def sign_up_form(request: Request, role: Role, viewer: MaybeViewer) -> Response:
    if role not in SIGN_UP_FORMS:
        return redirect("/sign-up/launcher")
    return page(request, f"sign_up_{role.value}.html", viewer, values={}, errors={})


@router.post("/sign-up/{role}", response_class=HTMLResponse)
async def sign_up(
    request: Request,
    role: Role,
    later: BackgroundTasks,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    if role not in SIGN_UP_FORMS:
        return redirect("/sign-up/launcher")
    form = await read_form(request)
    values = {k: str(v) for k, v in form.items()}
    fields: dict[str, object] = {k: values.get(k, "") for k in ("name", "email", "company")}
    if role == Role.LAUNCHER:
        del fields["company"]
        fields["skills"] = [s.strip() for s in values.get("skills", "").split(",")]
    schema, next_path = SIGN_UP_FORMS[role]
    try:
        details = schema.model_validate(fields, strict=False)
    except ValidationError as err:
        template = f"sign_up_{role.value}.html"
        return page(request, template, None, 422, values=values, errors=problems_of(err))
    # After the answer: the same page, in the same time, whether or not the address has an
    # account (its owner is emailed either way).
    later.add_task(
        inbox.sign_up,
        sessions,
        settings,
        role,
        details.model_dump(mode="json"),
        next_path,
        renderer(settings),
    )
    return page(request, "sign_in_sent.html", None, email=str(details.email), new_account=True)


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


@router.post("/card/confirm")
async def keep_card(
    request: Request, employer: SignedInEmployer, sessions: SessionsDep
) -> Response:
    """The owner says the card attached before they proved their inbox is theirs."""
    await read_form(request)
    await run_in_threadpool(confirm_card, sessions, employer.id)
    session.flash(request, "Thanks: kickoffs can charge this card now.")
    return redirect("/card")


@router.post("/payouts/confirm")
async def keep_payout_account(
    request: Request, launcher: SignedInLauncher, sessions: SessionsDep, temporal: TemporalDep
) -> Response:
    """The owner says the payout account set up before they proved their inbox is theirs:
    payments waiting for it go out now."""
    await read_form(request)
    await run_in_threadpool(confirm_payout_account, sessions, launcher.id)
    await payout_account_ready(temporal, sessions, launcher.id)
    session.flash(request, "Thanks: approved work is paid to this account now.")
    return redirect("/payouts")


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
