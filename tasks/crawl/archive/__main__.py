"""python -m tasks.crawl.archive check|set-aside WHERE

WHERE is the archive file (data/archive/archive.sqlite) or `postgres:<libpq connection
string>`. `check` opens nothing for writing and creates nothing: SQLite's quick_check of
the file; on PostgreSQL, that the server answers and the schema holds the tables of its
version. `set-aside` renames the file (and its -wal/-shm) to `.damaged-<UTC time>`, or the
PostgreSQL schema to `<schema>_damaged_<UTC time>` (kept until you drop it), so that the
next run starts a new archive.
"""

from __future__ import annotations

import argparse
import sys

from tasks.crawl.archive.errors import ArchiveError
from tasks.crawl.archive.location import as_location
from tasks.crawl.archive.store import check, set_aside


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.crawl.archive",
                                     description="Check the raw archive, or set a damaged one aside.")  # fmt: skip
    parser.add_argument("command", choices=["check", "set-aside"])
    parser.add_argument("where", help="the archive file (data/archive/archive.sqlite) or postgres:<libpq dsn>")
    args = parser.parse_args(argv)
    try:
        where = as_location(args.where)
        if not where.exists():
            print(f"no archive at {where}", file=sys.stderr)
            return 1
        if args.command == "check":
            print(f"{where}: {check(where)}")
            return 0
        moved = set_aside(where)
    except ArchiveError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"set aside as {', '.join(moved)}; the next run starts a new archive at {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
