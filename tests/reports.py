"""Small hand-made reports and a table checksum, for tests of the warehouse and its callers.

`make_page` builds a PageRecord of one report (outline, metrics, a rank) from
tasks.records; `table_checksums` fingerprints tables so a test can assert that a load
wrote nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import duckdb

from tasks.records import Extraction, Metric, PageRecord, Rank, Report, Section
from warehouse.backend.tx import one_row

T0 = datetime(2024, 3, 1, 2, 0, 0)


def sections_for(index_no: str | None,
                 plan_text: str = "继续推进养老服务体系建设,完善社会救助。") -> list[Section]:
    return [
        Section(index_no, "0", None, 0, None, None, "2022年,县民政局在县委县政府的领导下扎实工作。", 0),
        Section(index_no, "1", None, 1, "一", "2022年工作总结", "", 1, kind="summary", year=2022),
        Section(index_no, "1.1", "1", 2, "一", "养老服务",
                "全年新增养老床位120张,养老床位总数达到3000张,护理型床位占比60%。", 2,
                kind="summary", year=2022),
        Section(index_no, "1.2", "1", 2, "二", "社会救助",
                "城乡低保标准从900元/人/月提高至950元/人/月,发放救助资金8350.3万元。", 3,
                kind="summary", year=2022),
        Section(index_no, "2", None, 1, "二", "2023年工作计划", plan_text, 4, kind="plan", year=2023),
    ]


def metrics_for(index_no: str | None, beds: float = 120) -> list[Metric]:
    return [
        Metric(index_no, "1.1", 0, beds, "张", beds, "bed", subject="新增养老床位",
               indicator="eldercare_beds_new", text=f"{beds:g}张", sentence="全年新增养老床位120张"),
        Metric(index_no, "1.1", 1, 60, "%", 60, "percent", subject="护理型床位占比",
               text="60%", sentence="护理型床位占比60%"),
        Metric(index_no, "1.2", 2, 900, "元/人/月", 900, "yuan/person/month", role="previous",
               subject="城乡低保标准", indicator="dibao_standard", text="900元/人/月",
               sentence="城乡低保标准从900元/人/月提高至950元/人/月"),
        Metric(index_no, "1.2", 3, 950, "元/人/月", 950, "yuan/person/month", role="current",
               subject="城乡低保标准", indicator="dibao_standard", text="950元/人/月",
               sentence="城乡低保标准从900元/人/月提高至950元/人/月"),
        Metric(index_no, "1.2", 4, 8350.3, "万元", 83_503_000, "yuan", subject="救助资金",
               text="8350.3万元", sentence="发放救助资金8350.3万元"),
    ]


def make_page(index_no: str | None = "331023-01/2023-0001", *, url: str | None = None,
              source: str = "tiantai", region: str = "天台县", body: str | None = None,
              title: str = "天台县民政局2022年度工作总结及2023年工作计划",
              extractor_version: str = "1.0", fetched_at: datetime = T0,
              sections: list[Section] | None = None, metrics: list[Metric] | None = None,
              ranks: list[Rank] | None = None, reject_reason: str | None = None,
              raw: bytes | None = None) -> PageRecord:
    """A page of one report; content_sha256 follows the body, raw_sha256 the raw bytes."""
    key = index_no or "none"
    body = body if body is not None else f"{title}\n正文 {key}"
    url = url or f"http://gov.example/{source}/art_{int(_sha(key)[:6], 16)}.html"
    report = Report(index_no, source=source, region=region, url=url, title=title,
                    publisher="县民政局", summary_year=2022, plan_year=2023, body_text=body,
                    content_sha256=_sha(body), extractor_version=extractor_version)
    extraction = Extraction(
        report,
        sections if sections is not None else sections_for(index_no),
        metrics if metrics is not None else metrics_for(index_no),
        ranks if ranks is not None else [Rank(index_no, "1.1", 0, 1, "全市", text="居全市第一")],
    )
    raw = raw if raw is not None else f"<html>{body}</html>".encode()
    return PageRecord(source, url, url, int(_sha(url + _sha(raw))[:8], 16), _sha(raw), fetched_at,
                      extraction, reject_reason)


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def table_checksums(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, tuple]:
    """Row count and an order-independent hash of all values, per table."""
    return {table: one_row(con, f"select count(*), sum(hash(x)) from {table} as x") for table in tables}


def _sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
