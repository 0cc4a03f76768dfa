"""Records that cross module lines: configuration, fetches, extractions, loads.

Plain dataclasses, no behaviour beyond small conveniences. Field names match the
warehouse's column names so that a record becomes a row without renaming.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import StrEnum


# --- configuration ---------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One configured site column (see sources.yaml)."""

    name: str
    region: str
    listing_urls: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    article_url_pattern: str | None = None  # regex narrowing the listing's dated items (search, not match)
    rate_limit_per_second: float | None = None  # None: settings.DEFAULT_RATE_LIMIT_PER_SECOND; 0: off
    site_name: str | None = None
    body_selectors: tuple[str, ...] = ()  # CSS selectors tried before the generic ones
    title_selectors: tuple[str, ...] = ()
    next_page_pattern: str | None = None  # regex for listing-page URLs, besides 下一页 links
    max_listing_pages: int | None = None  # listing pages read per run; None: settings.MAX_LISTING_PAGES
    revalidate_after_hours: float | None = None
    enabled: bool = True
    gone_recheck_after_days: float | None = None  # None: settings.GONE_RECHECK_AFTER_DAYS


# --- fetching --------------------------------------------------------------------------
class FetchOutcome(StrEnum):
    """What happened to one URL; stored verbatim in the fetch log."""

    FETCHED = "fetched"  # 200 with an HTML body
    NOT_MODIFIED = "not_modified"  # 304 to a conditional GET
    SKIPPED_ROBOTS = "skipped_robots"  # robots.txt disallows it; never requested
    NON_HTML = "non_html"  # 200 but not HTML (PDF, image, ...); body kept, not parsed
    TOO_LARGE = "too_large"  # body or decompressed body over MAX_RESPONSE_BYTES
    HTTP_ERROR = "http_error"  # final 4xx/5xx after retries
    NETWORK_ERROR = "network_error"  # connection refused/reset, DNS, truncated body
    TIMEOUT = "timeout"  # connect/read timeout or total deadline exceeded
    REDIRECT_BLOCKED = "redirect_blocked"  # redirect to a host outside allowed_hosts
    REDIRECT_LOOP = "redirect_loop"  # loop or more than MAX_REDIRECTS hops


@dataclass
class FetchResult:
    url: str
    outcome: FetchOutcome
    final_url: str | None = None
    status: int | None = None
    reason: str | None = None  # one sentence a person understands, for failures and skips
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # content-decoded bytes (gzip undone), None unless a body was kept
    content_type: str | None = None
    fetched_at: datetime | None = None
    elapsed_s: float = 0.0
    attempts: int = 0  # HTTP requests made for this URL (0 when skipped)
    retry_reasons: dict[str, int] = field(default_factory=dict)  # e.g. {"503": 2, "ConnectionError": 1}
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None  # of body

    @property
    def ok(self) -> bool:
        return self.outcome is FetchOutcome.FETCHED


@dataclass
class DecodedPage:
    text: str
    encoding: str  # Python codec name actually used, e.g. "gb18030", "utf-8"
    encoding_source: str  # "bom" | "header" | "meta" | "detected" | "default"
    replaced_chars: int = 0  # undecodable bytes replaced by U+FFFD


@dataclass
class ListingLink:
    url: str
    title: str | None = None
    listed_date: date | None = None
    listing_url: str | None = None


# --- extraction ------------------------------------------------------------------------
@dataclass
class Report:
    index_no: str | None
    source: str | None = None
    region: str | None = None
    url: str | None = None
    title: str | None = None
    publisher: str | None = None
    publish_date: date | None = None
    written_date: date | None = None
    doc_number: str | None = None
    topic: str | None = None
    category: str | None = None
    disclosure_mode: str | None = None
    disclosure_scope: str | None = None
    summary_year: int | None = None
    plan_year: int | None = None
    body_text: str | None = None
    content_sha256: str | None = None  # hash of the extracted content, not of the raw bytes
    extractor_version: str | None = None
    # What index_no holds: the page's 索引号 (index_no), or where it states none a key of the
    # report's own: its CMS document id (document_id) or its canonical URL (url). tasks/extract/keys.py
    key_kind: str | None = None


