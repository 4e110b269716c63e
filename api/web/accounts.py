"""Pages for accounts: sign up, sign in by email link, sign out, the employer's card and the
launcher's payout set-up."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import stripe
from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.deps import Caller, SessionsDep, SettingsDep, StripeDep, WorkflowsDep
from api.inbox_email import renderer
from api.service import documents, reads
from api.service.internships import payout_account_ready
from api.web import session
from api.web.billing import DocumentRow, earning_years, rows_of
from api.web.forms import Problems, problems_of, read_form
from api.web.render import PageContext, page, redirect
from api.web.session import MaybeViewer, SignedInCardHolder, SignedInLauncher, Viewer
from core import inbox, zones
from core.accounts import (
    confirm_card,
    confirm_payout_account,
    end_web_sessions,
    refresh_payout_account,
)
from core.db import Employer, Launcher, SignInLink
from core.internship import Role
from core.settings import Settings
from core.stripe_api import (
    PAYOUTS_FIRST,
    PayoutsNotSetUp,
    card_setup_url,
    dashboard_link,
    onboarding_link,
)

router = APIRouter(include_in_schema=False)
log = logging.getLogger("api.web.accounts")
Next = Annotated[str | None, Form(alias=session.NEXT)]


# ---------------------------------------------------------------- sign in and out


def link_minutes(request: Request) -> int:
    """How long a sign-in link works (SIGN_IN_LINK_MINUTES), as every page says it."""
    settings: Settings = request.app.state.settings
    return settings.sign_in_link_minutes


@dataclass(frozen=True)
class SignInPage(PageContext):
    """The form asking for the address to email a sign-in link to: `email` as typed (or the
    one this browser last asked a link for) and what is wrong with it (`errors`); `next` is
    where the link leads once used, and it works `link_minutes`."""

    template: ClassVar[str] = "sign_in.html"
    next: str
    link_minutes: int
    email: str = ""
    errors: Problems = field(default_factory=dict)


@dataclass(frozen=True)
class SignInSentPage(PageContext):
    """ "Check your email": a link is on its way to `email` if it has an account, or, after a
    sign-up (`new_account`), a link that confirms the address and creates the account; it
    works `link_minutes`."""

    template: ClassVar[str] = "sign_in_sent.html"
    email: str
    link_minutes: int
    new_account: bool = False


# The session's note of the last link this browser asked for: the "check your email" page
# shows it (after the form's redirect), and the sign-in form offers its address again.
SENT = "sent"
SENT_PATH = "/sign-in-sent"


def link_sent(request: Request, email: str, new_account: bool = False) -> Response:
    """After a form that emails a link: a redirect to the page saying so (Back, then Forward,
    never sends the form again)."""
    request.session[SENT] = {"email": email, "new_account": new_account}
    return redirect(SENT_PATH)


def _last_sent(request: Request) -> dict[str, Any]:
    sent = request.session.get(SENT)
    return sent if isinstance(sent, dict) and isinstance(sent.get("email"), str) else {}


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, viewer: MaybeViewer, next: str | None = None) -> Response:
    if viewer is not None:
        return redirect(session.arrival(request, next or session.DASHBOARD))
    return page(
        request,
        viewer,
        SignInPage(
            next=session.safe_next(next),
            link_minutes=link_minutes(request),
            email=_last_sent(request).get("email", ""),
        ),
    )


@router.post("/sign-in", response_class=HTMLResponse)
async def request_link(
    request: Request, later: BackgroundTasks, settings: SettingsDep, sessions: SessionsDep
) -> Response:
    form = await read_form(request)
    next_path = session.safe_next(form.get(session.NEXT))
    email = str(form.get("email", "")).strip()
    if "@" not in email or len(email) > 320:
        errors = {"email": "Enter the email address you signed up with, like name@example.com"}
        context = SignInPage(next_path, link_minutes(request), email=email, errors=errors)
        return page(request, None, context, 422)
    # After the answer, which is the same whether or not the address has an account: neither
    # the page nor the time it takes tells a stranger who is signed up.
    later.add_task(inbox.sign_in, sessions, settings, email, next_path, renderer(settings))
    return link_sent(request, email)


@router.get(SENT_PATH, response_class=HTMLResponse)
def sign_in_sent(request: Request, viewer: MaybeViewer) -> Response:
    sent = _last_sent(request)
    if not sent:  # nothing asked from this browser (or it has signed in since)
        return redirect("/sign-in")
    context = SignInSentPage(
        email=sent["email"],
        link_minutes=link_minutes(request),
        new_account=bool(sent.get("new_account")),
    )
    return page(request, viewer, context)


def masked(email: str) -> str:
    """Enough of an address to recognise it as yours (or not): "a***@example.com"."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


