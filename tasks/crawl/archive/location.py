"""Where the raw archive is: a SQLite file (the default) or a PostgreSQL schema.

The setting (`--archive` of the flows, `archive` in prefect.yaml, GOVETL_ARCHIVE, in that
order of precedence) is either a directory, holding `archive.sqlite`, or
`postgres:<libpq connection string>`. Unset, the archive is `archive/archive.sqlite`
beside the warehouse. A location is a `Path` (the SQLite file) or a `PostgresArchive`;
both say `exists()`, and str() of either names it without a password.
"""

from __future__ import annotations

from pathlib import Path

from tasks import settings
from tasks.crawl.archive.postgres_location import PREFIX, PostgresArchive

ARCHIVE_FILENAME = "archive.sqlite"
ArchiveLocation = Path | PostgresArchive


def locate(setting: str | None, default_dir: Path) -> ArchiveLocation:
    """The archive a setting names: `postgres:<dsn>`, or a directory holding archive.sqlite;
    unset (None or empty), GOVETL_ARCHIVE, else `default_dir`."""
    setting = setting or settings.ARCHIVE
    if not setting:
        return default_dir / ARCHIVE_FILENAME
    if setting.startswith(PREFIX):
        return PostgresArchive.parse(setting)
    return Path(setting) / ARCHIVE_FILENAME


def as_location(where: str | Path | PostgresArchive | None) -> ArchiveLocation:
    """What RawArchive and the archive command take: a SQLite file's path, a location, or
    `postgres:<dsn>`; None is the SQLite file in settings.ARCHIVE_DIR."""
    if where is None:
        return settings.ARCHIVE_DIR / ARCHIVE_FILENAME
    if isinstance(where, PostgresArchive):
        return where
    if isinstance(where, str) and where.startswith(PREFIX):
        return PostgresArchive.parse(where)
    return Path(where)


def shown_setting(setting: str | None) -> str | None:
    """A setting as it may be printed (in a command to run): without a password."""
    if setting and setting.startswith(PREFIX):
        return PREFIX + PostgresArchive.parse(setting).shown_dsn
    return setting
