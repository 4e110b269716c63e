"""What the benchmarks run against, started by them.

For the whole run: one Temporal dev server, the local Stripe server and the SMTP sink (as the
processes `make run` starts), and the bare baseline's worker (`python -m bench.baseline`). Per
database: a fresh schema from the Alembic migrations, then the real worker and API as processes
(`python -m worker`, `python -m api`), configured by environment variables as `make run`
configures them, on a task queue of their own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import func, select
from temporalio.client import Client

from bench.baseline import BARE_QUEUE
from core import search_attributes
from core.codec import data_converter, new_key
from core.db import Internship, make_sessions
from dev.harness import (
    BIN,
    ROOT,
    UNLIMITED,
    drop_schema,
    eventually,
    free_port,
    fresh_schema,
    migrate,
)

PY = sys.executable
OPS_TOKEN = "bench-ops-token"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Process:
    """A child process with its output in a log file; stopped by its own id only."""

    def __init__(self, name: str, cmd: list[str], env: Mapping[str, str], folder: Path) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def wait_for_log(self, text: str, within: float = 60) -> None:
        async def logged() -> bool:
            self.check()
            return text in self.log.read_text(errors="replace")

        await eventually(logged, within=within, every=0.1)

    def rss_mb(self) -> float:
        """Resident memory (VmRSS in /proc/<pid>/status), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (/proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def idle(self, below: float = 0.05, every: float = 1.0, within: float = 300) -> None:
        """Wait until the process uses less than `below` of a core over two samples in a row."""
        quiet, last = 0, self.cpu_seconds()
        deadline = time.monotonic() + within
        while quiet < 2 and time.monotonic() < deadline:
            await asyncio.sleep(every)
            now = self.cpu_seconds()
            quiet = quiet + 1 if now - last < below * every else 0
            last = now

    def stop(self, sig: signal.Signals = signal.SIGINT, grace: float = 15) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def listening(port: int, within: float = 30) -> None:
    async def accepts() -> bool:
        with suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return True
        return False

    await eventually(accepts, within=within)


@dataclass
class Stack:
    folder: Path
    client: Client  # with the service's payload codec
    bare_client: Client  # plain: the baseline is Temporal with nothing of ours
    codec_key: str
    temporal_address: str
    stripe_url: str
    smtp_port: int
    api_port: int  # every service's API serves here in turn (the Stripe server's webhook URL)
    processes: dict[str, Process]  # the dev server, Stripe, SMTP and the bare worker, by name

    def environment(self, database_url: str, task_queue: str, **extra: str) -> dict[str, str]:
        """What `python -m api` and `python -m worker` read, as `make run` sets it."""
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url,
            TEMPORAL_ADDRESS=self.temporal_address,
            TEMPORAL_NAMESPACE="default",
            TASK_QUEUE=task_queue,
            STRIPE_API_BASE=self.stripe_url,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(self.smtp_port),
            CODEC_KEY=self.codec_key,
            OPS_API_TOKEN=OPS_TOKEN,
            API_HOST="127.0.0.1",
            API_PORT=str(self.api_port),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{self.api_port}",
            WORKER_METRICS_PORT=str(free_port()),  # on, as by default, where nothing else is
            PYTHONUNBUFFERED="1",
        )
        # The benchmark signs up and posts from one address far faster than any person.
        env.update({k.upper(): v for k, v in UNLIMITED.items()})
        env.update({k.upper(): v for k, v in extra.items()})
        return env


