"""Who is signed in to the pages, and the guards around their forms.

The session is a signed cookie (Starlette's SessionMiddleware: HttpOnly, SameSite=Lax, Secure
when the service is served over HTTPS) holding the account's role and id, a CSRF token and the
messages to show on the next page. Sign-in is by a one-time link sent by email: only its hash
is stored, it expires after SIGN_IN_LINK_MINUTES, and it is spent by a POST (opening the link
shows a button), so a mail scanner that opens links never signs anyone in or spends the link.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api.deps import Caller, get_sessions, get_settings
from api.idempotency import KEPT_FOR, claim_once
from core.db import Employer, Launcher, OutboxEmail, SignInLink, utcnow
from core.internship import Actor, Role

# Query parameter and form field names the templates share.
NEXT = "next"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the sign-in page and back."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class CsrfRejected(Exception):
    """A form came without this session's CSRF token or form key (a forged or stale form)."""


class FormAlreadySent(Exception):
    """A form's one-time key was spent by an earlier send (a double click, a resend)."""

    def __init__(self, nonce: str) -> None:
        super().__init__(nonce)
        self.nonce = nonce


def safe_next(path: object) -> str:
    """Only paths on this site: a link can't send someone elsewhere after signing in."""
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
    ):
        return "/dashboard"
    return path


def sign_in_url(back_to: str) -> str:
    return f"/sign-in?{NEXT}={quote(back_to, safe='/')}"


# ---------------------------------------------------------------- session contents


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


def check_csrf(request: Request, sent: Any) -> None:
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise CsrfRejected()


# Spent keys are kept KEPT_FOR (a day): a key must be refused as stale well before it is forgotten.
FORM_KEY_MAX_AGE = KEPT_FOR / 2


def _form_keys(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.session_secret, salt="form-key")


def form_key(request: Request) -> str:
    """A one-time key for one rendered form, issued and signed by this server for this session.
    Its nonce becomes the Temporal update id (or the posting's id), so a form acts once."""
    return str(_form_keys(request).dumps([csrf_token(request), secrets.token_urlsafe(12)]))


