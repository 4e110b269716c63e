"""`make run`: the whole service on one machine, from a fresh clone.

Starts the Temporal dev server (UI, search attributes, state kept in data/), the local Stripe
server, the SMTP sink, the worker and the API; prints where each is; Ctrl-C stops them all.
Run it again and everything carries on from data/.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from core.codec import new_key
from core.search_attributes import ALL
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# Everything `make run` keeps between runs; DATA_DIR moves it (tests use a temporary one).
DATA = Path(os.environ.get("DATA_DIR", ROOT / "data")).resolve()
BIN = Path(sys.executable).parent


def wait_for_port(host: str, port: int, timeout: float, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        check_alive(procs)
        time.sleep(0.2)
    raise SystemExit(f"nothing is listening on {host}:{port} after {timeout:.0f}s")


def check_alive(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is not None:
            raise SystemExit(f"{p.args!r} exited with code {p.returncode}")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops everything the way Ctrl-C does


def dev_environment() -> dict[str, str]:
    """Child processes share these; anything already set in the environment wins."""
    DATA.mkdir(parents=True, exist_ok=True)
    key_file = DATA / "codec.key"
    if not key_file.exists():
        key_file.write_text(new_key())
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{DATA / 'app.db'}")
    env.setdefault("CODEC_KEY", key_file.read_text().strip())
    env.setdefault("CODEC_ALLOW_LOOPBACK", "true")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def main() -> None:
    env = dev_environment()
    os.environ.update(env)
    settings = Settings()
    py = sys.executable
    api = f"http://{settings.api_host}:{settings.api_port}"
    temporal_host, temporal_port = settings.temporal_address.rsplit(":", 1)
    ui = f"http://{temporal_host}:{settings.temporal_ui_port}"
    # The UI calls the API's codec from the browser, from whichever port it is on.
    origins = [f"http://{host}:{settings.temporal_ui_port}" for host in ("127.0.0.1", "localhost")]
    env.setdefault("CODEC_CORS_ORIGINS", json.dumps(origins))
    stripe_port = int(settings.stripe_api_base.rsplit(":", 1)[1])

    subprocess.run([py, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True)

    temporal_cmd = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--ip",
        temporal_host,
        "--port",
        temporal_port,
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--db-filename",
        str(DATA / "temporal.db"),
        "--log-level",
        "warn",
        "--ui-codec-endpoint",
        f"{api}/codec",
    ]
    for key in ALL:
        kind = key.indexed_value_type.name.title()  # KEYWORD -> Keyword, as the CLI spells it
        temporal_cmd += ["--search-attribute", f"{key.name}={kind}"]
    procs: list[subprocess.Popen] = []

    def start(cmd: list[str]) -> None:
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True))

    def stop(*_: object) -> None:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for p in reversed(procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        start(temporal_cmd)
        start(
            [
                py,
                "-m",
                "dev.stripe_server",
                "--port",
                str(stripe_port),
                "--data",
                str(DATA / "stripe.json"),
                "--webhook-url",
                f"{api}/v1/stripe/webhook",
                "--webhook-secret",
                settings.stripe_webhook_secret,
            ]
        )
        start(
            [
                py,
                "-m",
                "dev.smtp_sink",
                "--host",
                settings.smtp_host,
                "--port",
                str(settings.smtp_port),
                "--dir",
                str(DATA / "mail"),
            ]
        )
        wait_for_port(temporal_host, int(temporal_port), 60, procs)
        start([py, "-m", "worker"])
        start([py, "-m", "api"])
        wait_for_port(settings.api_host, settings.api_port, 60, procs)
        print(
            f"""
  Micro-internships is running (TIME_SCALE={settings.time_scale:g}); Ctrl-C stops everything.

    API            {api}        (OpenAPI: {api}/docs)
    Temporal UI    {ui}   (gRPC {settings.temporal_address})
    Stripe (local) {settings.stripe_api_base}
    SMTP sink      {settings.smtp_host}:{settings.smtp_port}  (emails saved in {DATA / "mail"})
    Database       {env["DATABASE_URL"]}
    Ops token      {settings.ops_api_token}
""",
            flush=True,
        )
        while True:
            check_alive(procs)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not abandon the children half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nstopping...", flush=True)
        stop()


if __name__ == "__main__":
    main()