ROLE_NAMES = {
    Role.EMPLOYER: "employer",
    Role.LAUNCHER: "Career Launcher",
    Role.OPS: "operations team",
}


def account_name(viewer: Caller) -> str:
    """Who a signed-in viewer is, as "You're signed in as …" names them."""
    if viewer.employer is not None:
        return viewer.employer.name
    if viewer.launcher is not None:
        return viewer.launcher.name
    return "the operations team"


@dataclass(frozen=True)
class SignInConfirmPage(PageContext):
    """The button that uses a sign-in link (`link`; None once spent or expired), naming the
    account it opens (`opens`, a `role_name` such as "Career Launcher", a `masked_email`) or,
    for a sign-up (`new_account`), the account it creates; `current_account` names the account
    this browser is signed in to, which using the link signs out of. Links work
    `link_minutes`; one used or too old (`link` None) offers a new one to the address it was
    sent to (`renew_to`, masked as the link shows it; "" if the link is unknown)."""

    template: ClassVar[str] = "sign_in_confirm.html"
    link: SignInLink | None
    link_minutes: int
    opens: inbox.Account | None = None
    role_name: str = ""
    masked_email: str = ""
    new_account: bool = False
    current_account: str = ""
    renew_to: str = ""


def _lapsed_page(
    request: Request, viewer: Caller | None, sessions: sessionmaker, token: str
) -> Response:
    """A link used already or too old: a button for a new one to the same address (which the
    link's holder sees masked, as on a live link), or the sign-in form."""
    lapsed = inbox.lapsed(sessions, token)
    settings: Settings = request.app.state.settings
    address = inbox.address_of(sessions, lapsed, settings.ops_email) if lapsed else ""
    context = SignInConfirmPage(
        link=None, link_minutes=link_minutes(request), renew_to=masked(address) if address else ""
    )
    return page(request, viewer, context, 410)


@router.get("/sign-in/{token}", response_class=HTMLResponse)
def confirm_sign_in(
    request: Request, token: str, viewer: MaybeViewer, sessions: SessionsDep
) -> Response:
    """Opening the link only shows a button, naming the account it opens: mail scanners open
    links and must not spend them, and a forwarded link must not swap accounts unseen."""
    link = inbox.pending(sessions, token)
    if link is None:
        return _lapsed_page(request, viewer, sessions, token)
    opens = inbox.opens(sessions, link)
    context = SignInConfirmPage(
        link=link,
        link_minutes=link_minutes(request),
        opens=opens,
        role_name=ROLE_NAMES[opens.role],
        masked_email=masked(opens.email) if opens.email else "",
        new_account=link.sign_up is not None,
        current_account=account_name(viewer) if viewer is not None else "",
    )
    return page(request, viewer, context)


@router.post("/sign-in/{token}", response_class=HTMLResponse)
async def sign_in(
    request: Request, token: str, sessions: SessionsDep, client: StripeDep
) -> Response:
    await read_form(request)  # checks the CSRF token
    redeemed = await run_in_threadpool(inbox.redeem, sessions, client, token)
    if redeemed is None:
        return await run_in_threadpool(_lapsed_page, request, None, sessions, token)
    await run_in_threadpool(session.start_session, request, redeemed.role, redeemed.account_id)
    session.flash(
        request, "Welcome! Your account is ready." if redeemed.created else "You're signed in."
    )
    return redirect(session.arrival(request, redeemed.next_path))


