"""Sessions that end (issue 14): server-side web sessions with an absolute lifetime, signing
out (here, everywhere, one other browser), ops sessions ending with OPS_EMAIL, the settings
page's API tokens, and the launcher's choice of a public portfolio. Over real HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import itsdangerous
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.web.session import LAST_SEEN_PRECISION, cookie_max_age
from api.web.settings import browser_summary
from core.accounts import MAX_TOKENS, issue_token
from core.db import ApiToken, Launcher, WebSession, utcnow
from core.internship import Role
from core.settings import Settings
from dev.harness import Inbox, links_in
from tests.conftest import Api
from tests.stack.test_web import (
    Browser,
    csrf_of,
    employer_account,
    form_keys_of,
    launcher_account,
    signed_in,
)

FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
SESSION_REVOKE = re.compile(r'action="/settings/sessions/([0-9a-f]{16})/revoke"')
TOKEN_REVOKE = re.compile(r'action="/settings/tokens/([A-Za-z0-9_-]+)/revoke"')
NEW_TOKEN = re.compile(r'id="new-token" type="text" readonly value="([^"]+)"')


# ---------------------------------------------------------------- helpers


def cookie_of(browser: Browser) -> str:
    value = browser.http.cookies.get("session")
    assert value, "this browser has no session cookie"
    return value


def contents(cookie: str) -> dict[str, Any]:
    """What the signed cookie holds (it is signed, not encrypted: anyone holding it reads it)."""
    data = cookie.rsplit(".", 2)[0]
    found: dict[str, Any] = json.loads(base64.b64decode(data))
    return found


def id_hash_of(browser: Browser) -> str:
    return hashlib.sha256(contents(cookie_of(browser))["sid"].encode()).hexdigest()


def session_row(sessions: sessionmaker, browser: Browser) -> WebSession | None:
    with sessions() as db:
        return db.get(WebSession, id_hash_of(browser))


def rows_of(sessions: sessionmaker, role: Role, account_id: str) -> int:
    with sessions() as db:
        count = db.scalar(
            select(func.count())
            .select_from(WebSession)
            .where(WebSession.role == role.value, WebSession.account_id == account_id)
        )
    return int(count or 0)


def with_cookie(api: Api, cookie: str) -> Browser:
    """Another browser holding a copy of a cookie."""
    copy = Browser(api)
    copy.http.cookies.set("session", cookie)
    return copy


async def signed_out(browser: Browser, path: str = "/settings") -> bool:
    answer = await browser.get(path)
    return answer.status_code == 303 and answer.headers["location"].startswith("/sign-in")


@asynccontextmanager
async def other_app(
    api: Api, env: WorkflowEnvironment, settings: Settings, **changes: Any
) -> AsyncIterator[tuple[FastAPI, Browser]]:
    """The app with other settings on the same database (as after a redeploy), and a browser
    for it (its pages need no Temporal, so it is called in process)."""
    app = create_app(settings.model_copy(update=changes), temporal=env.client)
    browser = Browser(api)
    await browser.http.aclose()
    browser.http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=api.url, timeout=30
    )
    try:
        yield app, browser
    finally:
        await browser.aclose()
        app.state.sessions.kw["bind"].dispose()


# ---------------------------------------------------------------- signing out


async def test_a_cookie_copied_before_signing_out_opens_nothing_after(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    launcher_id, email = launcher_account(sessions, settings)
    browser = Browser(api)
    browser.http.headers["User-Agent"] = "x" * 300
    await browser.sign_in(inbox, email)
    cookie = cookie_of(browser)
    # The cookie holds the session's id (and the CSRF token), never who is signed in.
    held = contents(cookie)
    assert set(held) <= {"sid", "csrf", "flash"} and "sid" in held
    assert launcher_id not in json.dumps(held)
    row = session_row(sessions, browser)
    assert row is not None and (row.role, row.account_id) == ("launcher", launcher_id)
    assert row.user_agent == "x" * 200 and row.ops_email is None
    copy = with_cookie(api, cookie)
    assert (await copy.get("/settings")).status_code == 200

    digest = id_hash_of(browser)
    sent = await browser.submit("/settings", "/sign-out")
    assert sent.status_code == 303
    with sessions() as db:
        assert db.get(WebSession, digest) is None
    assert await signed_out(copy) and await signed_out(browser)
    # A cookie of the old kind (role and id, signed with the same secret) opens nothing either.
    signer = itsdangerous.TimestampSigner(settings.session_secret)
    legacy = signer.sign(base64.b64encode(json.dumps({"role": "ops", "id": "ops"}).encode()))
    assert await signed_out(with_cookie(api, legacy.decode()), "/ops")
    for b in (browser, copy):
        await b.aclose()


async def test_the_cookie_lives_no_longer_than_the_longest_session(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, email = employer_account(sessions, settings)
    browser = Browser(api)
    before = inbox.count_to(email, "sign_in")
    await browser.submit("/sign-in", "/sign-in", email=email)
    message = await inbox.wait_to(email, "sign_in", before)
    path = httpx.URL(next(u for u in links_in(message) if "/sign-in/" in u)).path
    confirm = await browser.get(path)
    signed = await browser.http.post(path, data={"csrf_token": csrf_of(confirm.text)})
    found = re.search(r"Max-Age=(\d+)", signed.headers["set-cookie"])
    assert found, signed.headers["set-cookie"]
    max_age = int(found.group(1))
    longest = max(
        timedelta(days=settings.session_days), timedelta(hours=settings.ops_session_hours)
    )
    assert max_age == cookie_max_age(settings) == int(longest.total_seconds())
    await browser.aclose()


async def test_signing_out_everywhere_ends_the_other_browsers_session(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    launcher_id, email = launcher_account(sessions, settings)
    laptop, phone = await signed_in(api, inbox, email), await signed_in(api, inbox, email)
    assert rows_of(sessions, Role.LAUNCHER, launcher_id) == 2
    sent = await phone.submit("/settings", "/sign-out/everywhere")
    assert sent.status_code == 303
    assert await signed_out(laptop) and await signed_out(phone)
    assert rows_of(sessions, Role.LAUNCHER, launcher_id) == 0
    for b in (laptop, phone):
        await b.aclose()


async def test_ops_sign_out_everywhere_too(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    laptop = await signed_in(api, inbox, settings.ops_email)
    phone = await signed_in(api, inbox, settings.ops_email)
    row = session_row(sessions, laptop)
    assert row is not None and (row.role, row.account_id) == ("ops", "ops")
    assert row.ops_email == settings.ops_email.lower()
    assert row.expires_at - row.created_at == timedelta(hours=settings.ops_session_hours)
    for b in (laptop, phone):
        assert (await b.get("/ops")).status_code == 200
    settings_page = (await phone.get("/settings")).text
    assert "Sign out everywhere" in settings_page and "API tokens" not in settings_page
    sent = await phone.submit("/settings", "/sign-out/everywhere")
    assert sent.status_code == 303
    assert await signed_out(laptop, "/ops") and await signed_out(phone, "/ops")
    assert rows_of(sessions, Role.OPS, "ops") == 0
    for b in (laptop, phone):
        await b.aclose()


async def test_a_new_ops_email_ends_the_ops_sessions(
    api: Api, env: WorkflowEnvironment, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    ops = await signed_in(api, inbox, settings.ops_email)
    assert (await ops.get("/ops")).status_code == 200
    cookie = cookie_of(ops)
    new_address = "new-ops@microinternships.example"
    async with other_app(api, env, settings, ops_email=new_address) as (_, after):
        after.http.cookies.set("session", cookie)
        assert await signed_out(after, "/ops")
        assert session_row(sessions, ops) is None  # ended for good, on every process
        assert await signed_out(ops, "/ops")
        # The new address signs in (its link arrives at the new address).
        after.http.cookies.clear()
        await after.sign_in(inbox, new_address)
        assert (await after.get("/ops")).status_code == 200
    await ops.aclose()


# ---------------------------------------------------------------- lifetime


async def test_a_session_ends_at_its_absolute_lifetime_however_busy(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    # An expired session nobody came back to: cleaned up by a later sign-in.
    forgotten = hashlib.sha256(b"forgotten").hexdigest()
    with sessions.begin() as db:
        db.merge(
            WebSession(
                id_hash=forgotten,
                role="employer",
                account_id="gone",
                user_agent="",
                created_at=utcnow() - timedelta(days=20),
                last_seen_at=utcnow() - timedelta(days=20),
                expires_at=utcnow() - timedelta(days=6),
            )
        )
    _, email = employer_account(sessions, settings)
    browser = await signed_in(api, inbox, email)
    with sessions() as db:
        assert db.get(WebSession, forgotten) is None
    row = session_row(sessions, browser)
    assert row is not None
    assert row.expires_at - row.created_at == timedelta(days=settings.session_days)
    ends = row.expires_at

    # Seen again after a while: "last seen" moves (once per LAST_SEEN_PRECISION); the end doesn't.
    digest = id_hash_of(browser)
    a_while_ago = utcnow() - LAST_SEEN_PRECISION - timedelta(minutes=1)
    with sessions.begin() as db:
        db.execute(
            update(WebSession).where(WebSession.id_hash == digest).values(last_seen_at=a_while_ago)
        )
    assert (await browser.get("/settings")).status_code == 200
    seen = session_row(sessions, browser)
    assert seen is not None and seen.last_seen_at > a_while_ago and seen.expires_at == ends
    assert (await browser.get("/settings")).status_code == 200
    again = session_row(sessions, browser)
    assert again is not None and again.last_seen_at == seen.last_seen_at  # no write per page

    # Its time is up.
    with sessions.begin() as db:
        db.execute(
            update(WebSession)
            .where(WebSession.id_hash == digest)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await signed_out(browser)
    with sessions() as db:  # the cookie forgot it; the row is gone
        assert "sid" not in contents(cookie_of(browser)) and db.get(WebSession, digest) is None
    await browser.aclose()


async def test_a_short_session_lifetime_is_kept_to(
    api: Api, env: WorkflowEnvironment, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    """SESSION_DAYS of a few seconds: signed in, then signed out when they have passed."""
    _, email = launcher_account(sessions, settings)
    async with other_app(api, env, settings, session_days=4 / 86400) as (_, browser):
        await browser.sign_in(inbox, email)
        row = session_row(sessions, browser)
        assert row is not None and row.expires_at - row.created_at == timedelta(seconds=4)
        if utcnow() < row.expires_at - timedelta(seconds=1):
            assert (await browser.get("/settings")).status_code == 200
        await asyncio.sleep(max(0.0, (row.expires_at - utcnow()).total_seconds()) + 0.2)
        assert await signed_out(browser)


# ---------------------------------------------------------------- where you're signed in


async def test_the_settings_page_lists_both_browsers_and_revokes_the_other(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    launcher_id, email = launcher_account(sessions, settings)
    laptop, phone = Browser(api), Browser(api)
    laptop.http.headers["User-Agent"] = FIREFOX_ON_WINDOWS
    phone.http.headers["User-Agent"] = SAFARI_ON_IPHONE
    for b in (laptop, phone):
        await b.sign_in(inbox, email)
    shown = (await laptop.get("/settings")).text
    assert "Where you&#39;re signed in" in shown or "Where you're signed in" in shown
    assert "Firefox on Windows" in shown and "Safari on iPhone" in shown
    assert shown.count("This browser") == 1
    # One Revoke button: for the other browser (this one signs out instead).
    assert SESSION_REVOKE.findall(shown) == [id_hash_of(phone)[:16]]
    handle = SESSION_REVOKE.findall(shown)[0]
    revoked = await laptop.submit("/settings", f"/settings/sessions/{handle}/revoke")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/settings"
    assert await signed_out(phone)
    after = (await laptop.get("/settings")).text
    assert "That session is ended" in after and "Safari on iPhone" not in after
    assert rows_of(sessions, Role.LAUNCHER, launcher_id) == 1
    # Revoking this browser's own session is signing out.
    own = await laptop.submit("/settings", f"/settings/sessions/{id_hash_of(laptop)[:16]}/revoke")
    assert own.status_code == 303 and own.headers["location"] == "/"
    assert await signed_out(laptop)
    assert rows_of(sessions, Role.LAUNCHER, launcher_id) == 0
    for b in (laptop, phone):
        await b.aclose()


async def test_nobody_revokes_another_account_s_session(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    _, launcher_email = launcher_account(sessions, settings)
    _, employer_email = employer_account(sessions, settings)
    victim = await signed_in(api, inbox, launcher_email)
    handle = id_hash_of(victim)[:16]
    others = [
        await signed_in(api, inbox, employer_email),
        await signed_in(api, inbox, launcher_account(sessions, settings)[1]),  # same role
        await signed_in(api, inbox, settings.ops_email),
    ]
    for other in others:
        tried = await other.submit("/settings", f"/settings/sessions/{handle}/revoke")
        assert tried.status_code == 404 and "Not found" in tried.text
    assert (await victim.get("/settings")).status_code == 200
    unknown = await others[0].submit("/settings", f"/settings/sessions/{'0' * 16}/revoke")
    assert unknown.status_code == 404
    malformed = await others[0].submit("/settings", "/settings/sessions/not-a-handle/revoke")
    assert malformed.status_code == 422
    for b in [victim, *others]:
        await b.aclose()


def test_browsers_are_named_as_people_know_them() -> None:
    assert browser_summary(FIREFOX_ON_WINDOWS) == "Firefox on Windows"
    assert browser_summary(SAFARI_ON_IPHONE) == "Safari on iPhone"
    chrome_mac = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36"
    )
    assert browser_summary(chrome_mac) == "Chrome on macOS"
    assert browser_summary(chrome_mac + " Edg/126.0.0.0") == "Edge on macOS"
    assert browser_summary("python-httpx/0.28.1") == "python-httpx"
    assert browser_summary("") == "Unknown browser"


# ---------------------------------------------------------------- API tokens


async def test_api_tokens_are_made_shown_once_listed_and_revoked_on_the_page(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    employer_id, email = employer_account(sessions, settings)
    browser = await signed_in(api, inbox, email)
    empty = (await browser.get("/settings")).text
    assert "API tokens" in empty and "No API tokens yet" in empty

    html = (await browser.get("/settings")).text
    form = {"csrf_token": csrf_of(html), "form_key": form_keys_of(html)[0], "name": "CI"}
    made = await browser.http.post("/settings/tokens", data=form)
    assert made.status_code == 200 and "shown only this once" in made.text
    found = NEW_TOKEN.search(made.text)
    assert found
    token = found.group(1)
    assert token.startswith("emp_")
    assert token not in json.dumps(contents(cookie_of(browser)))  # never in the cookie
    # The same form sent again (a double click, a reload) makes no second token.
    again = await browser.http.post("/settings/tokens", data=form)
    assert again.status_code == 303 and again.headers["location"] == "/settings"
    with sessions() as db:
        held = db.scalars(select(ApiToken).where(ApiToken.account_id == employer_id)).all()
    assert [t.name for t in held] == ["CI"]

    me = await api.http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == employer_id
    listed = (await browser.get("/settings")).text
    assert token not in listed  # shown once
    assert "CI" in listed and "last used" in listed and "never used" not in listed
    token_id = TOKEN_REVOKE.findall(listed)
    assert token_id == [held[0].id]

    revoked = await browser.submit("/settings", f"/settings/tokens/{token_id[0]}/revoke")
    assert revoked.status_code == 303
    assert "The token is revoked" in (await browser.get("/settings")).text
    me = await api.http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    gone = await browser.submit("/settings", f"/settings/tokens/{token_id[0]}/revoke")
    assert gone.status_code == 404
    await browser.aclose()


async def test_a_token_beyond_the_limit_or_without_a_name_is_refused_beside_the_field(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    launcher_id, email = launcher_account(sessions, settings)
    browser = await signed_in(api, inbox, email)
    unnamed = await browser.submit("/settings", "/settings/tokens", name="  ")
    assert unnamed.status_code == 422 and 'id="f-name-error"' in unnamed.text
    for n in range(MAX_TOKENS):
        issue_token(sessions, Role.LAUNCHER, launcher_id, f"script {n}")
    over = await browser.submit("/settings", "/settings/tokens", name="One too many")
    assert over.status_code == 422 and 'id="f-name-error"' in over.text
    assert "revoke one you no longer use" in over.text
    assert 'value="One too many"' in over.text  # what was typed is kept
    assert "shown only this once" not in over.text
    await browser.aclose()


# ---------------------------------------------------------------- the public portfolio


async def test_a_portfolio_is_private_until_its_launcher_makes_it_public(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    launcher_id, launcher_email = launcher_account(sessions, settings)
    employer_id, employer_email = employer_account(sessions, settings)
    page = f"/launchers/{launcher_id}"
    stranger = Browser(api)
    asked = await stranger.get(page)
    assert asked.status_code == 303 and asked.headers["location"] == f"/sign-in?next={page}"
    assert "shown to signed-in employers" in (await stranger.get(asked.headers["location"])).text
    # Unknown and private look alike to a stranger.
    unknown = await stranger.get("/launchers/nobody-at-all")
    assert unknown.status_code == 303

    owner = await signed_in(api, inbox, launcher_email)
    own = await owner.get(page)
    assert own.status_code == 200 and "Only signed-in employers and ops see this page" in own.text
    employer = await signed_in(api, inbox, employer_email)
    assert (await employer.get(page)).status_code == 200
    rival = await signed_in(api, inbox, launcher_account(sessions, settings)[1])
    assert (await rival.get(page)).status_code == 404
    # Any API token reads it, public or not; no token, nothing.
    token = issue_token(sessions, Role.EMPLOYER, employer_id, "portfolio check")
    api_path = f"/v1/launchers/{launcher_id}/portfolio"
    by_api = await api.http.get(api_path, headers={"Authorization": f"Bearer {token}"})
    assert by_api.status_code == 200 and by_api.json()["launcher_id"] == launcher_id
    assert (await api.http.get(api_path)).status_code == 401

    shown = (await owner.get("/settings")).text
    assert 'value="private" checked' in shown and "any API token" in shown
    made_public = await owner.submit("/settings", "/settings/portfolio", visibility="public")
    assert made_public.status_code == 303
    assert 'value="public" checked' in (await owner.get("/settings")).text
    with sessions() as db:
        assert db.get_one(Launcher, launcher_id).portfolio_public
    seen = await stranger.get(page)
    assert seen.status_code == 200 and "Lee Launcher" in seen.text
    assert (await rival.get(page)).status_code == 200

    await owner.submit("/settings", "/settings/portfolio", visibility="private")
    assert (await stranger.get(page)).status_code == 303
    for b in (stranger, owner, employer, rival):
        await b.aclose()


# ---------------------------------------------------------------- who may use the new pages


async def test_who_may_use_the_settings_pages(
    api: Api, sessions: sessionmaker, settings: Settings, inbox: Inbox
) -> None:
    """Each new route against each kind of visitor: the status, and where a redirect goes.
    Rows act on someone else's token, session and portfolio."""
    owner_id, owner_email = launcher_account(sessions, settings)
    _, employer_email = employer_account(sessions, settings)
    _, launcher_email = launcher_account(sessions, settings)
    owner = await signed_in(api, inbox, owner_email)
    issue_token(sessions, Role.LAUNCHER, owner_id, "theirs")
    with sessions() as db:
        token_id = db.scalar(select(ApiToken.id).where(ApiToken.account_id == owner_id))
    handle = id_hash_of(owner)[:16]
    visitors = {
        "anonymous": Browser(api),
        "employer": await signed_in(api, inbox, employer_email),
        "launcher": await signed_in(api, inbox, launcher_email),
        "ops": await signed_in(api, inbox, settings.ops_email),
    }
    await visitors["anonymous"].get("/sign-in")  # a CSRF token, as a stranger's browser has
    # A status, or where the visitor is sent (303): to sign in, home (with why), to settings.
    sign_in, home, back = "/sign-in", "/dashboard", "/settings"
    # fmt: off
    table: list[tuple[str, int | str, int | str, int | str, int | str]] = [
        # method and path                              anonymous employer launcher ops
        ("GET /settings",                              sign_in,  200,     200,     200),
        ("POST /settings/tokens",                      sign_in,  200,     200,     home),
        (f"POST /settings/tokens/{token_id}/revoke",   sign_in,  404,     404,     home),
        (f"POST /settings/sessions/{handle}/revoke",   sign_in,  404,     404,     404),
        ("POST /settings/portfolio",                   sign_in,  home,    back,    home),
        (f"GET /launchers/{owner_id}",                 sign_in,  200,     404,     200),
    ]
    # fmt: on
    wrong = []
    for endpoint, *expected in table:
        method, path = endpoint.split(" ", 1)
        for who, want in zip(visitors, expected, strict=True):
            browser = visitors[who]
            if method == "GET":
                got = await browser.get(path)
            else:
                form_page = "/sign-in" if who == "anonymous" else "/settings"
                got = await browser.submit(form_page, path, name="matrix", visibility="private")
            where = got.headers.get("location", "").split("?")[0]
            if got.status_code != want and not (got.status_code == 303 and where == want):
                wrong.append(f"{endpoint} as {who}: {got.status_code} {where}, not {want}")
    assert not wrong, "\n".join(wrong)
    # Nothing of the owner's was touched.
    assert (await owner.get("/settings")).status_code == 200
    with sessions() as db:
        assert db.scalar(select(ApiToken.id).where(ApiToken.id == token_id)) == token_id
        assert not db.get_one(Launcher, owner_id).portfolio_public
    for b in [owner, *visitors.values()]:
        await b.aclose()
