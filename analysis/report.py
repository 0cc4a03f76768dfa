"""Charts of key indicators by region and year, straight from the warehouse.

    python -m analysis.report [--warehouse data/warehouse.duckdb] [--out build/report]

Writes `index.html` (self-contained: charts inline as SVG with their text kept as text,
so the browser draws the Chinese) and one PNG per chart. Reads the analysts' snapshot
when there is one, else the warehouse file itself, read-only (never blocks a nightly run).

Pipeline, one small pure step each: queries → pandas frames → matplotlib figures → HTML.
The charts are in charts.yaml. What is drawn is the warehouse's own answer,
`indicator_by_region_year`: one value per region, indicator and year, in the indicator's
one unit. Honesty rules: one panel per indicator with every region on it; a value is a
point whose marker says its kind (level, amount, change, …); lines join only consecutive
years of one region and one kind, never a gap; converted values (annual ÷ 12) and cells
whose stated figures disagree are marked; a chart without values says "no data" instead
of drawing zero. The table under each chart lists every stated figure with its sentence,
report title and 索引号, and the page lists the ambiguous cells with their sentences.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import re
import sys
from html import unescape as html_unescape
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import duckdb
import jinja2
import matplotlib
import pandas as pd
import yaml
from markupsafe import Markup, escape
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from analysis.fonts import find_cjk_font
from tasks import settings
from warehouse.backend.connect import open_for_reading

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

log = logging.getLogger(__name__)

CONFIG_PATH = Path(__file__).with_name("charts.yaml")
TEMPLATE_DIR = Path(__file__).with_name("templates")
INDICATORS_CSV = settings.PROJECT_ROOT / "config" / "indicators.csv"

# Status of each stated figure, i.e. why it is (not) the point on the chart.
PLOTTED, OTHER, PREVIOUS, NOT_COMPARABLE, NO_YEAR = (
    "plotted", "other", "previous", "not_comparable", "no_year")
STATUS_LABELS = {
    PLOTTED: "● 图中 on chart",
    OTHER: "未选 not picked",
    PREVIOUS: "调整前 previous (old→new)",
    NOT_COMPARABLE: "单位不可比 unit not comparable",
    NO_YEAR: "年份不明 year unknown",
}
_STATUS_ORDER = {PLOTTED: 0, OTHER: 1, PREVIOUS: 2, NOT_COMPARABLE: 3, NO_YEAR: 4}
QUALIFIER_SIGNS = {"over": ">", "approx": "≈", "ge": "≥", "le": "≤"}
# What a figure is (metrics.kind): its marker on the chart and its name on the page.
KIND_MARKERS = {"level": "o", "amount": "s", "change": "^", "rate": "v", "share": "D",
                "cumulative": "P", "part": "X"}
KIND_NAMES = {"level": "存量", "amount": "期内量", "change": "增量", "rate": "增长率",
              "share": "占比", "cumulative": "累计", "part": "其中", "removal": "减少",
              "target": "目标", "other": "其他"}
OTHER_KIND_MARKER = "h"
MAX_LABELLED_POINTS = 14  # more value labels than this overlap; the table has them all
PANEL_COLUMNS = 3
DODGE = 0.08  # years between neighbouring regions' points of one year
CONVERTED_MARK = "÷12"
DISAGREE_MARK = "?"
RING_COLOR = "#333333"


# --- configuration -----------------------------------------------------------------------
@dataclass(frozen=True)
class ChartSpec:
    slug: str
    title_zh: str
    title_en: str
    indicators: tuple[str, ...]  # one panel each, in this order
    note: str = ""


@dataclass(frozen=True)
class ReportConfig:
    charts: tuple[ChartSpec, ...]
    latin_regions: dict[str, str]
    units_zh: dict[str, str]
    indicator_names: dict[str, str]  # code → name_zh, from config/indicators.csv

    @property
    def indicators(self) -> list[str]:
        return sorted({code for chart in self.charts for code in chart.indicators})


def load_config(path: Path = CONFIG_PATH, indicators_csv: Path = INDICATORS_CSV) -> ReportConfig:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = pd.read_csv(indicators_csv, dtype=str).set_index("code")["name_zh"].to_dict()
    charts = tuple(
        ChartSpec(slug=c["slug"], title_zh=c["title_zh"], title_en=c["title_en"],
                  indicators=tuple(c["indicators"]), note=c.get("note", ""))
        for c in raw["charts"])
    unknown = sorted({code for chart in charts for code in chart.indicators} - set(names))
    if unknown:  # a typo would otherwise show up only as an empty chart
        raise ValueError(f"{path}: indicators not in {indicators_csv.name}: {unknown}")
    return ReportConfig(charts, dict(raw.get("latin_regions") or {}),
                        dict(raw.get("units_zh") or {}), names)


@dataclass(frozen=True)
class Labels:
    """Texts drawn inside the figures: Chinese when matplotlib has a CJK font, else Latin."""
    config: ReportConfig
    cjk: bool

    def region(self, region: str) -> str:
        return region if self.cjk else self.config.latin_regions.get(region, _latin_only(region))

    def indicator(self, code: str) -> str:
        return self.config.indicator_names.get(code, code) if self.cjk else code

    def unit(self, unit: str) -> str:
        zh = self.config.units_zh.get(unit)
        return f"{unit} ({zh})" if self.cjk and zh else unit

    def kind(self, kind: str | None) -> str:
        return kind_label(kind) if self.cjk else (kind or "kind unknown")

    def title(self, chart: ChartSpec) -> str:
        return f"{chart.title_zh} · {chart.title_en}" if self.cjk else chart.title_en


def kind_label(kind: Any) -> str:
    """The kind of a figure for the page: 存量 level, 增量 change, …"""
    if not isinstance(kind, str) or not kind:
        return "—"
    zh = KIND_NAMES.get(kind)
    return f"{zh} {kind}" if zh else kind


def _latin_only(text: str) -> str:
    # last resort for a region missing from latin_regions: never draw boxes
    return re.sub(r"[^\x00-\x7f]+", "?", text)


def cell_id(region: str, indicator: str, year: int) -> str:
    """Anchor of a cell (region × indicator × year) on the page and id of its point in the SVG."""
    return f"cell-{series_id(region, indicator)}-{int(year)}"


def series_id(region: str, indicator: str) -> str:
    """Id of a region's series of one indicator: `<indicator>-<region>` (no spaces)."""
    return f"{indicator}-{_NO_SPACE.sub('_', region)}"


