"""Scale-out on one machine: the same full lifecycles through the API with one worker process,
then with three, on one database (Postgres when it answers: the database scale-out is for).

    .venv/bin/python -m bench.workers [--count N] [--postgres URL | --no-postgres]

(`make bench` runs it too, on its own stack.) Each configuration gets its own API and workers on
a task queue of its own, signs up `count` pairs, warms up with one lifecycle, then runs `count`
concurrent lifecycles twice; the better round counts, as in bench/throughput.py.

On this 2-core machine the three workers share the cores with the Temporal dev server, the
database, the API and the clients, so three are not expected to be faster than one here; the
figure shows that adding workers costs nothing and loses nothing (every lifecycle completes),
which is what lets them scale where there are cores (see README, Deploy).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

from bench.lifecycle import LifecycleFailed, drive, drivers, sign_up
from bench.stack import (
    DEFAULT_POSTGRES,
    Stack,
    drop_postgres_schema,
    postgres_schema,
    service,
    sqlite_url,
    stack,
)

ROUNDS = 2


async def rate(stack: Stack, url: str, workers: int, count: int, **tuning: str) -> float:
    """Completed lifecycles per second with `workers` worker processes (the best round)."""
    async with service(stack, f"w{workers}", url, tuning, workers) as svc:
        pairs = await sign_up(svc.http, svc.mail, count)
        _, api = drivers(stack.bare_client, svc.http, pairs)
        await drive(1, 1, api)  # warm-up
        best = 0.0
        for _ in range(ROUNDS):
            run = await drive(count, 1, api)
            if run.failures or run.errors_5xx:
                raise LifecycleFailed(
                    f"{workers} workers: {run.failures[:3]}, 5xx {run.errors_5xx}"
                )
            best = max(best, run.rate)
        return best


async def measure(stack: Stack, url: str, count: int, **tuning: str) -> dict[str, object]:
    one = await rate(stack, url, 1, count, **tuning)
    three = await rate(stack, url, 3, count, **tuning)
    return {
        "throughput_1w": round(one, 2),
        "throughput_3w": round(three, 2),
        "throughput_3w_ratio": round(three / one, 3),
    }


async def _alone(args: argparse.Namespace, folder: Path) -> None:
    url = None if args.no_postgres else postgres_schema(args.postgres)
    print(f"# database: {'postgres' if url else 'sqlite'}", flush=True)
    try:
        async with stack(folder) as s:
            for name, value in (
                await measure(s, url or sqlite_url(folder, "w"), args.count)
            ).items():
                print(f"{name}={value}", flush=True)
    finally:
        if url:
            drop_postgres_schema(args.postgres)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, metavar="URL")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--count", type=int, default=40, help="concurrent lifecycles")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    asyncio.run(_alone(args, folder))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
