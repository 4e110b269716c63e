"""What every answer tells the browser (api/middleware.py SecurityHeaders): a strict
Content-Security-Policy the pages live under (checked in Chromium too), no framing, no
sniffing, no Referer to other sites, HSTS over https; CORS for the codec alone (CodecCors);
and no sign-in secret in the logs (core/logs.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from api.app import create_app
from core.logs import JsonFormatter, Redacting, dict_config
from core.settings import Settings
from dev.harness import Inbox, api_sign_up
from tests.conftest import Api, unique_email
from tests.e2e.browser import SKIP_REASON, ask_for_sign_in_link, chromium_present
from tests.stack.test_api import post
from worker.setup import migrate

ROOT = Path(__file__).resolve().parents[2]
WEB_TEMPLATES = ROOT / "core" / "templates" / "web"
UI = "http://127.0.0.1:8233"  # the Temporal UI's origin under `make run`
STRONG = {
    "session_secret": "Jq8VxZ3mT0bLr5nW2kYp7sFc9dHg4aEu",
    "ops_api_token": "hT6nB1qM8zX4cV7kL2pR9wS5dF3gJ0yA",
    "codec_key": base64.b64encode(bytes(range(32))).decode(),
    "stripe_webhook_secret": "whsec_N4rT8vB2xK6mQ1zL9cH5pW3sD7fG0jY",
    "inbound_email_secret": "Zr4Wq9Lm2Xc7Vb1Nt6Hy3Ks8Dp5Gf0Ja",
}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('headers') / 'app.db'}"
    migrate(url, wait=5)
    return url


def client(database: str, **settings: Any) -> httpx.AsyncClient:
    """The app in this process (no lifespan: nothing here needs Temporal)."""
    app = create_app(Settings(_env_file=None, database_url=database, **settings))  # type: ignore[call-arg]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# --- the headers --------------------------------------------------------------------------------


async def test_every_answer_carries_the_security_headers(database: str) -> None:
    async with client(database, max_body_bytes=1024) as http:
        answers = {
            "page": await http.get("/"),
            "sign-in page": await http.get("/sign-in"),
            "stylesheet": await http.get("/static/app.css"),
            "json": await http.get("/v1/me"),
            "openapi": await http.get("/openapi.json"),
            "not found": await http.get("/nowhere"),
            "413 from middleware": await http.post(
                "/v1/internships", content=b"x" * 2048, headers={"content-type": "text/plain"}
            ),
        }
    for what, answer in answers.items():
        assert answer.status_code != 500, what
        csp = policy(answer)
        assert csp["default-src"] == ["'self'"], what
        assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"], what
        assert csp["form-action"][0] == "'self'", what
        assert "'unsafe-inline'" not in answer.headers["content-security-policy"], what
        assert answer.headers["x-content-type-options"] == "nosniff", what
        assert answer.headers["referrer-policy"] == "same-origin", what
        assert answer.headers["x-frame-options"] == "DENY", what
        assert "strict-transport-security" not in answer.headers, what  # http: no HSTS
    assert answers["413 from middleware"].status_code == 413


async def test_forms_may_go_to_this_site_and_stripe_s_hosted_pages_alone(database: str) -> None:
    """The card and payouts forms answer 303 to Stripe Checkout and Connect onboarding (or the
    local server's stand-ins); a browser applies form-action to that redirect too."""
    async with client(database, stripe_api_base="http://127.0.0.1:12111") as http:
        local = policy(await http.get("/"))["form-action"]
    assert local == [
        "'self'",
        "https://checkout.stripe.com",
        "https://connect.stripe.com",
        "http://127.0.0.1:12111",
    ]
    async with client(database, stripe_api_base="https://api.stripe.com") as http:
        real = policy(await http.get("/"))["form-action"]
    assert real == ["'self'", "https://checkout.stripe.com", "https://connect.stripe.com"]


async def test_hsts_when_the_service_is_served_over_https(database: str) -> None:
    async with client(database, public_base_url="https://interns.example.com", **STRONG) as http:
        answer = await http.get("/v1/me")
    assert answer.headers["strict-transport-security"] == "max-age=31536000"


async def test_the_api_docs_answer_with_their_own_policy(database: str) -> None:
    """Swagger UI and ReDoc load from their CDN and run an inline script: /docs and /redoc let
    that CDN in and exactly their inline scripts (by hash), nothing else inline."""
    async with client(database) as http:
        docs = await http.get("/docs")
        redoc = await http.get("/redoc")
        redirect = await http.get("/docs/oauth2-redirect")
    for answer in (docs, redoc, redirect):
        assert answer.status_code == 200
        csp = policy(answer)
        assert csp["frame-ancestors"] == ["'none'"] and csp["default-src"] == ["'self'"]
        assert "'unsafe-inline'" not in csp["script-src"]
        assert "https://cdn.jsdelivr.net" in csp["script-src"]
        assert answer.headers["x-frame-options"] == "DENY"
    for answer in (docs, redirect):
        inline = re.findall(r"<script>(.*?)</script>", answer.text, re.S)
        assert inline
        for script in inline:
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy(answer)["script-src"]
    assert 'src="https://cdn.jsdelivr.net/' in docs.text  # what the policy lets in


def test_the_pages_have_no_inline_style_or_script() -> None:
    """Under `default-src 'self'` a browser ignores them: every style is in static/app.css,
    every script a file in static/ (`<script src=...>`)."""
    inline = re.compile(
        r"\sstyle=|<style|<script(?![^>]*\ssrc=\"/static/)|\son[a-z]+=|javascript:", re.I
    )
    for template in sorted(WEB_TEMPLATES.glob("*.html")):
        for n, line in enumerate(template.read_text().splitlines(), 1):
            assert not inline.search(line), f"{template.name}:{n}: {line.strip()}"


# --- CORS ---------------------------------------------------------------------------------------


async def test_cors_answers_the_temporal_ui_on_the_codec_alone(database: str) -> None:
    preflight = {"Origin": UI, "Access-Control-Request-Method": "POST"}
    async with client(database) as http:
        me = await http.options(
            "/v1/me", headers=preflight | {"Access-Control-Request-Method": "GET"}
        )
        me_get = await http.get("/v1/me", headers={"Origin": UI})
        page = await http.get("/", headers={"Origin": UI})
        codec_preflight = await http.options(
            "/codec/decode", headers=preflight | {"Access-Control-Request-Headers": "authorization"}
        )
        codec = await http.post("/codec/decode", json={"payloads": []}, headers={"Origin": UI})
        elsewhere = await http.options(
            "/codec/decode", headers=preflight | {"Origin": "https://evil.example.com"}
        )
    for answer in (me, me_get, page):
        assert not [h for h in answer.headers if h.startswith("access-control-")], answer.headers
    assert codec_preflight.status_code == 200
    assert codec_preflight.headers["access-control-allow-origin"] == UI
    assert "POST" in codec_preflight.headers["access-control-allow-methods"]
    assert codec.headers["access-control-allow-origin"] == UI  # even on its 401
    assert "access-control-allow-origin" not in elsewhere.headers


# --- logs ---------------------------------------------------------------------------------------


def handled(record: logging.LogRecord, fmt: str) -> str:
    """What the handler core.logs configures writes for `record`."""
    config = dict_config("api", fmt)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(Redacting())
    spec = config["formatters"]["main"]
    handler.setFormatter(JsonFormatter() if "()" in spec else logging.Formatter(spec["format"]))
    handler.handle(record)
    assert config["handlers"]["main"]["filters"] == ["redacting"]
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_sign_in_secret_reaches_the_logs(fmt: str) -> None:
    secret = "k3Y_s1gn-1n-S3cret"
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/sign-in/{secret}?next=/dashboard", "1.1", 200),
        None,
    )
    line = handled(access, fmt)
    assert "/sign-in/[redacted]?next=/dashboard" in line and secret not in line
    assert access.args and len(access.args) == 5  # uvicorn's formatters read them by position

    try:
        raise ValueError(f"could not open http://x/sign-in/{secret}")
    except ValueError as exc:
        exc_info = (type(exc), exc, exc.__traceback__)
    ours = logging.LogRecord(
        "api",
        logging.ERROR,
        __file__,
        1,
        "unhandled error on %s %s",
        ("GET", httpx.URL(f"http://x/sign-in/{secret}")),  # not a string: its str() says it
        exc_info,
    )
    line = handled(ours, fmt)
    assert secret not in line and "/sign-in/[redacted]" in line
    if fmt == "json":
        assert "ValueError" in json.loads(line)["exception"]


