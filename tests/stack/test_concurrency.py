"""Under concurrency the API neither holds a database connection nor blocks while it waits.

A request resolves its caller in a short session of its own and releases the connection before
it waits on Temporal; the pool's limit answers a quick 503, never a 30-second stall or a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio import client as temporal
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.settings import Settings
from dev.harness import free_port
from tests.conftest import Api
from tests.stack.test_api import ACCEPT, act, auth, employer, launcher, post


class PoolProbe(temporal.Interceptor):
    """Notes how many of the API's pooled connections are checked out at each Temporal call."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.seen: list[tuple[str, int]] = []

    def intercept_client(self, next: temporal.OutboundInterceptor) -> temporal.OutboundInterceptor:
        probe = self

        class Outbound(temporal.OutboundInterceptor):
            def note(self, call: str) -> None:
                assert probe.engine is not None
                probe.seen.append((call, probe.engine.pool.checkedout()))  # type: ignore[attr-defined]

            async def start_workflow(self, input: Any) -> Any:
                self.note("start")
                return await super().start_workflow(input)

            async def start_workflow_update(self, input: Any) -> Any:
                self.note(f"update {input.update}")
                return await super().start_workflow_update(input)

            async def query_workflow(self, input: Any) -> Any:
                self.note("query")
                return await super().query_workflow(input)

        return Outbound(next)


@pytest.fixture
async def tight_api(
    env: WorkflowEnvironment, settings: Settings, api: Api
) -> AsyncIterator[tuple[Api, PoolProbe]]:
    """The API with one pooled connection and no overflow, and a probe on its Temporal calls.
    (Depends on `api` so internships left open are stopped after the test.)"""
    probe = PoolProbe()
    config = env.client.config()
    config["interceptors"] = [probe]
    client = temporal.Client(**config)
    tight = settings.model_copy(
        update={
            "api_port": free_port(),
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout_seconds": 2,
        }
    )
    app = create_app(tight, temporal=client)
    probe.engine = app.state.sessions.kw["bind"]
    async with Api(app, tight.api_port) as served:
        served.inbox = api.inbox
        yield served, probe


async def test_no_connection_is_held_while_waiting_on_temporal(
    tight_api: tuple[Api, PoolProbe],
) -> None:
    api, probe = tight_api
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "Me", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    await act(api, emp, iid, "kickoff", ACCEPT)
    await act(api, lnc, iid, "submissions", {"url": "https://docs.test/a", "note": ""})
    await act(api, emp, iid, "review", {"decision": "approve", "feedback": "Good"})
    await api.http.get(f"/v1/internships/{iid}", headers=auth(emp["api_token"]))
    calls = [call for call, _ in probe.seen]
    assert "start" in calls and "query" in calls
    assert {f"update {u}" for u in ("apply", "select", "kickoff", "submit", "review")} <= set(calls)
    assert [(call, held) for call, held in probe.seen if held] == []


async def test_many_concurrent_transitions_on_one_connection_all_answer(
    tight_api: tuple[Api, PoolProbe],
) -> None:
    """Sixteen launchers apply at once, then sixteen kickoffs race: every application lands,
    one kickoff charges and fifteen are told it already happened; nothing is a 5xx."""
    api, _ = tight_api
    emp = await employer(api)
    launchers = await asyncio.gather(*(launcher(api, onboard=False) for _ in range(16)))
    iid = (await post(api, emp))["id"]
    applied = await asyncio.gather(
        *(
            api.http.post(
                f"/v1/internships/{iid}/applications",
                json={"pitch": "Pick me", **ACCEPT},
                headers=auth(lnc["api_token"]),
            )
            for lnc in launchers
        )
    )
    assert [r.status_code for r in applied] == [200] * 16
    await act(api, emp, iid, "selection", {"launcher_id": launchers[0]["id"]})
    kickoffs = await asyncio.gather(
        *(
            api.http.post(
                f"/v1/internships/{iid}/kickoff", json=ACCEPT, headers=auth(emp["api_token"])
            )
            for _ in range(16)
        )
    )
    assert sorted(r.status_code for r in kickoffs) == [200] + [409] * 15
    detail = await api.http.get(f"/v1/internships/{iid}", headers=auth(emp["api_token"]))
    assert detail.json()["payment"]["charged_cents"] == 40000


async def test_overload_is_a_quick_503_with_retry_after(
    env: WorkflowEnvironment, settings: Settings
) -> None:
    """Beyond the in-flight limit the API says "busy, retry" at once instead of queueing."""
    local = settings.model_copy(update={"api_port": free_port(), "api_max_in_flight": 2})
    app = create_app(local, temporal=env.client)
    release, both_in = asyncio.Event(), asyncio.Event()
    entered = 0

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        nonlocal entered
        entered += 1
        if entered == 2:
            both_in.set()
        await release.wait()
        return {"status": "done"}

    async with Api(app, local.api_port) as served:
        busy = [asyncio.create_task(served.http.get("/slow")) for _ in range(2)]
        await asyncio.wait_for(both_in.wait(), 10)
        shed = await served.http.get("/openapi.json")
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        assert shed.json()["error"]["code"] == "overloaded"
        release.set()
        assert [(await t).status_code for t in busy] == [200, 200]
        assert (await served.http.get("/openapi.json")).status_code == 200