_NO_SPACE = re.compile(r"\s+")


# --- queries -----------------------------------------------------------------------------
# The figures stated for the charted indicators, and for each cell of indicator_by_region_year
# the one it shows (the view names its report and sentence; the first statement there of that
# value and kind is it, as in the view's rule).
_PICKED = """
    with stated as (
        select * from indicator_series where list_contains($indicators, indicator)
    ),
    cell as (
        select * from indicator_by_region_year where list_contains($indicators, indicator)
    ),
    picked as (
        select c.region, c.indicator, c.year, c.index_no, min(s.ordinal) as ordinal
        from cell as c
        join stated as s
          on s.region = c.region and s.indicator = c.indicator and s.year = c.year
         and s.index_no = c.index_no and s.sentence is not distinct from c.sentence
         and s.value_std = c.value_norm and s.kind is not distinct from c.kind
         and coalesce(s.role, '') <> 'previous'
        group by all
    )"""


def read_cells(con: duckdb.DuckDBPyConnection, indicators: Sequence[str]) -> pd.DataFrame:
    """One value per region, indicator and year (indicator_by_region_year), in the indicator's
    unit, with how many figures were stated for it and whether they disagree."""
    return con.execute(_PICKED + """
        select c.region, c.indicator, c.year, c.value_norm as value, c.unit_norm as unit,
               coalesce(c.converted, false) as converted, c.kind, c.n_values, c.disagree,
               c.index_no, c.title, c.sentence, s.qualifier, s.text as value_text,
               s.value_high_norm * c.value_norm / nullif(s.value_norm, 0) as value_high
        from cell as c
        left join picked as p using (region, indicator, year, index_no)
        left join stated as s on s.index_no = p.index_no and s.ordinal = p.ordinal
        order by c.indicator, c.region, c.year""", {"indicators": list(indicators)}).df()


