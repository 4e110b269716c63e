"""Who is signed in to the pages, and the guards around their forms.

The session is a signed cookie (Starlette's SessionMiddleware: HttpOnly, SameSite=Lax, Secure
when the service is served over HTTPS) holding the account's role and id, a CSRF token and the
messages to show on the next page. Sign-in is by a one-time link sent by email: only its hash
is stored, it expires after SIGN_IN_LINK_MINUTES, and it is spent by a POST (opening the link
shows a button), so a mail scanner that opens links never signs anyone in or spends the link.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api.deps import Caller, get_sessions
from api.idempotency import KEPT_FOR, claim_once
from core.accounts import ACCOUNT_MODELS
from core.db import Employer, Launcher
from core.internship import Actor, Role

ROLE_VALUES = {role.value for role in Role}

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


def start_session(request: Request, role: Role, account_id: str) -> None:
    """A new session on sign-in (a new CSRF token too: nothing carries over from before)."""
    request.session.clear()
    request.session.update({"role": role.value, "id": account_id})
    csrf_token(request)


def end_session(request: Request) -> None:
    request.session.clear()


# ---------------------------------------------------------------- the signed-in caller


def maybe_viewer(request: Request) -> Caller | None:
    """Who is signed in to this browser, if anyone."""
    role, account_id = request.session.get("role"), request.session.get("id")
    if role == Role.OPS.value:
        return Caller(Actor(Role.OPS, "ops"))
    model = ACCOUNT_MODELS.get(Role(role)) if role in ROLE_VALUES else None
    if model is None or not isinstance(account_id, str):
        return None
    with get_sessions(request)() as db:
        account = db.get(model, account_id)
    if account is None:  # the account is gone: the cookie no longer means anyone
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
