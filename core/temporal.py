"""Connecting to Temporal the same way from the API, the worker, the tests and the tools."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from core import search_attributes
from core.codec import data_converter
from core.settings import Settings
from core.types import InternshipState, Posting, Stage
from workflows.internship import InternshipWorkflow, workflow_id


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.codec_key),
    )


async def start_internship(
    client: Client, posting: Posting, task_queue: str
) -> WorkflowHandle[InternshipWorkflow, InternshipState]:
    """Start an internship's workflow with what ops filter and read on from its first moment."""
    sa = search_attributes
    return await client.start_workflow(
        InternshipWorkflow.run,
        posting,
        id=workflow_id(posting.internship_id),
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.STAGE, Stage.POSTED.value),
                SearchAttributePair(sa.EMPLOYER, posting.employer_id),
                SearchAttributePair(sa.CATEGORY, posting.category),
                SearchAttributePair(sa.ESCALATION, 0),
            ]
        ),
        static_summary=f"{posting.title} · {posting.company}",
    )
