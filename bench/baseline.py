"""The floor a lifecycle is measured against: the same seven updates, no activities or timers."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class BareLifecycle:
    def __init__(self) -> None:
        self.steps = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.steps == 7)
        return self.steps

    @workflow.update
    async def step(self) -> int:
        self.steps += 1
        return self.steps
