"""Happy-path lifecycles on the real Temporal dev server: throughput against a bare baseline,
and the billable actions and history events of one internship.

    .venv/bin/python -m bench.lifecycle [--count 40]

Prints ratios measured in the same run (the machine is shared and noisy; absolute times mean
little). Billable actions follow Temporal Cloud's rules: workflow start, each update, timer,
search-attribute upsert and activity; all local activities of one workflow task count as one.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiosmtpd.controller import Controller
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.lifecycle import start_internship
from bench.baseline import BareLifecycle
from core import search_attributes
from core.accounts import new_id, sign_up_employer, sign_up_launcher
from core.codec import data_converter, new_key
from core.db import make_sessions
from core.internship import (
    Actor,
    Application,
    Feedback,
    InternshipState,
    Kickoff,
    Posting,
    Review,
    Role,
    Selection,
    Stage,
    Submission,
)
from core.settings import Settings
from core.stripe_api import stripe_client
from dev.harness import (
    BIN,
    Inbox,
    ServerThread,
    complete_onboarding,
    eventually,
    free_port,
    migrate,
)
from dev.stripe_server import create_app
from worker.main import running
from workflows.internship import InternshipWorkflow


def billable_actions(history: WorkflowHistory) -> int:
    actions, marker_tasks, task_has_marker = 0, 0, False
    for event in history.events:
        kind = event.WhichOneof("attributes")
        if kind in (
            "workflow_execution_started_event_attributes",
            "workflow_execution_update_accepted_event_attributes",
            "timer_started_event_attributes",
            "upsert_workflow_search_attributes_event_attributes",
            "activity_task_scheduled_event_attributes",
        ):
            actions += 1
        elif kind == "marker_recorded_event_attributes":
            task_has_marker = True
        elif kind == "workflow_task_completed_event_attributes":
            marker_tasks += task_has_marker
            task_has_marker = False
    return actions + marker_tasks + task_has_marker


async def happy_path(client: Client, settings: Settings, employer: str, launcher: str) -> str:
    posting = Posting(
        new_id(),
        employer,
        "Acme",
        "Bench article",
        "words",
        "marketing",
        ["writing"],
        10,
        40000,
        "usd",
        7,
        settings.policy(),
    )
    h = await start_internship(client, posting, settings.task_queue)
    emp, lnc = Actor(Role.EMPLOYER, employer), Actor(Role.LAUNCHER, launcher)
    await h.execute_update(InternshipWorkflow.apply, Application(lnc, "pitch"))
    await h.execute_update(InternshipWorkflow.select, Selection(emp, launcher))
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(emp))
    await h.execute_update(InternshipWorkflow.submit, Submission(lnc, "https://x.example.com", ""))
    await h.execute_update(InternshipWorkflow.review, Review(emp, "approve"))
    await eventually(lambda: paid(h))
    await h.execute_update(InternshipWorkflow.feedback, Feedback(emp, 5))
    await h.execute_update(InternshipWorkflow.feedback, Feedback(lnc, 5))
    await h.result()
    return h.id


async def paid(h: WorkflowHandle[InternshipWorkflow, InternshipState]) -> bool:
    return (await h.query(InternshipWorkflow.state)).stage == Stage.PAID


async def bare(client: Client, task_queue: str) -> str:
    h = await client.start_workflow(
        BareLifecycle.run, id=f"bare-{uuid.uuid4().hex}", task_queue=task_queue
    )
    for _ in range(7):
        await h.execute_update(BareLifecycle.step)
    await h.result()
    return h.id


async def rate(count: int, one: Callable[[], Awaitable[str]]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - start)


async def main(count: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    controller = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    with ServerThread(create_app(), free_port()) as stripe_server:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{folder / 'app.db'}",  # type: ignore[call-arg]
            stripe_api_base=stripe_server.url,
            smtp_port=controller.port,
            codec_key=new_key(),
        )
        migrate(settings.database_url)
        sessions = make_sessions(settings.database_url)
        stripe = stripe_client(settings)
        with sessions() as db:
            employer, _ = sign_up_employer(
                db,
                stripe,
                name="E",
                email="e@example.com",
                company="Acme",
                payment_method="pm_card_visa",
            )
            launcher, _, url = sign_up_launcher(
                db, stripe, name="L", email="l@example.com", skills=[], public_base_url="http://x"
            )
        complete_onboarding(url)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN / "temporal"),
            search_attributes=search_attributes.ALL,
            data_converter=data_converter(settings.codec_key),
            dev_server_log_level="error",
        )
        client = env.client
        async with (
            running(client, settings, sessions),
            Worker(client, task_queue="bare", workflows=[BareLifecycle]),
        ):
            one = await happy_path(client, settings, employer.id, launcher.id)
            history = await client.get_workflow_handle(one).fetch_history()
            await bare(client, "bare")  # warm-up
            baseline = await rate(count, lambda: bare(client, "bare"))
            ours = await rate(count, lambda: happy_path(client, settings, employer.id, launcher.id))
        await env.shutdown()
    controller.stop()
    print(
        f"happy path: {billable_actions(history)} billable actions (budget 30), "
        f"{len(history.events)} history events"
    )
    print(
        f"throughput, {count} concurrent lifecycles: lifecycle {ours:.1f}/s, bare baseline "
        f"{baseline:.1f}/s, ratio {ours / baseline:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=40)
    asyncio.run(main(parser.parse_args().count))
