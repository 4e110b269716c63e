"""Workers that start whatever the host (issue 14, item 7).

Found: a second or third `python -m worker` on the same host, as the README invites ops to
start, exited at start ("Failed starting Prometheus exporter: Address already in use"), so a
drill with three workers on one host ran on one, and on none once that one was killed.

Here three real `python -m worker` processes start on this host with the default metrics
settings (loopback, port 9464) against the real Temporal dev server (a killed worker's sticky
queue times out there as in production); two are SIGKILLed in the middle of a lifecycle, which
the third carries on to the payout.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from api.service.workflows import start_internship
from core import search_attributes
from core.codec import data_converter
from core.internship import Application, Kickoff, Review, Selection, Stage, Submission
from core.settings import Settings
from dev.harness import ROOT
from tests.conftest import BIN, World
from tests.e2e.test_scale_out import Process, until_logged
from tests.stack.test_lifecycle import emp, lnc, reaches, transfers
from workflows.internship import InternshipWorkflow as Wf


async def test_three_workers_on_one_host_start_and_one_carries_on(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    dev = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=search_attributes.ALL,
        data_converter=data_converter(settings.codec_key),
        dev_server_log_level="error",
    )
    try:
        await _one_carries_on(dev, world, settings, tmp_path)
    finally:
        await dev.shutdown()


async def _one_carries_on(
    dev: WorkflowEnvironment, world: World, settings: Settings, tmp_path: Path
) -> None:
    queue = f"one-host-{uuid.uuid4().hex[:8]}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_METRICS")}
    environ |= {
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": dev.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev.client.namespace,
        "TASK_QUEUE": queue,
        "CODEC_KEY": settings.codec_key or "",
        "STRIPE_API_BASE": settings.stripe_api_base,
        "STRIPE_API_KEY": settings.stripe_api_key,
        "SMTP_HOST": settings.smtp_host,
        "SMTP_PORT": str(settings.smtp_port),
        "PUBLIC_BASE_URL": settings.public_base_url,
    }
    workers = [
        Process(f"worker{n}", [sys.executable, "-m", "worker"], environ, tmp_path)
        for n in (1, 2, 3)
    ]
    try:
        for w in workers:
            await until_logged(w, "worker polling task queue", within=90)
        # At most one holds the default port; the others said where their metrics went instead.
        moved = [w for w in workers if "9464 is taken" in w.text()]
        assert len(moved) >= 2, "\n\n".join(w.tail() for w in workers)
        assert all(w.alive() for w in workers)

        employer, launcher = world.employer(), world.launcher()
        h = await start_internship(dev.client, world.posting(employer), queue)
        await h.execute_update(Wf.apply, Application(lnc(launcher), "I write well"))
        await h.execute_update(Wf.select, Selection(emp(employer), launcher.id))
        await h.execute_update(Wf.kickoff, Kickoff(emp(employer)))
        for w in workers[:2]:
            w.kill()
        await h.execute_update(Wf.submit, Submission(lnc(launcher), "https://docs.test/a", "Done"))
        await h.execute_update(Wf.review, Review(emp(employer), "approve"))
        s = await reaches(h, Stage.PAID)
        assert [t.amount for t in transfers(world, s.posting.internship_id)] == [36000]
        assert workers[2].alive()
    finally:
        for w in workers:
            w.stop()
