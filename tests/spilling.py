"""Two processes spilling at once (warehouse/backend/spill.py): DuckDB processes sharing one
spill directory write over each other's temporary files, and both crash (a segfault)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tasks.settings import PROJECT_ROOT

# Opens the warehouse (argv 1; read-only if argv 3 is "ro"), spills a temp table over a small
# budget, prints its spill directory and what it reads back.
_SPILLING = """
import sys
sys.path.insert(0, sys.argv[2])
from warehouse.backend.connect import connect
con = connect(sys.argv[1], read_only=sys.argv[3] == "ro")
con.execute("set memory_limit = '32MB'")
con.execute("set threads = 1")
con.execute("create temp table big as select i, md5(i::varchar) || repeat('x', 200) as s from range(1000000) as t(i)")
print(con.execute("select current_setting('temp_directory')").fetchone()[0])
print(con.execute("select count(*), sum(hash(s)) from big").fetchone())
"""


def assert_two_spill_at_once(target: str, *, read_only: bool) -> None:
    """Two processes open `target` and spill at the same time: both read back what they
    wrote, each from a spill directory of its own, removed as it closed."""
    mode = "ro" if read_only else "rw"
    processes = [subprocess.Popen([sys.executable, "-c", _SPILLING, target, str(PROJECT_ROOT), mode],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [err[-2000:] for _, err in results]
    (first_dir, first_sums), (second_dir, second_sums) = (out.splitlines() for out, _ in results)
    assert first_dir != second_dir and first_sums == second_sums
    assert not Path(first_dir).exists() and not Path(second_dir).exists()
