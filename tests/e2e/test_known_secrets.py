"""No known secret in production (core/known_secrets.py): the rules, and the API and the worker
as their commands start them (`python -m api`, `python -m worker`), refusing a forged-cookie
setup off this machine and starting with strong secrets."""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from core import known_secrets
from core.known_secrets import UnsafeSecrets, enforce, on_loopback, problem, unsafe
from core.settings import Settings
from dev.harness import free_ports
from worker.setup import migrate

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {name.upper() for name in Settings.model_fields}
OUT_THERE = "https://example.com"

STRONG = {
    "SESSION_SECRET": "Jq8VxZ3mT0bLr5nW2kYp7sFc9dHg4aEu",
    "OPS_API_TOKEN": "hT6nB1qM8zX4cV7kL2pR9wS5dF3gJ0yA",
    "CODEC_KEY": base64.b64encode(bytes(range(32))).decode(),
    "STRIPE_WEBHOOK_SECRET": "whsec_N4rT8vB2xK6mQ1zL9cH5pW3sD7fG0jY",
    "INBOUND_EMAIL_SECRET": "Zr4Wq9Lm2Xc7Vb1Nt6Hy3Ks8Dp5Gf0Ja",
}


def settings(**values: str | None) -> Settings:
    given: dict[str, Any] = {k.lower(): v for k, v in (STRONG | values).items()}
    return Settings(_env_file=None, public_base_url=OUT_THERE, **given)  # type: ignore[call-arg]


# --- the rules --------------------------------------------------------------------------------


def test_strong_secrets_pass() -> None:
    assert unsafe(settings()) == []
    enforce(settings(), logging.getLogger("test"))  # no refusal


@pytest.mark.parametrize(
    ("setting", "value", "why"),
    [
        ("SESSION_SECRET", "", "is not set"),
        ("SESSION_SECRET", "dev-session-secret-change-me", "published example or development"),
        ("SESSION_SECRET", "change-me-session-secret", "published example"),
        ("SESSION_SECRET", "x" * 20 + "CHANGEME" + "y" * 20, "placeholder"),
        ("SESSION_SECRET", "short-but-random-4f9a", "is 21 characters long"),
        ("OPS_API_TOKEN", "ops-dev-token", "published example or development"),
        ("OPS_API_TOKEN", "change-me-ops-token", "published example"),
        ("OPS_API_TOKEN", "please_replace_me_with_something_long", "placeholder"),
        ("CODEC_KEY", None, "is not set (workflow payloads are stored unencrypted)"),
        ("CODEC_KEY", "ZXhhbXBsZS1jb2RlYy1rZXktY2hhbmdlLW1lLW5vdyE=", "published example"),
        ("CODEC_KEY", base64.b64encode(b"my-codec-key-changeme-0123456789").decode(), "decodes"),
        # Random-looking, and the same in every test process (pytest-xdist compares their ids).
        (
            "CODEC_KEY",
            base64.b64encode(sha256(b"a key").digest()[:16]).decode(),
            "decodes to 16 bytes",
        ),
        ("CODEC_KEY", "not base64 at all!", "not base64"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_replace_me", "published example"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_local_dev_secret", "development default"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_abc", "is 9 characters long"),
        ("INBOUND_EMAIL_SECRET", "whinbound_local_dev_secret", "development default"),
        ("INBOUND_EMAIL_SECRET", "", "is not set"),
        ("INBOUND_EMAIL_SECRET", "inbound-secret", "is 14 characters long"),
    ],
)
def test_what_is_refused(setting: str, value: str | None, why: str) -> None:
    found = unsafe(settings(**{setting: value}))
    assert [item.setting for item in found] == [setting]
    assert why in found[0].why


S3 = {"FILE_STORAGE": "s3", "S3_ACCESS_KEY_ID": "microinternships"}


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "is not set"),
        ("minioadmin", "published example"),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "published example"),
        ("moto-tests-secret-access-key-not-a-secret", "published example"),
        ("my-minio-password-change-me-0123456789", "placeholder"),
        ("short-minio-pass", "is 16 characters long"),
    ],
)
def test_with_object_storage_its_secret_key_is_checked_too(value: str | None, why: str) -> None:
    """FILE_STORAGE=s3: whoever knows S3_SECRET_ACCESS_KEY reads every file sent (the keys go
    together: with neither, boto3 would look for credentials of its own, and that is refused
    off this machine too)."""
    given = S3 | {"S3_SECRET_ACCESS_KEY": value}
    if value is None:
        given["S3_ACCESS_KEY_ID"] = None
    found = unsafe(settings(**given))
    assert [item.setting for item in found] == ["S3_SECRET_ACCESS_KEY"]
    assert why in found[0].why
    with pytest.raises(UnsafeSecrets) as refused:
        enforce(settings(**given), logging.getLogger("test"))
    assert "S3_SECRET_ACCESS_KEY" in str(refused.value)
    assert "MinIO" in str(refused.value) and "secrets.token_urlsafe" in str(refused.value)


