"""Read and validate sources.yaml: the list of sites the nightly flow visits.

A new county is a new entry in that file, not new code. Values may reference
environment variables as ``${NAME}`` or ``${NAME:-default}`` (used by the bundled
sample site, whose loopback address is only known when it starts).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tasks.records import Source
from tasks.extract.vocab import parse_yaml

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_KNOWN_KEYS = {
    "name", "region", "listing_urls", "allowed_hosts", "article_url_pattern",
    "rate_limit_per_second", "site_name", "body_selectors", "title_selectors",
    "next_page_pattern", "max_listing_pages", "revalidate_after_hours", "enabled",
}  # fmt: skip


class SourceConfigError(ValueError):
    """sources.yaml is malformed; the message names the entry and the key."""


def expand_env(text: str, env: Mapping[str, str] | None = None) -> str:
    values: Mapping[str, str] = os.environ if env is None else env

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in values:
            return values[name]
        if default is not None:
            return default
        raise SourceConfigError(f"environment variable {name} is not set and has no default")

    return _ENV_REF.sub(replace, text)


def load_sources(path: str | Path, only: list[str] | None = None) -> list[Source]:
    """Parse, expand and validate the file; return the enabled sources (or those named in `only`)."""
    return select_sources(read_sources(path), only, where=str(path))


def read_sources(path: str | Path) -> list[Source]:
    """Every source the file configures, disabled ones included: archived pages of a source
    switched off since still need its region and selectors when they are loaded."""
    raw = parse_yaml(expand_env(Path(path).read_text(encoding="utf-8"))) or {}
    entries = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SourceConfigError(f"{path}: expected a non-empty list under 'sources:'")
    sources = [parse_source(entry, where=f"{path}: sources[{i}]") for i, entry in enumerate(entries)]
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceConfigError(f"{path}: duplicate source names {duplicates}")
    return sources


def select_sources(sources: list[Source], only: list[str] | None = None, where: str = "sources") -> list[Source]:
    """The sources named in `only` (enabled or not), else the enabled ones."""
    if only:
        names = [s.name for s in sources]
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise SourceConfigError(f"{where}: no source named {unknown}; known: {names}")
        return [s for s in sources if s.name in only]
    return [s for s in sources if s.enabled]


def parse_source(entry: Any, where: str = "source") -> Source:
    if not isinstance(entry, dict):
        raise SourceConfigError(f"{where}: expected a mapping")
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise SourceConfigError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("name", "region", "listing_urls"):
        if not entry.get(key):
            raise SourceConfigError(f"{where}: '{key}' is required and must not be empty")
    listing_urls = _str_tuple(entry["listing_urls"], f"{where}.listing_urls")
    for url in listing_urls:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise SourceConfigError(f"{where}: listing URL {url!r} is not an absolute http(s) URL")
    hosts = _str_tuple(entry.get("allowed_hosts") or [], f"{where}.allowed_hosts")
    if not hosts:  # default: the hosts of the listing pages, never "anything"
        hosts = tuple(dict.fromkeys(host for u in listing_urls if (host := urlsplit(u).hostname)))
    for key in ("article_url_pattern", "next_page_pattern"):
        if entry.get(key):
            try:
                re.compile(entry[key])
            except re.error as exc:
                raise SourceConfigError(f"{where}.{key}: invalid regex: {exc}") from exc
    rate = entry.get("rate_limit_per_second")
    if rate is not None and (not isinstance(rate, (int, float)) or rate < 0):
        raise SourceConfigError(f"{where}.rate_limit_per_second: expected a number >= 0")
    return Source(
        name=str(entry["name"]),
        region=str(entry["region"]),
        listing_urls=listing_urls,
        allowed_hosts=tuple(h.lower() for h in hosts),
        article_url_pattern=entry.get("article_url_pattern"),
        rate_limit_per_second=None if rate is None else float(rate),
        site_name=entry.get("site_name"),
        body_selectors=_str_tuple(entry.get("body_selectors") or [], f"{where}.body_selectors"),
        title_selectors=_str_tuple(entry.get("title_selectors") or [], f"{where}.title_selectors"),
        next_page_pattern=entry.get("next_page_pattern"),
        max_listing_pages=entry.get("max_listing_pages"),
        revalidate_after_hours=entry.get("revalidate_after_hours"),
        enabled=bool(entry.get("enabled", True)),
    )


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SourceConfigError(f"{where}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)
