"""CPU per lifecycle, by process, and inside a worker by part: each process's own counters (user +
system time in /proc/<pid>/stat, and per thread in /proc/<pid>/task/<tid>/stat), read from
outside before and after a run, divided by the lifecycles it completed.

A worker is one process; its parts are its threads, grouped by the names bench/named_threads.py
gives them in the kernel (`WORKER_PARTS`). What a thread name cannot tell apart:
- `event_loop` (the main thread) is the SDK's Python side (polling, converting and encoding
  payloads with the codec, dispatching activities, the deadlock watch) and the relay's own
  coroutine, all on one asyncio loop;
- `sdk_core` is the SDK's Rust core (gRPC to the server, its tokio threads);
- `relay` is the event loop's default executor, where only the outbox relay runs
  (`asyncio.to_thread`: claiming rows, sending with SMTP, recording the outcome);
- `other` is every thread that has ended (their time stays in the process's total) or that no
  rule names.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")

# (start of the thread's kernel name, part), first match wins; the main thread is `event_loop`.
WORKER_PARTS = (
    ("workflow_", "workflow"),  # the SDK's workflow task executor: the workflow's own code
    ("workflow-proces", "workflow_core"),  # the Rust core's workflow state machines
    ("pool-", "activities"),  # the activity executor: activities and local activities
    ("asyncio_", "relay"),
    ("tokio-", "sdk_core"),
    ("temporal-", "sdk_core"),
)
PARTS = ("workflow", "workflow_core", "activities", "relay", "event_loop", "sdk_core", "other")


def process_seconds(pid: int) -> float:
    """User + system time of the process, its ended threads included (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name before it may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def part_of(comm: str, main: bool) -> str:
    if main:
        return "event_loop"
    for start, part in WORKER_PARTS:
        if comm.startswith(start):
            return part
    return "other"


def worker_seconds(pid: int) -> dict[str, float]:
    """CPU seconds so far of each part of a worker process (`PARTS`), and `total`.

    A thread's time is read in nanoseconds (/proc/<pid>/task/<tid>/schedstat): in clock ticks
    each of some 30 threads would lose up to a tick at each reading. `other` is the total less
    the named parts, so it holds the ended threads too (and the total's own tick)."""
    parts = dict.fromkeys(PARTS, 0.0)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            nanoseconds = int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended just now
            continue
        parts[part_of(comm, int(task.name) == pid)] += nanoseconds / 1e9
    total = process_seconds(pid)
    parts["other"] = total - sum(seconds for part, seconds in parts.items() if part != "other")
    return {**parts, "total": total}


class Meter:
    """The CPU a side of a comparison spends over one or more runs. `processes`: name -> pid;
    `workers` among them are split by part. `client` (this process, driving the lifecycles) is
    reported but left out of the total: it stands in for the users (an HTTP client for ours, a
    Temporal client for the bare side)."""

    def __init__(self, processes: Mapping[str, int], workers: Collection[str] = ()) -> None:
        self.processes = dict(processes)
        self.workers = frozenset(workers)
        self.spent: Counter[str] = Counter()  # CPU seconds within `measuring` blocks
        self.lifecycles = 0

    def seconds(self) -> dict[str, float]:
        """CPU seconds so far, flat: `worker`, `worker_workflow`, ..., `api`, `client`."""
        now: dict[str, float] = {"client": process_seconds(os.getpid())}
        for name, pid in self.processes.items():
            if name in self.workers:
                for part, seconds in worker_seconds(pid).items():
                    now[name if part == "total" else f"{name}_{part}"] = seconds
            else:
                now[name] = process_seconds(pid)
        return now

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Adds what the processes spend within the block to `spent`."""
        before = self.seconds()
        yield
        after = self.seconds()
        self.spent.update({name: after[name] - before[name] for name in after})

    def per_lifecycle(self) -> dict[str, float]:
        """Milliseconds of CPU per lifecycle (`lifecycles`, counted by the caller) by name, and
        `total`: every process but the client. None when no lifecycle completed."""
        if not self.lifecycles:
            return {}
        ms = {name: seconds * 1000 / self.lifecycles for name, seconds in self.spent.items()}
        client = ms.pop("client")
        ms = {"total": sum(ms[name] for name in self.processes), **ms, "client": client}
        return {name: round(value, 1) + 0.0 for name, value in ms.items()}  # no -0.0

    def figures(self, side: str = "") -> dict[str, float]:
        """As name=value figures: `cpu_ms_per_lifecycle_[<side>_]<name>`."""
        prefix = f"cpu_ms_per_lifecycle_{side + '_' if side else ''}"
        return {prefix + name: ms for name, ms in self.per_lifecycle().items()}
