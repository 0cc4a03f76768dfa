"""Why the archive cannot be used, in one line an operator can act on (no traceback: the
flows list ArchiveError among their expected failures)."""

from __future__ import annotations

import shlex


class ArchiveError(RuntimeError):
    """The raw archive cannot be used; the message names it (never a password) and the fix."""


class ArchiveDamagedError(ArchiveError):
    """The archive is not sound (a damaged SQLite file, a PostgreSQL schema missing tables);
    the message names it, the command that sets it aside and how to salvage it first."""

    def __init__(self, where: object, detail: str, *, setting: str | None = None, salvage: str | None = None) -> None:
        """`setting`: the command line's words for `where` (default: str(where)); `salvage`:
        the command that copies its pages out (default: SQLite's .recover)."""
        self.path, self.detail = where, detail
        salvage = salvage or f"`sqlite3 {where} .recover | sqlite3 {where}.recovered`"
        super().__init__(
            f"the raw archive {where} is damaged ({detail}): set it aside with "
            f"`{setting or 'python -m tasks.crawl.archive set-aside ' + shlex.quote(str(where))}`, and the next run "
            f"starts a new archive (it fetches every page again and loads only what changed); to salvage its pages "
            f"first: {salvage}")


class ArchiveSettingError(ArchiveError):
    """The archive's setting (--archive, GOVETL_ARCHIVE, GOVETL_ARCHIVE_SCHEMA) names no archive."""

    def __init__(self, setting: str, detail: str) -> None:
        super().__init__(f"the raw archive setting {setting} is not usable: {detail}")


class ArchiveUnavailableError(ArchiveError):
    """The archive's database cannot be reached or refuses us (PostgreSQL down, wrong
    database or user, every pooled connection busy for too long …)."""

    def __init__(self, where: object, detail: str) -> None:
        self.where, self.detail = where, detail
        super().__init__(f"the raw archive {where} cannot be used ({detail}): is the PostgreSQL server up, "
                         "and does it accept that user and database? (the archive is set by --archive or "
                         "GOVETL_ARCHIVE)")  # fmt: skip