@router.post("/sign-in/{token}/renew")
async def renew_link(
    request: Request,
    token: str,
    later: BackgroundTasks,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    """*Send me a new link* from a used or expired one: a new link to the address the old one
    went to, for the same place (a sign-up's link asks again to create the account). The page
    after names the address masked, as the old link did."""
    await read_form(request)
    lapsed = await run_in_threadpool(inbox.lapsed, sessions, token)
    if lapsed is None:
        return redirect("/sign-in")
    address = await run_in_threadpool(inbox.address_of, sessions, lapsed, settings.ops_email)
    later.add_task(inbox.renew, sessions, settings, lapsed, address, renderer(settings))
    return link_sent(request, masked(address), new_account=lapsed.sign_up is not None)


@router.post("/switch-account")
async def switch_account(request: Request) -> Response:
    """Signed in as one account, on a link meant for another: sign out, then sign in again
    and come back to the page (`next`)."""
    form = await read_form(request)
    back_to = session.landing(request, str(form.get(session.NEXT) or session.DASHBOARD))
    await run_in_threadpool(session.end_session, request)
    session.flash(request, "You're signed out. Sign in with the account the link was for.", "info")
    return redirect(session.sign_in_url(back_to))


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
    await run_in_threadpool(end_web_sessions, sessions, viewer.actor.role, viewer.account_id)
    await run_in_threadpool(session.end_session, request)
    session.flash(request, "You're signed out on every device.")
    return redirect("/")


# ---------------------------------------------------------------- sign up


@dataclass(frozen=True)
class SignUpPage(PageContext):
    """The sign-up form of one role: `values` as typed and what is wrong with them (`errors`)."""

    values: dict[str, str]
    errors: Problems


@dataclass(frozen=True)
class EmployerSignUpPage(SignUpPage):
    """An employer's sign-up: name, work email, company."""

    template: ClassVar[str] = "sign_up_employer.html"


@dataclass(frozen=True)
class LauncherSignUpPage(SignUpPage):
    """A Career Launcher's sign-up: name, email, skills."""

    template: ClassVar[str] = "sign_up_launcher.html"


SIGN_UP_FORMS: dict[
    Role, tuple[type[schemas.EmployerIn] | type[schemas.LauncherIn], str, type[SignUpPage]]
] = {
    Role.EMPLOYER: (schemas.EmployerIn, "/card", EmployerSignUpPage),
    Role.LAUNCHER: (schemas.LauncherIn, "/payouts", LauncherSignUpPage),
}


@router.get("/sign-up/{role}", response_class=HTMLResponse)
def sign_up_form(request: Request, role: Role, viewer: MaybeViewer) -> Response:
    if role not in SIGN_UP_FORMS:
        return redirect("/sign-up/launcher")
    form_page = SIGN_UP_FORMS[role][2]
    return page(request, viewer, form_page(values={}, errors={}))


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
    fields["time_zone"] = zones.guessed(values.get("time_zone"))
    schema, next_path, form_page = SIGN_UP_FORMS[role]
    try:
        details = schema.model_validate(fields, strict=False)
    except ValidationError as err:
        return page(request, None, form_page(values=values, errors=problems_of(err)), 422)
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
    return link_sent(request, str(details.email), new_account=True)


# ---------------------------------------------------------------- card and payouts


@dataclass(frozen=True)
class CardPage(PageContext):
    """The employer's card: none yet, one to confirm as theirs, or one on file; `returned` is
    true on the way back from Stripe: if its webhook has not attached the card yet, the page
    says only that it is on its way (and reloads itself a few times, static/pending.js)."""

    template: ClassVar[str] = "card.html"
    employer: Employer
    returned: bool = False


# Back from Checkout, how long the card page waits for Stripe's webhook to attach the card
# (seconds), looking every CARD_POLL seconds, each look a short session of its own.
CARD_WAIT = 5.0
CARD_POLL = 0.25


def _employer_now(sessions: sessionmaker, employer_id: str) -> Employer | None:
    with sessions() as db:
        return db.scalar(select(Employer).where(Employer.id == employer_id))


async def _card_attached(sessions: sessionmaker, employer: Employer) -> Employer:
    """The employer as soon as a card is on their record, or as they are after CARD_WAIT: no
    database session or connection is held while waiting."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + CARD_WAIT
    while loop.time() < give_up:
        await asyncio.sleep(CARD_POLL)
        now = await run_in_threadpool(_employer_now, sessions, employer.id)
        if now is not None and now.stripe_payment_method:
            return now
    return employer


@router.get("/card", response_class=HTMLResponse)
async def card(
    request: Request,
    viewer: Viewer,
    holder: SignedInCardHolder,
    sessions: SessionsDep,
    done: bool = False,
) -> Response:
    employer = holder.employer
    assert employer is not None
    if done and not employer.stripe_payment_method:
        employer = await _card_attached(sessions, employer)
    return page(request, viewer, CardPage(employer=employer, returned=done))


@router.post("/card")
async def add_card(
    request: Request, holder: SignedInCardHolder, client: StripeDep, settings: SettingsDep
) -> Response:
    """Off to Stripe Checkout (setup mode); Stripe's webhook attaches the card."""
    employer = holder.employer
    assert employer is not None
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


@dataclass(frozen=True)
class PayoutsPage(PageContext):
    """The launcher's payout account (not set up yet, one to confirm as theirs, or ready) and
    what was paid to them."""

    template: ClassVar[str] = "payouts.html"
    launcher: Launcher
    history: list[reads.Payout]  # what was paid to them, newest first
    # Their payout statements, newest first, and the years of the earnings export.
    statements: list[DocumentRow] = field(default_factory=list)
    earning_years: list[int] = field(default_factory=list)


@router.get("/payouts", response_class=HTMLResponse)
async def payouts(
    request: Request, viewer: Viewer, launcher: SignedInLauncher, sessions: SessionsDep
) -> Response:
    history = await reads.run(sessions, reads.payout_history, launcher.id)
    statements = await reads.run(sessions, documents.statements, launcher.id)
    return page(
        request,
        viewer,
        PayoutsPage(
            launcher=launcher,
            history=history,
            statements=rows_of(statements),
            earning_years=earning_years(statements),
        ),
    )


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


@router.post("/payouts/dashboard")
async def open_dashboard(
    request: Request, launcher: SignedInLauncher, client: StripeDep
) -> Response:
    """Off to the launcher's Stripe Express dashboard (tax forms, payouts): a fresh link on each
    click, never one in the page, since login links are single-use and short-lived."""
    await read_form(request)
    try:
        url = await run_in_threadpool(dashboard_link, client, launcher.stripe_account_id)
    except PayoutsNotSetUp:
        session.flash(
            request,
            f"{PAYOUTS_FIRST} Set them up with the button at the top of this page.",
            "error",
        )
        return redirect("/payouts")
    return redirect(url)


@router.post("/card/confirm")
async def keep_card(
    request: Request, holder: SignedInCardHolder, sessions: SessionsDep
) -> Response:
    """The owner says the card attached before they proved their inbox is theirs."""
    assert holder.employer is not None
    await read_form(request)
    await run_in_threadpool(confirm_card, sessions, holder.employer.id)
    session.flash(request, "Thanks: kickoffs can charge this card now.")
    return redirect("/card")


@router.post("/payouts/confirm")
async def keep_payout_account(
    request: Request, launcher: SignedInLauncher, sessions: SessionsDep, workflows: WorkflowsDep
) -> Response:
    """The owner says the payout account set up before they proved their inbox is theirs:
    payments waiting for it go out now."""
    await read_form(request)
    await run_in_threadpool(confirm_payout_account, sessions, launcher.id)
    await payout_account_ready(workflows, sessions, launcher.id)
    session.flash(request, "Thanks: approved work is paid to this account now.")
    return redirect("/payouts")


@dataclass(frozen=True)
class OnboardingCompletePage(PageContext):
    """Back from Stripe's payout onboarding without a launcher's session: thanks, and a link
    to sign in and see the payout status."""

    template: ClassVar[str] = "onboarding_complete.html"


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
    return page(request, viewer, OnboardingCompletePage())
