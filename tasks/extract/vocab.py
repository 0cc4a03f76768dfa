"""Load the extractor's configuration files from config/ (data, not code), once per process."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from tasks.settings import CONFIG_DIR


class VocabularyError(ValueError):
    """A configuration file under config/ is malformed; the message names file and entry."""


# PyYAML's libyaml binding when the wheel has it: the pure-Python loader takes ~20 ms per
# config file, and the discovery threads of a run all read them at once.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """yaml.safe_load, through libyaml where available (same safe subset of YAML)."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader


def _read_yaml(name: str) -> dict[str, Any]:
    path = CONFIG_DIR / name
    data = parse_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise VocabularyError(f"{path}: expected a mapping at top level")
    return data


def _read_csv(name: str) -> list[dict[str, str]]:
    path: Path = CONFIG_DIR / name
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]
    if not rows:
        raise VocabularyError(f"{path}: no rows")
    return rows


@lru_cache(maxsize=1)
def metric_rules() -> dict[str, Any]:
    return _read_yaml("metric_rules.yaml")


@lru_cache(maxsize=1)
def units() -> dict[str, tuple[str, str | None]]:
    """surface → (unit_norm, counter). Empty surfaces are rejected: they would match anything."""
    table: dict[str, tuple[str, str | None]] = {}
    for row in _read_csv("units.csv"):
        if not row["surface"] or not row["unit_norm"]:
            raise VocabularyError(f"config/units.csv: empty surface or unit_norm in {row}")
        table[row["surface"]] = (row["unit_norm"], row["counter"] or None)
    return table


@lru_cache(maxsize=1)
def outline_rules() -> dict[str, Any]:
    return _read_yaml("outline.yaml")


@lru_cache(maxsize=1)
def metadata_rules() -> dict[str, Any]:
    return _read_yaml("metadata.yaml")


@lru_cache(maxsize=1)
def page_rules() -> dict[str, Any]:
    return _read_yaml("page.yaml")


@lru_cache(maxsize=1)
def indicators() -> list[dict[str, str]]:
    rows = _read_csv("indicators.csv")
    for row in rows:
        if not row["code"] or not row["pattern"]:
            raise VocabularyError(f"config/indicators.csv: empty code or pattern in {row}")
    return rows


@lru_cache(maxsize=1)
def key_rules() -> dict[str, Any]:
    rules = _read_yaml("keys.yaml")
    for row in rules.get("document_ids") or []:
        if not row.get("name") or "(?P<id>" not in (row.get("pattern") or ""):
            raise VocabularyError(f"config/keys.yaml: a document id needs a name and a pattern with (?P<id>…): {row}")
    return rules
