"""The run summary: what a nightly run did, per source, in numbers a person can check.

Pure data and formatting; the flow fills it, the warehouse stores it, Prefect shows it
as an artifact and the command line prints it. The terminal text puts the per-source
counts on top, then what discovery did per source, then every warning, gone link,
failure and reject by URL (all of them: the full list is what an operator acts on).

A run of more sources than SUMMARY_SOURCES_SHOWN (a province's thousand columns) would
bury that under a thousand lines of zeros: its text and markdown begin with the total,
then the sources with something to say (failures, rejects, warnings, gone links), the
gravest first and that many at most, with their lists, and say how many more there are.
Every source's counts stay in the etl-run-summary table artifact (`artifact_rows`, the
total first, each source's first remark beside its counts) and in `run_sources`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from tasks import settings
from tasks.records import FetchOutcome, FetchResult, LoadOutcome

COUNT_COLUMNS = ("discovered", "fetched", "not_modified", "failed", "gone", "skipped", "new", "changed",
                 "unchanged", "rejected")  # fmt: skip
_FAILED = {FetchOutcome.HTTP_ERROR, FetchOutcome.NETWORK_ERROR, FetchOutcome.TIMEOUT, FetchOutcome.TOO_LARGE,
           FetchOutcome.REDIRECT_BLOCKED, FetchOutcome.REDIRECT_LOOP}  # fmt: skip
_SKIPPED = {FetchOutcome.SKIPPED_ROBOTS, FetchOutcome.NON_HTML}


@dataclass
class SourceCounts:
    source: str
    discovered: int = 0  # article links found on the listing pages read in this run
    fetched: int = 0  # bodies downloaded (new pages and changed ones)
    not_modified: int = 0  # known pages the server confirmed unchanged (304)
    failed: int = 0  # failures of this run: downloads (after retries) and unreadable listing pages
    gone: int = 0  # links that answered 404/410 in an earlier run, not requested before their re-check
    skipped: int = 0  # robots.txt disallowed, or not HTML (PDF …)
    new: int = 0  # reports loaded for the first time
    changed: int = 0  # reports whose content changed (a new version)
    unchanged: int = 0  # fetched again, same content: nothing written
    rejected: int = 0  # pages that cannot become a report (no 索引号 …), quarantined
    errors: list[str] = field(default_factory=list)  # one sentence per failure and per reject, with its URL
    warnings: list[str] = field(default_factory=list)  # what needs a look though nothing failed
    gone_links: list[str] = field(default_factory=list)  # "URL: reason; re-checked from DATE", per gone link
    discovery: str | None = None  # listing pages read, links found, why the walk stopped

    def add_fetches(self, results: Iterable[FetchResult], gone_note: str | None = None) -> None:
        """Count this run's downloads. `gone_note` ends the sentence of a 404/410 (when it is
        requested again)."""
        for result in results:
            if result.outcome is FetchOutcome.FETCHED:
                self.fetched += 1
            elif result.outcome is FetchOutcome.NOT_MODIFIED:
                self.not_modified += 1
            elif result.outcome in _SKIPPED:
                self.skipped += 1
            elif result.outcome in _FAILED:
                self.failed += 1
                gone = gone_note if result.status in (404, 410) and gone_note else ""
                self.errors.append(f"{result.url}: {result.reason or result.outcome}{gone}")

    def add_loads(self, outcomes: Iterable[LoadOutcome]) -> None:
        for outcome in outcomes:
            if outcome.status in ("new", "changed", "unchanged", "rejected"):
                setattr(self, outcome.status, getattr(self, outcome.status) + 1)
            if outcome.status == "rejected":
                self.errors.append(f"{outcome.url}: rejected: {outcome.reason}")


@dataclass
class RunSummary:
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"  # running | completed | failed
    sources: dict[str, SourceCounts] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    checks: list[dict] | None = None  # data-quality results; None when no data changed (not run)
    message: str | None = None

    def counts(self, source: str) -> SourceCounts:
        return self.sources.setdefault(source, SourceCounts(source))

    def total(self) -> SourceCounts:
        total = SourceCounts("TOTAL")
        for counts in self.sources.values():
            for name in COUNT_COLUMNS:
                setattr(total, name, getattr(total, name) + getattr(counts, name))
            total.errors += counts.errors
            total.warnings += counts.warnings
            total.gone_links += counts.gone_links
        return total

    def rows(self) -> list[dict]:
        """One row per source plus a total: the flow's result."""
        return [_row(c) for c in [*self.sources.values(), self.total()]]


@dataclass(frozen=True)
class _View:
    """What a summary shows: every source and the total (a narrow run), or past
    SUMMARY_SOURCES_SHOWN sources, the total first and only the sources with something to say."""

    rows: list[SourceCounts]  # in the order shown, TOTAL included
    names: list[str]  # the sources whose lists (discovery, warnings, gone, problems) are shown
    lead: str | None = None  # what the table leaves out, and where to find it
    tail: str | None = None  # "… and N more"

    @property
    def wide(self) -> bool:
        return self.lead is not None


def has_remarks(counts: SourceCounts) -> bool:
    """Has this source something to say beyond its counts: a failure, a reject, a warning, a gone link?"""
    return bool(counts.failed or counts.rejected or counts.gone or counts.errors or counts.warnings or counts.gone_links)


def _gravity(counts: SourceCounts) -> tuple[int, int, int, int]:
    """Sort key, gravest first: nothing of it could be read, then most failures and rejects,
    most warnings, most gone links."""
    read_nothing = counts.discovered == 0 and counts.fetched + counts.not_modified == 0 and counts.failed > 0
    return (0 if read_nothing else 1, -(counts.failed + counts.rejected), -len(counts.warnings), -counts.gone)


