"""The compiled extractor (tasks/extract/compiled.py): used where it can be built, never stale, and
extracting exactly what the interpreted modules extract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.compile_extractor import missing_toolchain
from tasks.extract.compiled import BUILD_DIR, MODULES, STAMP_NAME, current_build, is_compiled, source_stamp, stale_build_note
from tasks.settings import PROJECT_ROOT

needs_build = pytest.mark.skipif(current_build() is None, reason="no current build/mypyc (no C compiler?)")


def _module_files(cwd: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """Where a fresh interpreter started in `cwd` loads each compiled-set module from."""
    code = ("import json, importlib; print(json.dumps({m: importlib.import_module('tasks.extract.' + m).__file__ "
            f"for m in {MODULES!r}}}))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_extractor_runs_compiled_wherever_a_compiler_is():
    missing = missing_toolchain()
    if missing:
        pytest.skip(f"cannot compile here: {missing}")
    assert current_build() is not None, (
        "a C compiler is here but build/mypyc does not match the sources: run "
        "`python scripts/compile_extractor.py` and read build/mypyc.log (mypyc refuses type errors)")
    files = _module_files(PROJECT_ROOT)
    assert all(f.endswith(".so") for f in files.values()), files


def _package_sources(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in package holding the compiled set's modules, and where its build would go."""
    package, build = tmp_path / "tasks" / "extract", tmp_path / "build"
    package.mkdir(parents=True)
    for name in MODULES:
        (package / f"{name}.py").write_text(f"# {name}\n")
    return package, build


def _stamp_build(package: Path, build: Path) -> None:
    """Mark `build` as compiled from `package`'s sources as they are now."""
    (build / "tasks" / "extract").mkdir(parents=True, exist_ok=True)
    (build / STAMP_NAME).write_text(f"{source_stamp(package)} mypyc-x\n")


def test_a_build_is_used_only_while_it_matches_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GOVETL_INTERPRETED", raising=False)
    package, build = _package_sources(tmp_path)
    (build / "tasks" / "extract").mkdir(parents=True)
    assert current_build(build, package) is None  # no stamp: never built
    _stamp_build(package, build)
    assert current_build(build, package) == build / "tasks" / "extract"
    monkeypatch.setenv("GOVETL_INTERPRETED", "1")
    assert current_build(build, package) is None  # asked to run interpreted
    monkeypatch.delenv("GOVETL_INTERPRETED")
    (package / "metrics.py").write_text("# metrics, edited\n")
    assert current_build(build, package) is None  # an edit makes the build stale


@needs_build
def test_an_edited_module_runs_as_edited_not_from_the_old_build(tmp_path: Path):
    for part in ("tasks", "config"):
        shutil.copytree(PROJECT_ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(BUILD_DIR, tmp_path / "build" / "mypyc")
    assert all(f.endswith(".so") for f in _module_files(tmp_path).values())
    with (tmp_path / "tasks" / "extract" / "metrics.py").open("a") as source:
        source.write("\nEDITED = True\n")
    files = _module_files(tmp_path)
    assert all(f.endswith(".py") and f.startswith(str(tmp_path)) for f in files.values()), files


EXTRACT_SAMPLE = """
import json, sys
from sample_site import build_sample_corpus
from tasks.crawl.encoding import decode_html
from tasks.extract import extract_page
corpus = build_sample_corpus()
pages = sorted(path for path in corpus if corpus[path].content_type.startswith("text/html"))
for path in pages:
    html = decode_html(corpus[path].body, corpus[path].content_type).text
    print(json.dumps(extract_page(html, "http://sample.test" + path).to_dict(), ensure_ascii=False,
                     sort_keys=True, default=str))
"""


@needs_build
def test_compiled_and_interpreted_modules_extract_the_same():
    def run(env: dict[str, str]) -> list[str]:
        done = subprocess.run([sys.executable, "-c", EXTRACT_SAMPLE], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=300, env={**os.environ, **env})  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.splitlines()

    compiled, interpreted = run({}), run({"GOVETL_INTERPRETED": "1"})
    assert len(compiled) > 40 and any('"metrics": [{' in line for line in compiled)
    assert compiled == interpreted


def test_this_process_runs_the_build_when_there_is_one():
    import tasks.extract.metrics  # noqa: F401  (imported by now anyway)

    assert is_compiled("tasks.extract.metrics") == (current_build() is not None)


def test_the_run_log_says_when_a_build_is_left_behind_by_the_sources(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    monkeypatch.delenv("GOVETL_INTERPRETED", raising=False)
    package, build = _package_sources(tmp_path)
    assert stale_build_note(build, package) is None  # never built (no compiler): nothing to say
    _stamp_build(package, build)
    assert stale_build_note(build, package) is None  # current
    (package / "outline.py").write_text("# outline, pulled\n")
    assert "compile_extractor" in stale_build_note(build, package)
