"""Throughput: many happy-path lifecycles at once through the API, against the bare baseline at
the same concurrency; then what their histories show (billable actions, events, the longest
workflow task).

Each round runs the baseline, then the lifecycles; the best round of each counts (the machine
is shared: a burst of someone else's work slows one round, never speeds one up). CPU per
lifecycle counts every round: what each process spent from the start of a run until its worker
is idle again (the last emails sent), over the lifecycles completed (bench/cpu.py). Others'
work on the machine slows a run but hardly changes what our processes spend.
"""

from __future__ import annotations

import statistics
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from bench.cpu import Meter
from bench.lifecycle import (
    NewDriver,
    Pair,
    Run,
    billable_actions,
    drive,
    drivers,
    histories,
    shape,
    task_failures,
    workflow_task_seconds,
)
from bench.profile import profiling
from bench.stack import Process, Service, Stack

CPU_RATIO = "cpu_ratio_to_bare"  # our CPU per lifecycle over the bare baseline's, same run


def meters(stack: Stack, svc: Service) -> tuple[Meter, Meter]:
    """The bare side's processes and ours, by the names the figures use."""
    dev_server = stack.processes["temporal"].pid
    bare = Meter(
        {"dev_server": dev_server, "worker": stack.processes["bare-worker"].pid}, ["worker"]
    )
    ours = Meter(
        {
            "dev_server": dev_server,
            "worker": svc.worker.pid,
            "api": svc.api.pid,
            "stripe_server": stack.processes["stripe"].pid,
            "smtp_sink": stack.processes["smtp"].pid,
        },
        ["worker"],
    )
    return bare, ours


async def metered(
    meter: Meter,
    worker: Process,
    count: int,
    new_driver: NewDriver,
    profile: AbstractContextManager[None],
) -> Run:
    """`count` lifecycles at once, what they cost counted in `meter` until `worker` is idle."""
    with meter.measuring(), profile:
        run = await drive(count, 1, new_driver)
        await worker.idle(every=0.5, within=30)
    meter.lifecycles += run.completed
    return run


async def measure(
    stack: Stack,
    svc: Service,
    pairs: list[Pair],
    count: int,
    rounds: int,
    profile: Path | None = None,
) -> dict[str, object]:
    """`profile`: a folder for py-spy's profiles of the worker and API (and the bare worker)
    over the rounds, bench/profile.py."""
    bare, api = drivers(stack.bare_client, svc.http, pairs)
    await drive(1, 1, bare)  # warm-up: connections, caches, first imports
    await drive(1, 1, api)
    bare_cpu, our_cpu = meters(stack, svc)
    bare_worker = stack.processes["bare-worker"]

    def profiled(processes: dict[str, int]) -> AbstractContextManager[None]:
        return profiling(profile, processes) if profile else nullcontext()

    bare_runs, api_runs = [], []
    for n in range(rounds):
        spied = profiled({f"bare-worker-{n}": bare_worker.pid})
        bare_runs.append(await metered(bare_cpu, bare_worker, count, bare, spied))
        spied = profiled({f"worker-{n}": svc.worker.pid, f"api-{n}": svc.api.pid})
        api_runs.append(await metered(our_cpu, svc.worker, count, api, spied))
    best_bare = max(r.rate for r in bare_runs)
    best_api = max(r.rate for r in api_runs)

    for failure in sorted({f for r in api_runs + bare_runs for f in r.failures})[:5]:
        print(f"# lifecycle failed: {failure}", flush=True)  # why, not just how many
    ours = await histories(stack.client, [id_ for r in api_runs for id_ in r.workflow_ids])
    theirs = await histories(stack.bare_client, bare_runs[0].workflow_ids[:1])
    tasks = [seconds for h in ours for seconds in workflow_task_seconds(h)]
    our_figures, bare_figures = our_cpu.figures(), bare_cpu.figures("bare")
    return {
        "throughput_ratio": round(best_api / best_bare, 3),
        "throughput_lifecycles_per_s": round(best_api, 2),
        "baseline_lifecycles_per_s": round(best_bare, 2),
        "max_workflow_task_seconds": round(max(tasks), 3),
        "median_workflow_task_seconds": round(statistics.median(tasks), 3),
        "workflow_task_failures": sum(task_failures(h) for h in ours),
        "happy_path_actions": max(billable_actions(h) for h in ours),
        "happy_path_events": max(len(h.events) for h in ours),
        "lifecycle_shape": shape(ours[0]),
        "baseline_shape": shape(theirs[0]),
        # The client's reads while the payout lands (every 50 ms): each costs a query.
        "payout_polls_per_lifecycle": round(
            sum(r.polls for r in api_runs) / max(1, sum(r.completed for r in api_runs)), 1
        ),
        "baseline_payout_polls_per_lifecycle": round(
            sum(r.polls for r in bare_runs) / max(1, sum(r.completed for r in bare_runs)), 1
        ),
        f"errors_5xx_{count}": sum(r.errors_5xx for r in api_runs),
        f"lifecycles_failed_{count}": sum(len(r.failures) for r in api_runs + bare_runs),
        **our_figures,
        **bare_figures,
        **cpu_ratio(our_figures, bare_figures),
    }


def cpu_ratio(ours: dict[str, float], bare: dict[str, float]) -> dict[str, float]:
    """Ours over bare, both measured in this run: what the machine's speed does not move.
    Nothing when a side completed no lifecycle (the run says so elsewhere)."""
    mine, theirs = (
        ours.get("cpu_ms_per_lifecycle_total"),
        bare.get("cpu_ms_per_lifecycle_bare_total"),
    )
    if not mine or not theirs:
        return {}
    return {CPU_RATIO: round(mine / theirs, 2)}
