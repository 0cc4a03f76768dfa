"""Read and validate sources.yaml: the list of sites the nightly flow visits.

A new county is a new entry in that file, not new code. Values may reference
environment variables as ``${NAME}`` or ``${NAME:-default}`` (used by the bundled
sample site, whose loopback address is only known when it starts).

An error names the file, the line and the source by its `name`, e.g.
"sources.yaml line 42, source 'cixi': rate_limit_per_second: expected a number >= 0".
Lines are looked up (with PyYAML's node marks) only when there is an error to report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tasks.records import Source
from tasks.extract.vocab import parse_yaml

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_KNOWN_KEYS = {
    "name", "region", "listing_urls", "allowed_hosts", "article_url_pattern",
    "rate_limit_per_second", "site_name", "body_selectors", "title_selectors",
    "next_page_pattern", "max_listing_pages", "revalidate_after_hours", "enabled", "gone_recheck_after_days",
}  # fmt: skip


class SourceConfigError(ValueError):
    """sources.yaml is malformed; the message names the file, the line, the source and the key."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key  # the key of the entry at fault (or the environment variable), when one is


def expand_env(text: str, env: Mapping[str, str] | None = None) -> str:
    values: Mapping[str, str] = os.environ if env is None else env

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in values:
            return values[name]
        if default is not None:
            return default
        raise SourceConfigError(f"environment variable {name} is not set and has no default", key=name)

    return _ENV_REF.sub(replace, text)


def load_sources(path: str | Path, only: list[str] | None = None) -> list[Source]:
    """Parse, expand and validate the file; return the enabled sources (or those named in `only`)."""
    return select_sources(read_sources(path), only, where=str(path))


def read_sources(path: str | Path) -> list[Source]:
    """Every source the file configures, disabled ones included: archived pages of a source
    switched off since still need its region and selectors when they are loaded."""
    try:
        raw_text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceConfigError(f"{path}: cannot read the sources file: {exc.strerror or exc}") from None
    text = _expanded(raw_text, path)
    try:
        raw = parse_yaml(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path} line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise SourceConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    entries = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SourceConfigError(f"{path}: expected a non-empty list under 'sources:'")
    sources = []
    for index, entry in enumerate(entries):
        where = f"{path}, source {_label(entry, index)}"
        try:
            sources.append(parse_source(entry, where=where))
        except SourceConfigError as exc:
            line = _line_of(text, index, exc.key)
            located = f"{path} line {line}, source {_label(entry, index)}" if line else where
            raise SourceConfigError(str(exc).replace(where, located, 1), key=exc.key) from None
    names = [s.name for s in sources]
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        lines = [str(_line_of(text, i, "name") or "?") for i, n in enumerate(names) if n == name]
        raise SourceConfigError(f"{path} lines {' and '.join(lines)}: two sources are named '{name}'; names must "
                                "be unique (the archive and the warehouse key pages by it)")  # fmt: skip
    return sources


def _expanded(text: str, path: str | Path) -> str:
    """expand_env, its error located at the line that names the variable."""
    try:
        return expand_env(text)
    except SourceConfigError as exc:  # its key is the variable's name
        line = next((n for n, row in enumerate(text.splitlines(), 1) if "${" + str(exc.key) in row), None)
        raise SourceConfigError(f"{path}{f' line {line}' if line else ''}: {exc}") from None


def _label(entry: Any, index: int) -> str:
    """How an error names a source: by its name, or by its place when it has none."""
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"'{name}'" if isinstance(name, str) and name else f"#{index + 1} (no name)"


def _line_of(text: str, index: int, key: str | None) -> int | None:
    """The line (1-based) of entry `index` under 'sources:', or of its `key` if it has that key."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    entries = next((value for name, value in root.value if name.value == "sources"), None)
    if not isinstance(entries, yaml.SequenceNode) or index >= len(entries.value):
        return None
    entry = entries.value[index]
    if key and isinstance(entry, yaml.MappingNode):
        for name, _value in entry.value:
            if name.value == key:
                return name.start_mark.line + 1
    return entry.start_mark.line + 1


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
        raise SourceConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {', '.join(sorted(_KNOWN_KEYS))}",
                                key=sorted(unknown)[0])
    for key in ("name", "region", "listing_urls"):
        if not entry.get(key):
            raise SourceConfigError(f"{where}: '{key}' is required and must not be empty", key=key)
    listing_urls = _str_tuple(entry["listing_urls"], where, "listing_urls")
    for url in listing_urls:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise SourceConfigError(f"{where}: listing URL {url!r} is not an absolute http(s) URL", key="listing_urls")
    hosts = _str_tuple(entry.get("allowed_hosts") or [], where, "allowed_hosts")
    if not hosts:  # default: the hosts of the listing pages, never "anything"
        hosts = tuple(dict.fromkeys(host for u in listing_urls if (host := urlsplit(u).hostname)))
    for key in ("article_url_pattern", "next_page_pattern"):
        if entry.get(key):
            try:
                re.compile(entry[key])
            except re.error as exc:
                raise SourceConfigError(f"{where}: {key}: invalid regex: {exc}", key=key) from exc
    rate = _number(entry, "rate_limit_per_second", where)
    max_pages = entry.get("max_listing_pages")
    if max_pages is not None and (isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1):
        raise SourceConfigError(f"{where}: max_listing_pages: expected a whole number of pages >= 1",
                                key="max_listing_pages")
    return Source(
        name=str(entry["name"]),
        region=str(entry["region"]),
        listing_urls=listing_urls,
        allowed_hosts=tuple(h.lower() for h in hosts),
        article_url_pattern=entry.get("article_url_pattern"),
        rate_limit_per_second=rate,
        site_name=entry.get("site_name"),
        body_selectors=_str_tuple(entry.get("body_selectors") or [], where, "body_selectors"),
        title_selectors=_str_tuple(entry.get("title_selectors") or [], where, "title_selectors"),
        next_page_pattern=entry.get("next_page_pattern"),
        max_listing_pages=max_pages,
        revalidate_after_hours=_number(entry, "revalidate_after_hours", where),
        enabled=bool(entry.get("enabled", True)),
        gone_recheck_after_days=_number(entry, "gone_recheck_after_days", where),
    )


def _number(entry: dict, key: str, where: str) -> float | None:
    """An optional number >= 0 (a rate, hours, days), as a float."""
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SourceConfigError(f"{where}: {key}: expected a number >= 0", key=key)
    return float(value)


def _str_tuple(value: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SourceConfigError(f"{where}: {key}: expected a list of non-empty strings", key=key)
    return tuple(v.strip() for v in value)
