"""The signed-in person's settings: where they are signed in (and ending those sessions), their
API tokens and private calendar feed (employers and launchers), a launcher's profile and
whether their portfolio is public, and an employer's company profile (the profile forms upload
an image too). The calendar feed itself (`/calendar/{secret}.ics`) is served here too: its
secret, not a session, is the credential."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import ClassVar, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Mapped, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from api import schemas
from api.deps import Caller, FilesDep, SessionsDep
from api.errors import not_found
from api.service import profiles
from api.web import session
from api.web.forms import Problems, problems_of, read_form
from api.web.render import PageContext, page, redirect
from api.web.session import SignedInLauncher, SignedInProfileEditor, Viewer, WrongRole
from core import calendars, images, rulebook, zones
from core.accounts import MAX_TOKENS, TooManyTokens, issue_token, revoke_token, tokens_of
from core.db import MESSAGE_EMAILS, ApiToken, Employer, Launcher, Member, WebSession, utcnow
from core.formats import plural
from core.internship import Role
from core.rulebook import OrgRight
from core.settings import Settings

router = APIRouter(include_in_schema=False)

SessionHandle = Path(pattern=rf"^[0-9a-f]{{{session.HANDLE_LENGTH}}}$")
TokenId = Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
FeedSecret = Path(max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
# A token's name as its owner types it (the API's single-line rules; stored up to 100 long).
TOKEN_NAME_LENGTH = 100
_token_name = TypeAdapter(schemas.Name)


# ---------------------------------------------------------------- what the page shows


@dataclass(frozen=True)
class SignedInSession:
    """One browser the account is signed in on, as the list shows it."""

    handle: str
    browser: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool


_BROWSERS = (  # checked in order: Edge and Opera say "Chrome" too, Chrome says "Safari"
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def browser_summary(user_agent: str) -> str:
    """ "Firefox on Windows", from the browser's User-Agent; a program's own name otherwise."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or f"A browser on {system}"
    program = re.split(r"[/\s]", user_agent.strip(), maxsplit=1)[0][:40]
    return program or "Unknown browser"


def _account(viewer: Caller) -> tuple[Role, str]:
    return viewer.actor.role, viewer.account_id


def _signed_in(
    sessions: sessionmaker, settings: Settings, viewer: Caller, current: str | None
) -> list[SignedInSession]:
    """The account's unexpired sessions, this browser's (`current`, its id hash) first."""
    role, account_id = _account(viewer)
    query = select(WebSession).where(
        WebSession.role == role.value,
        WebSession.account_id == account_id,
        WebSession.expires_at > utcnow(),
    )
    if role == Role.OPS:  # those opened with another OPS_EMAIL have ended
        query = query.where(WebSession.ops_email == session.ops_address(settings))
    with sessions() as db:
        rows = db.scalars(query.order_by(WebSession.created_at.desc())).all()
    listed = [
        SignedInSession(
            handle=session.handle_of(row.id_hash),
            browser=browser_summary(row.user_agent),
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            current=row.id_hash == current,
        )
        for row in rows
    ]
    return sorted(listed, key=lambda s: not s.current)  # this browser first


def _tokens(sessions: sessionmaker, viewer: Caller) -> list[ApiToken] | None:
    """The account's API tokens; None for ops, who have none here."""
    if viewer.actor.role == Role.OPS:
        return None
    return tokens_of(sessions, *_account(viewer))


