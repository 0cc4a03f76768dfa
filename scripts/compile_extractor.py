"""Compile the extractor's hot modules with mypyc into build/mypyc/ (see tasks/extract/compiled.py).

    python scripts/compile_extractor.py [--force]

Run by every make target; does nothing when the build matches the sources. Without a C
compiler, or when the build fails, it says so and the extractor runs interpreted: same
results, slower. tests/test_compiled.py fails wherever a compiler exists but the build
does not match the sources (a type error mypyc refuses, for one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tasks.extract.compiled import BUILD_DIR, MODULES, STAMP_NAME, source_stamp  # noqa: E402

GROUP = "tasks.extract.extractor"  # mypyc's shared library: tasks/extract/extractor__mypyc.*.so


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when the build is current")
    parser.add_argument("--into", type=Path, help=argparse.SUPPRESS)  # the child process that builds
    args = parser.parse_args(argv)
    if args.into:
        return _build_into(args.into)
    stamp = f"{source_stamp()} mypyc-{_mypyc_version()}"
    if not args.force and _read(BUILD_DIR / STAMP_NAME) == stamp:
        return 0
    missing = missing_toolchain()
    if missing:
        print(f"extractor not compiled ({missing}): it runs interpreted, same results, slower")
        return 0
    print("compiling the extractor with mypyc (tasks/extract/compiled.py)…", flush=True)
    started = time.monotonic()
    BUILD_DIR.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD_DIR.parent, prefix="mypyc-") as work:
        out = Path(work) / "out"
        child = subprocess.run([sys.executable, __file__, "--into", str(out)], cwd=REPO,
                               capture_output=True, text=True)  # fmt: skip
        output = child.stdout + child.stderr
        (BUILD_DIR.parent / "mypyc.log").write_text(output)
        if child.returncode != 0:
            print("\n".join(output.splitlines()[-25:]))
            print("extractor not compiled (build failed, log: build/mypyc.log): it runs interpreted")
            return 0
        (out / STAMP_NAME).write_text(stamp + "\n")
        shutil.rmtree(BUILD_DIR, ignore_errors=True)
        try:
            out.rename(BUILD_DIR)  # whole: a process starting meanwhile sees the old build or none
        except OSError:
            if _read(BUILD_DIR / STAMP_NAME) != stamp:  # not a concurrent build of the same sources
                raise
    print(f"compiled {len(MODULES)} modules into {BUILD_DIR.relative_to(REPO)} in {time.monotonic() - started:.0f} s")
    return 0


def _build_into(out: Path) -> int:
    """Run in a child process: its compiler chatter is captured, and a failure stays there."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    work = out.parent
    modules = mypycify(["--ignore-missing-imports", "--follow-imports=silent",
                        *(f"tasks/extract/{name}.py" for name in MODULES)],
                       opt_level="3", target_dir=str(work / "c"), group_name=GROUP)  # fmt: skip
    dist = Distribution({"name": "govetl-extractor", "ext_modules": modules})
    build = dist.get_command_obj("build_ext")
    build.build_lib, build.build_temp, build.parallel = str(out), str(work / "temp"), os.cpu_count()
    dist.run_command("build_ext")
    return 0


def missing_toolchain() -> str | None:
    """Why this machine cannot compile the extractor, or None when it can."""
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return "mypyc is not installed"
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]  # as setuptools picks it
    if shutil.which(compiler) is None:
        return f"no C compiler: {compiler} not found"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers (Python.h)"
    return None


def _mypyc_version() -> str:
    try:
        from mypy.version import __version__
    except ImportError:
        return "none"
    return __version__


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
