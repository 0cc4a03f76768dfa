"""The folder layout is the architecture: each package imports only what its docstring allows.

`tasks/extract/` is pure (page → records): nothing from the crawler, Prefect, an HTTP
client or the warehouse; `tasks/crawl/` never writes the warehouse; production packages
never import test or benchmark code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.settings import PROJECT_ROOT

FORBIDDEN = {
    "tasks/extract": ("tasks.crawl", "tasks.steps", "tasks.pages", "prefect", "requests", "urllib3", "httpx",
                      "urllib.request", "http.client", "socket", "duckdb", "warehouse", "flows"),
    "tasks/crawl": ("tasks.steps", "prefect", "duckdb", "warehouse", "flows"),
    "warehouse": ("tests", "bench", "pytest", "prefect", "flows"),
    # the warehouse's stages (warehouse/README.md, "Layout"): the readers' command lines are
    # imported by no stage, the checks and the writer never import each other
    "warehouse/backend": ("warehouse.analyst",),
    "warehouse/schema": ("warehouse.analyst", "warehouse.quality"),
    "warehouse/writer": ("warehouse.analyst", "warehouse.quality"),
    "warehouse/quality": ("warehouse.analyst", "warehouse.writer"),
    "tasks": ("tests", "bench", "pytest"),
    "flows": ("tests", "bench", "pytest"),
}
# The command line of the extractor decodes a saved file as a download is decoded, and
# fetches a URL politely: it is an entry point, not part of the pure package.
ENTRY_POINTS = {"tasks/extract/__main__.py"}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def offences(package: str) -> list[str]:
    found = []
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        if relative in ENTRY_POINTS:
            continue
        for module in imported_modules(path):
            if any(module == f or module.startswith(f + ".") for f in FORBIDDEN[package]):
                found.append(f"{relative} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_each_package_imports_only_what_its_stage_may(package):
    assert offences(package) == []


def test_the_check_itself_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import duckdb\nfrom tasks.crawl.fetch import Fetcher\nfrom . import sibling\n")
    assert imported_modules(module) == {"duckdb", "tasks.crawl.fetch"}


def test_tasks_top_level_holds_only_the_steps_and_what_every_stage_shares():
    top = sorted(p.name for p in (PROJECT_ROOT / "tasks").glob("*.py"))
    assert top == ["__init__.py", "pages.py", "records.py", "settings.py", "sources.py", "steps.py", "summary.py"]
    for package in ("crawl", "extract"):
        doc = ast.get_docstring(ast.parse((PROJECT_ROOT / "tasks" / package / "__init__.py").read_text("utf-8")))
        assert doc and "import" in doc, f"tasks/{package}/__init__.py must say what it owns and must not import"


def test_warehouse_top_level_holds_only_the_package_and_its_stages():
    top = sorted(p.name for p in (PROJECT_ROOT / "warehouse").iterdir() if p.name != "__pycache__")
    stages = ["analyst", "backend", "quality", "schema", "writer"]
    assert top == sorted(["README.md", "__init__.py", *stages])
    for stage in stages:
        module = ast.parse((PROJECT_ROOT / "warehouse" / stage / "__init__.py").read_text("utf-8"))
        assert ast.get_docstring(module), f"warehouse/{stage}/__init__.py must say what the stage is"
        assert len(module.body) == 1, f"warehouse/{stage}/__init__.py must not import: import its modules by name"


def test_a_nightly_run_imports_psycopg_only_when_it_uses_postgresql():
    # psycopg and libpq hold ~9 MB: only an archive in PostgreSQL or a lake's run lock needs them.
    probe = "import sys, flows.nightly; print('psycopg' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
