"""Load the bundled sites from `content/<site>/site.yaml` and their body files, validated.

The content files are the source of truth for what the pages say; templates only lay it
out. Validation is strict (unknown keys, duplicate URLs or 索引号, a stated publish date
that disagrees with the release time) so a typo fails at load, not as a silently odd page.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_args

import yaml

from sample_site.model import CHINA_TZ, Article, Cms, ColumnSpec, Paging, SiteSpec
from sample_site.urls import article_id, article_path

CONTENT_DIR = Path(__file__).resolve().parent / "content"

_SITE_KEYS = {"key", "name", "template", "cms", "charset", "meta_charset", "header_charset",
              "column", "chrome", "articles"}  # fmt: skip
_COLUMN_KEYS = {"name", "path", "paging", "per_page", "breadcrumb", "id", "uid"}
_ARTICLE_KEYS = {"path", "title", "title_lines", "released", "index_no", "publisher", "source",
                 "publish_date", "written_date", "doc_number", "topic", "category",
                 "disclosure_mode", "disclosure_scope", "body", "seed", "synthetic"}  # fmt: skip
_OPTIONAL_TEXT = ("index_no", "publisher", "source", "doc_number", "topic", "category",
                  "disclosure_mode", "disclosure_scope", "seed")  # fmt: skip


class ContentError(ValueError):
    """A content file is malformed; the message names the file and the entry."""


def load_sample_sites(content_dir: Path = CONTENT_DIR) -> list[SiteSpec]:
    """Every site under `content_dir` (one directory with a site.yaml each), sorted by key."""
    files = sorted(content_dir.glob("*/site.yaml"))
    if not files:
        raise ContentError(f"{content_dir}: no */site.yaml found")
    return [load_site(f.parent) for f in files]


def load_site(directory: Path) -> SiteSpec:
    where = str(directory / "site.yaml")
    raw = yaml.safe_load((directory / "site.yaml").read_text(encoding="utf-8"))
    _check_keys(raw, _SITE_KEYS, {"key", "name", "template", "cms", "column", "articles"}, where)
    articles = tuple(
        parse_article(entry, directory, f"{where}: articles[{i}]")
        for i, entry in enumerate(raw["articles"])
    )
    site = SiteSpec(
        key=raw["key"],
        name=raw["name"],
        template=raw["template"],
        cms=raw["cms"],
        column=parse_column(raw["column"], f"{where}: column"),
        articles=articles,
        charset=raw.get("charset", "utf-8"),
        meta_charset=raw.get("meta_charset", raw.get("charset", "utf-8")),
        header_charset=bool(raw.get("header_charset", True)),
        chrome=MappingProxyType(dict(raw.get("chrome") or {})),
    )
    validate_site(site, where)
    return site


def parse_column(raw: Any, where: str) -> ColumnSpec:
    _check_keys(raw, _COLUMN_KEYS, {"name", "path", "paging", "per_page", "breadcrumb"}, where)
    if raw["paging"] == "pageNum" and not raw.get("uid"):
        raise ContentError(f"{where}: jcms pageNum paging needs a uid")
    return ColumnSpec(
        name=raw["name"],
        path=raw["path"],
        paging=raw["paging"],
        per_page=int(raw["per_page"]),
        breadcrumb=tuple(raw["breadcrumb"]),
        id=_opt_str(raw.get("id")),
        uid=_opt_str(raw.get("uid")),
    )


def parse_article(raw: Any, directory: Path, where: str) -> Article:
    _check_keys(raw, _ARTICLE_KEYS, {"path", "title", "released", "body"}, where)
    if bool(raw.get("seed")) == bool(raw.get("synthetic")):
        raise ContentError(f"{where}: mark an article either 'seed: <doc id>' or 'synthetic: true'")
    optional = {name: _opt_str(raw.get(name)) for name in _OPTIONAL_TEXT}
    return Article(
        path=raw["path"],
        title=raw["title"],
        released=to_datetime(raw["released"]),
        paragraphs=read_body(directory / raw["body"]),
        publish_date=to_date(raw.get("publish_date")),
        written_date=to_date(raw.get("written_date")),
        title_lines=tuple(raw.get("title_lines") or ()),
        synthetic=bool(raw.get("synthetic")),
        **optional,
    )


def read_body(path: Path) -> tuple[str, ...]:
    """One paragraph per line; blank lines are separators, but a line of only &nbsp; is kept."""
    lines = path.read_text(encoding="utf-8").split("\n")
    paragraphs = tuple(line for line in lines if line != "")
    if not paragraphs:
        raise ContentError(f"{path}: empty body")
    return paragraphs


def validate_site(site: SiteSpec, where: str) -> None:
    if site.cms not in get_args(Cms) or site.column.paging not in get_args(Paging):
        allowed = f"cms in {get_args(Cms)}, paging in {get_args(Paging)}"
        raise ContentError(f"{where}: expected {allowed}")
    if not site.column.path.startswith(site.prefix + "/") or site.column.per_page < 1:
        raise ContentError(f"{where}: column path must be under {site.prefix}/, per_page >= 1")
    for field_name in ("path", "index_no"):
        values = [getattr(a, field_name) for a in site.articles if getattr(a, field_name)]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise ContentError(f"{where}: duplicate {field_name} {duplicates}")
    for article in site.articles:
        validate_article(site, article, f"{where}: {article.path}")


def validate_article(site: SiteSpec, article: Article, where: str) -> None:
    expected = article_path(site, article.released, article_id(article.path))
    if article.path != expected:
        raise ContentError(f"{where}: path disagrees with release date, expected {expected}")
    if article.publish_date and article.publish_date != article.released.date():
        raise ContentError(f"{where}: publish_date {article.publish_date} != released date")
    if article.title_lines and "".join(article.title_lines) != article.title:
        raise ContentError(f"{where}: title_lines do not join to the title")


def to_datetime(value: Any) -> datetime:
    """YAML gives datetimes or strings; naive ones are Beijing time."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_TZ)


def to_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _check_keys(raw: Any, known: set[str], required: set[str], where: str) -> None:
    if not isinstance(raw, dict):
        raise ContentError(f"{where}: expected a mapping")
    unknown = set(raw) - known
    if unknown:
        raise ContentError(f"{where}: unknown keys {sorted(unknown)}")
    missing = sorted(k for k in required if raw.get(k) in (None, "", []))
    if missing:
        raise ContentError(f"{where}: missing {missing}")


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
