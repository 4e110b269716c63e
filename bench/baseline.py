"""The floor a lifecycle is measured against: bare Temporal doing what the happy path does.

`BareLifecycle` makes the same updates, activities and local activities as one happy-path
internship, in the same places (a local activity per recorded event, the charge inside the
kickoff update, the payout after approval outside any update, the completion inside the second
rating), all of them no-ops, with no codec, no database, no timers and no search attributes.
`python -m bench.baseline` runs its worker as a process of its own, tuned like the real one
(it runs `bench.shaped.ShapedLifecycle` too). `throughput` checks from the histories that both
make the same numbers of each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

BARE_QUEUE = "bench-bare"
TIMEOUT = timedelta(seconds=30)


@activity.defn
def bare_record(event: str) -> None:
    """Stands in for the projection's local activity."""


@activity.defn
def bare_money(step: str) -> None:
    """Stands in for a Stripe activity (the charge, the payout)."""


@workflow.defn
class BareLifecycle:
    def __init__(self) -> None:
        self.stage = "posted"
        self.ratings = 0

    @workflow.run
    async def run(self) -> str:
        await self._record("posted")
        await workflow.wait_condition(lambda: self.stage == "approved")
        await workflow.execute_activity(bare_money, "payout", start_to_close_timeout=TIMEOUT)
        self.stage = "paid"
        await self._record("paid")
        await workflow.wait_condition(
            lambda: self.stage == "completed" and workflow.all_handlers_finished()
        )
        return self.stage

    @workflow.update
    async def step(self, name: str) -> str:
        if name == "kickoff":
            await workflow.execute_activity(bare_money, "charge", start_to_close_timeout=TIMEOUT)
        await self._record(name)
        if name == "approve":
            self.stage = "approved"
        elif name.startswith("rate"):
            self.ratings += 1
            if self.ratings == 2:
                await self._record("completed")
                self.stage = "completed"
        return self.stage

    @workflow.query
    def current(self) -> str:
        return self.stage

    async def _record(self, event: str) -> None:
        await workflow.execute_local_activity(bare_record, event, start_to_close_timeout=TIMEOUT)


class BareDriver:
    """One bare lifecycle, driven straight through the Temporal client (see lifecycle.Driver)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.workflow_id = f"bare-{uuid.uuid4().hex}"
        self.stage = ""
        self._handle: WorkflowHandle[BareLifecycle, str] | None = None

    async def start(self) -> None:
        self._handle = await self.client.start_workflow(
            BareLifecycle.run, id=self.workflow_id, task_queue=self.task_queue
        )

    async def transition(self, name: str) -> None:
        assert self._handle is not None
        self.stage = await self._handle.execute_update(BareLifecycle.step, name)

    async def stage_now(self) -> str:
        assert self._handle is not None
        return await self._handle.query(BareLifecycle.current)


async def serve(address: str, task_queue: str) -> None:
    # Imported here, not with the module: the sandbox imports this module again for every bare
    # run, which must cost what it did before the shaped workflow existed.
    from bench.shaped import ShapedLifecycle
    from core.settings import Settings  # the real worker's tuning (defaults or environment)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    client = await Client.connect(address)
    threads = settings.worker_activity_threads
    with ThreadPoolExecutor(max_workers=threads) as executor:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[BareLifecycle, ShapedLifecycle],
            activities=[bare_record, bare_money],
            activity_executor=executor,
            max_concurrent_activities=threads,
            max_concurrent_local_activities=threads,
            max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
            max_cached_workflows=settings.worker_cached_workflows,
        ):
            print(f"bare worker polling {task_queue!r}", flush=True)
            await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    # From the module's own name, not __main__: the workflow sandbox re-imports it by name.
    from bench import baseline

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(baseline.serve(args.address, args.task_queue))
