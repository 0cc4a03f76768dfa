"""Where an archive in PostgreSQL lives (`postgres:<libpq connection string>`).

Apart from its backend (postgres.py) because every run imports this module (location.py,
store.py) and psycopg is needed only when such a location is parsed, shown or opened:
~9 MB of psycopg and libpq every run would otherwise hold, one archiving in SQLite too.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from tasks import settings
from tasks.crawl.archive.errors import ArchiveSettingError

PREFIX = "postgres:"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # lower case: no quoting; PostgreSQL's 63 at most


@dataclass(frozen=True)
class PostgresArchive:
    """Where an archive in PostgreSQL lives: a libpq connection string and a schema.

    str() is the setting that names it, without its password (safe for logs and messages)."""

    dsn: str
    schema: str = field(default_factory=lambda: settings.ARCHIVE_SCHEMA)

    def __post_init__(self) -> None:
        if not _SCHEMA_NAME.fullmatch(self.schema):
            raise ArchiveSettingError(f"GOVETL_ARCHIVE_SCHEMA={self.schema}",
                                      "a schema name is 1 to 63 of a-z, 0-9 and _, not starting with a digit")

    @classmethod
    def parse(cls, setting: str, schema: str | None = None) -> PostgresArchive:
        """`postgres:<libpq connection string>` → PostgresArchive; ArchiveSettingError if the
        connection string does not parse."""
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        dsn = setting.removeprefix(PREFIX).strip()
        try:
            conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise ArchiveSettingError(PREFIX + "…", f"not a libpq connection string ({first_line(exc)})") from None
        return cls(dsn, schema or settings.ARCHIVE_SCHEMA)

    def __str__(self) -> str:
        schema = "" if self.schema == settings.ARCHIVE_SCHEMA else f" (schema {self.schema})"
        return f"{PREFIX}{self.shown_dsn}{schema}"

    def command(self, *words: str) -> str:
        """`python -m tasks.crawl.archive WORDS <this archive>`, as a shell line."""
        env = "" if self.schema == settings.ARCHIVE_SCHEMA else f"GOVETL_ARCHIVE_SCHEMA={self.schema} "
        return f"{env}python -m tasks.crawl.archive {' '.join(words)} {shlex.quote(PREFIX + self.shown_dsn)}"

    @property
    def shown_dsn(self) -> str:
        """The connection string without its password."""
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            params = {k: v for k, v in conninfo_to_dict(self.dsn).items() if k != "password"}
        except psycopg.ProgrammingError:
            return "(not a libpq connection string)"
        given = {k: m.start() if (m := re.search(rf"(?:^|\s){k}\s*=", self.dsn)) else len(self.dsn) for k in params}
        return make_conninfo("", **{k: params[k] for k in sorted(params, key=given.__getitem__)})  # as written

    def exists(self) -> bool:
        """Does the database hold this archive's schema? (ArchiveUnavailableError if it
        cannot be asked.)"""
        from tasks.crawl.archive import postgres

        return postgres.schema_exists(self)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (a driver's may run to several)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
