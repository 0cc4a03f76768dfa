"""What the figures were measured on: CPU, cores, memory, Python, package versions, code revision."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tasks.extract.compiled import MODULES, current_build
from tasks.settings import PROJECT_ROOT

PACKAGES = ("prefect", "duckdb", "nanoarrow", "lxml", "trafilatura", "requests", "jinja2")


def machine_info() -> dict[str, str]:
    return {
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()} logical ({len(os.sched_getaffinity(0))} usable)"
        if hasattr(os, "sched_getaffinity") else str(os.cpu_count()),
        "memory": f"{memory_total_gib():.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(f"{name} {package_version(name)}" for name in PACKAGES),
        "extractor": extractor_build(),
        "code": code_revision(),
    }


def extractor_build() -> str:
    if current_build() is None:
        return "interpreted (no current mypyc build; see tasks/extract/compiled.py)"
    return f"compiled by mypyc {package_version('mypy')}: tasks.extract.{{{', '.join(MODULES)}}}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def code_revision() -> str:
    """Commit of the working tree, and whether it has uncommitted changes (they count too)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} + uncommitted changes" if dirty else head


def current_rss_mb() -> float:
    """Resident set of this process now (VmRSS), in MB."""
    return process_memory_mb("self").get("VmRSS", float("nan"))


def own_peak_mb() -> float:
    """This process's resident high-water mark since it exec'd (VmHWM); 0 where there is no /proc."""
    return process_memory_mb("self").get("VmHWM", 0.0)


def process_memory_mb(pid: int | str) -> dict[str, float]:
    """VmRSS and VmHWM of a process ("self", or a pid) in MB: {} once it is gone, or without /proc."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                found[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return found