def _view(summary: RunSummary, limit: int | None = None) -> _View:
    limit = settings.SUMMARY_SOURCES_SHOWN if limit is None else limit
    sources, total = list(summary.sources.values()), summary.total()
    if len(sources) <= limit:
        return _View([*sources, total], [c.source for c in sources])
    remarkable = sorted((c for c in sources if has_remarks(c)), key=_gravity)
    shown = remarkable[:limit]
    which = "" if not remarkable else (f"; the {len(shown):,} with failures, warnings or gone links below"
                                        if len(shown) == len(remarkable) else
                                        f"; the gravest {len(shown):,} of the {len(remarkable):,} with failures, "
                                        "warnings or gone links below")  # fmt: skip
    lead = (f"{len(sources):,} sources, {len(sources) - len(remarkable):,} with nothing to report{which} "
            f"(every source: the etl-run-summary table artifact and the run_sources table)")  # fmt: skip
    more = len(remarkable) - len(shown)
    tail = (f"… and {more:,} more with failures, warnings or gone links (see the etl-run-summary artifact / "
            "run_sources)") if more else None  # fmt: skip
    return _View([total, *shown], [c.source for c in shown], lead, tail)


def _row(counts: SourceCounts) -> dict:
    return {"source": counts.source} | {name: getattr(counts, name) for name in COUNT_COLUMNS}


def format_summary(summary: RunSummary, limit: int | None = None) -> str:
    """A plain-text table for the terminal and the logs, then the lists behind its numbers.
    Past `limit` sources (SUMMARY_SOURCES_SHOWN), the total comes first and only the sources
    with something to say follow, `limit` at most, with their lists."""
    view = _view(summary, limit)
    header = ["source", *COUNT_COLUMNS]
    rows = [[str(_row(c)[h]) for h in header] for c in view.rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    rule = line(["-" * w for w in widths])
    out = [f"run {summary.run_id}: {summary.status}" + (f" — {summary.message}" if summary.message else "")]
    if view.wide:
        out += [str(view.lead), line(header), rule, line(rows[0]), *([rule] if rows[1:] else []), *map(line, rows[1:])]
        out += [view.tail] if view.tail else []
    else:
        out += [line(header), rule, *map(line, rows)]
    if summary.timings:
        out.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.timings.items()))
    failed_checks = [c for c in summary.checks or [] if c.get("status") != "pass"]
    if summary.checks is None:
        out.append("data-quality checks: not run (no data changed)")
    elif summary.checks:
        out.append(f"data-quality checks: {len(summary.checks) - len(failed_checks)}/{len(summary.checks)} pass"
                   + "".join(f"\n  {c['status']}: {c['check_name']}: {c.get('detail')}" for c in failed_checks))  # fmt: skip
    for title, entries in _sections(summary, view):
        if entries:
            out.append(f"{title} ({len(entries)}):" + "".join(f"\n  {entry}" for entry in entries))
    return "\n".join(out)


def summary_markdown(summary: RunSummary, limit: int | None = None) -> str:
    """The summary as markdown (the etl-run-report artifact), shortened as format_summary is."""
    view = _view(summary, limit)
    header = ["source", *COUNT_COLUMNS]
    lines = [f"# Nightly run `{summary.run_id}`: {summary.status}", ""]
    if summary.message:
        lines += [summary.message, ""]
    if view.lead:
        lines += [view.lead, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(_row(c)[h]) for h in header) + " |" for c in view.rows]
    if view.tail:
        lines += ["", view.tail]
    for title, entries in _sections(summary, view):
        if entries:
            lines += ["", f"## {title[0].upper()}{title[1:]} ({len(entries)})", *[f"- {entry}" for entry in entries]]
    return "\n".join(lines)


def artifact_rows(summary: RunSummary) -> list[dict]:
    """The etl-run-summary table artifact: the total first, then every source with its counts
    and, in `remarks`, the first of what it has to say."""
    return [_row(summary.total()) | {"remarks": ""}] + [_row(c) | {"remarks": remarks(c)}
                                                         for c in summary.sources.values()]  # fmt: skip


def remarks(counts: SourceCounts, width: int = 300) -> str:
    """One cell of what a source has to say: its first problem, first warning, gone links."""
    parts = []
    if counts.errors:
        parts.append(counts.errors[0] + (f" (and {len(counts.errors) - 1} more)" if len(counts.errors) > 1 else ""))
    if counts.warnings:
        parts.append("warning: " + counts.warnings[0] + (f" (and {len(counts.warnings) - 1} more)"
                                                          if len(counts.warnings) > 1 else ""))  # fmt: skip
    if counts.gone:
        parts.append(f"{counts.gone} gone link(s) waiting for their re-check")
    text = "; ".join(parts)
    return text if len(text) <= width else text[:width - 1] + "…"


def _sections(summary: RunSummary, view: _View) -> list[tuple[str, list[str]]]:
    """The lists under the table, each entry prefixed with its source: of every source, or
    of the sources shown in a wide run's table."""
    shown = [(name, summary.sources[name]) for name in view.names]
    suffix = ", of the sources above" if view.wide else ""

    def per_source(attribute: str) -> list[str]:
        return [f"{name}: {entry}" for name, counts in shown for entry in getattr(counts, attribute)]

    discovery = [f"{name}: {counts.discovery}" for name, counts in shown if counts.discovery]
    return [("discovery" + suffix, discovery), ("warnings" + suffix, per_source("warnings")),
            ("gone, not requested before their re-check" + suffix, per_source("gone_links")),
            ("problems: failures of this run and rejects" + suffix, per_source("errors"))]  # fmt: skip
