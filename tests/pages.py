"""Small hand-written pages for the extractor's unit tests (none is taken from the seeds).

`article()` wraps a body and optional chrome into a whole page, so each test states only
the part of the page its rule is about.
"""

from __future__ import annotations

from tasks.extract import extract_page
from tasks.records import Extraction

TITLE = "某县民政局2023年工作总结及2024年工作计划"

# Paragraphs written for these tests: long enough to be a body, with numbers in them.
OPENING = ("2023年以来，我局紧紧围绕县委县政府中心工作，扎实推进各项民政事业高质量发展，"
           "全年发放各类救助资金1200万元，惠及困难群众3000余人。")  # fmt: skip
MIDDLE = "一是加强组织领导，完善工作机制；二是强化资金保障，全年投入资金500万元；三是严格考核督查，确保落实。"
CLOSING = "下一步，我局将继续聚焦民生保障，持续提升基本民生保障水平，确保各项工作任务落地见效。"


def article(body: str, *, title: str = TITLE, head: str = "", before: str = "", after: str = "",
            document_title: str | None = None) -> str:  # fmt: skip
    """A page: <title>, optional <head> extras, chrome before and after a body container."""
    document_title = f"{title}_某县人民政府" if document_title is None else document_title
    return (
        f"<html><head><meta charset='utf-8'><title>{document_title}</title>{head}</head><body>"
        f"{before}{body}{after}</body></html>"
    )


def paragraphs(*texts: str) -> str:
    return "".join(f"<p>{t}</p>" for t in texts)


def extract(html: str) -> Extraction:
    return extract_page(html, "http://example.test/art/1.html")


def body_of(html: str) -> str:
    return extract(html).report.body_text or ""
