"""Scale-out under failure: 200 internships through two APIs and three workers, one of each
SIGKILLed half way.

Everything runs as it would in production, as real processes configured only by environment
variables: one Temporal dev server (`temporal server start-dev`, in memory, the search attributes
registered), a fresh Postgres database made for this test (migrated with Alembic, dropped at the
end), the local Stripe server (its webhook pointed at the first API), an SMTP inbox (aiosmtpd in
this process), two `python -m api` and three `python -m worker` sharing one CODEC_KEY,
OPS_API_TOKEN, TASK_QUEUE and DATABASE_URL.

Clients drive each internship through the whole lifecycle (sign-ups, payout onboarding, post,
apply, select, kickoff, submit, approve, wait for `paid`, both feedbacks -> `completed`), 20 at a
time, internship n preferring API n % 2. Every POST carries an `Idempotency-Key`; a request that
fails on the connection is sent again, with the same key, to the other API, and a 409
`idempotency_conflict` (the dead process's claim on the key, released after 60 s) or a 503 is
waited out and sent again. Once half the internships are posted, the first worker and the second
API (the one Stripe's webhook does not point at) are SIGKILLed.

Then it checks that every internship is `completed` (read through the API, which queries the
workflow, and from Temporal directly: `describe` and the workflow's result, decoded with the
codec key), that each was charged once and paid once at Stripe (requests under its
`internship-<id>/` idempotency keys that moved money, replays excluded) and never refunded, and
that the database projection equals each workflow's final state (stage, launcher, money, ratings,
timeline).

Email: the outbox relay is at-least-once by design. A relay claims rows under a 2-minute lease,
sends them, then records each outcome; SIGKILLed between the SMTP server accepting a message and
the `sent` commit, its row stays pending under the lease, and another relay sends it again once
the lease expires (the stable Message-ID lets a receiver drop the copy). So the test asserts:
every outbox row of these internships ends `sent`; every one arrived; nothing arrived that is not
an outbox row; and a Message-ID arrived twice only if its row was under a lease at the moment of
the kill (the killed relay's leases are a subset of those, read right after the kill). The number
of such duplicates is printed. Every internship must also have had the same emails.

Set SCALE_INTERNSHIPS to run more or fewer (the kill happens after half are posted), and
SCALE_ADMIN_URL to use another Postgres server (default: DATABASE_URL when it is Postgres, else
postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus

from api.service import workflows
from core import search_attributes
from core.codec import data_converter, new_key
from core.db import Internship, OutboxEmail, TimelineEvent, make_sessions, normalize_url
from core.internship import InternshipState, Stage, workflow_id
from dev.harness import (
    BIN,
    ROOT,
    UNLIMITED,
    Inbox,
    code_in,
    complete_onboarding,
    eventually,
    free_port,
    free_ports,
    migrate,
)
from dev.run import exit_status, listening
from tests.stack.test_api import ACCEPT

# Alone: two APIs and three workers under 20 clients need the machine to themselves, so
# `make test` runs it after the parallel run, not beside it.
pytestmark = [pytest.mark.slow, pytest.mark.alone]

Json = dict[str, Any]
PY = sys.executable
INTERNSHIPS = int(os.environ.get("SCALE_INTERNSHIPS", "200"))
CONCURRENCY = 20
KILL_AFTER = max(1, INTERNSHIPS // 2)  # postings made before one worker and one API are killed
WORKERS = 3
OPS_TOKEN = "scale-ops-token"
WEBHOOK_SECRET = "whsec_scale_secret"
FEE, SHARE = 40000, 36000  # the posting's fee, and the launcher's 90%
REQUEST_TIMEOUT = 90.0  # one HTTP attempt (an update may wait out a dead worker's activity)
REQUEST_DEADLINE = 240.0  # all attempts of one request, failovers and waits included
STOP_GRACE = 10.0
TEST_TIMEOUT = 900.0  # the whole run and its checks, should anything hang
# The outbox relay's lease (worker/outbox.py); a dead relay's rows wait this long.
OUTBOX_LEASE = 120.0
# A sign-up's email normally arrives within seconds; past this, whether it was queued at all.
SIGN_UP_EMAIL_WITHIN = 30.0
POSTING = {
    "title": "Competitor pricing analysis",
    "description": "Compare five competitors' pricing pages and summarise in a deck.",
    "category": "marketing",
    "skills": ["research", "excel"],
    "estimated_hours": 10,
    "fee_cents": FEE,
    "currency": "usd",
    "duration_days": 7,
}


# ---------------------------------------------------------------- processes


def _dies_with_this_process() -> Callable[[], None] | None:
    """A child's `preexec_fn`: on Linux, the child is SIGKILLed if this process dies without
    cleaning up (a CI timeout's SIGKILL), rather than living on. The parent-death signal follows
    the thread that starts the child: here always the event loop's."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent, pr_set_pdeathsig, sigkill = os.getpid(), 1, int(signal.SIGKILL)

    def arm() -> None:
        prctl(pr_set_pdeathsig, sigkill)
        if os.getppid() != parent:  # this process died before the signal was armed
            os._exit(1)

    return arm


class Process:
    """A child in its own session, its output in a log file; stopped and killed by its own pid."""

    def __init__(self, name: str, cmd: list[str], env: Mapping[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the test, which stops them in order
                preexec_fn=_dies_with_this_process(),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with {exit_status(self.proc.returncode)}:\n{self.tail()}"
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            print(f"{self.name} (pid {self.pid}) ignored SIGTERM for {STOP_GRACE:g}s: SIGKILL")
            self.kill()


async def until_listening(process: Process, port: int, within: float = 60) -> None:
    async def up() -> bool:
        process.check()
        return listening("127.0.0.1", port)

    await eventually(up, within=within, every=0.1)


async def until_logged(process: Process, text: str, within: float = 60) -> None:
    async def logged() -> bool:
        process.check()
        return text in process.text()

    await eventually(logged, within=within, every=0.1)


async def until_healthy(process: Process, url: str, within: float = 60) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:

        async def healthy() -> bool:
            process.check()
            with contextlib.suppress(httpx.TransportError):
                return (await http.get("/healthz")).status_code == 200
            return False

        await eventually(healthy, within=within, every=0.2)


# ---------------------------------------------------------------- database


def admin_url() -> str:
    if explicit := os.environ.get("SCALE_ADMIN_URL"):
        return explicit
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgresql", "postgres:")):
        return configured
    return "postgresql://postgres@127.0.0.1:5432/test"


def _libpq(url: str) -> str:
    """The URL as psycopg takes it (no SQLAlchemy driver suffix)."""
    return make_url(normalize_url(url)).set(drivername="postgresql").render_as_string(False)


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own on the Postgres server, dropped afterwards; yields its URL."""
    admin = _libpq(admin_url())
    name = f"scale_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        pytest.skip(f"no Postgres at {admin} (set SCALE_ADMIN_URL): {err}")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(normalize_url(admin)).set(database=name).render_as_string(False)
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Connections:
    """The most connections the services held to the test's database at once (sampled)."""

    def __init__(self, database_url: str) -> None:
        self.url = _libpq(database_url)
        self.name = make_url(normalize_url(database_url)).database
        self.peak = 0

    async def sample(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            while True:
                cur = await conn.execute(
                    "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = %s", [self.name]
                )
                row = await cur.fetchone()
                self.peak = max(self.peak, row[0] if row else 0)
                await asyncio.sleep(0.5)


# ---------------------------------------------------------------- the deployment


@dataclass
class Stack:
    logs: Path
    database_url: str
    temporal_address: str
    codec_key: str
    task_queue: str
    stripe_url: str
    api_urls: list[str]
    inbox: Inbox
    processes: dict[str, Process] = field(default_factory=dict)

    def check_logs(self) -> str:
        return "\n".join(
            f"--- {p.name} (pid {p.pid}, {'running' if p.alive() else 'exited'}):\n{p.tail()}"
            for p in self.processes.values()
        )


def service_env(base: Mapping[str, str], **settings: str) -> dict[str, str]:
    env = dict(base)
    env.update({k.upper(): v for k, v in settings.items()})
    return env


@contextlib.asynccontextmanager
async def deployment(tmp_path: Path) -> AsyncIterator[Stack]:
    logs = tmp_path / "logs"
    logs.mkdir()
    ports = free_ports("temporal", "stripe", "smtp", "api_a", "api_b")
    api_urls = [f"http://127.0.0.1:{ports[n]}" for n in ("api_a", "api_b")]
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=ports["smtp"])
    with fresh_database() as database_url, contextlib.ExitStack() as cleanup:
        smtp.start()
        cleanup.callback(smtp.stop)
        stack = Stack(
            logs=logs,
            database_url=database_url,
            temporal_address=f"127.0.0.1:{ports['temporal']}",
            codec_key=new_key(),
            task_queue=f"scale-{uuid.uuid4().hex[:8]}",
            stripe_url=f"http://127.0.0.1:{ports['stripe']}",
            api_urls=api_urls,
            inbox=inbox,
        )

        def stop_all() -> None:  # services first, then what they need
            order = sorted(stack.processes.values(), key=lambda p: p.name in ("temporal", "stripe"))
            for process in order:
                process.stop()

        cleanup.callback(stop_all)

        def start(name: str, cmd: list[str], env: Mapping[str, str]) -> Process:
            stack.processes[name] = Process(name, cmd, env, logs)
            return stack.processes[name]

        def start_temporal() -> Process:
            command = [
                str(BIN / "temporal"),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(ports["temporal"]),
                "--headless",
                "--namespace",
                "default",
                "--log-level",
                "warn",
            ]
            for key in search_attributes.ALL:
                kind = key.indexed_value_type.name.title()  # KEYWORD -> Keyword, as dev/run.py
                command += ["--search-attribute", f"{key.name}={kind}"]
            return start("temporal", command, os.environ)

        temporal = start_temporal()
        stripe = start(
            "stripe",
            [
                PY,
                "-m",
                "dev.stripe_server",
                "--port",
                str(ports["stripe"]),
                "--webhook-url",
                f"{api_urls[0]}/v1/stripe/webhook",
                "--webhook-secret",
                WEBHOOK_SECRET,
            ],
            service_env(os.environ, pythonunbuffered="1"),
        )
        await asyncio.to_thread(migrate, database_url)
        for attempt in range(3):
            try:
                await until_listening(temporal, ports["temporal"])
                break
            except RuntimeError as err:
                # A free port can be taken by someone else before the server binds it.
                if "address already in use" not in str(err) or attempt == 2:
                    raise
                ports["temporal"] = free_port()
                stack.temporal_address = f"127.0.0.1:{ports['temporal']}"
                temporal = start_temporal()
        await until_listening(stripe, ports["stripe"])

        shared = service_env(
            os.environ,
            pythonunbuffered="1",
            database_url=database_url,
            temporal_address=stack.temporal_address,
            temporal_namespace="default",
            task_queue=stack.task_queue,
            stripe_api_base=stack.stripe_url,
            stripe_webhook_secret=WEBHOOK_SECRET,
            smtp_host="127.0.0.1",
            smtp_port=str(ports["smtp"]),
            ops_api_token=OPS_TOKEN,
            codec_key=stack.codec_key,
            public_base_url=api_urls[0],
            time_scale="1",
            api_workers="1",
            # Five processes share Postgres' 100 connections (the defaults allow 30 each).
            db_pool_size="5",
            db_max_overflow="10",
            # Hundreds of sign-ups, postings and applications from this one address.
            **UNLIMITED,
        )
        workers = [
            start(
                f"worker{n}",
                [PY, "-m", "worker"],
                service_env(shared, worker_metrics_port=str(free_port())),
            )
            for n in range(1, WORKERS + 1)
        ]
        apis = [
            start(
                f"api_{side}",
                [PY, "-m", "api"],
                service_env(shared, api_host="127.0.0.1", api_port=str(ports[f"api_{side}"])),
            )
            for side in ("a", "b")
        ]
        try:
            for w in workers:
                await until_logged(w, "worker polling task queue", within=90)
            for api, url in zip(apis, api_urls, strict=True):
                await until_healthy(api, url, within=90)
            yield stack
        except BaseException:
            print(stack.check_logs())
            raise


# ---------------------------------------------------------------- clients with failover


class ApiError(AssertionError):
    pass


class Apis:
    """Both APIs; each request goes to the preferred one and fails over to the other."""

    def __init__(self, urls: list[str]) -> None:
        limits = httpx.Limits(
            max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY
        )
        self.http = [
            httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits) for url in urls
        ]
        self.stats: Counter[str] = Counter()
        # Requests answered otherwise than their first try would have been (for the report).
        self.anomalies: list[str] = []

    async def aclose(self) -> None:
        for client in self.http:
            await client.aclose()

    async def call(
        self,
        prefer: int,
        method: str,
        path: str,
        token: str | None = None,
        body: Json | None = None,
        status: int = 200,
    ) -> Json:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method == "POST":
            headers["Idempotency-Key"] = f"scale-{uuid.uuid4()}"
        self.stats["requests"] += 1
        deadline = time.monotonic() + REQUEST_DEADLINE
        target, tries = prefer, 0
        history: list[str] = []
        while True:
            tries += 1
            if time.monotonic() > deadline:
                raise ApiError(f"{method} {path}: no answer in {REQUEST_DEADLINE:g}s: {history}")
            try:
                response = await self.http[target].request(method, path, json=body, headers=headers)
            except httpx.TransportError as err:
                history.append(f"api{target}: {type(err).__name__}")
                self.stats["failovers"] += 1
                target = 1 - target
                await asyncio.sleep(0.05)
                continue
            code = _error_code(response)
            if response.status_code == 409 and code == "idempotency_conflict":
                history.append(f"api{target}: 409 {code}")
                self.stats["idempotency_conflict_waits"] += 1
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code == 503:
                history.append(f"api{target}: 503 {code}")
                self.stats["retried_503"] += 1
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.headers.get("Idempotent-Replayed") == "true":
                self.stats["replayed"] += 1
            if tries > 1:
                self.stats["retried_requests"] += 1
            if response.status_code != status:
                note = (
                    f"{method} {path} answered {response.status_code} (expected {status}) "
                    f"after {history}: {response.text[:500]}"
                )
                if history:
                    self.anomalies.append(note)
                raise ApiError(note)
            answer: Json = response.json()
            return answer


def _error_code(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(response.json()["error"]["code"])
    return None


@dataclass
class Driven:
    n: int
    iid: str
    employer: Json
    launcher: Json
    ratings: dict[str, tuple[int, str]]
    final: Json


class Drive:
    """Runs the internships, and kills a worker and an API once half of them are posted."""

    def __init__(self, stack: Stack, apis: Apis, sessions: sessionmaker) -> None:
        self.stack = stack
        self.apis = apis
        self.sessions = sessions
        self.posted = 0
        self.half_way = asyncio.Event()
        self.killed_at: datetime | None = None
        # Outbox rows under a lease right after the kill: the only ones that may arrive twice.
        self.leased_at_kill: set[int] = set()

    async def killer(self) -> None:
        await self.half_way.wait()
        for name in ("worker1", "api_b"):
            await asyncio.to_thread(self.stack.processes[name].kill)
        self.killed_at = datetime.now(UTC)
        self.leased_at_kill = await asyncio.to_thread(_leased, self.sessions, self.killed_at)
        print(
            f"\nSIGKILLed worker1 and api_b after {self.posted} postings; "
            f"{len(self.leased_at_kill)} outbox rows were under a lease"
        )

    async def sign_up(self, api: int, role: str, body: Json) -> Json:
        """Through the API: the code comes by email, through the outbox of whichever relay."""
        asked = datetime.now(UTC)
        await self.apis.call(api, "POST", f"/v1/{role}s", body=body, status=202)
        email = await self._sign_up_email(body["email"], asked)
        if email is None:
            # As anyone whose confirmation never came would: sign up again.
            self.apis.stats["sign_ups_lost_with_the_killed_api"] += 1
            asked = datetime.now(UTC)
            await self.apis.call(api, "POST", f"/v1/{role}s", body=body, status=202)
            email = await self._sign_up_email(body["email"], asked)
            assert email is not None, f"no sign-up email to {body['email']} after signing up again"
        code = code_in(email)
        try:
            return await self.apis.call(api, "POST", "/v1/tokens", body={"code": code}, status=201)
        except ApiError as err:
            # The API killed mid-exchange spent the code and took the token with it (the answer
            # never came): as any client is told, sign up again, which emails the account a code.
            if "code_expired" not in str(err) or str(err) not in self.apis.anomalies:
                raise  # not after a failover (anomalies are those)
            self.apis.anomalies.remove(str(err))
            self.apis.stats["codes_spent_by_the_killed_api"] += 1
        await self.apis.call(api, "POST", f"/v1/{role}s", body=body, status=202)
        email = await self.stack.inbox.wait_to(body["email"], "existing", within=OUTBOX_LEASE + 60)
        code = code_in(email)
        return await self.apis.call(api, "POST", "/v1/tokens", body={"code": code}, status=201)

    async def _sign_up_email(self, address: str, asked: datetime) -> EmailMessage | None:
        """The sign-up's email; None if it will never come: an API queues it after its answer
        (so that every sign-up's answer takes the same time), and the one that answered was
        killed before it had (asked before the kill, and nothing queued). A relay SIGKILLed
        while it held the email frees it only when its lease ends."""
        try:
            return await self.stack.inbox.wait_to(address, "sign_up", within=SIGN_UP_EMAIL_WITHIN)
        except TimeoutError:
            killed_after = self.killed_at is not None and asked <= self.killed_at
            if killed_after and not await asyncio.to_thread(_queued_to, self.sessions, address):
                return None
        return await self.stack.inbox.wait_to(address, "sign_up", within=OUTBOX_LEASE + 60)

    async def internship(self, n: int) -> Driven:
        api, call = n % 2, self.apis.call
        tag = f"{n}-{uuid.uuid4().hex[:8]}"
        employer = await self.sign_up(
            api,
            "employer",
            {"name": f"Employer {n}", "email": f"emp-{tag}@example.com", "company": f"Co {n}"},
        )
        card = {"payment_method": "pm_card_visa"}
        await call(api, "PUT", "/v1/employers/me/payment_method", employer["api_token"], card)
        launcher = await self.sign_up(
            api,
            "launcher",
            {"name": f"Launcher {n}", "email": f"lnc-{tag}@example.com", "skills": ["excel"]},
        )
        await asyncio.to_thread(complete_onboarding, launcher["onboarding_url"])
        emp, lnc = employer["api_token"], launcher["api_token"]
        iid = (await call(api, "POST", "/v1/internships", emp, POSTING, status=201))["id"]
        self.posted += 1
        if self.posted == KILL_AFTER:
            self.half_way.set()

        async def act(token: str, action: str, body: Json | None = None) -> Json:
            return await call(api, "POST", f"/v1/internships/{iid}/{action}", token, body or {})

        await act(lnc, "applications", {"pitch": f"Pitch {n}", **ACCEPT})
        assert (await act(emp, "selection", {"launcher_id": launcher["id"]}))["stage"] == "matched"
        assert (await act(emp, "kickoff", ACCEPT))["stage"] == "in_progress"
        submitted = await act(lnc, "submissions", {"url": f"https://docs.example.com/{n}"})
        assert submitted["stage"] == "in_review"
        approved = await act(emp, "review", {"decision": "approve", "feedback": f"Good {n}"})
        assert approved["stage"] in ("approved", "paid")
        async with asyncio.timeout(REQUEST_DEADLINE):
            while approved["stage"] != "paid":
                await asyncio.sleep(0.3)
                approved = await call(api, "GET", f"/v1/internships/{iid}", emp)
        ratings = {
            "employer": (1 + n % 5, f"From the employer {n}"),
            "launcher": (1 + (n + 2) % 5, f"From the launcher {n}"),
        }
        first = await act(emp, "feedback", _rating(ratings["employer"]))
        assert first["stage"] == "paid", first["stage"]
        final = await act(lnc, "feedback", _rating(ratings["launcher"]))
        assert final["stage"] == "completed", final["stage"]
        return Driven(n, iid, employer, launcher, ratings, final)


def _rating(given: tuple[int, str]) -> Json:
    return {"rating": given[0], "comment": given[1]}


def _queued_to(sessions: sessionmaker, address: str) -> bool:
    with sessions() as db:
        queued = select(OutboxEmail.id).where(OutboxEmail.to_email == address).limit(1)
        return db.scalar(queued) is not None


def _leased(sessions: sessionmaker, now: datetime) -> set[int]:
    with sessions() as db:
        return set(
            db.scalars(
                select(OutboxEmail.id).where(
                    OutboxEmail.status == "pending", OutboxEmail.next_attempt_at > now
                )
            )
        )


def message_id(row: OutboxEmail) -> str:
    """As activities.notifications.Mailer writes it."""
    return (
        f"<internship-{row.internship_id}.{row.seq}.{row.kind}"
        f".{row.recipient_role}.{row.recipient_id}@microinternships.local>"
    )


# ---------------------------------------------------------------- the test


async def test_two_apis_three_workers_survive_losing_one_of_each(tmp_path: Path) -> None:
    async with deployment(tmp_path) as stack:
        apis = Apis(stack.api_urls)
        sessions = make_sessions(stack.database_url)
        drive = Drive(stack, apis, sessions)
        try:
            async with asyncio.timeout(TEST_TIMEOUT):
                await _run_and_check(stack, apis, drive, sessions)
        finally:
            await apis.aclose()
            sessions.kw["bind"].dispose()


async def _run_and_check(stack: Stack, apis: Apis, drive: Drive, sessions: sessionmaker) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(n: int) -> Driven:
        async with gate:
            return await drive.internship(n)

    connections = Connections(stack.database_url)
    sampling = asyncio.create_task(connections.sample())
    killer = asyncio.create_task(drive.killer())
    began = time.monotonic()
    try:  # the first failure cancels the rest
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(n)) for n in range(INTERNSHIPS)]
    except BaseException:
        killer.cancel()
        raise
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
    if not killer.done():  # (the kill runs while the drive goes on, so it has finished)
        killer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await killer
    wall = time.monotonic() - began
    done = [t.result() for t in tasks]
    print(
        f"\n{INTERNSHIPS} internships posting -> completed in {wall:.1f}s: "
        f"{INTERNSHIPS / wall:.2f} internships/s, {apis.stats['requests'] / wall:.1f} requests/s "
        f"({CONCURRENCY} at a time over 2 APIs and {WORKERS} workers, one of each SIGKILLed)"
    )
    print(f"client side: {dict(apis.stats)}")
    print(f"database: at most {connections.peak} connections from the services at once")
    for note in apis.anomalies:
        print(f"anomaly: {note}")
    assert drive.killed_at is not None, "nothing was killed"
    assert not stack.processes["worker1"].alive() and not stack.processes["api_b"].alive()
    assert apis.stats["failovers"] > 0, "no request met the killed API"
    survivors = [p for name, p in stack.processes.items() if name not in ("worker1", "api_b")]
    for p in survivors:
        p.check()
    assert not apis.anomalies

    ids = [d.iid for d in done]
    assert len(set(ids)) == INTERNSHIPS
    by_id = {d.iid: d for d in done}

    # Through the surviving API (which queries each workflow), as each internship's employer.
    reads = asyncio.Semaphore(CONCURRENCY)

    async def read(d: Driven) -> Json:
        async with reads:
            return await apis.call(0, "GET", f"/v1/internships/{d.iid}", d.employer["api_token"])

    for d, seen in zip(done, await asyncio.gather(*(read(d) for d in done)), strict=True):
        assert seen["stage"] == "completed", (d.iid, seen["stage"])
        assert seen["launcher_id"] == d.launcher["id"]
        assert seen["payment"] == {
            "charged_cents": FEE,
            "paid_to_launcher_cents": SHARE,
            "refunded_cents": 0,
        }
        assert {k: (v["rating"], v["comment"]) for k, v in seen["ratings"].items()} == d.ratings

    # From Temporal itself, decoded with the deployment's codec key.
    client = await Client.connect(
        stack.temporal_address, data_converter=data_converter(stack.codec_key)
    )
    finals: dict[str, InternshipState] = {}

    async def final_state(iid: str) -> None:
        async with reads:
            handle = workflows.handle(client, iid)
            desc = await handle.describe()
            assert desc.status == WorkflowExecutionStatus.COMPLETED, (iid, desc.status)
            stage = desc.typed_search_attributes.get(search_attributes.STAGE)
            assert stage == Stage.COMPLETED.value, (iid, stage)
            finals[iid] = await handle.result()

    await asyncio.gather(*(final_state(iid) for iid in ids))
    for iid, s in finals.items():
        d = by_id[iid]
        assert s.stage == Stage.COMPLETED and s.launcher_id == d.launcher["id"]
        money = s.money
        assert (money.charged_cents, money.paid_cents, money.refunded_cents) == (FEE, SHARE, 0)
        assert {k: (r.rating, r.comment) for k, r in s.ratings.items()} == d.ratings

    # The projection equals each workflow's final state.
    rows, timelines = await asyncio.to_thread(_projection, sessions, ids)
    assert set(rows) == set(ids)
    for iid, s in finals.items():
        row = rows[iid]
        employer, launcher = s.ratings["employer"], s.ratings["launcher"]
        assert (
            row.stage,
            row.launcher_id,
            row.charged_cents,
            row.paid_cents,
            row.refunded_cents,
            row.employer_rating,
            row.employer_comment,
            row.launcher_rating,
            row.launcher_comment,
            row.last_seq,
        ) == (
            s.stage.value,
            s.launcher_id,
            s.money.charged_cents,
            s.money.paid_cents,
            s.money.refunded_cents,
            employer.rating,
            employer.comment,
            launcher.rating,
            launcher.comment,
            s.timeline[-1].seq,
        ), iid
        assert timelines[iid] == [(e.seq, e.event) for e in s.timeline], iid

    # Charged once and paid once, never refunded: Stripe's own request log.
    async with httpx.AsyncClient(base_url=stack.stripe_url, timeout=60) as stripe:
        moved: dict[str, Counter[str]] = {}
        for path in ("/v1/payment_intents", "/v1/transfers", "/v1/refunds"):
            log = (await stripe.get("/_test/requests", params={"path_prefix": path})).json()
            moved[path] = Counter(
                e["idempotency_key"].split("/")[0]
                for e in log["data"]
                if (e["idempotency_key"] or "").startswith("internship-")
                and e["status"] == 200
                and not e["replayed"]
            )
    for iid in ids:
        wid = workflow_id(iid)
        assert moved["/v1/payment_intents"][wid] == 1, (iid, "charges")
        assert moved["/v1/transfers"][wid] == 1, (iid, "transfers")
        assert moved["/v1/refunds"][wid] == 0, (iid, "refunds")

    # Every email sent and received; twice only where a lease was cut short by the kill.
    await _check_emails(stack, drive, sessions, ids)


def _projection(
    sessions: sessionmaker, ids: list[str]
) -> tuple[dict[str, Internship], dict[str, list[tuple[int, str]]]]:
    with sessions() as db:
        rows = {r.id: r for r in db.scalars(select(Internship).where(Internship.id.in_(ids)))}
        timelines: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for iid, seq, event in db.execute(
            select(TimelineEvent.internship_id, TimelineEvent.seq, TimelineEvent.event)
            .where(TimelineEvent.internship_id.in_(ids))
            .order_by(TimelineEvent.internship_id, TimelineEvent.seq)
        ):
            timelines[iid].append((seq, event))
    return rows, timelines


async def _check_emails(stack: Stack, drive: Drive, sessions: sessionmaker, ids: list[str]) -> None:
    def unsent() -> Json:
        with sessions() as db:
            return dict(
                db.execute(
                    select(OutboxEmail.status, func.count())
                    .where(OutboxEmail.internship_id.in_(ids), OutboxEmail.status != "sent")
                    .group_by(OutboxEmail.status)
                ).all()
            )

    async def all_sent() -> bool:
        return not await asyncio.to_thread(unsent)

    began = time.monotonic()
    try:  # a dead relay's leased rows go out again once their lease expires
        await eventually(all_sent, within=OUTBOX_LEASE + 60, every=1)
    except TimeoutError:
        raise AssertionError(f"outbox rows not sent: {unsent()}") from None
    waited = time.monotonic() - began

    def rows() -> list[OutboxEmail]:
        with sessions() as db:
            return list(db.scalars(select(OutboxEmail).where(OutboxEmail.internship_id.in_(ids))))

    outbox = await asyncio.to_thread(rows)

    async def arrived() -> bool:  # the relay records `sent` after the server has accepted it
        received = {m["Message-ID"] for m in stack.inbox.messages}
        return all(message_id(r) in received for r in outbox)

    await eventually(arrived, within=30, every=0.2)
    received = Counter(
        str(m["Message-ID"])
        for m in list(stack.inbox.messages)
        if not str(m["Message-ID"]).startswith("<internship-sign-in-")  # the sign-ups' codes
    )
    expected = {message_id(r): r for r in outbox}
    assert set(received) == set(expected), set(received) ^ set(expected)
    duplicates = {mid: n for mid, n in received.items() if n > 1}
    may_repeat = {message_id(r) for r in outbox if r.id in drive.leased_at_kill}
    assert set(duplicates) <= may_repeat, set(duplicates) - may_repeat
    kinds: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for r in outbox:
        kinds[r.internship_id][(r.kind, r.recipient_role)] += 1
    assert len(kinds) == len(ids)
    first = kinds[ids[0]]
    assert all(k == first for k in kinds.values()), "internships had different emails"
    print(
        f"emails: {len(outbox)} outbox rows ({sum(first.values())} per internship), "
        f"{sum(received.values())} received, {len(duplicates)} sent twice "
        f"({len(drive.leased_at_kill)} rows were leased at the kill); waited {waited:.1f}s "
        f"for the outbox after the run"
    )
    print(json.dumps(sorted(f"{k}:{r}" for k, r in first), indent=None))
