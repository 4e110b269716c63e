"""Who is signed in to the pages, and the guards around their forms.

A web session is a row of `web_sessions`, keyed by the SHA-256 of a random id; the browser's
cookie (Starlette's SessionMiddleware: signed, HttpOnly, SameSite=Lax, Secure when the service
is served over HTTPS) holds only that id, a CSRF token and the messages to show on the next
page. A session lasts a fixed time from sign-in (SESSION_DAYS, or OPS_SESSION_HOURS for ops),
however busy it is; signing out deletes its row, so a copy of the cookie opens nothing after.
Ops sessions also end when OPS_EMAIL changes. Sign-in is by a one-time link sent by email
(`core.inbox`): opening the link shows a button, so a mail scanner never signs anyone in.
Signing in always lands on a page (`landing`, never a form's POST-only route); a form sent
from a stale tab comes back to the page it was on, saying it was not sent (`form_page`).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import Depends, Request
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import and_, delete, select, update
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.routing import Match

from api.deps import Caller, sessions_of, settings_of
from api.idempotency import KEPT_FOR, claim_once
from core import rulebook
from core.accounts import token_hash
from core.db import Employer, Launcher, Member, WebSession, utcnow
from core.internship import Actor, Role
from core.rulebook import OrgRight
from core.settings import Settings

# Query parameter and form field names the templates share.
NEXT = "next"
CSRF_FIELD = "csrf_token"
# A mark on `next` (a query parameter of the page to come back to): a form was sent with no
# session (a stale tab), so what it asked was not done; said once the person is back.
NOT_SENT = "not_sent"
NOT_SENT_TEXT = (
    "You were signed out, so what you last sent was not done. Please do it again if you "
    "still want to."
)


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


# ---------------------------------------------------------------- where to come back to

DASHBOARD = "/dashboard"
# Pages that are never somewhere to come back to after signing in.
NOT_LANDINGS = ("/sign-in", "/sign-up", "/sign-out", "/v1/")


def _is_page(request: Request, path: str) -> bool:
    """Whether a browser GETting `path` finds a page of this app (not a POST-only route)."""
    if path.startswith(NOT_LANDINGS):
        return False
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


def landing(request: Request, path: str) -> str:
    """`path` (a safe, same-site path, its query kept) if a page answers GET there; else the
    nearest page above it (`/internships/{id}/withdrawal` is `/internships/{id}`); else the
    dashboard. Signing in never lands on a form's POST-only route ("Method Not Allowed")."""
    parts = urlsplit(safe_next(path))
    if _is_page(request, parts.path):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    up = parts.path.rstrip("/")
    while "/" in up.strip("/"):
        up = up.rsplit("/", 1)[0]
        if _is_page(request, up):
            return up
    return DASHBOARD


def form_page(request: Request) -> str:
    """The page a form sent with no session came from, marked NOT_SENT: the Referer's path if
    it is this site's, else the nearest page above the form's action, else the dashboard."""
    referer = urlsplit(request.headers.get("referer", ""))
    here = request.url
    same_site = (referer.scheme, referer.netloc) == (here.scheme, here.netloc)
    came_from = referer.path + (f"?{referer.query}" if referer.query else "")
    back = landing(request, came_from if same_site and referer.path else here.path)
    parts = urlsplit(back)
    query = [*parse_qsl(parts.query), (NOT_SENT, "1")]
    return f"{parts.path}?{urlencode(query)}"


def arrival(request: Request, next_path: str) -> str:
    """Where signing in ends: `next_path` as a page (`landing`); a NOT_SENT mark on it is
    taken off and said as a message on that page."""
    parts = urlsplit(safe_next(next_path))
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != NOT_SENT]
    if len(kept) != len(query):
        flash(request, NOT_SENT_TEXT, "info")
    return landing(request, parts.path + (f"?{urlencode(kept)}" if kept else ""))


def account_label(caller: Caller) -> str:
    """Who a signed-in caller is, name and address, as "You're signed in as …" says it."""
    if caller.member is not None:
        return f"{caller.member.name} ({caller.member.email})"
    if caller.launcher is not None:
        return f"{caller.launcher.name} ({caller.launcher.email})"
    return "the operations team"


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


# ---------------------------------------------------------------- server-side sessions

# The cookie's key for the session's id (the row's key is its SHA-256).
SESSION_ID = "sid"
# How stale a session's "last seen" may get before a page view writes it again: not one write
# per page.
LAST_SEEN_PRECISION = timedelta(minutes=5)
# Expired sessions deleted, at most, by each sign-in (the rest go with later sign-ins).
CLEANUP_BATCH = 100
# The part of a session's hash that names it on the settings page (not a secret: its id is).
HANDLE_LENGTH = 16


def handle_of(id_hash: str) -> str:
    """The public name of a session (for the list of where one is signed in, and revoking)."""
    return id_hash[:HANDLE_LENGTH]


def lifetime(settings: Settings, role: Role) -> timedelta:
    """How long a session of `role` lasts from sign-in (it never slides)."""
    if role == Role.OPS:
        return timedelta(hours=settings.ops_session_hours)
    return timedelta(days=settings.session_days)


def cookie_max_age(settings: Settings) -> int:
    """The cookie lives no longer than the longest session (whole seconds, at least one)."""
    longest = max(lifetime(settings, role) for role in Role if role != Role.SYSTEM)
    return max(1, math.ceil(longest.total_seconds()))


def ops_address(settings: Settings) -> str:
    return settings.ops_email.strip().lower()


def current_hash(request: Request) -> str | None:
    """The hash of this browser's session id, if its cookie holds one."""
    session_id = request.session.get(SESSION_ID)
    return token_hash(session_id) if isinstance(session_id, str) and session_id else None


