"""The run summary: what a nightly run did, per source, in numbers a person can check.

Pure data and formatting; the flow fills it, the warehouse stores it, Prefect shows it
as an artifact and the command line prints it. The terminal text puts the per-source
counts on top, then what discovery did per source, then every warning, gone link,
failure and reject by URL (all of them: the full list is what an operator acts on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

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
        """One row per source plus a total: the artifact table."""
        return [{"source": c.source} | {name: getattr(c, name) for name in COUNT_COLUMNS}
                for c in [*self.sources.values(), self.total()]]  # fmt: skip


def format_summary(summary: RunSummary) -> str:
    """A plain-text table for the terminal and the logs, then the lists behind its numbers."""
    header = ["source", *COUNT_COLUMNS]
    rows = [[str(row[h]) for h in header] for row in summary.rows()]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [f"run {summary.run_id}: {summary.status}" + (f" — {summary.message}" if summary.message else ""),
           line(header), line(["-" * w for w in widths]), *map(line, rows)]  # fmt: skip
    if summary.timings:
        out.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.timings.items()))
    failed_checks = [c for c in summary.checks or [] if c.get("status") != "pass"]
    if summary.checks is None:
        out.append("data-quality checks: not run (no data changed)")
    elif summary.checks:
        out.append(f"data-quality checks: {len(summary.checks) - len(failed_checks)}/{len(summary.checks)} pass"
                   + "".join(f"\n  {c['status']}: {c['check_name']}: {c.get('detail')}" for c in failed_checks))  # fmt: skip
    for title, entries in _sections(summary):
        if entries:
            out.append(f"{title} ({len(entries)}):" + "".join(f"\n  {entry}" for entry in entries))
    return "\n".join(out)


def summary_markdown(summary: RunSummary) -> str:
    header = ["source", *COUNT_COLUMNS]
    lines = [f"# Nightly run `{summary.run_id}`: {summary.status}", ""]
    if summary.message:
        lines += [summary.message, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in summary.rows()]
    for title, entries in _sections(summary):
        if entries:
            lines += ["", f"## {title[0].upper()}{title[1:]} ({len(entries)})", *[f"- {entry}" for entry in entries]]
    return "\n".join(lines)


def _sections(summary: RunSummary) -> list[tuple[str, list[str]]]:
    """The lists under the table, each entry prefixed with its source."""

    def per_source(attribute: str) -> list[str]:
        return [f"{name}: {entry}" for name, counts in summary.sources.items() for entry in getattr(counts, attribute)]

    discovery = [f"{name}: {counts.discovery}" for name, counts in summary.sources.items() if counts.discovery]
    return [("discovery", discovery), ("warnings", per_source("warnings")),
            ("gone, not requested before their re-check", per_source("gone_links")),
            ("problems: failures of this run and rejects", per_source("errors"))]  # fmt: skip
