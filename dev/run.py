"""`make run`: the whole service on one machine, from a fresh clone.

Starts the Temporal dev server (UI, search attributes, state kept in data/), the local Stripe
server, the SMTP sink, the worker and the API; prints where each is, and keeps them running: a
child that dies is started again after 1 s, then 2 s, 4 s... (at most 30 s; back to 1 s once it
has stayed up for a minute). Ctrl-C (or SIGTERM) stops them all within 5 s. Run it again and
everything carries on from data/.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from core.codec import new_key
from core.replies import INBOUND_PATH
from core.search_attributes import ALL
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# Everything `make run` keeps between runs; DATA_DIR moves it (tests use a temporary one).
DATA = Path(os.environ.get("DATA_DIR", ROOT / "data")).resolve()
BIN = Path(sys.executable).parent

BACKOFF_FIRST = 1.0  # seconds before a dead child is started again...
BACKOFF_MAX = 30.0  # ...doubling each time it dies again soon, up to this
STABLE_AFTER = 60.0  # a child that stayed up this long starts over from BACKOFF_FIRST
STOP_GRACE = 4.0  # on Ctrl-C, what has not stopped after this is killed
TICK = 0.1


def backoff(deaths: int) -> float:
    """How long to wait before restarting a child that died `deaths` times in a row (1, 2, ...),
    each within STABLE_AFTER of being started."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (deaths - 1))


def log(message: str) -> None:
    print(f"[run {time.strftime('%H:%M:%S')}] {message}", flush=True)


def exit_status(code: int) -> str:
    if code >= 0:
        return f"code {code}"
    try:
        return f"code {code} ({signal.Signals(-code).name})"
    except ValueError:
        return f"code {code}"


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


@dataclass
class Child:
    """One supervised process: started in its own session (a Ctrl-C in the terminal reaches
    only the runner, which stops the children itself), restarted when it dies."""

    name: str
    cmd: list[str]
    # What stops it cleanly. The Python children that run asyncio (SMTP sink, worker) have no
    # SIGTERM handler, so SIGTERM would end them on the spot; SIGINT cancels their main task and
    # lets their `async with` blocks exit. Uvicorn treats both alike; Temporal's CLI takes SIGTERM.
    stop_signal: signal.Signals = signal.SIGINT
    address: tuple[str, int] | None = None  # where it listens: ready once that answers
    needs: tuple[str, ...] = ()  # children that must be ready before this one (re)starts
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    deaths: int = 0  # in a row, each soon after being started
    due: float = 0.0  # when to start it, while it is not running
    waiting: bool = False  # due, but what it needs is not ready (said once)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        return self.running() and (self.address is None or listening(*self.address))


class Supervisor:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, Child] = {}
        self.stop_requested: str | None = None  # the name of the signal that asked

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = self.stop_requested or signal.Signals(signum).name

    def add(self, child: Child) -> None:
        child.due = time.monotonic()
        self.children[child.name] = child

    def tick(self) -> None:
        """Notice who died and schedule their restart; start whatever is due and can start."""
        now = time.monotonic()
        for child in self.children.values():
            if child.proc is not None and child.proc.poll() is not None:
                self._died(child, now)
        for child in self.children.values():
            if child.proc is None and child.due <= now and not self.stop_requested:
                missing = [n for n in child.needs if not self.children[n].ready()]
                if not missing:
                    self._start(child)
                elif child.deaths and not child.waiting:  # (at start-up, waiting is the plan)
                    child.waiting = True
                    log(f"{child.name} waits for {', '.join(missing)} before starting")

    def _died(self, child: Child, now: float) -> None:
        assert child.proc is not None
        pid, code, up = child.proc.pid, child.proc.returncode, now - child.started
        child.proc = None
        child.deaths = 1 if up >= STABLE_AFTER else child.deaths + 1
        delay = backoff(child.deaths)
        child.due = now + delay
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
        log(
            f"{child.name} (pid {pid}) exited with {exit_status(code)} after {up:.1f}s; "
            f"restarting it in {delay:g}s (at {at})"
        )

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.cmd, cwd=ROOT, env=self.env, start_new_session=True)
        child.started = time.monotonic()
        child.waiting = False
        log(f"started {child.name} (pid {child.proc.pid})")

    def wait_ready(self, name: str, timeout: float) -> bool:
        """Supervise until `name` is ready (True) or a stop is requested (False)."""
        deadline = time.monotonic() + timeout
        while not self.stop_requested:
            self.tick()
            if self.children[name].ready():
                return True
            if time.monotonic() > deadline:
                where = self.children[name].address
                listens = f", listening on {where[0]}:{where[1]}" if where else ""
                raise SystemExit(f"{name} did not come up within {timeout:.0f}s{listens}")
            time.sleep(TICK)
        return False

    def run(self) -> None:
        """Supervise until a stop is requested."""
        while not self.stop_requested:
            self.tick()
            time.sleep(TICK)

    def stop(self) -> None:
        """Ask every running child to stop, those that others need (Temporal) once those others
        have stopped or half the grace period has gone by; kill what is left after STOP_GRACE."""
        began = time.monotonic()
        running = [c for c in self.children.values() if c.running()]
        if not running:
            return
        log(f"stopping ({self.stop_requested or 'start-up failed'})")
        signalled: set[str] = set()
        while any(c.running() for c in running) and time.monotonic() < began + STOP_GRACE:
            early = time.monotonic() < began + STOP_GRACE / 2
            sent: dict[str, list[str]] = {}  # signal -> the children sent it in this round
            for child in running:
                waits_for = [c.name for c in running if child.name in c.needs and c.running()]
                if child.name in signalled or not child.running() or (waits_for and early):
                    continue
                assert child.proc is not None
                with suppress(ProcessLookupError):
                    child.proc.send_signal(child.stop_signal)
                signalled.add(child.name)
                sent.setdefault(child.stop_signal.name, []).append(child.name)
            for name, names in sent.items():
                log(f"asked {', '.join(names)} to stop ({name})")
            time.sleep(0.05)
        for child in running:
            assert child.proc is not None
            if child.proc.poll() is None:
                log(
                    f"{child.name} (pid {child.proc.pid}) did not stop within {STOP_GRACE:g}s: "
                    "killing it (SIGKILL)"
                )
                with suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)  # with anything it started
                child.proc.wait()
        codes = ", ".join(f"{c.name} {exit_status(c.proc.returncode)}" for c in running if c.proc)
        log(f"stopped in {time.monotonic() - began:.1f}s ({codes})")


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


