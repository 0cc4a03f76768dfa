"""The extractor's hot modules, compiled with mypyc when a C compiler is at hand.

mypyc (mypy's compiler, the one black and charset-normalizer ship with) turns these
type-annotated modules into C extensions, same source, same behaviour, about a fifth
less time per page. `scripts/compile_extractor.py` (run by every make target) builds
them into build/mypyc/; `tasks/extract/__init__.py` puts that directory first on the package's
path only while the build matches the sources byte for byte. An edited module therefore
runs interpreted, edit included, until the next build: a stale build is never used.
Set GOVETL_INTERPRETED=1 to run interpreted regardless.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

# Pure functions over strings and lxml trees that every page goes through. document.py
# stays interpreted: tests replace its stages, and it costs nothing per number.
MODULES = ("text", "kinds", "subjects", "metrics", "outline", "page", "body", "head", "metadata", "ranks")

PACKAGE_DIR = Path(__file__).resolve().parent
# A Dask worker given the flow's build (flows/worker_plugins.py) keeps it in a directory of its own.
BUILD_DIR = Path(os.environ.get("GOVETL_MYPYC_BUILD") or PACKAGE_DIR.parent.parent / "build" / "mypyc")
STAMP_NAME = "SOURCES.sha256"  # in BUILD_DIR: source_stamp() of what was compiled


def source_stamp(package_dir: Path = PACKAGE_DIR) -> str:
    """Hash of the compiled modules' sources and of the interpreter they are built for."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    for name in MODULES:
        digest.update(name.encode() + b"\0" + (package_dir / f"{name}.py").read_bytes())
    return digest.hexdigest()


def current_build(build_dir: Path = BUILD_DIR, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The package directory of a build made from the sources as they are now, else None."""
    if os.environ.get("GOVETL_INTERPRETED"):
        return None
    try:
        built_from = (build_dir / STAMP_NAME).read_text().split()[0]
        return build_dir / "tasks" / "extract" if built_from == source_stamp(package_dir) else None
    except (OSError, IndexError):
        return None


def stale_build_note(build_dir: Path = BUILD_DIR, package_dir: Path = PACKAGE_DIR) -> str | None:
    """A sentence for the run log when a build exists but the sources moved on (a pull, an
    edit): the extractor then runs interpreted, correct but slower, until rebuilt."""
    if os.environ.get("GOVETL_INTERPRETED") or not (build_dir / STAMP_NAME).exists():
        return None
    if current_build(build_dir, package_dir) is not None:
        return None
    return ("extractor ran interpreted: build/mypyc was compiled from other sources; "
            "`python scripts/compile_extractor.py` (or any make target) rebuilds it")


def is_compiled(module_name: str) -> bool:
    """Whether an imported module runs from a compiled extension."""
    module = sys.modules.get(module_name)
    return module is not None and str(getattr(module, "__file__", "")).endswith((".so", ".pyd"))
