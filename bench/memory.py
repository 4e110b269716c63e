"""Scale: the worker's resident memory with many open internships waiting on their timers, and
the list endpoint's latency over as many projection rows; at 1,000, the pages (`bench/web.py`).

On a database of its own, internships are started straight through the client (as
`POST /v1/internships` starts them, many at once) until 1,000 are open, then 10,000. At each
size, once the worker has recorded every posting and gone idle, its VmRSS is read and
`GET /v1/internships` (as ops, first page) is timed, unfiltered and with each filter.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from api.service.workflows import start_internship
from bench import web
from bench.lifecycle import Pair, sign_up
from bench.stack import OPS_TOKEN, Service, Stack, service, sqlite_url
from core.accounts import new_id
from core.internship import Posting
from core.settings import Settings
from dev.harness import eventually

CATEGORIES = ("sales", "marketing", "technology", "hr", "finance", "other")
SKILLS = ("writing", "seo", "python", "excel", "design", "research")
FILTERS = {
    "all": {},
    "stage": {"stage": "posted"},
    "category": {"category": "marketing"},
    "skill": {"skill": "seo"},
}
LIST_SAMPLES = 40


async def start_many(stack: Stack, svc: Service, employer: Pair, first: int, count: int) -> None:
    policy = Settings(_env_file=None).policy()  # type: ignore[call-arg]
    gate = asyncio.Semaphore(50)

    async def one(n: int) -> None:
        posting = Posting(
            internship_id=new_id(),
            employer_id=employer.employer_id,
            company="Acme",
            title=f"Bench posting {n}",
            description="Waiting for applicants.",
            category=CATEGORIES[n % len(CATEGORIES)],
            skills=[SKILLS[n // len(CATEGORIES) % len(SKILLS)], "writing"],
            estimated_hours=10,
            fee_cents=40000,
            currency="usd",
            duration_days=7,
            policy=policy,
        )
        async with gate:
            await start_internship(stack.client, posting, svc.task_queue)

    await asyncio.gather(*(one(n) for n in range(first, first + count)))


async def list_p50_ms(svc: Service, params: dict[str, str]) -> float:
    headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
    seconds = []
    for n in range(LIST_SAMPLES + 3):  # the first three warm up
        began = time.perf_counter()
        response = await svc.http.get("/v1/internships", params=params, headers=headers)
        response.raise_for_status()
        if n >= 3:
            seconds.append(time.perf_counter() - began)
    return statistics.median(seconds) * 1000


def kilo(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


async def measure(
    stack: Stack, sizes: tuple[int, int], cached: int, **tuning: str
) -> dict[str, object]:
    small, large = sizes
    rss: dict[int, float] = {}
    lists: dict[int, dict[str, float]] = {}
    tuning = {**tuning, "WORKER_CACHED_WORKFLOWS": str(cached)}
    async with service(stack, "memory", sqlite_url(stack.folder, "memory"), tuning) as svc:
        [employer] = await sign_up(svc.http, svc.mail, 1)
        open_ = 0
        for size in sizes:
            began = time.perf_counter()
            await start_many(stack, svc, employer, open_, size - open_)
            open_ = size

            async def recorded(size: int = size) -> bool:
                svc.worker.check()
                return await asyncio.to_thread(svc.rows) >= size

            await eventually(recorded, within=900, every=1)
            await svc.worker.idle()
            print(
                f"# {size} internships open and recorded in {time.perf_counter() - began:.0f}s",
                flush=True,
            )
            rss[size] = svc.worker.rss_mb()
            lists[size] = {name: await list_p50_ms(svc, p) for name, p in FILTERS.items()}
            if size == small:  # the pages, with 1,000 internships in the database
                pages = await web.measure(svc, employer.employer_id)
    out: dict[str, object] = {
        "worker_cached_workflows": cached,
        f"worker_rss_mb_{kilo(small)}": round(rss[small], 1),
        f"worker_rss_mb_{kilo(large)}": round(rss[large], 1),
        "worker_rss_ratio": round(rss[large] / rss[small], 3),
    }
    out.update(pages)
    ratios = {name: lists[large][name] / lists[small][name] for name in FILTERS}
    out["list_p50_ratio"] = round(max(ratios.values()), 3)
    for name in FILTERS:
        out[f"list_p50_ratio_{name}"] = round(ratios[name], 3)
        out[f"list_p50_ms_{name}_{kilo(large)}"] = round(lists[large][name], 2)
    return out