def smtp_sink_command(settings: Settings, api: str, folder: Path) -> list[str]:
    """The SMTP sink, keeping every email in `folder` and handing replies (emails to an address
    at REPLY_DOMAIN) to the API at `api` as the mail provider's inbound webhook would."""
    return [
        sys.executable,
        "-m",
        "dev.smtp_sink",
        "--host",
        settings.smtp_host,
        "--port",
        str(settings.smtp_port),
        "--dir",
        str(folder),
        "--inbound-url",
        f"{api}{INBOUND_PATH}",
        "--inbound-secret",
        settings.inbound_email_secret,
        "--reply-domain",
        settings.reply_domain,
    ]


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

    supervisor = Supervisor(env)
    # Handled here, also when started in the background with SIGINT ignored: the children then
    # start with the default SIGINT (a handled signal is reset by exec, an ignored one is not),
    # which is what lets SIGINT stop the Python ones cleanly.
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)

    migrated = subprocess.run([py, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env)
    if supervisor.stop_requested:
        return
    if migrated.returncode:
        raise SystemExit(f"migrations failed (alembic exited with code {migrated.returncode})")
    if settings.file_storage == "s3":  # a store of yours (.env): its bucket, as setup makes it
        from worker.setup import SetupError, prepare_storage

        try:
            prepare_storage(settings, wait=30)
        except SetupError as err:
            raise SystemExit(f"object storage: {err}") from err

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
    children = [
        Child(
            "temporal",
            temporal_cmd,
            stop_signal=signal.SIGTERM,
            address=(temporal_host, int(temporal_port)),
        ),
        Child(
            "stripe",
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
            ],
            address=("127.0.0.1", stripe_port),
        ),
        Child(
            "smtp",
            smtp_sink_command(settings, api, DATA / "mail"),
            address=(settings.smtp_host, settings.smtp_port),
        ),
        Child("worker", [py, "-m", "worker"], needs=("temporal",)),
        Child(
            "api",
            [py, "-m", "api"],
            address=(settings.api_host, settings.api_port),
            needs=("temporal",),
        ),
    ]
    try:
        for child in children:
            supervisor.add(child)
        # Temporal first (the worker and the API start once it answers), then all it announces.
        for name in ("temporal", "stripe", "smtp", "api"):
            if not supervisor.wait_ready(name, 60):
                return
        print(
            f"""
  Micro-internships is running (TIME_SCALE={settings.time_scale:g}); Ctrl-C stops everything.

    Web app        {api}/        (sign in with your email: the link is printed here)
    API            {api}        (OpenAPI: {api}/docs)
    Temporal UI    {ui}   (gRPC {settings.temporal_address})
    Stripe (local) {settings.stripe_api_base}
    SMTP sink      {settings.smtp_host}:{settings.smtp_port}  (emails saved in {DATA / "mail"})
                   (and those to *@{settings.reply_domain} POSTed to {api}{INBOUND_PATH})
    Database       {env["DATABASE_URL"]}
    Ops token      {settings.ops_api_token}   (ops sign in on the web as {settings.ops_email})
""",
            flush=True,
        )
        supervisor.run()
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()
