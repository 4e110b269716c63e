"""The bare lifecycle with our history's server-side shape (`python -m bench.floor` measures it).

`ShapedLifecycle` makes what `bench.baseline.BareLifecycle` makes (the same updates, activities
and local activities, all no-ops) and adds what our workflow asks of the server beyond them: the
patches (each followed by the SDK's `TemporalChangeVersion` upsert), the stage's search-attribute
upserts, a deadline timer per stage started and cancelled as the stage moves on, start-time
search attributes, and payloads of our size. The bare worker runs it (`bench.baseline.serve`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from bench.baseline import TIMEOUT, BareDriver, bare_money, bare_record
    from core import search_attributes as keys

# Our history's shape, as a happy path has it (bench/results.md, "the floor"): the stage each
# update enters (apply enters none), and payloads about our size (an update's answer is the
# encrypted state, 2-4 KB; the posting 1-2 KB).
SHAPED_STAGES = {"select": "matched", "kickoff": "in_progress", "submit": "submitted"}
SHAPED_ANSWER = "s" * 3000
SHAPED_POSTING = "p" * 1500
STAGE_DEADLINE = timedelta(days=7)


@workflow.defn
class ShapedLifecycle:
    def __init__(self) -> None:
        self.stage = "posted"
        self.ratings = 0
        self.round = 0  # a stage's deadline timer waits for the round to end

    @workflow.run
    async def run(self, posting: str) -> str:
        workflow.patched("shaped-first")
        workflow.deprecate_patch("shaped-second")
        await record_locally("posted")
        while self.stage != "approved":  # each stage's deadline, cancelled when it moves on
            await self._stage_over()
        await workflow.execute_activity(bare_money, "payout", start_to_close_timeout=TIMEOUT)
        self._enter("paid")
        await record_locally("paid")
        await self._until(lambda: self.stage == "completed" and workflow.all_handlers_finished())
        return posting

    @workflow.update
    async def step(self, name: str) -> str:
        if name == "kickoff":
            await workflow.execute_activity(bare_money, "charge", start_to_close_timeout=TIMEOUT)
        if name in SHAPED_STAGES:
            self._enter(SHAPED_STAGES[name])
        elif name == "approve":  # entered without an upsert, as ours when paid moments later
            workflow.patched("shaped-approval")
            self.stage = "approved"
            self.round += 1
        await record_locally(name)
        if name.startswith("rate"):
            self.ratings += 1
            if self.ratings == 2:
                self._enter("completed")
                await record_locally("completed")
        return f"{self.stage}|{SHAPED_ANSWER}"

    @workflow.query
    def current(self) -> str:
        return self.stage

    def _enter(self, stage: str) -> None:
        self.stage = stage
        self.round += 1
        workflow.upsert_search_attributes(
            [
                keys.STAGE.value_set(stage),
                keys.ESCALATION.value_set(0),
                keys.DUE_AT.value_set(workflow.now() + STAGE_DEADLINE),
            ]
        )

    async def _until(self, ended: Callable[[], bool]) -> None:
        """Until `ended`, with the stage's deadline timer running (it never fires here)."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(ended, timeout=STAGE_DEADLINE)

    async def _stage_over(self) -> None:
        round_ = self.round
        await self._until(lambda: self.round != round_)


async def record_locally(event: str) -> None:
    await workflow.execute_local_activity(bare_record, event, start_to_close_timeout=TIMEOUT)


class ShapedDriver(BareDriver):
    """One shaped lifecycle (see lifecycle.Driver), started as ours is: with its search
    attributes."""

    _shaped: WorkflowHandle[ShapedLifecycle, str]

    async def start(self) -> None:
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(keys.STAGE, "posted"),
                SearchAttributePair(keys.EMPLOYER, "e" * 16),
                SearchAttributePair(keys.CATEGORY, "marketing"),
                SearchAttributePair(keys.ESCALATION, 0),
            ]
        )
        self._shaped = await self.client.start_workflow(
            ShapedLifecycle.run,
            SHAPED_POSTING,
            id=self.workflow_id,
            task_queue=self.task_queue,
            search_attributes=attributes,
        )

    async def transition(self, name: str) -> None:
        answer = await self._shaped.execute_update(ShapedLifecycle.step, name)
        self.stage = answer.partition("|")[0]

    async def stage_now(self) -> str:
        return await self._shaped.query(ShapedLifecycle.current)
