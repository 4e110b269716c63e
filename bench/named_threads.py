"""`python -m bench.named_threads MODULE [ARGS]`: runs `python -m MODULE [ARGS]` with every
Python thread's name also given to the kernel, so that bench/cpu.py can read from outside, in
/proc/<pid>/task/*/comm, which of a process's threads used the CPU.

Python 3.11 names its threads for itself only: in /proc they are all `python`. The kernel keeps
15 bytes, so the long prefixes of the pools that matter are shortened first (`POOLS`).
"""

from __future__ import annotations

import ctypes
import runpy
import sys
import threading

# The pools' own prefixes, and the start of the kernel name each gets (see bench/cpu.py).
POOLS = {
    "temporal_workflow__": "workflow_",  # the SDK's workflow task executor (activations)
    "ThreadPoolExecutor-": "pool-",  # a pool with no prefix: the worker's activity executor
    "asyncio_": "asyncio_",  # the event loop's default executor (asyncio.to_thread)
}
PR_SET_NAME = 15  # prctl(2): names the calling thread


def kernel_name(name: str) -> str:
    for prefix, short in POOLS.items():
        if name.startswith(prefix):
            return short + name[len(prefix) :]
    return name


def name_threads() -> None:
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    start = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def named(thread: threading.Thread) -> None:
        prctl(PR_SET_NAME, kernel_name(thread.name).encode()[:15], 0, 0, 0)
        start(thread)

    threading.Thread._bootstrap_inner = named  # type: ignore[attr-defined]


if __name__ == "__main__":
    name_threads()
    module, *args = sys.argv[1:]
    sys.argv[:] = [module, *args]  # runpy puts the module's file first, as `python -m` does
    runpy.run_module(module, run_name="__main__", alter_sys=True)
