"""The layout keeps what docs/architecture.md says of it: the module map names every module,
imports run downhill (only the worker and tests use `activities/`), every page has a typed
context, no template decides what a viewer may see, and every table cell names its column
for a phone's stacked rows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from api.app import create_app  # noqa: F401 - imports every page module, so contexts register
from api.web.render import PageContext
from core.db import ENDED_STAGES
from core.internship import TERMINAL_STAGES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("activities", "api", "bench", "core", "deploy", "dev", "workflows", "worker")
WEB_TEMPLATES = ROOT / "core" / "templates" / "web"


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if path.name != "__init__.py" and "/migrations/versions/" not in relative:
                found.append(relative)
    return found


def section(title: str) -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_module_map_names_every_module() -> None:
    mapped = set(re.findall(r"`([\w/]+\.py)`", section("5. Module map")))
    missing = [m for m in modules() if m not in mapped]
    assert not missing, f"add these to docs/architecture.md, 5. Module map: {missing}"
    gone = sorted(m for m in mapped if not (ROOT / m).exists())
    assert not gone, f"the module map names modules that no longer exist: {gone}"


def imported_by(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_worker_and_tests_import_activities() -> None:
    users = [
        module
        for module in modules()
        if not module.startswith(("activities/", "worker/"))
        and any(n.split(".")[0] == "activities" for n in imported_by(ROOT / module))
    ]
    assert users == [], "activities/ is a leaf: move what these need to core/"


def test_http_statuses_live_in_the_http_layer() -> None:
    for module in modules():
        if module.startswith(("core/", "workflows/", "activities/")):
            text = (ROOT / module).read_text()
            assert "HTTP_STATUS" not in text and "ERROR_CODES" not in text, module


# What a template may not test: who the viewer is. Visibility is the read model's
# (`api.service.views`), navigation the renderer's (`api.web.render.navigation`).
DECIDES_VISIBILITY = re.compile(
    r"{%-?\s*(?:el)?if\b[^%]*\b(role\b|sees\.|viewer\.(actor|employer|launcher)|allowed\b)"
)


def test_no_template_decides_what_a_viewer_may_see() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in sorted(WEB_TEMPLATES.rglob("*.html"))
        for match in DECIDES_VISIBILITY.finditer(path.read_text())
    ]
    assert offenders == []


def contexts() -> list[type[PageContext]]:
    found, todo = [], list(PageContext.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "template" in cls.__dict__:
            found.append(cls)
    return found


def test_every_page_has_a_typed_context() -> None:
    pages = {
        p.name
        for p in WEB_TEMPLATES.glob("*.html")
        if not p.name.startswith("_") and p.name != "base.html"
    }
    named = {cls.template for cls in contexts()}
    assert pages - named == set(), "give these templates a PageContext dataclass"
    assert named - pages == set(), "these contexts name templates that do not exist"


def test_every_table_cell_names_its_column_for_phones() -> None:
    """On a narrow screen each row is a card whose cells say their column (`data-label`)."""
    unlabelled = [
        f"{path.relative_to(WEB_TEMPLATES)}: {cell}"
        for path in sorted(WEB_TEMPLATES.rglob("*.html"))
        for cell in re.findall(r"<td\b[^>]*>", path.read_text())
        if "data-label=" not in cell
    ]
    assert not unlabelled, unlabelled


def test_the_models_know_which_stages_end_an_internship() -> None:
    assert {s.value for s in TERMINAL_STAGES} == ENDED_STAGES
