"""The pages of the repository against the code they describe: the event catalogue of
docs/architecture.md against ``telemetry.CATALOG`` and ``telemetry.names``, the routes of
docs/http.md against the API's routers, the README's configuration against both settings
classes; and every link and path in the repository stays inside it."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI

import telemetry
from agent_runtime.api import api_router
from agent_runtime.settings import Settings
from telemetry import names
from telemetry import settings as telemetry_settings

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = frozenset(
    {".git", ".venv", ".stack", ".agent-runtime", "__pycache__", ".mypy_cache", ".ruff_cache"}
)
SKIPPED_DIRS |= {".pytest_cache", "node_modules", "dist", "build", ".cache"}
TEXT_SUFFIXES = frozenset(
    {".py", ".md", ".toml", ".yaml", ".yml", ".json", ".sh", ".mk", ".cfg", ".ini", ".txt"}
)


def _read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def _repository_files() -> Iterator[Path]:
    """The repository's text files: what a clone holds, without environments and caches."""
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_DIRS]
        for name in files:
            path = Path(folder, name)
            if path.suffix in TEXT_SUFFIXES or name in _NAMED_FILES:
                yield path


_NAMED_FILES = frozenset({"Makefile", "Dockerfile", "run", ".gitignore", ".dockerignore"})


def _expand(token: str) -> set[str]:
    """``A_{B,C}_D`` → ``{A_B_D, A_C_D}`` (any number of brace groups)."""
    parts = re.split(r"\{([^{}]*)\}", token)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return {"".join(combination) for combination in itertools.product(*choices)}


def _backticked(text: str) -> set[str]:
    return {name for token in re.findall(r"`([^`]+)`", text) for name in _expand(token)}


# --- the event catalogue -------------------------------------------------------------------


def _catalogue_rows() -> dict[str, list[str]]:
    """The rows of the catalogue table, by their event class (first column)."""
    page = _read("docs/architecture.md")
    section = page.split("## The event catalogue", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `(\w+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_the_catalogue_lists_every_event_with_its_name_and_audit_type() -> None:
    rows = _catalogue_rows()
    assert sorted(rows) == sorted(event.__name__ for event in telemetry.CATALOG)
    for event in telemetry.CATALOG:
        name, _form, _attributes, _metric, audit = rows[event.__name__]
        assert name == f"`{event.name}`", event.__name__
        if event.audited:
            assert audit.startswith(f"`{event.audit_type}`"), event.__name__
        else:
            assert audit == "\N{EN DASH}", event.__name__


def test_every_name_the_catalogue_shows_is_one_of_telemetry_names() -> None:
    known = {value for value in vars(names).values() if isinstance(value, str)}
    for event, cells in _catalogue_rows().items():
        _name, _form, attributes, metric, _audit = cells
        for token in re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", f"{attributes} {metric}"):
            assert token in known, f"{event}: {token} is not a name of telemetry.names"


# --- the HTTP contract ---------------------------------------------------------------------


def test_every_route_is_in_the_http_contract() -> None:
    app = FastAPI()
    app.include_router(api_router)
    page = _read("docs/http.md")
    routes = [
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]
    assert len(routes) >= 11
    missing = [route for route in routes if f"`{route}`" not in page]
    assert missing == [], "routes missing from docs/http.md"


# --- the configuration ---------------------------------------------------------------------


def _environment_variables() -> set[str]:
    service = {
        field.validation_alias
        for field in Settings.model_fields.values()
        if isinstance(field.validation_alias, str)
    }
    layer = {
        value
        for key, value in vars(telemetry_settings).items()
        if key.isupper() and isinstance(value, str) and value == key
    }
    return service | layer


def test_the_readme_names_every_setting() -> None:
    variables = _environment_variables()
    assert {"PORT", "DATABASE_URL", "OTEL_SDK_DISABLED", "OTEL_METRICS_EXPORTER"} <= variables
    section = _read("README.md").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = sorted(variables - _backticked(section))
    assert missing == [], "settings missing from the README's configuration"


# --- links and paths -----------------------------------------------------------------------


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {
        _slug(match.group(1))
        for match in re.finditer(r"^#{1,6} (.+)$", page.read_text(encoding="utf-8"), re.M)
    }


def test_every_link_of_the_pages_resolves_inside_the_repository() -> None:
    pages = [path for path in _repository_files() if path.suffix == ".md"]
    assert ROOT / "README.md" in pages and ROOT / "docs" / "index.md" in pages
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (page.parent / file_part).resolve() if file_part else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(where)
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{where} (no such heading)")
    assert broken == []


def test_no_file_points_outside_the_repository() -> None:
    outside = [
        "../" + "shared",
        "shared/" + "DESIGN",
        "DESIGN" + " §",
        "DESIGN" + ".md",
        "STYLE" + ".md",
        "/work" + "/",
        "notes/" + "issue",
    ]
    found = []
    for path in _repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path.relative_to(ROOT)}: {needle}" for needle in outside if needle in text]
    assert found == []
