"""`make bench`: every benchmark in one run against one Temporal dev server, as name=value lines.

    .venv/bin/python -m bench [--with-tests] [--postgres URL | --no-postgres] [--set KEY=VALUE]
                              [--profile DIR]

Starts all it needs (see bench/stack.py) and stops it at the end. Ratios are against a baseline
measured in the same run: the machine is shared and noisy, absolute times mean little. Throughput
and latency run on SQLite, then (suffix `_pg`) on Postgres in a schema of its own; one worker
against three on Postgres (SQLite without it); the scale figures (memory, lists, pages) on
SQLite; `--with-tests` times `make test SKIP_SLOW=1` and `make test` at the end, alone.
`--profile DIR` records py-spy profiles of the worker and the API over the throughput rounds
(bench/profile.py reads them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import latency, memory, throughput, workers
from bench.lifecycle import billable_actions, overdue_path, sign_up
from bench.stack import (
    DEFAULT_POSTGRES,
    Stack,
    drop_postgres_schema,
    postgres_schema,
    service,
    sqlite_url,
    stack,
)
from core.settings import Settings
from dev.harness import ROOT

OVERDUE_SCALE = 200_000  # 17 days from kickoff to auto-cancel last about 7 s


def emit(values: dict[str, object], suffix: str = "") -> None:
    for name, value in values.items():
        print(f"{name}{suffix}={value}", flush=True)


class Phase:
    """Says how long each part of the run took, as a comment line."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.began = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        print(f"# {self.name}: {time.perf_counter() - self.began:.0f}s", flush=True)


async def on_database(s: Stack, url: str, suffix: str, args: argparse.Namespace) -> None:
    """Throughput and latency (and on SQLite the overdue path) with one database."""
    name = f"app{suffix or '_sqlite'}"
    async with service(s, name, url, args.tuning) as svc:
        pairs = await sign_up(svc.http, svc.mail, latency.CROWD)
        with Phase(f"{name} throughput"):
            profile = args.profile / (suffix.lstrip("_") or "sqlite") if args.profile else None
            figures = await throughput.measure(s, svc, pairs, args.count, args.rounds, profile)
            emit(figures, suffix)
        with Phase(f"{name} latency"):
            emit(await latency.measure(s, svc, pairs), suffix)
        if not suffix:
            with Phase("overdue path"):
                history = await overdue_path(s.client, svc.task_queue, pairs[0], OVERDUE_SCALE)
            emit({"overdue_path_actions": billable_actions(history)})
            emit({"overdue_path_events": len(history.events)})


async def run(args: argparse.Namespace, folder: Path) -> None:
    databases = [("", sqlite_url(folder, "app"))]
    pg_url = None if args.no_postgres else postgres_schema(args.postgres)
    if pg_url:
        databases.append(("_pg", pg_url))
    elif not args.no_postgres:
        print(f"# postgres at {args.postgres} does not answer: skipped", flush=True)
    emit({"cores": os.cpu_count(), **{k.lower(): v for k, v in args.tuning.items()}})
    try:
        async with stack(folder) as s:
            for suffix, url in databases:
                await on_database(s, url, suffix, args)
            with Phase("one worker against three"):
                url = pg_url or sqlite_url(folder, "workers")
                emit(await workers.measure(s, url, args.count, **args.tuning))
            with Phase("memory and lists"):
                sizes = (args.memory_small, args.memory_large)
                emit(await memory.measure(s, sizes, args.cached_workflows, **args.tuning))
    finally:
        if pg_url:
            drop_postgres_schema(args.postgres)


def make_test(folder: Path) -> None:
    """`make test SKIP_SLOW=1` (what one works with, target 300 s), then `make test` (all)."""
    for name, command in (
        ("make_test_seconds", ["make", "test", "SKIP_SLOW=1"]),
        ("make_test_all_seconds", ["make", "test"]),
    ):
        log = folder / f"{name}.log"
        began = time.perf_counter()
        with log.open("wb") as out:
            code = subprocess.call(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        emit({name: round(time.perf_counter() - began, 1), f"{name}_exit": code})
        if code:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print("\n".join(f"# {line}" for line in tail), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--with-tests", action="store_true", help="also time `make test`")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, metavar="URL")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--count", type=int, default=40, help="concurrent lifecycles")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (best counts)")
    parser.add_argument("--memory-small", type=int, default=1_000)
    parser.add_argument("--memory-large", type=int, default=10_000)
    parser.add_argument(
        "--cached-workflows",
        type=int,
        default=Settings.model_fields["worker_cached_workflows"].default,
        help="the worker's sticky cache in the memory run (default: the setting's default)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for the API and worker processes, e.g. API_WORKERS=2",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy profiles of the worker and API over the throughput rounds, in DIR",
    )
    args = parser.parse_args()
    args.tuning = dict(item.split("=", 1) for item in args.set)
    # SIGTERM stops the run like Ctrl-C: the `finally` blocks stop every process it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    began = time.perf_counter()
    try:
        asyncio.run(run(args, folder))
        emit({"bench_seconds": round(time.perf_counter() - began, 1)})
        if args.with_tests:
            make_test(folder)
    except BaseException:
        print(f"# logs kept in {folder}", file=sys.stderr, flush=True)
        raise
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
