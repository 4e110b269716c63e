"""Every call the application layer makes to Temporal about internships, in one class.

`InternshipWorkflows` starts an internship's workflow, reads its state, runs an update and sends
a signal, and turns Temporal's errors into two of its own: `NoSuchRun` (no such workflow, or
it has finished and takes no more updates) and `Refused` (a validator said no). It is the one
seam the surface tests replace (tests/surface), so the JSON API and the pages can be tested
without a Temporal server.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from core import search_attributes
from core.internship import Actor, DisputeMessage, InternshipState, Posting, Stage, workflow_id
from workflows.internship import InternshipWorkflow

Handle = WorkflowHandle[InternshipWorkflow, InternshipState]
Update = UpdateMethodMultiParam[[InternshipWorkflow, Any], InternshipState]


class NoSuchRun(Exception):
    """No workflow has this internship id, or its run has finished (it answers reads only)."""


class AlreadyStarted(Exception):
    """A workflow with this internship id was started before (an id names one run, ever)."""


class Refused(Exception):
    """The workflow's validator refused the update: `kind` is a `core.errors` kind."""

    def __init__(self, kind: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.kind, self.message, self.details = kind, message, details


async def start_internship(client: Client, posting: Posting, task_queue: str) -> Handle:
    """Start an internship's workflow with what ops filter and read on from its first moment.

    An internship id names one run, ever: Temporal refuses to start it again once any run of it
    exists, finished or not (`WorkflowAlreadyStartedError`)."""
    keys = search_attributes
    return await client.start_workflow(
        InternshipWorkflow.run,
        posting,
        id=workflow_id(posting.internship_id),
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(keys.STAGE, Stage.POSTED.value),
                SearchAttributePair(keys.EMPLOYER, posting.employer_id),
                SearchAttributePair(keys.CATEGORY, posting.category),
                SearchAttributePair(keys.ESCALATION, 0),
            ]
        ),
        static_summary=f"{posting.title} · {posting.company}",
    )


def handle(client: Client, internship_id: str) -> Handle:
    """The workflow of one internship."""
    return client.get_workflow_handle_for(InternshipWorkflow.run, workflow_id(internship_id))


class InternshipWorkflows:
    """Internships' workflows on one Temporal client and task queue."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client, self.task_queue = client, task_queue

    def _handle(self, internship_id: str) -> Handle:
        return handle(self.client, internship_id)

    async def start(self, posting: Posting) -> None:
        try:
            await start_internship(self.client, posting, self.task_queue)
        except WorkflowAlreadyStartedError as err:
            raise AlreadyStarted(posting.internship_id) from err

    async def state(self, internship_id: str) -> InternshipState:
        """The `state` query: a finished workflow answers it too, while Temporal keeps it."""
        try:
            return await self._handle(internship_id).query(InternshipWorkflow.state)
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise NoSuchRun(internship_id) from err
            raise

    async def update(
        self, internship_id: str, update: Update, request: Any, update_id: str | None
    ) -> InternshipState:
        """Run one update; the same `update_id` runs once however often it is asked."""
        try:
            return await self._handle(internship_id).execute_update(update, request, id=update_id)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type:
                found = cause.details[0] if cause.details else {}
                details = dict(found) if isinstance(found, dict) else {}
                raise Refused(cause.type, cause.message, details) from err
            raise Refused("", str(cause), {}) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NoSuchRun(internship_id) from err
            raise

    async def retry_payment(self, internship_id: str, by: Actor) -> None:
        """Ops' `retry_payment` signal."""
        await self._signal(internship_id, InternshipWorkflow.retry_payment, by)

    async def payout_account_ready(self, internship_id: str) -> None:
        """The launcher's payout account can receive money now: a waiting payout tries again."""
        await self._signal(internship_id, InternshipWorkflow.payout_account_ready)

    async def message_in_dispute(self, internship_id: str, by: Actor, message_id: int) -> None:
        """A message written during the dispute: its record links to it."""
        await self._signal(
            internship_id, InternshipWorkflow.message_in_dispute, DisputeMessage(by, message_id)
        )

    async def _signal(self, internship_id: str, signal: Any, *args: Any) -> None:
        try:
            await self._handle(internship_id).signal(signal, *args)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NoSuchRun(internship_id) from err
            raise

    async def reachable(self) -> None:
        """Raises unless the Temporal server answers within 3 s (the health check)."""
        await self.client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=3)
        )
