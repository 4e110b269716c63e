"""Metrics that add up across the API's processes (issue 15, finding 4): `python -m api` with
API_WORKERS=2, as the compose file runs it, behind one address that Prometheus scrapes. Each
process counts into its own files (prometheus_client's multiprocess mode, set up by
api/__main__.py) and whichever process answers a scrape reports the sum, so a counter equals
the requests made and never goes back. The processes run for real (a subprocess, SQLite, the
session's Temporal test server); one process (`make run`, the other tests) keeps plain
in-process metrics (tests/stack/test_observability.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from dev.harness import eventually, free_port, migrate

OPS = "ops-metrics-test-token-0123456789abcdef"
COUNTED = 'api_requests_total{method="GET",route="/v1/me",status="401"}'
PID = re.compile(r"_(\d+)\.db$")


class Served:
    def __init__(self, url: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.url, self.process, self.log = url, process, log

    async def get(self, path: str, **headers: str) -> httpx.Response:
        """A request on a connection of its own, as separate clients make them: the kernel
        hands each new connection to whichever process accepts first."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            return await http.get(path, headers=headers)

    async def scrape(self) -> tuple[float, str]:
        answer = await self.get("/metrics", Authorization=f"Bearer {OPS}")
        assert answer.status_code == 200, answer.text
        found = [line for line in answer.text.splitlines() if line.startswith(COUNTED + " ")]
        return (float(found[0].split()[-1]) if found else 0.0), answer.text


@asynccontextmanager
async def api_processes(
    env: WorkflowEnvironment, tmp_path: Path, **extra: str
) -> AsyncIterator[Served]:
    """`python -m api` with two processes, from outside the checkout (no ./.env read)."""
    port = free_port()
    database = f"sqlite:///{tmp_path / 'app.db'}"
    if not (tmp_path / "app.db").exists():
        migrate(database)
    environ = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {name.upper() for name in Settings.model_fields}
        and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    environ |= {
        "DATABASE_URL": database,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_WORKERS": "2",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OPS_API_TOKEN": OPS,
        **extra,
    }
    log = tmp_path / f"api-{port}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api", env=environ, cwd=tmp_path, stdout=out, stderr=out
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:

        async def answers() -> bool:  # (not on /v1/me: the tests count those)
            assert process.returncode is None, log.read_text()
            try:
                await served.get("/healthz")
            except httpx.TransportError:
                return False
            return True

        await eventually(answers, within=60, every=0.2)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()


def per_process(folder: Path) -> dict[int, float]:
    """The /v1/me count each process wrote, read from its own file: what it alone would have
    reported before (each process counting alone)."""
    counts: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        match = PID.search(path.name)
        assert match, path
        total = 0.0
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name == "api_requests_total" and sample.labels == {
                    "method": "GET",
                    "route": "/v1/me",
                    "status": "401",
                }:
                    total += sample.value
        counts[int(match[1])] = total
    return counts


async def test_request_counts_add_up_across_two_api_processes(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """As compose runs it: no PROMETHEUS_MULTIPROC_DIR given, API_WORKERS=2. The directory
    `python -m api` makes (under TMPDIR) holds a file per process while it runs, and goes with
    it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    async with api_processes(env, tmp_path, TMPDIR=str(scratch)) as api:
        (made,) = scratch.glob("api-metrics-*")
        sent, seen = 0, []
        # Until both processes have answered some (connections go to either), and then some.
        for round_ in range(60):
            answers = await asyncio.gather(*(api.get("/v1/me") for _ in range(10)))
            assert {a.status_code for a in answers} == {401}
            sent += len(answers)
            for scrape in range(4):  # scrapes land on either process, too
                count, text = await api.scrape()
                if scrape == 0 and count < sent:
                    # (A process counts a request just after answering it: a scrape on the
                    # heels of the answers may come a moment early, never later.)
                    await asyncio.sleep(0.2)
                    seen.append(count)
                    count, text = await api.scrape()
                assert count == sent, f"a scrape read {count} after {sent} requests"
                seen.append(count)
            counts = per_process(made)
            if round_ >= 3 and len([c for c in counts.values() if c > 0]) >= 2:
                break
        assert len(counts) == 2, f"expected two API processes, found {counts}"
        assert all(c > 0 for c in counts.values()), f"one process answered all: {counts}"
        assert sum(counts.values()) == sent
        assert seen == sorted(seen), "the counter went back between scrapes"
        # One family each, though every process has written to the files: no duplicate the
        # scraper would refuse (the lifecycle gauges are made per scrape, never per process).
        for family in ("api_requests_total", "internships_by_stage", "outbox_emails"):
            assert text.count(f"# TYPE {family} ") == 1, family
        assert "internships_overdue 0.0" in text
    assert api.process.returncode == 0, api.log.read_text()
    assert not made.exists(), "the metrics directory outlived the API"


async def test_a_given_metrics_directory_starts_empty_at_each_start(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """PROMETHEUS_MULTIPROC_DIR given (as a volume might be): what a previous run counted is
    not counted again after a restart."""
    folder = tmp_path / "metrics"
    for run, requests in enumerate((7, 3)):
        async with api_processes(env, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder)) as api:
            for _ in range(requests):
                assert (await api.get("/v1/me")).status_code == 401
            for _ in range(4):
                count, _text = await api.scrape()
                assert count == requests, f"run {run + 1}: {count} after {requests} requests"
        assert sum(per_process(folder).values()) == requests
