"""A private PostgreSQL for the tests and `make lake-demo`: Debian's server binaries, a data
directory of our own, a loopback port, stopped at the end. Nothing of the machine's own
PostgreSQL (its clusters, its service, port 5432) is used or touched.

    with LocalPostgres(tmp_path / "pg") as pg:
        dsn = pg.create_database("lake")      # "host=127.0.0.1 port=… user=govetl dbname=lake"

    python -m tests.postgres start DIR        # prints the DSN of database `govetl`; for make lake-demo
    python -m tests.postgres stop DIR

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user
(created by the Debian package) and owns its data directory. Trust authentication on the
loopback address only: the server is reachable from this machine alone and lives as long
as the test session. scripts/install-postgres.sh installs the package where it is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

USER = "govetl"
HOST = "127.0.0.1"


class PostgresUnavailable(RuntimeError):
    """The server binaries are not installed; the message says how to install them."""


def server_bin() -> Path:
    """The directory holding initdb/pg_ctl: Debian keeps them out of PATH, per version."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise PostgresUnavailable("PostgreSQL server binaries not found (initdb, pg_ctl): "
                              "scripts/install-postgres.sh installs Debian's postgresql package")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class LocalPostgres:
    """A PostgreSQL server in `root` (created if need be), on a free loopback port."""

    root: Path
    port: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.data = self.root / "data"
        self.bin = server_bin()
        self._as_root = os.geteuid() == 0

    # --- the server ------------------------------------------------------------------------
    def start(self) -> LocalPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_root:  # the server's user must be able to reach and own its directory
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "--encoding=UTF8",
                      "--locale=C", "--no-sync")
        self.port = self.port or _free_port()
        # A private socket directory: never /var/run/postgresql, which the machine's server uses.
        options = (f"-c listen_addresses={HOST} -c port={self.port} -c unix_socket_directories='{self.root}' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start")
        (self.root / "port").write_text(str(self.port))
        if not self.psql(f"select 1 from pg_database where datname = '{USER}'").strip():
            self.psql(f'create database "{USER}"')
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- databases ---------------------------------------------------------------------------
    def dsn(self, dbname: str = USER) -> str:
        """A libpq connection string (what DuckDB's postgres and ducklake extensions take)."""
        return f"host={HOST} port={self.port} user={USER} dbname={dbname}"

    def create_database(self, name: str) -> str:
        """Create database `name` (dropping one left by an earlier run) and return its DSN."""
        self.psql(f'drop database if exists "{name}" with (force)')
        self.psql(f'create database "{name}"')
        return self.dsn(name)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        psql = self.bin / "psql" if (self.bin / "psql").exists() else Path(shutil.which("psql") or "psql")
        done = subprocess.run([str(psql), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(self.port),
                               "-U", USER, "-d", dbname, "-c", sql], capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                               f"{' / server.log: ' + tail if tail else ''}")


def running(root: Path) -> LocalPostgres:
    """The server `python -m tests.postgres start root` left running."""
    pg = LocalPostgres(root)
    pg.port = int((pg.root / "port").read_text())
    return pg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.postgres", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "dsn"])
    parser.add_argument("root", type=Path, help="directory of the server's data, socket and log")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            print(LocalPostgres(args.root).start().dsn())
        elif args.action == "stop":
            if (args.root / "port").exists():
                running(args.root).stop()
        else:
            print(running(args.root).dsn())
    except (PostgresUnavailable, RuntimeError, OSError) as exc:
        print(f"local postgres: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
