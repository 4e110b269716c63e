"""Where a process's CPU goes: py-spy attached to the running worker and API (and the bare
worker) for a benchmark run, then the top functions of each profile, self and cumulative.

    .venv/bin/python -m bench --no-postgres --profile DIR   # records DIR/<process>.txt
    .venv/bin/python -m bench.profile DIR/sqlite/worker-*.txt [--top 15]

`py-spy record --pid` needs to ptrace the process (root here, or kernel.yama.ptrace_scope 0).
It samples without stopping the process (`--nonblocking`), and only the thread that holds the
GIL (`--gil`): on 2 busy cores a thread woken from a wait stays runnable, and py-spy's idle
test counts it, until it gets a core, so without `--gil` the waits (`selectors.select`, a pool's
`queue.get`, `Condition.wait`) lead the profile. A sample is so a moment of Python running; what
releases the GIL (the SDK's Rust core, SQLite's own work, socket I/O) is not in it: bench/cpu.py
counts it. `--threads` keeps each sample's thread, so the worker's functions are also shown by
part (bench/cpu.py's, from the Python thread names).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bench.cpu import part_of
from bench.named_threads import kernel_name

PY_SPY = Path(sys.executable).parent / "py-spy"
RATE = 100  # samples a second


@contextmanager
def profiling(folder: Path, processes: Mapping[str, int]) -> Iterator[None]:
    """py-spy on each process (name -> pid) while the block runs: <folder>/<name>.txt, collapsed
    stacks (py-spy's raw format) with the thread first."""
    folder.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                *(str(PY_SPY), "record", "--pid", str(pid), "--rate", str(RATE)),
                *(
                    "--format",
                    "raw",
                    "--threads",
                    "--nonblocking",
                    "-o",
                    str(folder / f"{name}.txt"),
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(folder / f"{name}.log").open("wb"),
        )
        for name, pid in processes.items()
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
        for spy in spies:
            spy.wait(timeout=30)


FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
THREAD = re.compile(r"^thread \(\d+\)(: (?P<name>.*))?$")  # py-spy misses a name now and then


def function(frame: str) -> str:
    """`name (file)`, the line dropped and the path shortened to the package's."""
    match = FRAME.match(frame)
    if not match:
        return frame
    file = re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", match["file"])
    return f"{match['function']} ({file})"


def read(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(part of the process, functions outermost first, samples) per collapsed stack."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        part = "all"
        thread = THREAD.match(frames[0])
        if thread:
            name = thread["name"] or ""
            part = part_of(kernel_name(name), main=name == "MainThread")
            frames = frames[1:]
        functions = [function(f) for f in frames if "named_threads" not in f]
        if functions:  # else a sample of a thread with no Python frame
            yield part, functions, int(count)


def top(paths: list[Path], n: int) -> str:
    """Markdown: the top `n` functions by self and by cumulative samples in the profiles of one
    process (one per round), over the process and for each part with samples, as a share of
    the process's samples."""
    self_: dict[str, Counter[str]] = defaultdict(Counter)
    cumulative: dict[str, Counter[str]] = defaultdict(Counter)
    samples: Counter[str] = Counter()
    for part, functions, count in (stack for path in paths for stack in read(path)):
        for group in ("whole process", part):
            samples[group] += count
            self_[group][functions[-1]] += count
            for name in set(functions):
                cumulative[group][name] += count
    total = samples["whole process"]
    out = [f"{', '.join(p.name for p in paths)}: {total} samples at {RATE}/s"]
    for group in sorted(samples, key=lambda g: (g != "whole process", -samples[g])):
        out.append(f"\n{group}: {100 * samples[group] / total:.0f}% of the samples\n")
        out.append("| self | function | | cumulative | function |")
        out.append("|---|---|---|---|---|")
        rows = zip(self_[group].most_common(n), cumulative[group].most_common(n), strict=False)
        for (s_name, s), (c_name, c) in rows:
            out.append(
                f"| {100 * s / total:.1f}% | `{s_name}` | | {100 * c / total:.1f}% | `{c_name}` |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profiles", nargs="+", type=Path, help="one process's, merged")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(top(args.profiles, args.top))


if __name__ == "__main__":
    main()
