"""bench.floor's shaped lifecycle (bench/shaped.py) has our history's server-side shape over
the bare one: the same updates, activities and local activities, plus our patches, a deadline
timer per stage (cancelled as the stage moves on) and the stage's search-attribute upserts."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.baseline import BareDriver, BareLifecycle, bare_money, bare_record
from bench.lifecycle import Driver, Run, histories, lifecycle, shape
from bench.shaped import ShapedDriver, ShapedLifecycle


def kinds(history: WorkflowHistory) -> Counter[str]:
    return Counter(EventType.Name(e.event_type) for e in history.events)


async def completed(driver: Driver) -> None:
    run = Run()
    await lifecycle(driver, run)
    assert run.completed == 1, run.failures


async def test_the_shaped_lifecycle_adds_our_timers_upserts_and_patches(
    env: WorkflowEnvironment,
) -> None:
    queue = f"floor-{uuid.uuid4().hex}"
    with (
        ThreadPoolExecutor(max_workers=4) as executor,
        env.auto_time_skipping_disabled(),  # the stage's 7-day timers are cancelled, not fired
    ):
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[BareLifecycle, ShapedLifecycle],
            activities=[bare_record, bare_money],
            activity_executor=executor,
        ):
            bare, shaped = BareDriver(env.client, queue), ShapedDriver(env.client, queue)
            await completed(bare)
            await completed(shaped)
    theirs, ours = await histories(env.client, [bare.workflow_id, shaped.workflow_id])
    assert shape(ours) == shape(theirs) == "updates:7,activities:2,local_activities:10"
    bare_kinds, shaped_kinds = kinds(theirs), kinds(ours)
    for added in ("TIMER_STARTED", "TIMER_CANCELED", "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"):
        assert bare_kinds[f"EVENT_TYPE_{added}"] == 0
    assert shaped_kinds["EVENT_TYPE_TIMER_STARTED"] == 5
    assert shaped_kinds["EVENT_TYPE_TIMER_CANCELED"] == 5
    assert shaped_kinds["EVENT_TYPE_TIMER_FIRED"] == 0
    # Five stages entered (matched, in progress, submitted, paid, completed), each an upsert,
    # and each patch's own `TemporalChangeVersion` upsert: 8, as in our happy path's history.
    assert shaped_kinds["EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 8
    patches = [
        e
        for e in ours.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert len(patches) == 3
