"""The sample site's data types: what a site and an article are, and what the server serves.

Plain dataclasses. `SiteSpec`/`Article` describe content (loaded from `content/`, or built
by other code to generate synthetic pages in the same templates); `Resource`/`Corpus` are
the rendered bytes the server hands out, keyed by URL path (plus query string, if any).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal

# All five CMSs publish in Beijing time; naive timestamps in content files mean this zone.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

Cms = Literal["jcms", "trs"]
# How listing page N > 1 is addressed: jcms "?uid=U&pageNum=N", TRS "index_{N-1}.html",
# or a static "index_{N}.html" export.
Paging = Literal["pageNum", "trs", "index_n"]


@dataclass(frozen=True)
class Article:
    """One article page. Metadata fields are what the page states: None renders empty/absent."""

    path: str  # URL path on the sample server
    title: str
    # CMS publication time (tz-aware): URL, listing date, info line, Last-Modified.
    released: datetime
    paragraphs: tuple[str, ...]  # body, one paragraph each, in the seeds' half-width form
    index_no: str | None = None  # 索引号
    publisher: str | None = None  # 发布机构 / 发文机关
    source: str | None = None  # 来源 / 信息来源 in the info line
    publish_date: date | None = None  # stated 发布/发文/公开日期; must be released.date() if set
    written_date: date | None = None  # 成文日期
    doc_number: str | None = None  # 文号
    topic: str | None = None  # 主题分类
    category: str | None = None  # 组配分类 / 分类
    disclosure_mode: str | None = None  # 公开方式
    disclosure_scope: str | None = None  # 公开范围
    title_lines: tuple[str, ...] = ()  # the title as the page breaks it over lines, if it does
    seed: str | None = None  # gold document id for seed reports
    synthetic: bool = False

    @property
    def display_title_lines(self) -> tuple[str, ...]:
        return self.title_lines or (self.title,)


@dataclass(frozen=True)
class ColumnSpec:
    """The one column (栏目) of a site that holds the reports."""

    name: str  # 栏目名, shown in breadcrumbs and the ColumnName meta tag
    path: str  # first listing page, exactly as in sources.yaml
    paging: Paging
    per_page: int
    breadcrumb: tuple[str, ...]  # labels after 首页, ending with the column name
    id: str | None = None  # jcms column id, part of article URLs (art_<id>_<n>.html)
    uid: str | None = None  # jcms unit id, part of ?uid=…&pageNum=N URLs

    @property
    def directory(self) -> str:
        """The listing's directory with a trailing slash (TRS hrefs are relative to it)."""
        return self.path.rsplit("/", 1)[0] + "/"


@dataclass(frozen=True)
class SiteSpec:
    """One government site: identity, encoding, its column and articles, template chrome."""

    key: str  # URL prefix (/<key>/…) and content directory name
    name: str  # 网站名称, e.g. 天台县人民政府
    template: str  # directory under templates/ (several specs may share one)
    cms: Cms
    column: ColumnSpec
    articles: tuple[Article, ...]
    charset: str = "utf-8"  # Python codec the pages are encoded with
    meta_charset: str = "utf-8"  # charset the <meta> tag declares (GBK sites say gb2312)
    header_charset: bool = True  # whether the HTTP Content-Type names the charset
    chrome: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def prefix(self) -> str:
        return f"/{self.key}"

    @property
    def content_type(self) -> str:
        return f"text/html; charset={self.meta_charset}" if self.header_charset else "text/html"


@dataclass(frozen=True)
class Resource:
    """One served response body. `status`/`headers` let tests stage errors and redirects."""

    body: bytes
    content_type: str
    last_modified: datetime  # tz-aware
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    etag: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once: the server compares it on every conditional request.
        digest = hashlib.sha1(self.body).hexdigest()[:16]
        object.__setattr__(self, "etag", f'"{digest}"')


class Corpus(MutableMapping[str, Resource]):
    """URL path (with "?query" where the site uses one) → Resource; safe to change while served."""

    def __init__(self, items: Mapping[str, Resource] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Resource] = dict(items or {})

    def __getitem__(self, path: str) -> Resource:
        with self._lock:
            return self._items[path]

    def __setitem__(self, path: str, resource: Resource) -> None:
        if not path.startswith("/"):
            raise ValueError(f"corpus paths start with '/': {path!r}")
        with self._lock:
            self._items[path] = resource

    def __delitem__(self, path: str) -> None:
        with self._lock:
            del self._items[path]

    def __iter__(self) -> Iterator[str]:
        with self._lock:  # iterate over a snapshot so writers never break a reader
            return iter(list(self._items))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