# --- in the browser -----------------------------------------------------------------------------


class Violations:
    """Every Content Security Policy complaint a page makes: its console messages, and the
    securitypolicyviolation events (recorded by a script the browser runs outside the page's
    policy)."""

    RECORD = """
        window.__csp = [];
        document.addEventListener('securitypolicyviolation', e =>
            window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
    """

    def __init__(self) -> None:
        self.console: list[str] = []

    def watch(self, page: Page) -> None:
        page.on(
            "console",
            lambda message: (
                self.console.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )

    async def of(self, page: Page, path: str) -> list[str]:
        await page.goto(path)
        await page.wait_for_load_state("networkidle")
        events: list[str] = await page.evaluate("window.__csp")
        return [f"{path}: {e}" for e in events]


@pytest.mark.browser
@pytest.mark.skipif(not chromium_present(), reason=SKIP_REASON)
async def test_the_pages_break_no_rule_of_their_policy_in_chromium(
    api: Api, chromium: Browser, inbox: Inbox, settings: Settings
) -> None:
    """Home, sign-in, postings and an internship page (as its launcher and its employer), and
    the card, payouts and Express dashboard forms, whose answers send the browser on to
    Stripe's pages."""
    emails = {"employer": unique_email("csp-emp"), "launcher": unique_email("csp-lnc")}
    emp = await api_sign_up(
        api.http,
        inbox,
        "employer",
        {"name": "Cas Employer", "email": emails["employer"], "company": "Acme"},
    )
    internship = f"/internships/{(await post(api, emp))['id']}"
    await api_sign_up(
        api.http,
        inbox,
        "launcher",
        {"name": "Cas Launcher", "email": emails["launcher"], "skills": ["research"]},
    )

    violations = Violations()
    found: list[str] = []
    for role, paths, button, on_stripe in (
        (
            "launcher",
            ["/postings", internship, "/payouts"],
            "Set up payouts with Stripe",
            "Complete onboarding",
        ),
        ("employer", ["/dashboard", internship, "/card"], "Add a card", "Save card"),
    ):
        context = await chromium.new_context(base_url=api.url)
        context.set_default_timeout(20_000)
        await context.add_init_script(Violations.RECORD)
        try:
            page = await context.new_page()
            violations.watch(page)
            found += await violations.of(page, "/")
            found += await violations.of(page, "/sign-in")
            await ask_for_sign_in_link(page, inbox, emails[role])
            await page.wait_for_load_state("networkidle")
            for path in paths:
                found += await violations.of(page, path)
            # The form's answer is a 303 to Stripe's page: form-action must let it through.
            await page.get_by_role("button", name=button).click()
            await expect(page.get_by_role("button", name=on_stripe)).to_be_visible()
            assert page.url.startswith(settings.stripe_api_base), page.url
            if role == "launcher":  # onboarded, on to their Express dashboard the same way
                await page.get_by_role("button", name=on_stripe).click()
                await page.wait_for_url("**/payouts")
                dashboard = "Open your Stripe Express dashboard (tax forms, payouts)"
                await page.get_by_role("button", name=dashboard).click()
                heading = page.get_by_role("heading", name="Express dashboard")
                await expect(heading).to_be_visible()
                assert page.url.startswith(settings.stripe_api_base), page.url
        finally:
            await context.close()
    assert not found and not violations.console, found + violations.console


def test_the_card_and_payouts_forms_may_go_where_the_browser_opens_stripe() -> None:
    """Under compose's dev profile the API calls the local Stripe server at stripe:12111, and
    the browser opens its pages at localhost:12111: the form-action must name the latter."""
    from api.app import stripe_pages

    real = Settings(_env_file=None, stripe_api_base="https://api.stripe.com")  # type: ignore[call-arg]
    assert stripe_pages(real) == ["https://checkout.stripe.com", "https://connect.stripe.com"]
    dev = Settings(
        _env_file=None,  # type: ignore[call-arg]
        stripe_api_base="http://stripe:12111",
        stripe_public_url="http://localhost:12111",
    )
    assert stripe_pages(dev)[-1] == "http://localhost:12111"
    assert "http://stripe:12111" not in stripe_pages(dev)
