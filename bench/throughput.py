"""Throughput: many happy-path lifecycles at once through the API, against the bare baseline at
the same concurrency; then what their histories show (billable actions, events, the longest
workflow task).

Each round runs the baseline, then the lifecycles; the best round of each counts (the machine
is shared: a burst of someone else's work slows one round, never speeds one up).
"""

from __future__ import annotations

from bench.lifecycle import (
    Pair,
    billable_actions,
    drive,
    drivers,
    histories,
    shape,
    task_failures,
    workflow_task_seconds,
)
from bench.stack import Service, Stack


async def measure(
    stack: Stack, svc: Service, pairs: list[Pair], count: int, rounds: int
) -> dict[str, object]:
    bare, api = drivers(stack.bare_client, svc.http, pairs)
    await drive(1, 1, bare)  # warm-up: connections, caches, first imports
    await drive(1, 1, api)
    bare_runs, api_runs = [], []
    for _ in range(rounds):
        bare_runs.append(await drive(count, 1, bare))
        api_runs.append(await drive(count, 1, api))
    best_bare = max(r.rate for r in bare_runs)
    best_api = max(r.rate for r in api_runs)

    ours = await histories(stack.client, [id_ for r in api_runs for id_ in r.workflow_ids])
    theirs = await histories(stack.bare_client, bare_runs[0].workflow_ids[:1])
    tasks = [seconds for h in ours for seconds in workflow_task_seconds(h)]
    return {
        "throughput_ratio": round(best_api / best_bare, 3),
        "throughput_lifecycles_per_s": round(best_api, 2),
        "baseline_lifecycles_per_s": round(best_bare, 2),
        "max_workflow_task_seconds": round(max(tasks), 3),
        "workflow_task_failures": sum(task_failures(h) for h in ours),
        "happy_path_actions": max(billable_actions(h) for h in ours),
        "happy_path_events": max(len(h.events) for h in ours),
        "lifecycle_shape": shape(ours[0]),
        "baseline_shape": shape(theirs[0]),
        f"errors_5xx_{count}": sum(r.errors_5xx for r in api_runs),
        f"lifecycles_failed_{count}": sum(len(r.failures) for r in api_runs + bare_runs),
    }
