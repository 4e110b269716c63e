"""`python -m bench.guard`: CI's check that a lifecycle costs no more than it did (about 1 minute).

    .venv/bin/python -m bench.guard [--count 5] [--rounds 2] [--update] [--profile DIR]

Starts the stack as `make bench` does (bench/stack.py), runs `count` happy-path lifecycles at
once through the API (and as many bare ones) on SQLite, `rounds` times, and prints the
throughput figures as name=value lines. Then compares two of them with bench/budget.json and
exits 1 if either went up:
- `happy_path_actions` (Temporal Cloud billable actions of one happy path) above the budget's;
- `cpu_ratio_to_bare` (the CPU our processes spend per lifecycle, bench/cpu.py, over what the
  bare baseline's spend in the same run) more than `cpu_growth_allowed` times the budget's. A
  ratio, because machines differ: this one read 449 ms per lifecycle one day and 615-860 the
  next on the same code, while ours over bare stayed put. Only a real regression fails, never
  a slow machine. Nothing else is timed.
A lifecycle that does not complete fails the check too. `--update` writes the figures just
measured into bench/budget.json instead (after making a lifecycle cheaper: commit it). With
another `--count` than the budget's it only measures (`--profile DIR`: see bench/profile.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import throughput
from bench.lifecycle import sign_up
from bench.stack import service, sqlite_url, stack
from bench.throughput import CPU_RATIO

BUDGET = Path(__file__).with_name("budget.json")
CPU = "cpu_ms_per_lifecycle_total"
ACTIONS = "happy_path_actions"


@dataclass(frozen=True)
class Budget:
    happy_path_actions: int
    cpu_ratio_to_bare: float
    cpu_ms_per_lifecycle_total: float  # for the reader: what the ratio was, on this machine
    cpu_growth_allowed: float = 1.5
    lifecycles: int = 5  # at once, per round: what the CPU figure was measured with

    @classmethod
    def load(cls, path: Path = BUDGET) -> Budget:
        return cls(**json.loads(path.read_text()))


def failures(measured: Mapping[str, object], budget: Budget) -> list[str]:
    """What the measured figures break of the budget, one sentence each (none: within it)."""
    found = []
    failed = measured.get(f"lifecycles_failed_{budget.lifecycles}", 0)
    if failed:
        found.append(f"{failed} lifecycles did not complete: nothing else can be trusted")
    actions = measured.get(ACTIONS)
    if not isinstance(actions, int):
        found.append(f"no {ACTIONS} measured")
    elif actions > budget.happy_path_actions:
        found.append(
            f"{ACTIONS}={actions}: a happy path now costs more billable actions than the "
            f"{budget.happy_path_actions} in {BUDGET.name}"
        )
    ratio = measured.get(CPU_RATIO)
    limit = budget.cpu_ratio_to_bare * budget.cpu_growth_allowed
    if not isinstance(ratio, int | float):
        found.append(f"no {CPU_RATIO} measured")
    elif ratio > limit:
        found.append(
            f"{CPU_RATIO}={ratio}: more than {budget.cpu_growth_allowed}x the "
            f"{budget.cpu_ratio_to_bare} in {BUDGET.name} (limit {limit:.2f}); "
            "the cpu_ms_per_lifecycle_* lines above say which process grew"
        )
    return found


async def measure(count: int, rounds: int, folder: Path, profile: Path | None) -> dict[str, object]:
    async with (
        stack(folder) as s,
        service(s, "guard", sqlite_url(folder, "guard")) as svc,
    ):
        pairs = await sign_up(svc.http, svc.mail, count)
        return await throughput.measure(s, svc, pairs, count, rounds, profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=Budget.lifecycles)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--update", action="store_true", help=f"write {BUDGET.name}")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy profiles, in DIR")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-guard-"))
    try:
        measured = asyncio.run(measure(args.count, args.rounds, folder, args.profile))
    except BaseException:
        print(f"# logs kept in {folder}", file=sys.stderr, flush=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    for name, value in measured.items():
        print(f"{name}={value}", flush=True)
    if args.update:
        budget = Budget(
            happy_path_actions=int(str(measured[ACTIONS])),
            cpu_ratio_to_bare=float(str(measured[CPU_RATIO])),
            cpu_ms_per_lifecycle_total=math.ceil(float(str(measured[CPU]))),
            lifecycles=args.count,
        )
        BUDGET.write_text(json.dumps(asdict(budget), indent=2) + "\n")
        print(f"# wrote {BUDGET}", flush=True)
        return
    budget = Budget.load()
    if args.count != budget.lifecycles:
        print(f"# not checked: {BUDGET.name} is for --count {budget.lifecycles}", flush=True)
        return
    broken = failures(measured, budget)
    for sentence in broken:
        print(f"BUDGET EXCEEDED: {sentence}", file=sys.stderr, flush=True)
    if broken:
        sys.exit(1)
    print(
        f"# within {BUDGET.name}: {ACTIONS} <= {budget.happy_path_actions}, {CPU_RATIO} <= "
        f"{budget.cpu_growth_allowed}x {budget.cpu_ratio_to_bare}",
        flush=True,
    )


if __name__ == "__main__":
    main()
