"""`python -m bench.floor`: what our history's shape alone costs bare Temporal (about 20 seconds).

    .venv/bin/python -m bench.floor [--count 20] [--rounds 3]

Starts the stack as `make bench` does (bench/stack.py: no worker or API of ours), then drives
`count` bare lifecycles at once and `count` shaped ones (`bench.shaped.ShapedLifecycle`: the
bare workflow with our patches, search-attribute upserts, deadline timers and payload sizes),
in turns, `rounds` times, on the bare worker. Prints, as name=value lines, the shaped side's
throughput over the bare side's (the best round of each) and what each costs the dev server and
the worker per lifecycle. Whatever our service adds beyond that shape (the API, the database,
the emails, Stripe) comes on top: the ratio is the ceiling of `throughput_ratio`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

from bench.baseline import BARE_QUEUE, BareDriver
from bench.cpu import Meter
from bench.lifecycle import Driver, NewDriver, Run, drive, histories
from bench.shaped import ShapedDriver
from bench.stack import Stack, stack


async def measure(s: Stack, count: int, rounds: int) -> dict[str, object]:
    def bare(number: int, run: Run) -> Driver:
        return BareDriver(s.bare_client, BARE_QUEUE)

    def shaped(number: int, run: Run) -> Driver:
        return ShapedDriver(s.bare_client, BARE_QUEUE)

    processes = {
        "dev_server": s.processes["temporal"].pid,
        "worker": s.processes["bare-worker"].pid,
    }
    sides: dict[str, tuple[NewDriver, Meter, list[Run]]] = {
        "bare": (bare, Meter(processes), []),
        "shaped": (shaped, Meter(processes), []),
    }
    for new_driver, _, _ in sides.values():
        await drive(1, 1, new_driver)  # warm-up
    for _ in range(rounds):
        for new_driver, meter, runs in sides.values():
            with meter.measuring():
                run = await drive(count, 1, new_driver)
                await asyncio.sleep(1)  # the last tasks' timers and visibility writes
            meter.lifecycles += run.completed
            runs.append(run)
    out: dict[str, object] = {}
    for name, (_, meter, runs) in sides.items():
        [history] = await histories(s.bare_client, runs[0].workflow_ids[:1])
        out[f"{name}_events"] = len(history.events)
        out[f"{name}_lifecycles_failed"] = sum(len(r.failures) for r in runs)
        for part in ("dev_server", "worker"):
            spent = meter.spent[part] * 1000 / max(1, meter.lifecycles)
            out[f"cpu_ms_per_lifecycle_{name}_{part}"] = round(spent, 1)
    best = {name: max(r.rate for r in runs) for name, (_, _, runs) in sides.items()}
    out["shaped_throughput_ratio"] = round(best["shaped"] / best["bare"], 3)
    return out


async def main(count: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    async with stack(folder) as s:
        measured = await measure(s, count, rounds)
    shutil.rmtree(folder, ignore_errors=True)
    for name, value in measured.items():
        print(f"{name}={value}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.rounds))
