"""Recording what happened: the timeline, the UI's view of the workflow, and the emails.

Every event is projected to the database by a local activity (cheap, in the same workflow task)
that also queues its emails in the outbox; the worker's outbox relay delivers them, outside any
workflow task, so SMTP never holds a caller. Search attributes and current details change with
the stage, so ops can filter and read workflows in the Temporal UI.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from core import search_attributes
    from core.activity_contracts import (
        PROJECTION_REJECTED,
        RECORD_TRANSITION,
        Notice,
        Recipient,
        TransitionRecord,
    )
    from core.internship import (
        SYSTEM,
        Actor,
        InternshipState,
        Role,
        Stage,
        TimelineEntry,
        UpcomingDeadline,
    )

LOCAL_TIMEOUT = timedelta(seconds=15)
# A projection write must land eventually; the database being down stalls, never loses.
PROJECTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)

OPS_TEAM = Recipient(Role.OPS, "ops")


def employer_of(state: InternshipState) -> Recipient:
    return Recipient(Role.EMPLOYER, state.posting.employer_id)


def launcher_of(state: InternshipState) -> Recipient:
    assert state.launcher_id is not None
    return Recipient(Role.LAUNCHER, state.launcher_id)


class Recorder:
    """Owns the timeline, the search attributes and the current details; each recorded event
    queues its emails in the outbox, which the worker's relay sends."""

    def __init__(
        self,
        state: InternshipState,
        upcoming: Callable[[], list[UpcomingDeadline]] = list,
    ) -> None:
        self._state = state
        self._upcoming = upcoming  # the current round's deadlines, as people are told them
        self._behind = False  # the search attributes lag the stage (see `enter`)

    async def record(self, event: str, by: Actor, *notices: Notice, note: str = "") -> None:
        """Append to the timeline, project the state, and queue the event's emails."""
        s = self._state
        # Every change that moves a deadline is recorded, so the state (and this event's
        # emails) always list the deadlines the workflow now waits on.
        s.deadlines = self._upcoming()
        entry = TimelineEntry(
            len(s.timeline) + 1, workflow.now(), s.stage, event, by.role, by.id, note, by.member_id
        )
        s.timeline.append(entry)
        try:
            await RECORD_TRANSITION.execute_local(
                TransitionRecord(s, entry, list(notices)),
                start_to_close_timeout=LOCAL_TIMEOUT,
                retry_policy=PROJECTION_RETRY,
                summary=f"Record {event}",
            )
        except (ActivityError, ApplicationError) as err:
            # A local activity's failure arrives as the activity's own error, unwrapped.
            cause = err.cause if isinstance(err, ActivityError) else err
            if not (isinstance(cause, ApplicationError) and cause.type == PROJECTION_REJECTED):
                raise
            # The database refused this state for good and ops were emailed; the lifecycle goes
            # on (the next event's record catches the projection up), flagged for ops to see.
            s.escalation_level = 2
            self.publish()

    async def enter(
        self,
        stage: Stage,
        event: str,
        by: Actor,
        *notices: Notice,
        note: str = "",
        publish: bool = True,
    ) -> None:
        """Move to `stage`: a new stage starts with no escalation, and no refused payment
        waits for ops (a payout ends before its stage does; a refund's wait ends with it).

        `publish=False` leaves the search attributes (each upsert a billable action) for a
        stage that normally lasts moments; `catch_up` publishes them if it lasts after all."""
        self._state.stage = stage
        self._state.escalation_level = 0
        self._state.payment_refused = ""
        if publish:
            self.publish()
        else:
            self._behind = True
            self.show_details()
        await self.record(event, by, *notices, note=note)

    def catch_up(self) -> None:
        """Publish the search attributes if `enter` left them behind the stage."""
        if self._behind:
            self.publish()

    async def raise_level(self, level: int, event: str, *notices: Notice, note: str = "") -> None:
        self._state.escalation_level = max(self._state.escalation_level, level)
        self.publish()
        await self.record(event, SYSTEM, *notices, note=note)

    async def remind(self, reason: str, to: list[Recipient], **details: object) -> None:
        notice = Notice("reminder", to, {"reason": reason, **details})
        await self.raise_level(1, f"reminder_{reason}", notice)

    async def escalate(self, reason: str) -> None:
        """Ops must act: email them and put the workflow at the top of their filter."""
        notice = Notice("escalation", [OPS_TEAM], {"reason": reason, "level": 2})
        await self.raise_level(2, "escalated", notice, note=reason)

    def publish(self) -> None:
        """One search-attribute upsert per change, so the UI filters on the current state."""
        self._behind = False
        s = self._state
        keys = search_attributes
        updates: list[SearchAttributeUpdate[Any]] = [
            keys.STAGE.value_set(s.stage.value),
            keys.ESCALATION.value_set(s.escalation_level),
        ]
        # Launcher and due date are cleared only when a launcher withdraws (back to posted).
        if s.launcher_id:
            updates.append(keys.LAUNCHER.value_set(s.launcher_id))
        elif s.stage == Stage.POSTED:
            updates.append(keys.LAUNCHER.value_unset())
        if s.due_at:
            updates.append(keys.DUE_AT.value_set(s.due_at))
        elif s.stage == Stage.POSTED:
            updates.append(keys.DUE_AT.value_unset())
        workflow.upsert_search_attributes(updates)
        self.show_details()

    def show_details(self) -> None:
        """The line the Temporal UI shows under the workflow: stage, escalation, due date."""
        s = self._state
        parts = [f"**{s.stage.value}**", f"escalation {s.escalation_level}"]
        if s.due_at:
            parts.append(f"due {s.due_at:%Y-%m-%d %H:%M} UTC" + (" (overdue)" if s.overdue else ""))
        if s.disputed:
            parts.append("disputed")
        if s.payment_refused:
            parts.append("payment refused: waiting for retry_payment")
        workflow.set_current_details(" · ".join(parts))
