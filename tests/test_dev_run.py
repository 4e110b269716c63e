"""`make run`'s runner: everything starts, every address is printed, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dev.harness import ROOT, free_port


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_run_starts_the_whole_service_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("temporal", "ui", "api", "stripe", "smtp")}
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "TEMPORAL_UI_PORT": str(ports["ui"]),
        "API_PORT": str(ports["api"]),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['api']}",
        "STRIPE_API_BASE": f"http://127.0.0.1:{ports['stripe']}",
        "SMTP_PORT": str(ports["smtp"]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "dev.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            banner.append(line)
            if "Ops token" in line or time.monotonic() > deadline:
                break
        text = "".join(banner)
        for port in ports.values():
            assert f":{port}" in text, f"port {port} not announced:\n{text}"
        health = httpx.get(f"http://127.0.0.1:{ports['api']}/healthz", timeout=10)
        assert health.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
        assert listening(ports["ui"]) and listening(ports["stripe"]) and listening(ports["smtp"])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert not any(listening(port) for port in ports.values())
    assert (tmp_path / "data" / "temporal.db").exists()