@dataclass
class Section:
    index_no: str | None
    section_id: str  # dotted path in the outline: "0" preamble, "2", "2.1", "2.1.3", ...
    parent_id: str | None
    level: int  # 0 part/preamble, 1 一、, 2 (一), 3 1./1、, 4 (1) or inline 一是, 5 ①
    label: str | None  # the numeral as written without punctuation: 一, 十一, 1, ①
    heading: str | None
    text: str  # the section's own text (children excluded)
    ordinal: int  # position in document order, from 0
    kind: str | None = None  # summary | plan | problems | highlights
    year: int | None = None  # the year the section reports on or plans for


@dataclass
class Metric:
    index_no: str | None
    section_id: str | None
    ordinal: int  # position within the report, from 0
    value: float
    unit: str  # as written, multiplier and qualifier characters included: 万元, 余人, 元/人·月
    value_norm: float  # value × multiplier (万 10^4, 亿 10^8)
    unit_norm: str  # closed vocabulary: yuan, person, household, percent, item, ...
    value_high: float | None = None  # upper end of a range (1-2家)
    value_high_norm: float | None = None
    qualifier: str | None = None  # over | approx | ge | le
    role: str | None = None  # previous | current, for old→new pairs (从1330元调整为1420元)
    counter: str | None = None  # measure word when unit_norm is item (个, 家, 件)
    subject: str | None = None  # what the number measures, as phrased: 城乡低保标准
    indicator: str | None = None  # canonical code from config/indicators.csv
    year: int | None = None
    text: str = ""  # the quantity as written: 8350.3万元
    sentence: str = ""  # the sentence it stands in, as on the page
    kind: str | None = None  # level | amount | cumulative | change | rate | share | part | removal | target | other
    scope: str | None = None  # 城市 | 农村 | 城乡, where the sentence says so for this figure


@dataclass
class Rank:
    index_no: str | None
    section_id: str | None
    ordinal: int
    rank: int
    scope: str | None  # 全市, 全省, 宁波市
    subject: str | None = None
    tied: bool = False  # 并列
    text: str = ""
    sentence: str = ""


@dataclass
class Attachment:
    """A file the page links as its attachment (附件): the 详见附件 of a short notice."""

    name: str  # the link's text as shown: …通知.pdf, 《…若干措施》
    url: str | None  # the href as written (resolve against the page's URL)


@dataclass
class Extraction:
    report: Report
    sections: list[Section] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    ranks: list[Rank] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "report": _jsonable(asdict(self.report)),
            "sections": [_jsonable(asdict(s)) for s in self.sections],
            "metrics": [_jsonable(asdict(m)) for m in self.metrics],
            "ranks": [_jsonable(asdict(r)) for r in self.ranks],
            "attachments": [asdict(a) for a in self.attachments],
            "warnings": list(self.warnings),
        }


# --- loading ---------------------------------------------------------------------------
@dataclass
class PageRecord:
    """One fetched page after extraction: the loader's unit of work."""

    source: str
    url: str
    final_url: str
    fetch_id: int | None  # row in the raw archive, so the page can be re-extracted
    raw_sha256: str
    fetched_at: datetime
    extraction: Extraction | None = None
    reject_reason: str | None = None  # set when the page cannot become a report
    # The search index's (words, number of words) of each of extraction.sections, marked where
    # the page was extracted (a Dask worker, when the run has some); None: the loader marks them.
    search_words: list[tuple[str, int]] | None = None


@dataclass
class LoadOutcome:
    """Per-page result of a load, for the run summary."""

    url: str
    source: str
    index_no: str | None
    status: str  # new | changed | unchanged | rejected
    reason: str | None = None


def _jsonable(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in row.items()}