def test_object_storage_with_a_strong_key_passes_and_folders_need_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strong = S3 | {"S3_SECRET_ACCESS_KEY": "Zr4kW9pQ2xLm7VbN1cT8yH3sF6gJ0dAe"}
    assert unsafe(settings(**strong)) == []
    assert unsafe(settings(FILE_STORAGE="folder")) == []  # no S3 key set: none needed
    local = settings(**S3, S3_SECRET_ACCESS_KEY="minioadmin").model_copy(
        update={"public_base_url": "http://127.0.0.1:8000"}
    )
    enforce(local, logging.getLogger("test"))  # on this machine: a warning
    assert "S3_SECRET_ACCESS_KEY" in caplog.text and "refused once PUBLIC_BASE_URL" in caplog.text


def test_every_default_of_the_settings_is_known() -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    assert {item.setting for item in unsafe(plain)} == set(known_secrets.CHECKED)
    for name in (*known_secrets.CHECKED, *known_secrets.CHECKED_WITH_S3):
        default = Settings.model_fields[name.lower()].default
        assert default is None or default in known_secrets.known(), name


def test_every_secret_ever_in_env_example_is_known() -> None:
    """The values .env.example shipped before its secrets were empty, from its history when
    the checkout has one."""
    done = subprocess.run(
        ["git", "log", "-p", "--format=", "--", ".env.example"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    published = {
        line[1:].split("=", 1)[1]
        for line in done.stdout.splitlines()
        if line.startswith(("+", "-"))
        and line[1:].split("=", 1)[0]
        in {*known_secrets.CHECKED, *known_secrets.CHECKED_WITH_S3, "STRIPE_API_KEY"}
        and "=" in line
    } - {""}
    for value in published:
        assert value in known_secrets.PUBLISHED, value


def test_loopback_is_this_machine_alone() -> None:
    for url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        assert on_loopback(url), url
    for url in (OUT_THERE, "http://10.0.0.5:8000", "http://localhost.example.com", ""):
        assert not on_loopback(url), url


def test_on_loopback_a_weak_secret_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    local = settings(SESSION_SECRET="dev-session-secret-change-me").model_copy(
        update={"public_base_url": "http://127.0.0.1:8000"}
    )
    enforce(local, logging.getLogger("test"))
    assert "SESSION_SECRET" in caplog.text and "refused once PUBLIC_BASE_URL" in caplog.text


def test_off_loopback_every_unsafe_secret_is_named_with_how_to_make_one() -> None:
    weak = settings(SESSION_SECRET="change-me-session-secret", CODEC_KEY=None)
    with pytest.raises(UnsafeSecrets) as refused:
        enforce(weak, logging.getLogger("test"))
    message = str(refused.value)
    assert "SESSION_SECRET" in message and "CODEC_KEY" in message
    assert "OPS_API_TOKEN" not in message and "STRIPE_WEBHOOK_SECRET" not in message
    assert "secrets.token_urlsafe" in message and "os.urandom(32)" in message
    assert known_secrets.GENERATOR in message
    assert problem("SESSION_SECRET", STRONG["SESSION_SECRET"]) is None


# --- the processes ----------------------------------------------------------------------------


def environment(tmp_path: Path, **values: str) -> dict[str, str]:
    """The process's environment: nothing of ours from this one, strong secrets, then `values`."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    ports = free_ports("api", "temporal")
    env |= STRONG | {
        "PYTHONPATH": str(ROOT),
        "PUBLIC_BASE_URL": OUT_THERE,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",  # nothing there
        "API_PORT": str(ports["api"]),
        "WORKER_METRICS_PORT": "0",
    }
    return env | values


def run(module: str, tmp_path: Path, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=tmp_path,  # no .env of the checkout
        env=environment(tmp_path, **values),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("module", "processes"), [("api", "1"), ("api", "2"), ("worker", "1")])
def test_a_known_session_secret_off_this_machine_stops_the_start(
    module: str, processes: str, tmp_path: Path
) -> None:
    """The forged-cookie attack: with SESSION_SECRET an example anyone can read, anyone could
    sign a session cookie. The process refuses to start, and says why and what to do (also
    when uvicorn would run several API processes)."""
    done = run(module, tmp_path, SESSION_SECRET="change-me-session-secret", API_WORKERS=processes)
    assert done.returncode != 0
    assert "Refusing to start" in done.stderr
    assert "SESSION_SECRET is a published example" in done.stderr
    assert "secrets.token_urlsafe" in done.stderr
    for fine in ("OPS_API_TOKEN", "CODEC_KEY", "STRIPE_WEBHOOK_SECRET", "INBOUND_EMAIL_SECRET"):
        assert f"{fine} " not in done.stderr.split("Refusing to start")[1], fine


def test_the_worker_names_every_unsafe_secret(tmp_path: Path) -> None:
    done = run(
        "worker", tmp_path, OPS_API_TOKEN="ops-dev-token", CODEC_KEY="", STRIPE_WEBHOOK_SECRET=""
    )
    assert done.returncode != 0
    for name in ("OPS_API_TOKEN", "CODEC_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert f"{name} is" in done.stderr, name


@contextmanager
def started(module: str, env: dict[str, str], cwd: Path, ready: str) -> Iterator[list[str]]:
    """A process of ours until the block ends (then SIGTERM), once its log says `ready`; yields
    its log lines as they come."""
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(ready in line for line in lines):
            assert process.poll() is None or any(ready in line for line in lines), (
                f"{module} exited:\n" + "".join(lines)
            )
            assert time.monotonic() < deadline, f"{module} not ready:\n" + "".join(lines)
            time.sleep(0.05)
        yield lines
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=5)


def test_with_strong_secrets_both_start_and_no_sign_in_secret_reaches_the_log(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Off this machine with strong secrets, the API serves (with HSTS, as PUBLIC_BASE_URL is
    https) and the worker polls. A sign-in link's secret never reaches the access log."""
    config = environment(
        tmp_path,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=env.client.namespace,
        TASK_QUEUE="known-secrets-test",  # not the test session's worker's queue
    )
    migrate(config["DATABASE_URL"], wait=5)
    secret = "Sup3rS3cretSignInToken_0123456789abcdef"
    with started("api", config, tmp_path, "Application startup complete") as log:
        url = f"http://127.0.0.1:{config['API_PORT']}"
        health = httpx.get(f"{url}/healthz", timeout=10)
        assert health.headers["strict-transport-security"].startswith("max-age=")
        httpx.get(f"{url}/sign-in/{secret}", timeout=10)
        deadline = time.monotonic() + 10
        while not any("/sign-in/" in line for line in log) and time.monotonic() < deadline:
            time.sleep(0.05)
    text = "".join(log)
    assert "GET /sign-in/[redacted]" in text, text
    assert secret not in text
    assert "Refusing" not in text

    with started("worker", config, tmp_path, "worker polling task queue") as log:
        pass
    assert "Refusing" not in "".join(log)
