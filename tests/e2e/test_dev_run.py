"""`make run`'s runner: everything starts, every address is printed, a child that dies is started
again while the rest carry on, and Ctrl-C or SIGTERM stops it all within 5 s."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from dev.harness import ROOT, free_ports

CHILDREN = {"temporal", "stripe", "smtp", "worker", "api"}
STOP_WITHIN = 5.0  # what `make run` promises for Ctrl-C and SIGTERM
HEALTHY = {"status": "ok", "database": "ok", "temporal": "ok"}

# The 5 s promise is timed: beside `make test`'s other processes on two cores, the dev server
# once took longer than that to stop, so these run by themselves after the parallel run.
pytestmark = pytest.mark.alone


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def until(probe: Callable[[], bool], within: float) -> None:
    """Wait for something that happens on its own (a port opening)."""
    deadline = time.monotonic() + within
    while not probe():
        assert time.monotonic() < deadline, f"{probe} still false after {within:.0f}s"
        time.sleep(0.1)


class Runner:
    """`python -m dev.run` on free ports and a temporary DATA_DIR, its output read as it comes
    (so that a chatty child never blocks on a full pipe)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.ports = free_ports("temporal", "ui", "api", "stripe", "smtp")
        self.lines: list[str] = []
        env = {
            **os.environ,
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "TEMPORAL_UI_PORT": str(self.ports["ui"]),
            "API_PORT": str(self.ports["api"]),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports['api']}",
            "STRIPE_API_BASE": f"http://127.0.0.1:{self.ports['stripe']}",
            "SMTP_PORT": str(self.ports["smtp"]),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dev.run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, within: float, since: int = 0) -> re.Match[str]:
        """The first line from `since` on that matches `pattern`, once the runner prints it."""
        deadline = time.monotonic() + within
        while True:
            for line in self.lines[since:]:
                if match := re.search(pattern, line):
                    return match
            finished = self.proc.poll() is not None and not self.reader.is_alive()
            if finished or time.monotonic() > deadline:
                raise AssertionError(f"no line matches {pattern!r}:\n{self.output}")
            time.sleep(0.05)

    def pids(self) -> dict[str, int]:
        """Each child's current pid, as the runner announces it when it starts one."""
        found = re.findall(r"started (\w+) \(pid (\d+)\)", self.output)
        return {name: int(pid) for name, pid in found}

    def health(self) -> object:
        """/healthz with the ops token the banner shows (which shows what is down)."""
        token = self.wait_for(r"Ops token\s+(\S+)", 0).group(1)
        url = f"http://127.0.0.1:{self.ports['api']}/healthz"
        return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()

    def stop(self, how: signal.Signals) -> float:
        """Signal the runner; the seconds until it has exited (after stopping its children)."""
        began = time.monotonic()
        self.proc.send_signal(how)
        self.proc.wait(timeout=60)
        took = time.monotonic() - began
        self.reader.join(timeout=10)
        return took

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Only after a failure is anything still running: leave no stray servers behind.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.pids().values():
            if alive(pid):
                with suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)

    def assert_stopped_cleanly(self, took: float, before: dict[str, int]) -> None:
        out = self.output
        assert self.proc.returncode == 0, out
        assert took < STOP_WITHIN, f"stopping took {took:.1f}s:\n{out}"
        assert "did not stop" not in out, f"a child had to be killed:\n{out}"
        # Every child ran its own shutdown to the end (a worker ended by SIGTERM would show -15).
        stopped = self.wait_for(r"stopped in [\d.]+s \((.*)\)", 0).group(1)
        assert sorted(stopped.split(", ")) == sorted(f"{name} code 0" for name in CHILDREN), out
        assert not any(alive(pid) for pid in before.values())
        assert not any(listening(port) for port in self.ports.values())


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_run_starts_the_whole_service_and_stops_it_within_5s(
    tmp_path: Path, how: signal.Signals
) -> None:
    with Runner(tmp_path) as run:
        run.wait_for("Ops token", 120)
        text = run.output
        for port in run.ports.values():
            assert f":{port}" in text, f"port {port} not announced:\n{text}"
        assert run.health() == HEALTHY
        # The web app is where the banner says, and its start page is a page.
        web = run.wait_for(r"Web app\s+(\S+)", 0).group(1)
        home = httpx.get(web, timeout=10)
        assert home.status_code == 200 and "Short, paid projects" in home.text
        assert all(listening(run.ports[name]) for name in ("ui", "stripe", "smtp"))
        pids = run.pids()
        assert set(pids) == CHILDREN and all(alive(pid) for pid in pids.values())
        run.wait_for("worker polling task queue", 60)  # so that it has something to shut down
        took = run.stop(how)
    run.assert_stopped_cleanly(took, pids)
    assert "SIGKILL" not in run.output  # no child died on its way, nor had to be killed
    assert (tmp_path / "data" / "temporal.db").exists()


def test_a_child_that_dies_is_started_again_while_the_rest_keep_running(tmp_path: Path) -> None:
    with Runner(tmp_path) as run:
        run.wait_for("Ops token", 120)
        before = run.pids()
        assert set(before) == CHILDREN

        since = len(run.lines)
        os.kill(before["smtp"], signal.SIGKILL)
        os.kill(before["worker"], signal.SIGKILL)
        for name in ("smtp", "worker"):
            run.wait_for(
                rf"{name} \(pid {before[name]}\) exited with code -9 \(SIGKILL\) .*"
                r"restarting it in 1s",
                30,
                since,
            )
            run.wait_for(rf"started {name} \(pid \d+\)", 30, since)
        after = run.pids()
        assert after["smtp"] != before["smtp"] and after["worker"] != before["worker"]
        until(lambda: listening(run.ports["smtp"]), 30)
        run.wait_for("worker polling task queue", 60, since)  # the new worker is connected
        assert alive(after["worker"])

        # The others were left alone.
        for name in ("temporal", "stripe", "api"):
            assert after[name] == before[name] and alive(before[name])
            assert f"{name} (pid" not in "".join(run.lines[since:])
        assert run.health() == HEALTHY
        assert listening(run.ports["stripe"]) and listening(run.ports["ui"])

        # Dying again soon after starting doubles the wait.
        since = len(run.lines)
        os.kill(after["smtp"], signal.SIGKILL)
        run.wait_for(rf"smtp \(pid {after['smtp']}\) exited .* restarting it in 2s", 30, since)
        run.wait_for(r"started smtp \(pid \d+\)", 30, since)
        until(lambda: listening(run.ports["smtp"]), 30)

        pids = run.pids()
        took = run.stop(signal.SIGINT)
    run.assert_stopped_cleanly(took, pids)
