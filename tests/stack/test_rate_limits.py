"""Rate limits (api/rate_limits.py): per IP address and per account, in Redis or in memory.

Each test builds its own app with low limits (the rest of the suite runs with UNLIMITED). The
limiter answers before anything authenticates or validates, so most requests here need no
account: what is counted is the request, whatever its answer. Tests that share Redis use a key
prefix of their own, so runs never see each other's counts.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio
from fastapi import FastAPI
from limits.aio.storage import MemoryStorage
from prometheus_client import REGISTRY
from sqlalchemy.orm import sessionmaker
from temporalio.testing import WorkflowEnvironment

from api import rate_limits
from api.app import create_app
from core.settings import Settings
from dev.harness import free_port
from tests.conftest import Api, unique_email
from tests.e2e.test_deploy import compose, env_file, environment

REDIS_URL = "redis://127.0.0.1:6379/0"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def limited(settings: Settings, **changes: Any) -> Settings:
    """The session's settings with some limits (and REDIS_URL) changed."""
    return settings.model_copy(update={"redis_url": None, **changes})


def client(app: FastAPI, ip: str = "198.51.100.7") -> httpx.AsyncClient:
    """Requests to `app` from `ip`, as uvicorn would hand the address to the app."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def retry_after(answer: httpx.Response) -> int:
    seconds = int(answer.headers["retry-after"])
    assert 0 < seconds <= 60, seconds
    return seconds


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Redis key prefix of this test's own (the apps it creates count under it)."""
    own = f"test-rate-limits:{uuid.uuid4().hex}"
    monkeypatch.setattr(rate_limits, "KEY_PREFIX", own)
    yield own


async def keys_under(prefix: str) -> list[bytes]:
    r = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        return [key async for key in r.scan_iter(match=f"{prefix}*")]
    finally:
        await r.aclose()


