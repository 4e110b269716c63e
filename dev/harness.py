"""Local stand-ins the tests and the benchmarks share: free ports, threaded servers, an SMTP
inbox, a migrated database, and waiting for what finishes on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import uvicorn
from alembic import command
from sqlalchemy import text

from core.db import FULL_TEXT_INDEX, Base, make_engine, normalize_url
from core.settings import Settings
from worker.setup import alembic_config

ROOT = Path(__file__).resolve().parents[1]
# The Temporal CLI and test server that the dev extra installs beside this Python.
BIN = Path(sys.executable).parent

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], within: float = 15, every: float = 0.05
) -> T:
    """Poll until `probe` returns something truthy: for work that finishes on its own (a
    projection write, an email, a payout after approval), never for a timer."""
    async with asyncio.timeout(within):
        while True:
            if value := await probe():
                return value
            await asyncio.sleep(every)


# Settings for tests and benchmarks that sign up and act far faster than any person: the rate
# limits are tested on their own (tests/stack/test_rate_limits.py).
UNLIMITED: dict[str, Any] = {
    name: "1000000/minute" for name in Settings.model_fields if name.startswith("rate_limit_")
}


def free_ports(*names: str) -> dict[str, int]:
    """A free port per name, all different: each socket stays bound until every port is picked,
    since the kernel may hand a just-released port out again."""
    with contextlib.ExitStack() as held:
        ports: dict[str, int] = {}
        for name in names:
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports[name] = int(s.getsockname()[1])
        return ports


def free_port() -> int:
    return free_ports("port")["port"]


class ServerThread:
    """An ASGI app served by uvicorn on its own thread and loop (for apps with no async deps)."""

    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Inbox:
    """A real SMTP listener that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(msg)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def about(self, internship_id: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if f"internship-{internship_id}." in m["Message-ID"]]

    def kinds(self, internship_id: str) -> list[tuple[str, str]]:
        """(event kind, recipient role) of every email about one internship, in arrival order."""
        return [_kind(m) for m in self.about(internship_id)]

    def count_to(self, address: str, kind: str) -> int:
        """How many emails of a kind one address has received so far."""
        with self._lock:
            return sum(1 for m in self.messages if m["To"] == address and _kind(m)[0] == kind)

    async def wait_to(
        self, address: str, kind: str, after: int = 0, within: float = 15
    ) -> EmailMessage:
        """The next email of a kind to one address, beyond the first `after` such emails."""

        async def arrived() -> EmailMessage | None:
            with self._lock:
                found = [m for m in self.messages if m["To"] == address and _kind(m)[0] == kind]
            return found[after] if len(found) > after else None

        return await eventually(arrived, within=within)

    async def wait_for(self, internship_id: str, kind: str, count: int = 1) -> list[EmailMessage]:
        """Delivery is asynchronous (the worker's outbox relay): wait for `count` emails of a
        kind."""

        async def arrived() -> list[EmailMessage]:
            found = [m for m in self.about(internship_id) if _kind(m)[0] == kind]
            return found if len(found) >= count else []

        return await eventually(arrived)


def _kind(message: EmailMessage) -> tuple[str, str]:
    """(event kind, recipient role), from the stable Message-ID the mailer gives each email."""
    parts = message["Message-ID"].strip("<>").split("@")[0].split(".")
    return parts[2], parts[3]


# The secret in an inbox email (core.inbox): a link's last part, and the API code on its own line.
_CODE = re.compile(r"^\s*([A-Za-z0-9_-]{43})\s*$", re.MULTILINE)


def code_in(message: EmailMessage) -> str:
    """The one-time code an inbox email carries (for `POST /v1/tokens`)."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None, "no plain-text part"
    found = _CODE.search(body.get_content())
    assert found, f"no code in: {body.get_content()}"
    return found.group(1)


def _newest_code(folder: Path, address: str) -> str | None:
    # The sink names each file after its subject: only sign-up emails are read, not every
    # email a busy service has sent (thousands, in the benchmark).
    for path in sorted(folder.glob("*-confirm-your-email-*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and _kind(message)[0] == "sign_up":  # type: ignore[arg-type]
            return code_in(message)  # type: ignore[arg-type]
    return None


async def code_in_maildir(folder: Path, address: str) -> str:
    """The code of the newest sign-up email to `address` in the SMTP sink's folder (`make run`
    keeps every email there as a file), once it has arrived."""

    async def arrived() -> str | None:
        return await asyncio.to_thread(_newest_code, folder, address)

    return await eventually(arrived, within=60)


async def api_sign_up(
    http: httpx.AsyncClient, inbox: Inbox, role: str, body: dict[str, Any], card: str | None = None
) -> dict[str, Any]:
    """Sign up through the API as a client does: ask, read the code from the email, exchange
    it for a token (and, for an employer, add `card`). The account as `POST /v1/tokens` gives
    it: role, id, api_token (and a launcher's onboarding_url)."""
    email = body["email"].strip().lower()
    before = inbox.count_to(email, "sign_up")
    asked = await http.post(f"/v1/{role}s", json=body)
    assert asked.status_code == 202, asked.text
    code = code_in(await inbox.wait_to(email, "sign_up", before))
    exchanged = await http.post("/v1/tokens", json={"code": code})
    assert exchanged.status_code == 201, exchanged.text
    account: dict[str, Any] = exchanged.json()
    if card is not None:
        added = await http.put(
            "/v1/employers/me/payment_method",
            json={"payment_method": card},
            headers={"Authorization": f"Bearer {account['api_token']}"},
        )
        assert added.status_code == 200, added.text
    return account


def migrate(url: str) -> None:
    """A clean schema from the Alembic migrations (what production runs), not create_all."""
    engine = make_engine(url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        conn.execute(text(f"DROP TABLE IF EXISTS {FULL_TEXT_INDEX}"))  # no model describes it
    engine.dispose()
    command.upgrade(alembic_config(url), "head")  # the setup job's: migrations from core


def complete_onboarding(url: str) -> None:
    """Submit Stripe's hosted onboarding page, as the launcher's browser would."""
    response = httpx.post(url)
    if response.status_code not in (200, 303):
        raise RuntimeError(f"onboarding failed: {response.status_code} {response.text}")


def links_in(message: EmailMessage) -> list[str]:
    """Every link of an email's plain-text part, in order."""
    part = message.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else ""
    return re.findall(r"https?://[^\s<>\"')]+", text)


def _plain(url: str) -> str:
    """libpq's form of a Postgres URL (SQLAlchemy's names the driver)."""
    return normalize_url(url).replace("postgresql+psycopg://", "postgresql://")


def fresh_schema(url: str, schema: str) -> str:
    """An empty schema `schema` in the Postgres database at `url` (dropped first if there), and
    the URL whose connections use it: the bench and each parallel test process get their own
    tables in one database."""
    with psycopg.connect(_plain(url), connect_timeout=3, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
