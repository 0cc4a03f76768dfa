"""`make demo`, the README's first command: the script it runs, twice, as a user would."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _demo(tmp_path: Path, port: int) -> str:
    env = os.environ | {"PY": sys.executable, "WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
                        "SAMPLE_SITE_PORT": str(port)}  # fmt: skip
    done = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output
    return output


def _total(output: str) -> dict[str, int]:
    header = re.search(r"^source\s+(.+)$", output, re.M).group(1).split()
    values = re.search(r"^TOTAL\s+(.+)$", output, re.M).group(1).split()
    return dict(zip(header, map(int, values), strict=True))


def test_demo_loads_the_sample_site_then_a_second_demo_fetches_and_writes_nothing(prefect_api, tmp_path):
    port = _free_port()
    first = _demo(tmp_path, port)
    assert f"sample site: http://127.0.0.1:{port}" in first
    assert _total(first)["new"] >= 5 and _total(first)["failed"] == 0
    assert "城乡低保标准" in first  # the example query's result is printed
    second = _total(_demo(tmp_path, port))  # same port: the URLs are the ones it knows
    assert (second["fetched"], second["new"], second["changed"]) == (0, 0, 0)