@pytest.fixture
async def redis_keys(prefix: str) -> AsyncIterator[str]:
    """Redis at 127.0.0.1:6379 (CI runs one), and this test's keys removed after it."""
    r = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await r.execute_command("PING")
    except redis.RedisError as err:
        pytest.fail(f"these tests need Redis at {REDIS_URL} ({err}): apt-get install redis-server")
    try:
        yield prefix
    finally:
        keys = [key async for key in r.scan_iter(match=f"{prefix}*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


def launcher_body() -> dict[str, Any]:
    return {"name": "Lin Chen", "email": unique_email("lin"), "skills": ["writing"]}


# ---------------------------------------------------------------- the API


async def test_api_sign_up_beyond_the_limit_is_429_with_retry_after(
    settings: Settings, sessions: sessionmaker
) -> None:
    app = create_app(limited(settings, rate_limit_sign_up="3/minute;20/hour"))
    async with client(app) as http:
        for _ in range(3):
            asked = await http.post("/v1/launchers", json=launcher_body())
            assert asked.status_code != 429 and asked.status_code < 500, asked.text
        # Employers and launchers count together: both are sign-ups.
        refused = await http.post(
            "/v1/employers", json={"name": "Ada", "email": unique_email("ada"), "company": "Acme"}
        )
    assert refused.status_code == 429
    wait = retry_after(refused)
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"] == {
        "action": "sign_up",
        "limit": "3 per minute",
        "retry_after_seconds": wait,
    }
    assert error["message"].startswith("Too many sign-ups from your network address")
    assert "try again in" in error["message"] and "Nothing was done" in error["message"]

    # Another address is not held back by this one.
    async with client(app, ip="198.51.100.8") as other:
        assert (await other.post("/v1/launchers", json=launcher_body())).status_code != 429


async def test_every_guarded_route_is_counted_and_nothing_else(settings: Settings) -> None:
    """The rule table, through the middleware: each guarded route refuses its second request
    (limits of 1), and the routes around them are never refused."""
    one = {f"rate_limit_{action}": "1/minute" for action in rate_limits.ACTIONS}
    app = create_app(limited(settings, **one))
    guarded = [
        ("/v1/employers", "sign_up"),
        ("/v1/launchers", "sign_up"),
        ("/v1/tokens", "sign_in"),
        ("/v1/me/token", "tokens"),
        ("/v1/internships", "postings"),
        ("/v1/internships/abc123/applications", "applications"),
        ("/v1/internships/abc123/invitations", "invitations"),
        ("/v1/organisation/invitations", "invitations"),
        ("/v1/organisation/join", "sign_in"),
    ]
    for n, (path, action) in enumerate(guarded):
        async with client(app, ip=f"203.0.113.{n + 1}") as http:
            first = await http.post(path, json={})
            second = await http.post(path, json={})
        assert first.status_code != 429, (path, first.text)
        assert second.status_code == 429, (path, second.text)
        assert second.json()["error"]["details"]["action"] == action
    async with client(app, ip="203.0.113.99") as http:
        for _ in range(3):
            for method, path in (
                ("GET", "/v1/internships"),
                ("POST", "/v1/internships/abc123/selection"),
                ("POST", "/v1/launchers/me/onboarding_link"),
                ("GET", "/healthz"),
            ):
                answer = await http.request(method, path, json={} if method == "POST" else None)
                assert answer.status_code != 429, (method, path)

    assert rate_limits.action_for("POST", "/sign-up/employer") == "sign_up"
    assert rate_limits.action_for("POST", "/sign-in") == "sign_in"
    assert rate_limits.action_for("POST", "/sign-in/some-link-secret") == "sign_in"
    assert rate_limits.action_for("POST", "/settings/tokens") == "tokens"
    assert rate_limits.action_for("POST", "/internships/new") == "postings"
    assert rate_limits.action_for("POST", "/internships/abc123/applications") == "applications"
    assert rate_limits.action_for("POST", "/internships/abc123/invitations") == "invitations"
    assert rate_limits.action_for("POST", "/organisation/invitations") == "invitations"
    assert rate_limits.action_for("POST", "/join/an-invitation-secret") == "sign_in"
    assert rate_limits.action_for("GET", "/internships/new") is None
    assert rate_limits.action_for("POST", "/internships/abc123/kickoff") is None
    assert rate_limits.action_for("POST", "/v1/internships/abc123/applications/x") is None


async def test_per_account_limit_on_posting_is_independent_of_the_address(
    settings: Settings,
) -> None:
    """One bearer token from a new address each time is held to the account's limit; another
    token is not; and many tokens from one address are held to the address's limit."""
    app = create_app(limited(settings, rate_limit_postings="2/minute"))
    token = {"Authorization": "Bearer one-account-token"}
    for n in (1, 2):
        async with client(app, ip=f"192.0.2.{n}") as http:
            answer = await http.post("/v1/internships", json={}, headers=token)
            assert answer.status_code != 429, answer.text
    async with client(app, ip="192.0.2.3") as http:
        refused = await http.post("/v1/internships", json={}, headers=token)
        assert refused.status_code == 429
        retry_after(refused)
        assert refused.json()["error"]["message"].startswith(
            "Too many postings with this API token: at most 2 per minute"
        )
        # The refusal used up nothing of this address: another account posts from it.
        other = {"Authorization": "Bearer another-account-token"}
        assert (await http.post("/v1/internships", json={}, headers=other)).status_code != 429

    # The address's own limit, whatever the token.
    async with client(app, ip="192.0.2.4") as http:
        for n in (1, 2):
            headers = {"Authorization": f"Bearer token-{n}"}
            assert (await http.post("/v1/internships", json={}, headers=headers)).status_code != 429
        refused = await http.post(
            "/v1/internships", json={}, headers={"Authorization": "Bearer token-3"}
        )
    assert refused.status_code == 429
    assert "from your network address" in refused.json()["error"]["message"]


# ---------------------------------------------------------------- the pages


async def test_web_sign_in_beyond_the_limit_is_a_page_that_keeps_what_was_typed(
    settings: Settings, sessions: sessionmaker
) -> None:
    app = create_app(limited(settings, rate_limit_sign_in="2/minute"))
    email = unique_email("ada")
    async with client(app) as browser:
        form = await browser.get("/sign-in")
        match = CSRF.search(form.text)
        assert match, form.text
        sent = {"csrf_token": match[1], "email": email, "next": "/dashboard"}
        for _ in range(2):
            asked = await browser.post("/sign-in", data=sent)
            assert asked.status_code != 429 and asked.status_code < 500, asked.text
        refused = await browser.post("/sign-in", data=sent)

        assert refused.status_code == 429
        retry_after(refused)
        assert refused.headers["content-type"].startswith("text/html")
        assert refused.headers["cache-control"] == "no-store"
        page = refused.text
        assert "<h1>Too many attempts</h1>" in page
        assert "Too many sign-in attempts from your network address" in page
        assert "Nothing was sent or changed. Please wait" in page
        # What was typed, in a form that sends it again, with this session's CSRF token.
        resend = page[page.index('<form method="post" action="/sign-in"') :]
        resend = resend[: resend.index("</form>")]
        assert f'value="{email}"' in resend
        assert 'name="next" value="/dashboard"' in resend
        assert f'name="csrf_token" value="{match[1]}"' in resend
        assert not re.search(r"<script(?! src=\"/static/)", page) and "style=" not in page

        # A form that did not come from this session's page gets the explanation only.
        forged = await browser.post("/sign-in", data={**sent, "csrf_token": "forged"})
    assert forged.status_code == 429
    assert email not in forged.text and "Go to the start page" in forged.text


async def test_web_posting_refused_by_the_limit_keeps_a_long_description(
    settings: Settings,
) -> None:
    app = create_app(limited(settings, rate_limit_postings="1/minute"))
    async with client(app, ip="192.0.2.50") as browser:
        token = CSRF.search((await browser.get("/sign-in")).text)
        assert token
        description = "Line one of a long description.\nLine two, " + "x" * 200
        sent = {
            "csrf_token": token[1],
            "form_key": "k",
            "title": "Blog",
            "description": description,
        }
        first = await browser.post("/internships/new", data=sent)
        assert first.status_code != 429
        refused = await browser.post("/internships/new", data=sent)
    assert refused.status_code == 429
    assert "Too many postings" in refused.text
    assert 'name="description"' in refused.text and "<textarea" in refused.text
    assert "Line two, xxxx" in refused.text


# ---------------------------------------------------------------- where the counts live


async def test_two_api_servers_sharing_redis_count_together(
    settings: Settings, env: WorkflowEnvironment, redis_keys: str
) -> None:
    """Two uvicorn servers, each with its own app (and its own Redis connections), on real
    HTTP: N sign-ups are allowed across both, and the next is refused by either."""
    n = 3
    shared = limited(settings, redis_url=REDIS_URL, rate_limit_sign_up=f"{n}/minute")
    apps = [create_app(shared, temporal=env.client) for _ in range(2)]
    async with Api(apps[0], free_port()) as a, Api(apps[1], free_port()) as b:
        for served in (a, b, a):
            answer = await served.http.post("/v1/launchers", json={})  # 422, but counted
            assert answer.status_code == 422, answer.text
        for served in (b, a):
            refused = await served.http.post("/v1/launchers", json=launcher_body())
            assert refused.status_code == 429, refused.text
            retry_after(refused)
    keys = await keys_under(redis_keys)
    assert any(b"sign_up/ip/127.0.0.1" in key for key in keys), keys


async def test_without_redis_url_each_process_counts_in_memory(
    settings: Settings, prefix: str
) -> None:
    app = create_app(limited(settings, rate_limit_sign_up="2/minute"))
    async with client(app) as http:
        for _ in range(2):
            assert (await http.post("/v1/launchers", json={})).status_code == 422
        assert (await http.post("/v1/launchers", json={})).status_code == 429
    assert isinstance(limiter_of(app).strategy.storage, MemoryStorage)
    assert limiter_of(app).where == "memory"
    # Another process (another app) has counts of its own.
    async with client(create_app(limited(settings, rate_limit_sign_up="2/minute"))) as http:
        assert (await http.post("/v1/launchers", json={})).status_code == 422
    with contextlib.suppress(redis.RedisError):  # nothing was written to Redis, if it runs here
        assert await keys_under(prefix) == []


async def test_redis_down_lets_requests_through_with_a_warning(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(limited(settings, redis_url=down, rate_limit_sign_up="1/minute"))
    unchecked = REGISTRY.get_sample_value("api_rate_limit_unchecked_total") or 0
    with caplog.at_level(logging.WARNING, logger="api.rate_limits"):
        async with client(app) as http:
            for _ in range(3):
                assert (await http.post("/v1/launchers", json={})).status_code == 422
    warnings = [r.getMessage() for r in caplog.records if r.name == "api.rate_limits"]
    assert len(warnings) == 1, warnings  # once per outage, not once per request
    assert "rate limits are not enforced" in warnings[0] and "did not answer" in warnings[0]
    assert (REGISTRY.get_sample_value("api_rate_limit_unchecked_total") or 0) - unchecked == 3


def limiter_of(app: FastAPI) -> rate_limits.Limiter:
    """The app's limiter (its middleware stack is built by the first request)."""
    layer: Any = app.middleware_stack
    while not isinstance(layer, rate_limits.RateLimited):
        layer = layer.app
    return layer.limiter


def test_a_limit_that_cannot_be_read_stops_the_start(settings: Settings) -> None:
    with pytest.raises(ValueError, match="RATE_LIMIT_POSTINGS='ten a minute'"):
        create_app(limited(settings, rate_limit_postings="ten a minute"))
    # Empty: no limit for that action.
    assert rate_limits.limits_of(limited(settings, rate_limit_postings=""))["postings"] == []


def test_who_is_counted() -> None:
    def scope(path: str, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        return {"type": "http", "path": path, "headers": raw, **extra}

    assert rate_limits.client_address({"client": ("203.0.113.9", 1)}) == "203.0.113.9"
    assert rate_limits.client_address({"client": ("::ffff:203.0.113.9", 1)}) == "203.0.113.9"
    # One IPv6 subscriber holds a /64: it counts as one address.
    assert rate_limits.client_address({"client": ("2001:db8:1:2:aaaa::1", 1)}) == (
        rate_limits.client_address({"client": ("2001:db8:1:2:bbbb::9", 1)})
    )
    assert rate_limits.client_address({"client": None}) == "unknown"

    bearer = rate_limits.account_key(scope("/v1/internships", {"Authorization": "Bearer abc"}))
    assert bearer is not None and bearer[0] == "token" and "abc" not in bearer[1]
    assert rate_limits.account_key(scope("/v1/internships", {})) is None
    # The pages: the server-side session's id as the session middleware decoded it, else
    # nobody in particular (an anonymous visitor counts by address).
    web = rate_limits.account_key(scope("/internships/new", {}, session={"sid": "s1"}))
    assert web is not None and web[0] == "session"
    assert rate_limits.account_key(scope("/sign-in", {}, session={"csrf": "x"})) is None
    raw = rate_limits.account_key(scope("/sign-in", {"Cookie": "session=abc.def"}))
    assert raw is not None and raw[0] == "session"


# ---------------------------------------------------------------- the deployment


def test_compose_gives_the_api_redis() -> None:
    # .env.example's values, with a stand-in for each secret it leaves empty.
    services = compose(env={k: v or "stand-in" for k, v in env_file().items()})["services"]
    cache = services["redis"]
    assert cache["image"].startswith("redis:7") and cache["image"].endswith("-alpine")
    assert "redis-cli" in cache["healthcheck"]["test"] and "ping" in cache["healthcheck"]["test"]
    for port in cache.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), port
    api = services["api"]
    assert environment(api)["REDIS_URL"] == "redis://redis:6379/0"
    assert api["depends_on"]["redis"] == {"condition": "service_healthy"}
    # The rest of the api's settings are still the shared block's.
    assert environment(api)["DATABASE_URL"] == environment(services["worker"])["DATABASE_URL"]
