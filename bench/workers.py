"""Scale-out on one machine: the same full lifecycles through the API with one worker process,
then with three, on one database (Postgres when it answers: the database scale-out is for).

On this 2-core machine the three workers share the cores with the Temporal dev server, the
database, the API and the clients, so three are not expected to be faster than one here; the
figure shows that adding workers costs nothing and loses nothing (every lifecycle completes),
which is what lets them scale where there are cores (see README, Deploy).
"""

from __future__ import annotations

from bench.lifecycle import LifecycleFailed, drive, drivers, sign_up
from bench.stack import Stack, service

ROUNDS = 2


async def rate(stack: Stack, url: str, workers: int, count: int, **tuning: str) -> float:
    """Completed lifecycles per second with `workers` worker processes (the best round)."""
    async with service(stack, f"w{workers}", url, tuning, workers) as svc:
        pairs = await sign_up(svc.http, count)
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
