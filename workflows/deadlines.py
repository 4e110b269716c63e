"""Deadlines: the timers of the current stage, each fired once unless the stage moves on first.

A stage lists its deadlines, computed from state (when the stage began, the due date). Any change
that moves them (a transition, an extension, a re-match, a dispute) restarts the round: waiting
timers end quietly and the stage lists its deadlines again from the new state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from core import errors
    from core.internship import UpcomingDeadline


@dataclass(frozen=True)
class Deadline:
    key: str  # identity within the stage: each key fires at most once per round
    at: datetime
    summary: str  # the timer's line in the Temporal UI's timeline
    action: Callable[[], Awaitable[None]]
    # What people are told of it (`InternshipState.deadlines`), one line per wording; none for
    # a reminder that only nudges.
    shown: tuple[UpcomingDeadline, ...] = ()


def upcoming(deadlines: list[Deadline], now: datetime) -> list[UpcomingDeadline]:
    """What the round's deadlines still have to say: those not yet reached, soonest first."""
    shown = [u for d in deadlines if d.at > now for u in d.shown]
    return sorted(shown, key=lambda u: u.at)


class Deadlines:
    def __init__(
        self,
        lock: asyncio.Lock,
        began: datetime,
        wait_for_ops_retry: Callable[[Callable[[], bool]], Awaitable[None]],
    ) -> None:
        self._lock = lock
        self._wait_for_ops_retry = wait_for_ops_retry
        self.since = began  # when the current round began: a stage's timers count from it
        self._round = 0

    def restart(self) -> None:
        """The stage or its dates changed: end the waiting timers, count again from now."""
        self._round += 1
        self.since = workflow.now()

    async def run(self, *deadlines: Deadline) -> None:
        """Fire each deadline in turn at its time, under the workflow's lock, until the round
        ends. A refund Stripe refuses for good waits for ops' retry (ops were told)."""
        round_ = self._round
        fired: set[str] = set()
        for deadline in deadlines:
            while deadline.key not in fired:
                if not await self._sleep_until(deadline, round_):
                    return
                async with self._lock:
                    if self._round != round_:
                        return
                    try:
                        await deadline.action()
                        fired.add(deadline.key)
                    except ApplicationError as err:
                        if err.type != errors.PAYMENT_UNAVAILABLE:
                            raise
                if deadline.key not in fired:
                    await self._wait_for_ops_retry(lambda: self._round != round_)
        await self.until_restarted(round_)

    async def until_restarted(self, round_: int | None = None) -> None:
        """Wait until the round (by default the current one) is over."""
        start = self._round if round_ is None else round_
        await workflow.wait_condition(lambda: self._round != start)

    async def _sleep_until(self, deadline: Deadline, round_: int) -> bool:
        """True once the deadline is reached in the same round; False if the round ended."""
        delay = (deadline.at - workflow.now()).total_seconds()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._round != round_, timeout=delay, timeout_summary=deadline.summary
                )
        return self._round == round_