@asynccontextmanager
async def stack(folder: Path) -> AsyncIterator[Stack]:
    key = new_key()
    temporal_port, stripe_port, smtp_port, api_port = (free_port() for _ in range(4))
    address = f"127.0.0.1:{temporal_port}"
    temporal_cmd = [
        *(str(BIN / "temporal"), "server", "start-dev", "--headless", "--log-level", "error"),
        *("--ip", "127.0.0.1", "--port", str(temporal_port)),
    ]
    for attribute in search_attributes.ALL:  # as `make run` registers them
        kind = attribute.indexed_value_type.name.title()
        temporal_cmd += ["--search-attribute", f"{attribute.name}={kind}"]
    children = [
        Process("temporal", temporal_cmd, os.environ, folder),
        Process(
            "stripe",
            [
                *(PY, "-m", "dev.stripe_server", "--port", str(stripe_port)),
                *("--webhook-url", f"http://127.0.0.1:{api_port}/v1/stripe/webhook"),
            ],
            os.environ,
            folder,
        ),
        Process(
            "smtp",
            [PY, "-m", "dev.smtp_sink", "--port", str(smtp_port), "--dir", str(folder / "mail")],
            os.environ,
            folder,
        ),
    ]
    try:
        for port in (temporal_port, stripe_port, smtp_port):
            await listening(port)
        bare_worker = Process(
            "bare-worker",
            [
                *(PY, "-m", "bench.named_threads", "bench.baseline"),
                *("--address", address, "--task-queue", BARE_QUEUE),
            ],
            os.environ,
            folder,
        )
        children.append(bare_worker)
        await bare_worker.wait_for_log("polling")
        yield Stack(
            folder=folder,
            client=await Client.connect(address, data_converter=data_converter(key)),
            bare_client=await Client.connect(address),
            codec_key=key,
            temporal_address=address,
            stripe_url=f"http://127.0.0.1:{stripe_port}",
            smtp_port=smtp_port,
            api_port=api_port,
            processes={child.name: child for child in children},
        )
    finally:
        for child in reversed(children):
            child.stop(signal.SIGTERM if child.name == "temporal" else signal.SIGINT)


@dataclass
class Service:
    """The real worker and API on one database and task queue."""

    name: str
    database_url: str
    task_queue: str
    api: Process
    worker: Process
    http: httpx.AsyncClient  # to the API, pooled for up to 200 concurrent requests
    more_workers: list[Process]  # beyond the first, when asked for
    mail: Path  # the SMTP sink's folder: every email the service sent, as a file

    def rows(self) -> int:
        """Internships in the projection."""
        sessions = make_sessions(self.database_url)
        with sessions() as db:
            count = db.scalar(select(func.count()).select_from(Internship)) or 0
        sessions.kw["bind"].dispose()
        return count


@asynccontextmanager
async def service(
    stack: Stack,
    name: str,
    database_url: str,
    tuning: Mapping[str, str] | None = None,
    workers: int = 1,
) -> AsyncIterator[Service]:
    """A migrated database, then `workers` × `python -m worker` and `python -m api` on it.
    `tuning`: settings (WORKER_CACHED_WORKFLOWS, DB_POOL_SIZE, ...) for every process."""
    migrate(database_url)
    queue = f"bench-{name}"
    env = stack.environment(database_url, queue, **(tuning or {}))
    # Named threads: bench/cpu.py tells the worker's parts apart by them.
    worker = Process(
        f"{name}-worker", [PY, "-m", "bench.named_threads", "worker"], env, stack.folder
    )
    more = [
        Process(
            f"{name}-worker{n}",
            [PY, "-m", "bench.named_threads", "worker"],
            {**env, "WORKER_METRICS_PORT": str(free_port())},
            stack.folder,
        )
        for n in range(2, workers + 1)
    ]
    api = Process(f"{name}-api", [PY, "-m", "api"], env, stack.folder)
    base = f"http://127.0.0.1:{stack.api_port}"
    # Idle connections are dropped before the servers' own keep-alive (uvicorn: 5 s) closes
    # them, so a request never goes out on a connection the server is closing.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=2)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
            for each in (worker, *more):
                await each.wait_for_log("polling task queue")

            async def healthy() -> bool:
                api.check()
                with suppress(httpx.HTTPError):
                    return (await http.get("/healthz")).status_code == 200
                return False

            await eventually(healthy, within=60, every=0.2)
            yield Service(name, database_url, queue, api, worker, http, more, stack.folder / "mail")
    finally:
        api.stop()
        for each in (worker, *more):
            each.stop(signal.SIGTERM)


def sqlite_url(folder: Path, name: str) -> str:
    return f"sqlite:///{folder / f'{name}.db'}"


SCHEMA = "bench"


def postgres_schema(url: str) -> str | None:
    """A fresh schema of its own in the database at `url` (the tests' tables stay untouched);
    the URL that uses it, or None when Postgres does not answer."""
    try:
        return fresh_schema(url, SCHEMA)
    except psycopg.OperationalError:
        return None


def drop_postgres_schema(url: str) -> None:
    drop_schema(url, SCHEMA)