def start_session(request: Request, role: Role, account_id: str) -> None:
    """A new session on sign-in: a new id and a new CSRF token (nothing carries over from
    before; a session this browser had is ended). Sessions that have expired are cleaned up
    on the way, a bounded batch at a time."""
    settings = settings_of(request)
    session_id = secrets.token_urlsafe(32)
    previous = current_hash(request)
    now = utcnow()
    with sessions_of(request).begin() as db:
        expired = (
            select(WebSession.id_hash).where(WebSession.expires_at <= now).limit(CLEANUP_BATCH)
        )
        db.execute(delete(WebSession).where(WebSession.id_hash.in_(expired)))
        if previous:
            db.execute(delete(WebSession).where(WebSession.id_hash == previous))
        db.add(
            WebSession(
                id_hash=token_hash(session_id),
                role=role.value,
                account_id=account_id,
                ops_email=ops_address(settings) if role == Role.OPS else None,
                user_agent=request.headers.get("user-agent", "")[:200],
                created_at=now,
                last_seen_at=now,
                expires_at=now + lifetime(settings, role),
            )
        )
    request.session.clear()
    request.session[SESSION_ID] = session_id
    csrf_token(request)
    _forget_viewer(request)


def end_session(request: Request) -> None:
    """Sign this browser out: its session's row goes, so a copy of the cookie opens nothing."""
    if digest := current_hash(request):
        with sessions_of(request).begin() as db:
            db.execute(delete(WebSession).where(WebSession.id_hash == digest))
    request.session.clear()
    _forget_viewer(request)


# ---------------------------------------------------------------- the signed-in caller


def _forget_viewer(request: Request) -> None:
    request.state.web_viewer = None


def _caller_of(
    row: WebSession,
    member: Member | None,
    employer: Employer | None,
    launcher: Launcher | None,
    settings: Settings,
    now: datetime,
) -> Caller | None:
    """Who a session stands for, or None if it no longer stands for anyone: it has expired,
    it is an ops session opened with another OPS_EMAIL, or its account is gone."""
    if row.expires_at <= now:
        return None
    if row.role == Role.OPS.value:
        if row.account_id != "ops" or row.ops_email != ops_address(settings):
            return None
        return Caller(Actor(Role.OPS, "ops"))
    if member is not None and employer is not None:
        return Caller.of_member(member, employer)
    if launcher is not None:
        return Caller(Actor(Role.LAUNCHER, launcher.id), launcher=launcher)
    return None


def _resolve(request: Request, digest: str) -> Caller | None:
    """The session's row and its account, in one query; a row that no longer stands for
    anyone is deleted."""
    settings = settings_of(request)
    now = utcnow()
    with sessions_of(request)() as db:
        found = db.execute(
            select(WebSession, Member, Employer, Launcher)
            .outerjoin(
                Member,
                and_(
                    WebSession.role == Role.EMPLOYER.value,
                    Member.id == WebSession.account_id,
                    Member.removed_at.is_(None),
                ),
            )
            .outerjoin(Employer, Employer.id == Member.employer_id)
            .outerjoin(
                Launcher,
                and_(WebSession.role == Role.LAUNCHER.value, Launcher.id == WebSession.account_id),
            )
            .where(WebSession.id_hash == digest)
        ).first()
        if found is None:  # signed out, here or everywhere, or revoked
            return None
        row, member, employer, launcher = found
        caller = _caller_of(row, member, employer, launcher, settings, now)
        if caller is None:
            db.execute(delete(WebSession).where(WebSession.id_hash == digest))
            db.commit()
        elif now - row.last_seen_at > LAST_SEEN_PRECISION:
            db.execute(
                update(WebSession).where(WebSession.id_hash == digest).values(last_seen_at=now)
            )
            db.commit()
    return caller


def maybe_viewer(request: Request) -> Caller | None:
    """Who is signed in to this browser, if anyone (looked up once per request)."""
    digest = current_hash(request)
    if digest is None:
        return None
    cached = getattr(request.state, "web_viewer", None)
    if cached is not None and cached[0] == digest:
        found: Caller | None = cached[1]
        return found
    found = _resolve(request, digest)
    if found is None:  # the cookie no longer means anyone: keep only its CSRF token
        request.session.pop(SESSION_ID, None)
        _forget_viewer(request)
        return None
    request.state.web_viewer = (digest, found)
    return found


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


def employer_with(right: OrgRight) -> Callable[[Caller], Caller]:
    """A page's dependency: the viewer, a member of an employer organisation holding `right`
    (anyone else gets their dashboard and who to ask)."""

    def member_holding(caller: Viewer) -> Caller:
        signed_in_employer(caller)
        if not rulebook.member_may(caller.actor, right):
            raise WrongRole(rulebook.lacking(right))
        return caller

    return member_holding


# The signed-in account of a role (a page also takes `Viewer`, resolved once, to render).
SignedInEmployer = Annotated[Employer, Depends(signed_in_employer)]
SignedInPoster = Annotated[Caller, Depends(employer_with(OrgRight.POST))]
SignedInCardHolder = Annotated[Caller, Depends(employer_with(OrgRight.CARD))]
SignedInProfileEditor = Annotated[Caller, Depends(employer_with(OrgRight.PROFILE))]
SignedInAdmin = Annotated[Caller, Depends(employer_with(OrgRight.MEMBERS))]
SignedInLauncher = Annotated[Launcher, Depends(signed_in_launcher)]
OpsViewer = Annotated[Caller, Depends(signed_in_ops)]