def _launcher_choice(sessions: sessionmaker, launcher_id: str, choice: Mapped[bool]) -> bool:
    """One of the launcher's yes-or-no choices: whether their portfolio page is shown to anyone
    with its link (`portfolio_public`), whether employers may invite them (`takes_invitations`)."""
    with sessions() as db:  # fresh: the viewer's row was read before any change this request
        return bool(db.scalar(select(choice).where(Launcher.id == launcher_id)))


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours >= 48 and hours % 24 == 0:
        return plural(int(hours // 24), "day")
    if hours >= 1 and hours == int(hours):
        return plural(int(hours), "hour")
    return plural(round(span.total_seconds() / 60), "minute")


@dataclass(frozen=True)
class ProfileForm:
    """A profile form (a launcher's or a company's): what it holds (`values`, as saved or as
    just typed), what to fix beside each field (`errors`), the image now stored (`image_url`,
    None: `initials` instead), which parts are public (`public_parts`, launchers), and the
    image limit (`max_image`, in words; `accept`, the types for the file input)."""

    values: dict[str, str]
    errors: Problems
    image_url: str | None
    initials: str
    public_parts: list[str] = field(default_factory=list)
    max_image: str = ""
    accept: str = images.ACCEPT


@dataclass(frozen=True)
class SettingsPage(PageContext):
    """Where the account is signed in (`signed_in`, each sign-in lasting `session_lifetime`);
    its API tokens (`tokens`, None for ops, who have none here), the form for a new one
    (`token_name`, `token_errors`) and a token just created, shown this once (`new_token`);
    for a launcher, who sees their portfolio page (`portfolio_path`, None for employers
    and ops; `portfolio_public`) and their profile (`profile`); for an employer, their
    company's profile (`company`)."""

    template: ClassVar[str] = "settings.html"
    signed_in: list[SignedInSession]
    session_lifetime: str
    tokens: list[ApiToken] | None
    portfolio_path: str | None
    portfolio_public: bool
    max_tokens: int = MAX_TOKENS
    token_name: str = ""
    token_errors: Problems = field(default_factory=dict)
    new_token: str | None = None
    profile: ProfileForm | None = None
    company: ProfileForm | None = None
    takes_invitations: bool | None = None  # a launcher's choice (None: not a launcher)
    # How a launcher or a member hears of new messages (`core.db.MESSAGE_EMAILS`; None: ops,
    # who have no such choice), at most one email per conversation every `quiet_minutes`.
    message_emails: str | None = None
    quiet_minutes: str = ""
    message_emails_error: str = ""
    # The private calendar feed (`core.calendars`; None: ops, who have none): when the current
    # one was made (`feed_since`, None when off) and a new one's address, shown this once.
    calendar_feed: bool = False
    feed_since: datetime | None = None
    new_feed_url: str | None = None
    # The zone every moment is written in for them (`core.zones`), from `zone_choices`; ops'
    # is a setting (`zone_is_setting`: OPS_TIME_ZONE), not a choice here.
    time_zone: str = zones.UTC_NAME
    zone_is_setting: bool = False
    zone_choices: tuple[str, ...] = ()
    time_zone_error: str = ""


def _settings_page(
    request: Request,
    viewer: Caller,
    sessions: sessionmaker,
    status: int = 200,
    *,
    token_name: str = "",
    token_errors: Problems | None = None,
    new_token: str | None = None,
    profile: ProfileForm | None = None,
    company: ProfileForm | None = None,
    new_feed_url: str | None = None,
    choice_errors: dict[PersonChoice, str] | None = None,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    launcher = viewer.launcher
    limit = images.megabytes(settings.max_image_bytes)
    if launcher is not None and profile is None:
        profile = _launcher_form(sessions, launcher.id, limit)
    if company is None and rulebook.member_may(viewer.actor, OrgRight.PROFILE):
        assert viewer.employer is not None
        company = _company_form(sessions, viewer.employer.id, limit)
    context = SettingsPage(
        signed_in=_signed_in(sessions, settings, viewer, session.current_hash(request)),
        session_lifetime=_duration(session.lifetime(settings, viewer.actor.role)),
        tokens=_tokens(sessions, viewer),
        portfolio_path=f"/launchers/{launcher.id}" if launcher is not None else None,
        portfolio_public=launcher is not None
        and _launcher_choice(sessions, launcher.id, Launcher.portfolio_public),
        token_name=token_name,
        token_errors=token_errors or {},
        new_token=new_token,
        profile=profile,
        company=company,
        takes_invitations=_launcher_choice(sessions, launcher.id, Launcher.takes_invitations)
        if launcher is not None
        else None,
        message_emails=_person_choice(sessions, viewer, "message_emails"),
        quiet_minutes=_minutes(settings.message_quiet_minutes),
        message_emails_error=(choice_errors or {}).get("message_emails", ""),
        calendar_feed=viewer.actor.role != Role.OPS,
        feed_since=calendars.feed_since(sessions, *_account(viewer))
        if viewer.actor.role != Role.OPS
        else None,
        new_feed_url=new_feed_url,
        time_zone=_person_choice(sessions, viewer, "time_zone") or settings.ops_time_zone,
        zone_is_setting=_person_row(viewer) is None,
        zone_choices=zones.choices(),
        time_zone_error=(choice_errors or {}).get("time_zone", ""),
    )
    return page(request, viewer, context, status)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    return _settings_page(request, viewer, sessions)


# ---------------------------------------------------------------- sessions


def _revoke_session(sessions: sessionmaker, viewer: Caller, handle: str) -> bool:
    """Only a session of the viewer's own account; False if it has none by that handle."""
    role, account_id = _account(viewer)
    with sessions.begin() as db:
        gone = db.execute(
            delete(WebSession).where(
                WebSession.role == role.value,
                WebSession.account_id == account_id,
                WebSession.id_hash.startswith(handle),
            )
        ).rowcount
    return bool(gone)


@router.post("/settings/sessions/{handle}/revoke")
async def revoke_session(
    request: Request, viewer: Viewer, sessions: SessionsDep, handle: str = SessionHandle
) -> Response:
    await read_form(request)
    current = session.current_hash(request)
    if current is not None and session.handle_of(current) == handle:  # this browser's own
        await run_in_threadpool(session.end_session, request)
        session.flash(request, "You're signed out.")
        return redirect("/")
    if not await run_in_threadpool(_revoke_session, sessions, viewer, handle):
        raise not_found("session")
    session.flash(request, "That session is ended: the browser is signed out.")
    return redirect("/settings")


# ---------------------------------------------------------------- API tokens


def _token_holder(viewer: Caller) -> tuple[Role, str]:
    if viewer.actor.role == Role.OPS:
        raise WrongRole("Ops use the API token in the settings (OPS_API_TOKEN).")
    return _account(viewer)


def _name_problem(name: str) -> str | None:
    if not name:
        return "Name the token after what will use it, like “CI” or “Laptop script”"
    if len(name) > TOKEN_NAME_LENGTH:
        return f"Keep the name to {TOKEN_NAME_LENGTH} characters or fewer"
    try:
        _token_name.validate_python(name)
    except ValidationError as err:
        return str(err.errors()[0]["msg"]).removeprefix("Value error, ")
    return None


@router.post("/settings/tokens", response_class=HTMLResponse)
async def create_token(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    """A new token, shown in this answer only (never stored in the cookie, never shown again)."""
    role, account_id = _token_holder(viewer)
    form = await read_form(request)
    name = str(form.get("name", "")).strip()
    if problem := _name_problem(name):
        errors = {"name": problem}
        return await run_in_threadpool(
            _settings_page, request, viewer, sessions, 422, token_name=name, token_errors=errors
        )
    try:
        await session.spend_form_key(request, form)
    except session.FormAlreadySent:
        session.flash(
            request,
            "That form was already sent, and its token was shown once, then. If you didn't "
            "copy it, revoke it below and create another.",
            "info",
        )
        return redirect("/settings")
    try:
        token = await run_in_threadpool(issue_token, sessions, role, account_id, name)
    except TooManyTokens as err:
        errors = {"name": str(err)}
        return await run_in_threadpool(
            _settings_page, request, viewer, sessions, 422, token_name=name, token_errors=errors
        )
    return await run_in_threadpool(
        _settings_page, request, viewer, sessions, token_name=name, new_token=token
    )


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke_api_token(
    request: Request, viewer: Viewer, sessions: SessionsDep, token_id: str = TokenId
) -> Response:
    role, account_id = _token_holder(viewer)
    await read_form(request)
    if not await run_in_threadpool(revoke_token, sessions, role, account_id, token_id):
        raise not_found("token")
    session.flash(request, "The token is revoked: requests that send it are refused from now on.")
    return redirect("/settings")


# ---------------------------------------------------------------- the calendar feed


def _feed_holder(viewer: Caller) -> tuple[Role, str]:
    if viewer.actor.role == Role.OPS:
        raise WrongRole("Ops have no calendar feed: the dashboard lists what waits for ops.")
    return _account(viewer)


@router.post("/settings/calendar", response_class=HTMLResponse)
async def new_calendar_feed(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    """A new feed address, shown in this answer only; the old address stops working."""
    role, account_id = _feed_holder(viewer)
    form = await read_form(request)
    try:
        await session.spend_form_key(request, form)
    except session.FormAlreadySent:
        session.flash(
            request,
            "That form was already sent, and its address was shown once, then. If you didn't "
            "copy it, make a new link below.",
            "info",
        )
        return redirect("/settings")
    secret = await run_in_threadpool(calendars.new_feed, sessions, role, account_id)
    base = request.app.state.settings.public_base_url.rstrip("/")
    return await run_in_threadpool(
        _settings_page, request, viewer, sessions, new_feed_url=f"{base}/calendar/{secret}.ics"
    )


@router.post("/settings/calendar/off")
async def calendar_feed_off(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    role, account_id = _feed_holder(viewer)
    await read_form(request)
    if await run_in_threadpool(calendars.turn_off_feed, sessions, role, account_id):
        session.flash(
            request, "Your calendar feed is off: calendars subscribed to it stop updating."
        )
    else:
        session.flash(request, "Your calendar feed was already off.", "info")
    return redirect("/settings")


@router.get("/calendar/{secret}.ics")
async def calendar_feed(
    request: Request, sessions: SessionsDep, secret: str = FeedSecret
) -> Response:
    """The deadlines that concern the feed's owner, as a calendar subscribes to them.

    Not rate-limited: the secret has 256 bits (nothing to guess), a wrong one costs one indexed
    lookup, and calendar services fetch every subscriber's feed from a few addresses, which a
    per-address limit would throttle together."""
    settings: Settings = request.app.state.settings
    text = await run_in_threadpool(
        calendars.feed_for_secret, sessions, secret, settings.public_base_url, utcnow()
    )
    if text is None:  # said plainly: a calendar app shows no page, a person pasting it does
        return PlainTextResponse(
            "No calendar feed at this address: it was turned off or replaced by a new link. "
            "Make a new link in Settings, under Calendar feed.",
            status_code=404,
        )
    return Response(
        text,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Cache-Control": "private, no-store",  # a revoked feed stops at once
            "Content-Disposition": 'inline; filename="deadlines.ics"',
        },
    )


# ---------------------------------------------------------------- the launcher's portfolio


def _set_portfolio_public(sessions: sessionmaker, launcher_id: str, public: bool) -> None:
    with sessions.begin() as db:
        db.execute(
            update(Launcher).where(Launcher.id == launcher_id).values(portfolio_public=public)
        )


@router.post("/settings/portfolio")
async def portfolio_visibility(
    request: Request, launcher: SignedInLauncher, sessions: SessionsDep
) -> Response:
    form = await read_form(request)
    public = form.get("visibility") == "public"
    await run_in_threadpool(_set_portfolio_public, sessions, launcher.id, public)
    session.flash(
        request,
        "Your portfolio is public: anyone with its link sees it."
        if public
        else "Your portfolio is private: only signed-in employers and ops see it.",
    )
    return redirect("/settings")


# ---------------------------------------------------------------- the launcher's invitations


@router.post("/settings/invitations")
async def invitations_welcome(
    request: Request, launcher: SignedInLauncher, sessions: SessionsDep
) -> Response:
    form = await read_form(request)
    welcome = form.get("takes_invitations") == "true"
    changes = schemas.LauncherProfileIn(takes_invitations=welcome)
    await run_in_threadpool(profiles.change_launcher, sessions, launcher.id, changes)
    session.flash(
        request,
        "Employers may invite you to apply to their postings."
        if welcome
        else "Employers can no longer invite you to apply.",
    )
    return redirect("/settings#invitations-heading")


# ---------------------------------------------------------------- emails about messages


# The person's own choices (not their organisation's): how they hear of messages, their zone.
PersonChoice = Literal["message_emails", "time_zone"]


def _person_row(viewer: Caller) -> tuple[type[Launcher] | type[Member], str] | None:
    """Whose choice it is: the launcher's, or the member's own; None for ops."""
    if viewer.launcher is not None:
        return Launcher, viewer.launcher.id
    if viewer.member is not None:
        return Member, viewer.member.id
    return None


def _person_choice(sessions: sessionmaker, viewer: Caller, choice: PersonChoice) -> str | None:
    found = _person_row(viewer)
    if found is None:
        return None
    model, row_id = found
    with sessions() as db:  # fresh: the viewer's row was read before any change this request
        return db.scalar(select(getattr(model, choice)).where(model.id == row_id))


def _set_person_choice(
    sessions: sessionmaker, viewer: Caller, choice: PersonChoice, value: str
) -> None:
    found = _person_row(viewer)
    assert found is not None
    model, row_id = found
    with sessions.begin() as db:
        db.execute(update(model).where(model.id == row_id).values({choice: value}))


def _minutes(minutes: float) -> str:
    return plural(int(minutes), "minute") if minutes == int(minutes) else f"{minutes:g} minutes"


MESSAGE_EMAILS_SAVED = {
    "immediate": "You'll be emailed as messages arrive.",
    "digest": "You'll get a daily digest of new messages.",
    "off": "You'll get no emails about messages: your dashboard shows them.",
}


@router.post("/settings/messages", response_class=HTMLResponse)
async def message_emails(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    """How the launcher, or the member, hears of new messages; emails about the internships
    themselves always come."""
    return await _choose(
        request,
        viewer,
        sessions,
        PersonChoiceForm(
            "message_emails",
            MESSAGE_EMAILS.__contains__,
            "Choose one of the options.",
            MESSAGE_EMAILS_SAVED.__getitem__,
            "messages-heading",
            "Ops read messages on the pages: there is no email to choose.",
        ),
    )


@router.post("/settings/time-zone", response_class=HTMLResponse)
async def time_zone(request: Request, viewer: Viewer, sessions: SessionsDep) -> Response:
    """The zone every moment is written in for them, on pages and in emails."""
    return await _choose(
        request,
        viewer,
        sessions,
        PersonChoiceForm(
            "time_zone",
            zones.offered,
            "Choose your time zone from the list (a city in it, or UTC).",
            lambda choice: f"Times are now shown in {choice.replace('_', ' ')} time.",
            "zone-heading",
            "Ops' time zone is a setting of the service: OPS_TIME_ZONE.",
        ),
    )


@dataclass(frozen=True)
class PersonChoiceForm:
    """One of the person's own choices, as its form in Settings takes it."""

    name: PersonChoice
    allowed: Callable[[str], bool]
    refused: str  # said beside the field when the choice is not one of the allowed
    saved: Callable[[str], str]  # the message once saved
    anchor: str  # the section the page comes back to
    for_ops: str  # why ops have no such choice


async def _choose(
    request: Request, viewer: Caller, sessions: sessionmaker, form: PersonChoiceForm
) -> Response:
    if _person_row(viewer) is None:
        raise WrongRole(form.for_ops)
    sent = await read_form(request)
    choice = str(sent.get(form.name) or "")
    if not form.allowed(choice):
        return await run_in_threadpool(
            _settings_page, request, viewer, sessions, 422, choice_errors={form.name: form.refused}
        )
    await run_in_threadpool(_set_person_choice, sessions, viewer, form.name, choice)
    session.flash(request, form.saved(choice))
    return redirect(f"/settings#{form.anchor}")


# ---------------------------------------------------------------- profiles

PROFILE_PATH, COMPANY_PATH = "/settings/profile", "/settings/company"
UPLOAD_PATHS = (PROFILE_PATH, COMPANY_PATH)
_LAUNCHER_FIELDS = ("headline", "school", "graduation_year", "website", "linkedin", "github")


def _launcher_form(sessions: sessionmaker, launcher_id: str, limit: str) -> ProfileForm:
    with sessions() as db:  # fresh: the viewer's row was read before any change this request
        lc = db.get(Launcher, launcher_id)
    assert lc is not None
    shown = profiles.launcher_profile(lc, whole=True, own=True)
    values = {name: getattr(shown, name) for name in _LAUNCHER_FIELDS}
    values["skills"] = ", ".join(lc.skills or [])
    return ProfileForm(
        values={k: "" if v is None else str(v) for k, v in values.items()},
        errors={},
        image_url=shown.avatar_url,
        initials=shown.initials,
        public_parts=list(lc.public_parts or []),
        max_image=limit,
    )


def _company_form(sessions: sessionmaker, employer_id: str, limit: str) -> ProfileForm:
    with sessions() as db:
        employer = db.get(Employer, employer_id)
    assert employer is not None
    shown = profiles.company_profile(employer)
    return ProfileForm(
        values={"website": shown.website or "", "description": shown.description or ""},
        errors={},
        image_url=shown.logo_url,
        initials=shown.initials,
        max_image=limit,
    )


def _typed(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(form.get(name) or "").strip() for name in names}


def _launcher_changes(
    typed: dict[str, str], parts: list[str]
) -> tuple[schemas.LauncherProfileIn | None, Problems]:
    """The form as the API's request (every field: an empty one clears), or what to fix."""
    data: dict[str, object] = {k: v or None for k, v in typed.items() if k != "skills"}
    problems: Problems = {}
    year = typed["graduation_year"]
    if year and not year.isdigit():
        problems["graduation_year"] = "Give a year in digits, like 2027"
        data["graduation_year"] = None
    elif year:
        data["graduation_year"] = int(year)
    data["skills"] = [s.strip() for s in typed["skills"].split(",") if s.strip()]
    data["public_parts"] = [p for p in parts if p in schemas.PROFILE_PARTS]
    try:
        changes = schemas.LauncherProfileIn.model_validate(data)
    except ValidationError as err:
        return None, {**problems_of(err), **problems}
    return (None if problems else changes), problems


async def _upload(
    form: FormData, name: str, shape: images.Shape, max_bytes: int
) -> tuple[tuple[bytes, str] | None, str | None]:
    """The prepared image sent as `name` (None: no file chosen) or what is wrong with it."""
    upload = form.get(name)
    if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
        return None, None
    data = await upload.read()
    try:
        return await run_in_threadpool(profiles.prepare_image, data, shape, max_bytes), None
    except images.ImageRefused as err:
        return None, str(err)


@router.post(PROFILE_PATH, response_class=HTMLResponse)
async def save_profile(
    request: Request,
    viewer: Viewer,
    launcher: SignedInLauncher,
    sessions: SessionsDep,
    files: FilesDep,
) -> Response:
    """The launcher's profile and photo. Anything refused (a field, the photo) saves nothing:
    the form comes back with what was typed and a message beside each field to fix."""
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    typed = _typed(form, (*_LAUNCHER_FIELDS, "skills"))
    parts = [str(p) for p in form.getlist("public_parts")]
    changes, problems = _launcher_changes(typed, parts)
    prepared, refused = await _upload(form, "avatar", images.AVATAR, settings.max_image_bytes)
    if refused:
        problems["avatar"] = refused + " (your photo is unchanged)"
    if problems or changes is None:
        saved = await run_in_threadpool(
            _launcher_form, sessions, launcher.id, images.megabytes(settings.max_image_bytes)
        )
        again = replace(saved, values=typed, errors=problems, public_parts=parts)
        return await run_in_threadpool(
            _settings_page, request, viewer, sessions, 422, profile=again
        )
    await run_in_threadpool(profiles.change_launcher, sessions, launcher.id, changes)
    if prepared is not None or form.get("remove_avatar"):
        await run_in_threadpool(
            profiles.replace_image, sessions, files, Launcher, launcher.id, prepared
        )
    session.flash(request, "Your profile is saved.")
    return redirect("/settings#profile-heading")


@router.post(COMPANY_PATH, response_class=HTMLResponse)
async def save_company(
    request: Request,
    viewer: Viewer,
    editor: SignedInProfileEditor,
    sessions: SessionsDep,
    files: FilesDep,
) -> Response:
    """The company's website, description and logo, shown on its postings."""
    employer = editor.employer
    assert employer is not None
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    typed = _typed(form, ("website", "description"))
    problems: Problems = {}
    changes = None
    try:
        changes = schemas.CompanyProfileIn.model_validate({k: v or None for k, v in typed.items()})
    except ValidationError as err:
        problems = problems_of(err)
    prepared, refused = await _upload(form, "logo", images.LOGO, settings.max_image_bytes)
    if refused:
        problems["logo"] = refused + " (your logo is unchanged)"
    if problems or changes is None:
        saved = await run_in_threadpool(
            _company_form, sessions, employer.id, images.megabytes(settings.max_image_bytes)
        )
        again = replace(saved, values=typed, errors=problems)
        return await run_in_threadpool(
            _settings_page, request, viewer, sessions, 422, company=again
        )
    await run_in_threadpool(profiles.change_company, sessions, employer.id, changes)
    if prepared is not None or form.get("remove_logo"):
        await run_in_threadpool(
            profiles.replace_image, sessions, files, Employer, employer.id, prepared
        )
    session.flash(request, "Your company's profile is saved: your postings show it.")
    return redirect("/settings#company-heading")