async def spend_form_key(request: Request, form: FormData) -> str:
    """The form key's nonce, spent now. A key this server did not issue for this session, or
    one older than FORM_KEY_MAX_AGE, is a stale form; one already spent raises FormAlreadySent."""
    try:
        issued_to, nonce = _form_keys(request).loads(
            str(form.get("form_key") or ""), max_age=int(FORM_KEY_MAX_AGE.total_seconds())
        )
    except (BadData, ValueError, TypeError) as err:
        raise CsrfRejected() from err
    if not secrets.compare_digest(str(issued_to), str(request.session.get("csrf", ""))):
        raise CsrfRejected()
    sessions = request.app.state.sessions
    if not await run_in_threadpool(claim_once, sessions, "web-form", nonce, request.url.path):
        raise FormAlreadySent(nonce)
    return str(nonce)


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A message for the next page the browser shows (after the POST's redirect)."""
    # Assigned, not appended in place: the session only saves what is set.
    request.session["flash"] = [*request.session.get("flash", []), {"kind": kind, "text": text}]


def take_flashes(request: Request) -> list[dict[str, str]]:
    return list(request.session.pop("flash", []))


# The roles that have an account row (ops are whoever holds OPS_EMAIL's inbox).
ACCOUNTS: dict[str, type[Employer] | type[Launcher]] = {
    Role.EMPLOYER.value: Employer,
    Role.LAUNCHER.value: Launcher,
}


def start_session(request: Request, signed_in: Redeemed) -> None:
    """A new session on sign-in (a new CSRF token too: nothing carries over from before), in
    the account's current epoch."""
    request.session.clear()
    request.session.update(
        {"role": signed_in.role.value, "id": signed_in.account_id, "epoch": signed_in.epoch}
    )
    csrf_token(request)


def end_session(request: Request) -> None:
    request.session.clear()


# ---------------------------------------------------------------- the signed-in caller


def maybe_viewer(request: Request) -> Caller | None:
    """Who is signed in to this browser, if anyone."""
    role, account_id = request.session.get("role"), request.session.get("id")
    if role == Role.OPS.value:
        return Caller(Actor(Role.OPS, "ops"))
    model = ACCOUNTS.get(role or "")
    if model is None or not isinstance(account_id, str):
        return None
    with get_sessions(request)() as db:
        account = db.get(model, account_id)
    # The account is gone, or signed out everywhere since: the cookie no longer means anyone.
    if account is None or account.session_epoch != request.session.get("epoch", 0):
        end_session(request)
        return None
    if isinstance(account, Employer):
        return Caller(Actor(Role.EMPLOYER, account.id), employer=account)
    return Caller(Actor(Role.LAUNCHER, account.id), launcher=account)


def viewer(request: Request) -> Caller:
    found = maybe_viewer(request)
    if found is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(back if request.method == "GET" else request.url.path)
    return found


MaybeViewer = Annotated[Caller | None, Depends(maybe_viewer)]
Viewer = Annotated[Caller, Depends(viewer)]


class WrongRole(Exception):
    """A page for another role: answered with the viewer's dashboard and why."""


def signed_in_employer(caller: Viewer) -> Employer:
    if caller.employer is None:
        raise WrongRole("That page is for employers.")
    return caller.employer


def signed_in_launcher(caller: Viewer) -> Launcher:
    if caller.launcher is None:
        raise WrongRole("That page is for Career Launchers.")
    return caller.launcher


def signed_in_ops(caller: Viewer) -> Caller:
    if caller.actor.role != Role.OPS:
        raise WrongRole("That page is for the operations team.")
    return caller


# The signed-in account of a role (a page also takes `Viewer`, resolved once, to render).
SignedInEmployer = Annotated[Employer, Depends(signed_in_employer)]
SignedInLauncher = Annotated[Launcher, Depends(signed_in_launcher)]
OpsViewer = Annotated[Caller, Depends(signed_in_ops)]


# ---------------------------------------------------------------- one-time sign-in links


@dataclass(frozen=True)
class Account:
    role: Role
    id: str
    name: str
    email: str


def accounts_for(sessions: sessionmaker, email: str, ops_email: str) -> list[Account]:
    """Every account this address holds: an employer, a launcher, ops (one email may be
    several)."""
    email = email.strip().lower()
    found: list[Account] = []
    with sessions() as db:
        if e := db.scalar(select(Employer).where(Employer.email == email)):
            found.append(Account(Role.EMPLOYER, e.id, e.name, e.email))
        if launcher := db.scalar(select(Launcher).where(Launcher.email == email)):
            found.append(Account(Role.LAUNCHER, launcher.id, launcher.name, launcher.email))
    if email == ops_email.strip().lower():
        found.append(Account(Role.OPS, "ops", "Ops team", email))
    return found


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Links an account may have outstanding at once: asking again and again (or someone else asking
# for your address) can't flood an inbox.
MAX_OPEN_LINKS = 5


def send_sign_in_link(request: Request, account: Account, next_path: str, render: Any) -> bool:
    """Store a new link and queue its email in the outbox (the worker's relay sends it, so
    the page never waits on SMTP). `render(account, url, minutes)` gives the email. False if
    the account has MAX_OPEN_LINKS unexpired links already (none is sent)."""
    settings = get_settings(request)
    token = secrets.token_urlsafe(32)
    digest = _hash(token)
    url = f"{settings.public_base_url.rstrip('/')}/sign-in/{token}"
    email = render(account, url, settings.sign_in_link_minutes)
    with get_sessions(request).begin() as db:
        open_links = db.scalar(
            select(func.count())
            .select_from(SignInLink)
            .where(
                SignInLink.role == account.role.value,
                SignInLink.account_id == account.id,
                SignInLink.used_at.is_(None),
                SignInLink.expires_at > utcnow(),
            )
        )
        if (open_links or 0) >= MAX_OPEN_LINKS:
            return False
        db.add(
            SignInLink(
                token_hash=digest,
                role=account.role.value,
                account_id=account.id,
                next_path=safe_next(next_path),
                expires_at=utcnow() + timedelta(minutes=settings.sign_in_link_minutes),
            )
        )
        db.add(
            OutboxEmail(
                # Not an internship's email: keyed by the link, so it is sent once.
                internship_id=f"sign-in-{digest[:30]}",
                seq=0,
                kind="sign_in",
                recipient_role=account.role.value,
                recipient_id=account.id,
                to_email=account.email,
                subject=email.subject[:300],
                text_body=email.text,
                html_body=email.html,
            )
        )
    return True


@dataclass(frozen=True)
class Redeemed:
    role: Role
    account_id: str
    next_path: str
    epoch: int


def pending_link(sessions: sessionmaker, token: str) -> SignInLink | None:
    """The link if it can still be used (unspent and unexpired)."""
    with sessions() as db:
        link = db.get(SignInLink, _hash(token))
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        return None
    return link


def redeem(sessions: sessionmaker, token: str) -> Redeemed | None:
    """Spend the link: exactly one request can (two clicks race on one row update)."""
    digest = _hash(token)
    now = utcnow()
    with sessions.begin() as db:
        spent = db.execute(
            update(SignInLink)
            .where(
                SignInLink.token_hash == digest,
                SignInLink.used_at.is_(None),
                SignInLink.expires_at > now,
            )
            .values(used_at=now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            return None
        link = db.get(SignInLink, digest)
        assert link is not None
        model = ACCOUNTS.get(link.role)
        account = db.get(model, link.account_id) if model else None
        epoch = account.session_epoch if account else 0  # ops have no row: always 0
    return Redeemed(Role(link.role), link.account_id, link.next_path, epoch)