def read_values(con: duckdb.DuckDBPyConnection, indicators: Sequence[str]) -> pd.DataFrame:
    """Every stated figure of these indicators, with its provenance (indicator_series) and
    `picked`: whether it is the value its cell shows."""
    return con.execute(_PICKED + """
        select s.region, s.indicator, s.year, s.value_norm, s.value_high_norm, s.unit_norm,
               s.value_std, s.unit_std, coalesce(s.converted, false) as converted, s.kind,
               s.qualifier, s.role, s.index_no, s.title, s.section_id, s.heading, s.sentence,
               s.ordinal, s.publish_date, s.text as value_text,
               p.ordinal is not null as picked
        from stated as s
        left join picked as p
          on p.index_no = s.index_no and p.ordinal = s.ordinal
         and p.region = s.region and p.indicator = s.indicator and p.year = s.year
        order by s.region, s.indicator, s.year, s.index_no, s.ordinal""",
                       {"indicators": list(indicators)}).df()


def read_ambiguity(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(cells whose stated figures disagree, cells) in the whole indicator_by_region_year."""
    row = con.execute("""select count(*) filter (where disagree), count(*)
                         from indicator_by_region_year""").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def read_coverage(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per region: reports loaded and the years they summarise or plan."""
    return con.execute("""
        select region, count(*) as reports,
               least(min(summary_year), min(plan_year)) as first_year,
               greatest(max(summary_year), max(plan_year)) as last_year,
               max(publish_date) as latest_publish_date
        from latest_reports group by region order by region""").df()


def read_last_run(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    row = con.execute("""
        select run_id, status, started_at, finished_at from runs
        order by started_at desc limit 1""").fetchone()
    return dict(zip(("run_id", "status", "started_at", "finished_at"), row)) if row else None


# --- frames ------------------------------------------------------------------------------
def value_status(values: pd.DataFrame) -> pd.Series:
    """Why each stated figure is (not) the point of its cell: the one the warehouse picked,
    the old side of an old→new pair, a unit the indicator's cannot be brought to, no year,
    else another figure stated for the cell."""
    status = pd.Series(OTHER, index=values.index, dtype=object)
    status[values["picked"].fillna(False).astype(bool)] = PLOTTED
    status[values["value_std"].isna()] = NOT_COMPARABLE
    status[values["role"].eq("previous")] = PREVIOUS
    status[values["year"].isna()] = NO_YEAR
    return status


def year_runs(years: Iterable[int]) -> list[list[int]]:
    """Split sorted distinct years into runs of consecutive years: a line may join a run,
    never a gap (that would invent the missing years)."""
    runs: list[list[int]] = []
    for year in sorted(set(int(y) for y in years)):
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return runs


def comparable_runs(points: Iterable[tuple[int, str | None]]) -> list[list[int]]:
    """Runs of consecutive years of one kind, from a series' (year, kind) points: a level
    beside the next year's amount is no change over time, so no line joins them."""
    runs: list[list[int]] = []
    last_kind: str | None = None
    for year, kind in sorted((int(y), k) for y, k in points):
        if runs and year == runs[-1][-1] + 1 and kind == last_kind:
            runs[-1].append(year)
        else:
            runs.append([year])
        last_kind = kind
    return runs


def format_value(value: float | None) -> str:
    """Exact, readable: thousands separators, no trailing .0, no float noise."""
    if value is None or pd.isna(value):
        return ""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{round(float(value), 6):,}".rstrip("0").rstrip(".")


def format_stated(value: float | None, high: float | None = None,
                  qualifier: str | None = None) -> str:
    text = format_value(value)
    if high is not None and pd.notna(high):
        text = f"{text}–{format_value(high)}"
    sign = QUALIFIER_SIGNS.get(qualifier or "") if isinstance(qualifier, str) else None
    return f"{sign} {text}" if sign and text else text


def _tidy_kinds(frame: pd.DataFrame) -> pd.DataFrame:
    """`kind` as str or None (never NaN), so that equal unknown kinds compare equal."""
    frame = frame.copy()
    frame["kind"] = pd.Series([k if isinstance(k, str) and k else None for k in frame["kind"]],
                              index=frame.index, dtype=object)
    return frame


# --- figures -----------------------------------------------------------------------------
def region_colors(regions: Sequence[str]) -> dict[str, str]:
    """One colour per region, the same in every chart."""
    palette = matplotlib.color_sequences["tab10"]  # the tab10 colormap's colours, typed as a list
    return {region: matplotlib.colors.to_hex(palette[i % len(palette)])
            for i, region in enumerate(sorted(regions))}


def rc_params(font: str | None, salt: str) -> dict[RcKeyType, Any]:
    return {
        "svg.fonttype": "none",  # text stays text: the browser draws it with its own fonts
        "svg.hashsalt": salt,  # distinct, stable ids when several SVGs share one page
        "font.family": "sans-serif",
        "font.sans-serif": ([font] if font else []) + ["DejaVu Sans"],
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def kind_marker(kind: Any) -> str:
    return KIND_MARKERS.get(kind, OTHER_KIND_MARKER) if isinstance(kind, str) and kind else "o"


def chart_figure(chart: ChartSpec, cells: pd.DataFrame, labels: Labels,
                 colors: dict[str, str]) -> tuple[Figure, dict[str, str]]:
    """The chart of one spec from its cells: one panel per indicator with every region on it,
    in the indicator's unit. Returns the figure and the tooltip of each point (SVG id → text)."""
    frame = cells[cells["indicator"].isin(chart.indicators)]
    codes = [code for code in chart.indicators if code in set(frame["indicator"])]
    if not codes:
        return _no_data_figure(labels.title(chart), labels.cjk), {}
    ncols = min(len(codes), PANEL_COLUMNS)
    nrows = math.ceil(len(codes) / ncols)
    fig = Figure(figsize=(11, 1.3 + 3.5 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).flatten()
    fig.suptitle(labels.title(chart), fontsize=14, fontweight="bold")
    years = frame["year"].astype(int)
    first, last = int(years.min()), int(years.max())
    tooltips: dict[str, str] = {}
    for ax, code in zip(axes, codes):
        tooltips |= _draw_panel(ax, code, frame[frame["indicator"].eq(code)], labels, colors)
        # one year axis for the whole chart, so that the panels line up
        if last - first <= 12:
            ax.set_xticks(range(first, last + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(first - 0.6, last + 0.6)
    for ax in axes[len(codes):]:
        ax.set_visible(False)
    handles = _legend_handles(frame, labels, colors)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
               frameon=False, fontsize=9)
    return fig, tooltips


def _draw_panel(ax: Axes, code: str, rows: pd.DataFrame, labels: Labels,
                colors: dict[str, str]) -> dict[str, str]:
    """All regions' values of one indicator on one axis; returns the points' tooltips."""
    ax.set_gid(f"panel-{code}")
    name = labels.config.indicator_names.get(code, code)  # tooltips are read in the browser
    unit = str(rows["unit"].iloc[0])
    tooltips: dict[str, str] = {}
    labelled = len(rows) <= MAX_LABELLED_POINTS
    regions = sorted(rows["region"].unique())
    for i, region in enumerate(regions):
        series = rows[rows["region"].eq(region)]
        color = colors.get(region, "black")
        # regions side by side within a year, so that equal values do not hide each other
        dodge = (i - (len(regions) - 1) / 2) * min(DODGE, 0.5 / len(regions))
        by_year = series.set_index(series["year"].astype(int)).sort_index()
        for run in comparable_runs(zip(by_year.index, by_year["kind"])):
            if len(run) > 1:  # a lone year or a year after a gap stays a point
                ax.plot([y + dodge for y in run], [by_year.at[y, "value"] for y in run],
                        color=color, linewidth=1.8, zorder=2,
                        gid=f"line-{series_id(region, code)}-{run[0]}-{run[-1]}")
        for year, cell in by_year.iterrows():
            tooltips |= _draw_point(ax, region, code, name, int(str(year)), dodge, cell, color,
                                    labelled)
    values = pd.concat([rows["value"], rows["value_high"].dropna()])
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    # from zero (no exaggerated slopes); below it only for a negative rate or change
    ax.set_ylim(low * 1.18, high * 1.18 if high > 0 else 1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(v)))
    ax.set_ylabel(labels.unit(unit))
    ax.set_xlabel("年份 year" if labels.cjk else "year")
    ax.grid(axis="y", alpha=0.3)
    kinds = sorted({k for k in rows["kind"] if k}, key=lambda k: list(KIND_NAMES).index(k)
                   if k in KIND_NAMES else len(KIND_NAMES))
    kinds_text = " / ".join(labels.kind(k) for k in kinds)
    ax.set_title(f"{labels.indicator(code)} · {kinds_text}" if kinds_text
                 else labels.indicator(code), fontsize=11)
    return tooltips


def _draw_point(ax: Axes, region: str, code: str, name: str, year: int, dodge: float,
                cell: pd.Series, color: str, labelled: bool) -> dict[str, str]:
    """One cell's value: marker by kind, hollow when converted, ringed (and a link to its
    figures) when the figures stated for it disagree."""
    ident = cell_id(region, code, year)
    converted, disagree = bool(cell["converted"]), bool(cell["disagree"])
    urls = [f"#{ident}"] if disagree else None
    value, x = float(cell["value"]), year + dodge
    if pd.notna(cell["value_high"]):
        ax.vlines(x, value, float(cell["value_high"]), color=color, linewidth=3, alpha=0.5,
                  zorder=2)
    if disagree:
        ax.scatter([x], [value], marker="o", s=230, facecolors="none", edgecolors=RING_COLOR,
                   linewidths=1.0, zorder=2.5, clip_on=False, gid=f"ring-{ident}", urls=urls)
    ax.scatter([x], [value], marker=kind_marker(cell["kind"]), s=52, linewidths=1.6,
               facecolors="white" if converted else color, edgecolors=color, zorder=3,
               clip_on=False, gid=f"point-{ident}", urls=urls)
    if labelled:
        text = format_stated(value, None, cell["qualifier"])
        text += f" {CONVERTED_MARK}" if converted else ""
        text += f" {DISAGREE_MARK}" if disagree else ""
        ax.annotate(text, (x, value), textcoords="offset points", xytext=(8, 0),
                    ha="left", va="center", fontsize=8, color=color)
    tip = point_tooltip(region, f"{name} ({code})", year, cell)
    return {f"point-{ident}": tip, f"ring-{ident}": tip} if disagree else {f"point-{ident}": tip}


def point_tooltip(region: str, indicator: str, year: int, cell: pd.Series) -> str:
    """What hovering a point says: the value, its kind, conversion, disagreement, sentence."""
    value = format_stated(cell["value"], cell["value_high"], cell["qualifier"])
    parts = [f"{region} {year} · {indicator}: {value} {cell['unit']}", kind_label(cell["kind"])]
    if cell["converted"]:
        parts.append("annual figure ÷ 12 (converted)")
    if cell["disagree"]:
        parts.append(f"{int(cell['n_values'])} figures stated, they disagree (click: list)")
    text = " · ".join(parts)
    return f"{text}\n{cell['sentence']}" if isinstance(cell["sentence"], str) else text


def _legend_handles(frame: pd.DataFrame, labels: Labels, colors: dict[str, str]) -> list[Line2D]:
    handles = [Line2D([], [], color=colors.get(r, "black"), marker="o", linestyle="-",
                      label=labels.region(r))
               for r in sorted(frame["region"].unique())]
    kinds = [k for k in [*KIND_NAMES, None] if k in set(frame["kind"])]
    handles += [Line2D([], [], color="dimgray", marker=kind_marker(k), linestyle="none",
                       label=labels.kind(k)) for k in kinds]
    if frame["converted"].any():
        handles.append(Line2D([], [], color="dimgray", marker="o", markerfacecolor="white",
                              linestyle="none",
                              label=f"{CONVERTED_MARK} 年标准折月 annual ÷ 12" if labels.cjk
                              else f"{CONVERTED_MARK} annual standard / 12"))
    if frame["disagree"].any():
        handles.append(Line2D([], [], color=RING_COLOR, marker="o", markersize=13,
                              markerfacecolor="none", markeredgewidth=1.0, linestyle="none",
                              label=f"{DISAGREE_MARK} 数值不一 figures disagree (see list)"
                              if labels.cjk else f"{DISAGREE_MARK} figures disagree (see list)"))
    return handles


def _no_data_figure(title: str, cjk: bool) -> Figure:
    fig = Figure(figsize=(11, 2.0), layout="constrained")
    fig.suptitle(title, fontsize=14, fontweight="bold")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.45, ("无数据 · " if cjk else "")
            + "no data: no value with a known year in the indicator's unit",
            ha="center", va="center", fontsize=13, color="dimgray", transform=ax.transAxes)
    return fig


def render(fig: Figure, fmt: str, *, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


_GROUP = re.compile(r'<g id="([^"]+)">')
_IN_PAGE_LINK = re.compile(r'(<a xlink:href="#[^"]*") target="_blank"')


def inline_svg(svg: bytes, label: str, tooltips: dict[str, str] | None = None) -> Markup:
    """The SVG document as an element for the page: no XML prolog, scalable, labelled, and
    a <title> (the browser's tooltip) in each point's group."""
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    head_end = text.index(">")
    # width/height in pt would fix the size; the viewBox alone lets CSS scale it
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    text = f'{head} role="img" aria-label="{escape(label)}"{text[head_end:]}'
    # a link to a cell's figures stays on this page (matplotlib opens every link in a new tab)
    text = _IN_PAGE_LINK.sub(r"\1", text)
    tips = tooltips or {}

    def with_title(match: re.Match[str]) -> str:
        tip = tips.get(html_unescape(match.group(1)))
        return f"{match.group(0)}<title>{escape(tip)}</title>" if tip else match.group(0)

    return Markup(_GROUP.sub(with_title, text) if tips else text)


# --- HTML --------------------------------------------------------------------------------
class TableRow(TypedDict):
    """One stated figure, as report.html.j2 reads it (tables under charts, ambiguous cells)."""

    region: str
    indicator: str
    year: str
    value: str  # as stated, in unit
    unit: str
    value_std: str  # in the indicator's unit (unit_std); ÷12 when converted
    unit_std: str
    kind: str
    status: str
    status_label: str
    sentence: tuple[str, str, str]  # split_sentence: before, quantity (marked), after
    title: str
    heading: str
    index_no: str
    cell: str  # anchor of the row's cell in the list of ambiguous cells, "" when unambiguous


class AmbiguousCell(TypedDict):
    """A cell whose stated figures disagree: what the chart shows and every figure stated."""

    id: str
    region: str
    indicator_code: str
    indicator: str
    year: int
    value: str  # the one on the chart, with its unit
    kind: str
    n_values: int
    rows: list[TableRow]


def table_rows(frame: pd.DataFrame, config: ReportConfig,
               ambiguous: frozenset[str] | set[str] = frozenset()) -> list[TableRow]:
    """Stated figures, every one, with the sentence and report they are from."""
    ordered = frame.assign(
        _year=frame["year"].fillna(9999), _status=frame["status"].map(_STATUS_ORDER),
    ).sort_values(["region", "indicator", "_year", "_status", "index_no", "ordinal"])
    rows: list[TableRow] = []
    for _, row in ordered.iterrows():
        year = None if pd.isna(row["year"]) else int(row["year"])
        anchor = cell_id(row["region"], row["indicator"], year) if year is not None else ""
        std = ""
        if pd.notna(row["value_std"]):
            scale = row["value_std"] / row["value_norm"] if row["value_norm"] else 1.0
            high = row["value_high_norm"] * scale if pd.notna(row["value_high_norm"]) else None
            std = format_stated(row["value_std"], high, row["qualifier"])
            std += f" ({CONVERTED_MARK})" if row["converted"] else ""
        rows.append({
            "region": row["region"],
            "indicator": f"{config.indicator_names.get(row['indicator'], '')} ({row['indicator']})",
            "year": "" if year is None else str(year),
            "value": format_stated(row["value_norm"], row["value_high_norm"], row["qualifier"]),
            "unit": _text(row["unit_norm"]),
            "value_std": std or "—",
            "unit_std": _text(row["unit_std"]) if std else "",
            "kind": kind_label(row["kind"]),
            "status": row["status"],
            "status_label": STATUS_LABELS[row["status"]],
            "sentence": split_sentence(_text(row["sentence"]), row.get("value_text")),
            "title": _text(row["title"]),
            "heading": _text(row["heading"]),
            "index_no": _text(row["index_no"]),
            "cell": anchor if anchor in ambiguous else "",
        })
    return rows


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def ambiguous_cells(cells: pd.DataFrame, values: pd.DataFrame, config: ReportConfig
                    ) -> list[AmbiguousCell]:
    """The charted cells whose stated figures disagree, in chart order, each with all the
    figures stated for its region, indicator and year."""
    order = {code: i for i, code in enumerate(
        dict.fromkeys(code for chart in config.charts for code in chart.indicators))}
    disagreeing = cells[cells["disagree"].fillna(False).astype(bool)]
    disagreeing = disagreeing.assign(_order=disagreeing["indicator"].map(order)).sort_values(
        ["_order", "region", "year"])
    result: list[AmbiguousCell] = []
    for _, cell in disagreeing.iterrows():
        year = int(cell["year"])
        stated = values[values["region"].eq(cell["region"])
                        & values["indicator"].eq(cell["indicator"])
                        & values["year"].eq(year)]
        code = str(cell["indicator"])
        result.append({
            "id": cell_id(cell["region"], code, year),
            "region": cell["region"],
            "indicator_code": code,
            "indicator": config.indicator_names.get(code, code),
            "year": year,
            "value": f"{format_stated(cell['value'], cell['value_high'], cell['qualifier'])} "
                     f"{cell['unit']}" + (f" ({CONVERTED_MARK})" if cell["converted"] else ""),
            "kind": kind_label(cell["kind"]),
            "n_values": int(cell["n_values"]),
            "rows": table_rows(stated, config),  # no link to the cell from inside it
        })
    return result


def split_sentence(sentence: str, written: str | None) -> tuple[str, str, str]:
    """(before, quantity, after): the quantity as written, found in its sentence, to mark."""
    if isinstance(written, str) and written:
        # the whole number: 4户 is not the end of 574户
        match = re.search(r"(?<![\d.,])" + re.escape(written), sentence)
        start = match.start() if match else sentence.find(written)
        if start >= 0:
            return sentence[:start], written, sentence[start + len(written):]
    return sentence, "", ""


def chart_notes(chart: ChartSpec, cells: pd.DataFrame, values: pd.DataFrame,
                regions: Sequence[str], config: ReportConfig) -> list[str]:
    """What the picture alone would not say: units and their readings, kinds that are not
    joined, regions without data, figures listed but not plotted."""
    notes = [chart.note] if chart.note else []
    by_unit: dict[str, list[str]] = {}
    for code in chart.indicators:
        units = cells.loc[cells["indicator"].eq(code), "unit"].dropna().unique()
        if len(units):
            by_unit.setdefault(str(units[0]), []).append(config.indicator_names.get(code, code))
    if by_unit:
        notes.append("One panel per indicator, every region on it in the indicator's unit: "
                     + "; ".join(f"{'、'.join(names)} in {unit}" for unit, names in by_unit.items())
                     + ".")
    comparable = values[values["value_std"].notna()]
    read = comparable[~comparable["converted"].astype(bool)
                      & comparable["unit_norm"].ne(comparable["unit_std"])]
    for (stated, unit), group in read.groupby(["unit_norm", "unit_std"]):
        notes.append(f"{len(group)} figure(s) stated in {stated} read in {unit} "
                     "(a standard per person stated per month).")
    converted = int(cells["converted"].astype(bool).sum())
    if converted:
        notes.append(f"{converted} value(s) converted from an annual standard ({CONVERTED_MARK}): "
                     "drawn hollow and labelled " + CONVERTED_MARK + ".")
    for code in chart.indicators:
        kinds = {k for k in cells.loc[cells["indicator"].eq(code), "kind"] if k}
        if len(kinds) > 1:
            notes.append(f"{config.indicator_names.get(code, code)} mixes kinds of figure ("
                         + ", ".join(sorted(kinds)) + "): points of different kinds are not joined.")
    charted = set(cells["region"])
    missing = [r for r in regions if r not in charted]
    if missing:
        notes.append("无数据 no data: " + "、".join(missing) + ".")
    not_comparable = int(values["status"].eq(NOT_COMPARABLE).sum())
    if not_comparable:
        notes.append(f"{not_comparable} figure(s) in a unit that cannot be brought to the "
                     "indicator's are listed but not plotted.")
    no_year = int(values["status"].eq(NO_YEAR).sum())
    if no_year:
        notes.append(f"{no_year} value(s) without a known year are listed but not plotted.")
    return notes


def render_html(context: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)


# --- the report --------------------------------------------------------------------------
def build_report(warehouse: Path, out: Path, *, config: ReportConfig | None = None,
                 font: str | None | bool = True) -> Path:
    """Write out/index.html and out/<slug>.png for every chart; return the HTML path.

    `font`: True finds a CJK font; None forces the Latin fallback; a string names a family.
    """
    config = config or load_config()
    logging.getLogger("matplotlib.font_manager").addFilter(_FONT_WEIGHT_NOISE)
    font_name = find_cjk_font() if font is True else (font or None)
    if font_name is None:
        log.warning("no CJK font found for matplotlib: chart labels fall back to Latin "
                    "(install fonts-wqy-zenhei or fonts-noto-cjk: scripts/install-browser.sh)")
    labels = Labels(config, cjk=font_name is not None)
    con, source = open_for_reading(warehouse)
    with con:
        cells = _tidy_kinds(read_cells(con, config.indicators))
        values = _tidy_kinds(read_values(con, config.indicators))
        values["status"] = value_status(values)
        all_ambiguous, all_cells = read_ambiguity(con)
        coverage = read_coverage(con)
        last_run = read_last_run(con)
    log.info("read %d cells and %d stated figures of %d indicators from %s",
             len(cells), len(values), len(config.indicators), source)
    regions = sorted(coverage["region"].dropna())
    colors = region_colors(regions)
    ambiguous = ambiguous_cells(cells, values, config)
    ambiguous_ids = {a["id"] for a in ambiguous}
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for chart in config.charts:
        chart_cells = cells[cells["indicator"].isin(chart.indicators)]
        chart_values = values[values["indicator"].isin(chart.indicators)]
        with matplotlib.rc_context(rc_params(font_name, chart.slug)):
            fig, tooltips = chart_figure(chart, chart_cells, labels, colors)
            (out / f"{chart.slug}.png").write_bytes(render(fig, "png"))
            svg = render(fig, "svg")
        sections.append({
            "chart": chart, "png": f"{chart.slug}.png",
            "svg": inline_svg(svg, f"{chart.title_zh} {chart.title_en}", tooltips),
            "has_data": not chart_cells.empty,
            "cells": len(chart_cells),
            "notes": chart_notes(chart, chart_cells, chart_values, regions, config),
            "ambiguous": [a for a in ambiguous if a["indicator_code"] in chart.indicators],
            "rows": table_rows(chart_values, config, ambiguous_ids),
        })
    html = render_html({
        "sections": sections,
        "ambiguous": ambiguous, "charted_cells": len(cells),
        "all_ambiguous": all_ambiguous, "all_cells": all_cells,
        "coverage": [{k: _cell(v) for k, v in r.items()} for r in coverage.to_dict("records")],
        "source": source, "is_snapshot": source != warehouse,
        "last_run": {k: _cell(v) for k, v in last_run.items()} if last_run else None,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "font": font_name,
    })
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def _cell(value: Any) -> Any:
    """A value for the page: blank for missing, dates without midnight, times to the minute."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (pd.Timestamp, datetime)):
        return f"{value:%Y-%m-%d}" if (value.hour, value.minute, value.second) == (0, 0, 0) \
            else f"{value:%Y-%m-%d %H:%M}"
    return value


class _FontWeightNoise(logging.Filter):
    # CJK fonts often ship one weight; matplotlib warns at every lookup of another one
    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to find font weight" not in record.getMessage()


_FONT_WEIGHT_NOISE = _FontWeightNoise()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, default=settings.WAREHOUSE_PATH)
    parser.add_argument("--out", type=Path, default=Path("build/report"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        index = build_report(args.warehouse, args.out)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
