"""The image's entry points run from the installed wheel alone, as the image lays them out.

The Dockerfile builds the project's wheel from its build context (what .dockerignore lets in)
and installs it into a venv; the processes then run from /app, with no source tree anywhere.
Here, with no Docker engine: the wheel is built the same way from a copy of that context (with
this environment's setuptools, no build isolation, so no download), installed without its
dependencies into a fresh venv that reuses this environment's (a .pth line: the venv is made
from the base interpreter, so `--system-site-packages` would not see them), and what the image
runs is run in it from a directory outside the checkout, with `python -I` (no PYTHONPATH, no
working directory on sys.path): the API renders a page and serves its stylesheet, an email
renders, `python -m worker.setup` migrates a fresh SQLite file. Templates, static files and
migrations are found only if the wheel carries them as package data.

The Dockerfile's layers are checked here too: the dependencies' wheels are built from
pyproject.toml alone, before any source is copied, so a code change rebuilds only the
project's wheel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from core.settings import Settings
from worker import setup

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def top_level_packages() -> list[str]:
    """The packages the wheel holds: pyproject.toml's setuptools `find` include."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return sorted(p.rstrip("*").rstrip(".") for p in setuptools["packages"]["find"]["include"])


PACKAGES = top_level_packages()


def build_context(into: Path) -> Path:
    """A copy of what `docker build .` sends: .dockerignore's whitelist, without caches."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore is a whitelist"
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in (p[1:] for p in patterns if p.startswith("!")):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=ignored)
        else:
            shutil.copy2(source, into / name)
    return into


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built as the Dockerfile builds it (`pip wheel --no-deps`)."""
    context = build_context(tmp_path_factory.mktemp("context"))
    wheels = tmp_path_factory.mktemp("wheels")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", "--wheel-dir", str(wheels), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"{done.stdout}{done.stderr}\n(the dev extra installs the build backend, setuptools)"
    )
    (built,) = wheels.glob("microinternships-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel, its dependencies this environment's: its python."""
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / "bin" / "python"
    own = Path(
        subprocess.run(
            [python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Appended after the venv's own site-packages, so the wheel's packages come first. (The
    # editable install's .pth there is not run: only a site directory's own .pth files are.)
    (own / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return python


# Cleared from the environment of what runs from the wheel: only the settings a test gives.
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def run_outside(
    python: Path, where: Path, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -I ...` in `where` (outside the checkout), with only the settings given: no
    PYTHONPATH, no working directory on sys.path, no .env of the checkout."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    environ = {k: v for k, v in environ.items() if k.upper() not in SETTING_NAMES}
    return subprocess.run(
        [str(python), "-I", *args],
        cwd=where,
        env=environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the wheel -------------------------------------------------------------------------------


def test_the_wheel_carries_templates_static_files_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    # Only the project's packages: nothing dropped beside them into site-packages.
    assert top == set(PACKAGES), top
    for folder, kinds in (
        ("core/templates/email/", {".html", ".txt"}),
        ("core/templates/web/", {".html"}),
        ("core/templates/web/static/", {".css"}),
        ("core/migrations/", {".py", ".mako"}),
        ("core/migrations/versions/", {".py"}),
    ):
        source = ROOT / folder
        expected = {
            folder + path.relative_to(source).as_posix()
            for path in source.iterdir()
            if path.is_file() and path.suffix in kinds
        }
        assert expected, f"nothing in {folder} of the checkout"
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"


# --- the entry points, run from the installed wheel -----------------------------------------

WHERE_FROM = textwrap.dedent(
    """
    import importlib, json, sys
    found = {}
    for name in sys.argv[1:]:
        try:
            module = importlib.import_module(name)
        except ImportError:
            found[name] = None
        else:
            found[name] = getattr(module, "__file__", None) or list(module.__path__)
    print(json.dumps(found))
    """
)

API_AND_EMAIL = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from fastapi.testclient import TestClient

    from activities.notifications import TEMPLATES, Templates, internship_context
    from api.app import create_app
    from api.web.render import STATIC
    from core.settings import Settings

    print("TEMPLATES", TEMPLATES)
    print("STATIC", STATIC)
    settings = Settings(_env_file=None, database_url=sys.argv[1])
    client = TestClient(create_app(settings))  # no lifespan: no Temporal needed
    page = client.get("/sign-in")
    assert page.status_code == 200, page.text
    assert "<form" in page.text and "/static/app.css" in page.text, page.text
    css = client.get("/static/app.css")
    assert css.status_code == 200, css.status_code
    assert css.headers["content-type"].startswith("text/css"), css.headers
    assert css.text == (STATIC / "app.css").read_text()
    print("PAGE ok")

    email = Templates().render(
        "expired",
        {
            "recipient": {"name": "Ada", "role": "employer"},
            "internship": internship_context(
                internship_id="int_1",
                title="Brand audit",
                company="Acme",
                category="marketing",
                stage="expired",
                fee_cents=15000,
                currency="usd",
                due_at=None,
                public_base_url="https://example.com",
            ),
            "event": {"kind": "expired", "actor": "system", "at": "2026-01-01 00:00 UTC", "by": ""},
            "details": {},
        },
    )
    assert email.subject == "Your posting Brand audit has expired", email.subject
    assert "Hi Ada" in email.text and "Brand audit" in email.html
    print("EMAIL ok")
    """
)


def test_the_packages_come_from_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    done = run_outside(installed, tmp_path, ["-c", WHERE_FROM, *PACKAGES, "templates", "dev"])
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    site = installed.parent.parent
    for name in PACKAGES:
        assert found[name] and Path(found[name]).is_relative_to(site), (name, found[name])
    # No stray top-level folder of templates any more; dev/ is not shipped.
    assert found["templates"] is None and found["dev"] is None, found


def test_the_api_renders_a_page_serves_its_css_and_an_email_renders(
    installed: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    done = run_outside(installed, tmp_path, ["-c", API_AND_EMAIL, url])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PAGE ok" in done.stdout and "EMAIL ok" in done.stdout, done.stdout
    site = installed.parent.parent
    for line in done.stdout.splitlines():
        if line.startswith(("TEMPLATES ", "STATIC ")):
            what, _, path = line.partition(" ")
            assert Path(path).is_relative_to(site), f"{what} found outside the venv: {path}"


def test_the_setup_job_migrates_a_fresh_database_from_the_wheel(
    installed: Path, tmp_path: Path
) -> None:
    """`python -m worker.setup` as the setup service runs it, from a directory with no
    alembic.ini and no migrations/: they are found in the installed package."""
    helped = run_outside(installed, tmp_path, ["-m", "worker.setup", "--help"])
    assert helped.returncode == 0, helped.stderr
    assert "--skip" in helped.stdout

    database = tmp_path / "fresh.db"
    env = {"DATABASE_URL": f"sqlite:///{database}", "CODEC_KEY": ""}
    for _ in range(2):  # the second run finds the database at head
        done = run_outside(
            installed, tmp_path, ["-m", "worker.setup", "--skip", "temporal", "--wait", "5"], env
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "setup done" in done.stderr, done.stderr
    assert "nothing to migrate" in done.stderr, done.stderr
    assert not {p.name for p in tmp_path.iterdir()} & {"alembic.ini", "migrations"}

    head = ScriptDirectory.from_config(setup.alembic_config("sqlite://")).get_current_head()
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version == head
        assert {"internships", "outbox"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- the Dockerfile's layers ------------------------------------------------------------------


def build_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's `build` stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stage: list[tuple[str, str]] = []
    inside = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            inside = rest.split()[-1] == "build"
            continue
        if inside:
            stage.append((instruction.upper(), rest.strip()))
    return stage


def test_the_dependencies_are_built_before_any_source_is_copied() -> None:
    steps = build_stage()
    copies = [(n, args) for n, (instruction, args) in enumerate(steps) if instruction == "COPY"]
    runs = [(n, args) for n, (instruction, args) in enumerate(steps) if instruction == "RUN"]
    assert copies, "the build stage copies nothing"
    # The first COPY brings the project's metadata only.
    first_at, first = copies[0]
    assert first.split()[:-1] == ["pyproject.toml"], first
    # The dependencies' wheels come from it, before the sources arrive.
    sources_at = copies[1][0] if len(copies) > 1 else len(steps)
    deps = [n for n, args in runs if "pip wheel" in args and "--no-deps" not in args]
    assert deps and all(first_at < n < sources_at for n in deps), (deps, first_at, sources_at)
    # The project's own wheel after, without its dependencies again.
    project = [n for n, args in runs if "pip wheel" in args and "--no-deps" in args]
    assert project and all(n > sources_at for n in project), (project, sources_at)
    # The sources copied are the packages (with their package data) and nothing by hand.
    copied = {name for _, args in copies[1:] for name in args.split()[:-1]}
    assert copied == set(PACKAGES), copied


def test_nothing_beside_the_wheel_is_copied_into_the_image() -> None:
    text = DOCKERFILE.read_text()
    assert "cp -r templates" not in text and "site-packages" not in text
    copied = re.findall(r"COPY --from=build (\S+)", text)
    assert not [c for c in copied if "migrations" in c or "alembic.ini" in c or "templates" in c]


def test_the_build_requirements_are_the_ones_pyproject_declares() -> None:
    """The build stage installs [build-system] requires itself (so the project's wheel builds
    offline, without isolation); the dev extra carries them too, for the wheel built above."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requires = pyproject["build-system"]["requires"]
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert set(requires) <= set(dev), (requires, dev)
    assert "build-system" in DOCKERFILE.read_text()
