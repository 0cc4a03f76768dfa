"""Charts of key indicators by region and year, straight from the warehouse.

    python -m analysis.report [--warehouse data/warehouse.duckdb] [--out build/report]

Writes `index.html` (self-contained: charts inline as SVG with their text kept as text,
so the browser draws the Chinese) and one PNG per chart. Reads the analysts' snapshot
when there is one, else the warehouse file itself, read-only (never blocks a nightly run).

Pipeline, one small pure step each: queries → pandas frames (`classify` marks which
stated value is plotted) → matplotlib figures → HTML. The charts are in charts.yaml.
Honesty rules: a value is a point; lines join only values of consecutive years; a chart
or region without values says "no data" instead of drawing zero; units are never mixed
on one axis (one panel per unit); the table under each chart lists every stated value
with its sentence, report title and 索引号.
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import sys
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
from matplotlib.ticker import FuncFormatter

from analysis.fonts import find_cjk_font
from tasks import settings
from warehouse.connect import open_for_reading

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

log = logging.getLogger(__name__)

CONFIG_PATH = Path(__file__).with_name("charts.yaml")
TEMPLATE_DIR = Path(__file__).with_name("templates")
INDICATORS_CSV = settings.PROJECT_ROOT / "config" / "indicators.csv"

# Status of each stated value, i.e. why it is (not) a point on the chart.
PLOTTED, ALSO_STATED, PREVIOUS, NO_YEAR = "plotted", "also_stated", "previous", "no_year"
STATUS_LABELS = {
    PLOTTED: "● 绘出 plotted",
    ALSO_STATED: "○ 同年另一数值 also stated",
    PREVIOUS: "调整前 previous (old→new)",
    NO_YEAR: "年份不明 year unknown",
}
_STATUS_ORDER = {PLOTTED: 0, ALSO_STATED: 1, PREVIOUS: 2, NO_YEAR: 3}
QUALIFIER_SIGNS = {"over": ">", "approx": "≈", "ge": "≥", "le": "≤"}
MARKERS = ("o", "^", "s", "D", "v", "P")
MAX_LABELLED_POINTS = 14  # more value labels than this overlap; the table has them all


# --- configuration -----------------------------------------------------------------------
@dataclass(frozen=True)
class ChartSpec:
    slug: str
    title_zh: str
    title_en: str
    indicators: tuple[str, ...]
    split_by_indicator: bool = False
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
                  indicators=tuple(c["indicators"]),
                  split_by_indicator=bool(c.get("split_by_indicator", False)),
                  note=c.get("note", ""))
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

    def title(self, chart: ChartSpec) -> str:
        return f"{chart.title_zh} · {chart.title_en}" if self.cjk else chart.title_en


def _latin_only(text: str) -> str:
    # last resort for a region missing from latin_regions: never draw boxes
    return re.sub(r"[^\x00-\x7f]+", "?", text)


# --- queries -----------------------------------------------------------------------------
def read_values(con: duckdb.DuckDBPyConnection, indicators: Sequence[str]) -> pd.DataFrame:
    """Every stated value of these indicators, with its provenance (indicator_series)."""
    return con.execute("""
        select s.region, s.indicator, s.year, s.value_norm, s.value_high_norm, s.unit_norm,
               s.qualifier, s.role, s.index_no, s.title, s.section_id, s.heading, s.sentence,
               s.ordinal, s.publish_date, m.text as value_text  -- the quantity as written
        from indicator_series as s
        left join metrics as m using (index_no, ordinal)
        where list_contains(?, s.indicator)
        order by s.region, s.indicator, s.year, s.index_no, s.ordinal""", [list(indicators)]).df()


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
def classify(values: pd.DataFrame) -> pd.DataFrame:
    """Add `status`: which stated value is the point for its region, indicator, year and unit.

    The pick follows the warehouse's indicator_by_region_year (the new value of an old→new
    pair, then the latest report, then the first mention) but per unit too, so a value in
    another unit gets its own panel instead of being dropped or mixed in.
    """
    frame = values.copy()
    frame["status"] = ALSO_STATED
    frame.loc[frame["role"].eq("previous"), "status"] = PREVIOUS
    frame.loc[frame["year"].isna(), "status"] = NO_YEAR
    candidates = frame[frame["status"].eq(ALSO_STATED)].sort_values(
        ["publish_date", "index_no", "ordinal"], ascending=[False, False, True],
        na_position="last")
    first = candidates.groupby(["region", "indicator", "year", "unit_norm"], sort=False).head(1)
    frame.loc[first.index, "status"] = PLOTTED
    return frame


@dataclass(frozen=True)
class Panel:
    unit: str
    indicator: str | None  # set when the chart splits by indicator
    rows: pd.DataFrame  # plotted and also-stated values with a year


def panels(frame: pd.DataFrame, chart: ChartSpec) -> list[Panel]:
    """One panel per unit (or per indicator and unit): never two units on one axis."""
    drawable = frame[frame["status"].isin([PLOTTED, ALSO_STATED])]
    keys = ["indicator", "unit_norm"] if chart.split_by_indicator else ["unit_norm"]
    order: dict[str | None, int] = {code: i for i, code in enumerate(chart.indicators)}  # unsplit: None → 0
    result = []
    for key, rows in drawable.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        indicator, unit = (key[0], key[1]) if chart.split_by_indicator else (None, key[0])
        result.append(Panel(unit, indicator, rows))
    # panel order: the chart's indicator order, then the unit with most values first
    return sorted(result, key=lambda p: (order.get(p.indicator, 0), -len(p.rows), p.unit))


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


def format_value(value: float | None) -> str:
    """Exact, readable: thousands separators, no trailing .0, no float noise."""
    if value is None or pd.isna(value):
        return ""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{round(float(value), 6):,}".rstrip("0").rstrip(".")


def format_stated(row: pd.Series) -> str:
    text = format_value(row["value_norm"])
    if pd.notna(row.get("value_high_norm")):
        text = f"{text}–{format_value(row['value_high_norm'])}"
    sign = QUALIFIER_SIGNS.get(row.get("qualifier") or "")
    return f"{sign} {text}" if sign else text


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


def chart_figure(chart: ChartSpec, frame: pd.DataFrame, labels: Labels,
                 colors: dict[str, str]) -> Figure:
    """The chart of one spec from its classified values (all regions, all years)."""
    chart_panels = panels(frame, chart)
    if not any(p.rows["status"].eq(PLOTTED).any() for p in chart_panels):
        return _no_data_figure(labels.title(chart), labels.cjk)
    ncols = min(len(chart_panels), 3)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    fig.suptitle(labels.title(chart), fontsize=14, fontweight="bold")
    years = pd.concat([p.rows["year"] for p in chart_panels]).astype(int)
    for ax, panel in zip(axes, chart_panels):
        _draw_panel(ax, panel, chart, labels, colors, titled=len(chart_panels) > 1)
        # one year axis for the whole chart, so panels of different units line up
        ax.set_xticks(range(years.min(), years.max() + 1))
        ax.set_xlim(years.min() - 0.6, years.max() + 0.6)
    for ax in axes[len(chart_panels):]:
        ax.set_visible(False)
    handles = _legend_handles(frame, chart, labels, colors)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 8),
               frameon=False, fontsize=9)
    return fig


def _draw_panel(ax: Axes, panel: Panel, chart: ChartSpec, labels: Labels,
                colors: dict[str, str], *, titled: bool) -> None:
    rows = panel.rows
    plotted = rows[rows["status"].eq(PLOTTED)]
    for (region, indicator), series in plotted.groupby(["region", "indicator"], sort=True):
        color, marker = colors.get(region, "black"), _marker(chart, indicator)
        series = series.sort_values("year")
        by_year = series.set_index(series["year"].astype(int))["value_norm"]
        for run in year_runs(by_year.index):
            if len(run) > 1:
                ax.plot(run, [by_year[y] for y in run], color=color, linewidth=1.8, zorder=2)
        ax.scatter(by_year.index, by_year.values, color=color, marker=marker, s=46, zorder=3)
        ranged = series[series["value_high_norm"].notna()]
        ax.vlines(ranged["year"].astype(int), ranged["value_norm"], ranged["value_high_norm"],
                  color=color, linewidth=3, alpha=0.5, zorder=2)
    also = rows[rows["status"].eq(ALSO_STATED)]
    for (region, indicator), series in also.groupby(["region", "indicator"], sort=True):
        ax.scatter(series["year"].astype(int), series["value_norm"], facecolors="none",
                   edgecolors=colors.get(region, "black"), marker=_marker(chart, indicator),
                   s=30, linewidths=1.1, zorder=3)
    if len(plotted) <= MAX_LABELLED_POINTS:
        for _, row in plotted.iterrows():
            ax.annotate(format_value(row["value_norm"]), (int(row["year"]), row["value_norm"]),
                        # right of the point: hollow points of the same year sit above/below
                        textcoords="offset points", xytext=(6, 0), ha="left", va="center",
                        fontsize=8,
                        color=colors.get(row["region"], "black"))
    top = max(rows["value_norm"].max(), rows["value_high_norm"].max(skipna=True) or 0)
    ax.set_ylim(0, top * 1.18 if top > 0 else 1)  # from zero: no exaggerated slopes
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(v)))
    ax.set_ylabel(labels.unit(panel.unit))
    ax.set_xlabel("year" if not labels.cjk else "年份 year")
    ax.grid(axis="y", alpha=0.3)
    if titled:
        ax.set_title(labels.indicator(panel.indicator) if panel.indicator
                     else labels.unit(panel.unit), fontsize=11)


def _marker(chart: ChartSpec, indicator: str) -> str:
    return MARKERS[chart.indicators.index(indicator) % len(MARKERS)]


def _legend_handles(frame: pd.DataFrame, chart: ChartSpec, labels: Labels,
                    colors: dict[str, str]) -> list[Line2D]:
    plotted = frame[frame["status"].eq(PLOTTED)]
    handles = [Line2D([], [], color=colors[r], marker="o", linestyle="-", label=labels.region(r))
               for r in sorted(plotted["region"].unique())]
    indicators = [c for c in chart.indicators if c in set(plotted["indicator"])]
    if len(indicators) > 1 and not chart.split_by_indicator:
        handles += [Line2D([], [], color="dimgray", marker=_marker(chart, c), linestyle="none",
                           label=labels.indicator(c)) for c in indicators]
    if frame["status"].eq(ALSO_STATED).any():
        handles.append(Line2D([], [], color="dimgray", marker="o", markerfacecolor="none",
                              linestyle="none", label="other value stated (see table)"))
    return handles


def _no_data_figure(title: str, cjk: bool) -> Figure:
    fig = Figure(figsize=(11, 2.0), layout="constrained")
    fig.suptitle(title, fontsize=14, fontweight="bold")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.45, ("无数据 · " if cjk else "") + "no data: no value with a known year",
            ha="center", va="center", fontsize=13, color="dimgray", transform=ax.transAxes)
    return fig


def render(fig: Figure, fmt: str, *, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


def inline_svg(svg: bytes, label: str) -> Markup:
    """The SVG document as an element for the page: no XML prolog, scalable, labelled."""
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    head_end = text.index(">")
    # width/height in pt would fix the size; the viewBox alone lets CSS scale it
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    text = f'{head} role="img" aria-label="{escape(label)}"{text[head_end:]}'
    return Markup(text)


# --- HTML --------------------------------------------------------------------------------
class TableRow(TypedDict):
    """One row of the table under a chart, as report.html.j2 reads it."""

    region: str
    indicator: str
    year: str
    value: str
    unit: str
    status: str
    status_label: str
    sentence: tuple[str, str, str]  # split_sentence: before, quantity (marked), after
    title: str
    heading: str
    index_no: str


def table_rows(frame: pd.DataFrame, config: ReportConfig) -> list[TableRow]:
    """The values under a chart, every stated one, with the sentence and report it is from."""
    ordered = frame.assign(
        _year=frame["year"].fillna(9999), _status=frame["status"].map(_STATUS_ORDER),
    ).sort_values(["region", "indicator", "_year", "unit_norm", "_status", "ordinal"])
    return [{
        "region": row["region"],
        "indicator": f"{config.indicator_names.get(row['indicator'], '')} ({row['indicator']})",
        "year": "" if pd.isna(row["year"]) else str(int(row["year"])),
        "value": format_stated(row),
        "unit": row["unit_norm"] or "",
        "status": row["status"],
        "status_label": STATUS_LABELS[row["status"]],
        "sentence": split_sentence(row["sentence"] or "", row.get("value_text")),
        "title": row["title"] or "",
        "heading": row["heading"] or "",
        "index_no": row["index_no"] or "",
    } for _, row in ordered.iterrows()]


def split_sentence(sentence: str, written: str | None) -> tuple[str, str, str]:
    """(before, quantity, after): the quantity as written, found in its sentence, to mark."""
    if written and written in sentence:
        start = sentence.index(written)
        return sentence[:start], written, sentence[start + len(written):]
    return sentence, "", ""


def chart_notes(chart: ChartSpec, frame: pd.DataFrame, regions: Sequence[str]) -> list[str]:
    """What the picture alone would not say: units split, regions without data, dropped rows."""
    notes = [chart.note] if chart.note else []
    units = sorted(frame.loc[frame["status"].isin([PLOTTED, ALSO_STATED]), "unit_norm"].unique())
    if len(units) > 1:
        notes.append("Units differ between statements (" + ", ".join(units)
                     + "): one panel per unit, no value converted.")
    charted = set(frame.loc[frame["status"].eq(PLOTTED), "region"])
    missing = [r for r in regions if r not in charted]
    if missing:
        notes.append("无数据 no data: " + "、".join(missing) + ".")
    no_year = int(frame["status"].eq(NO_YEAR).sum())
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
        values = classify(read_values(con, config.indicators))
        coverage = read_coverage(con)
        last_run = read_last_run(con)
    log.info("read %d values of %d indicators from %s", len(values), len(config.indicators), source)
    regions = sorted(coverage["region"].dropna())
    colors = region_colors(regions)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for chart in config.charts:
        frame = values[values["indicator"].isin(chart.indicators)]
        with matplotlib.rc_context(rc_params(font_name, chart.slug)):
            fig = chart_figure(chart, frame, labels, colors)
            (out / f"{chart.slug}.png").write_bytes(render(fig, "png"))
            svg = render(fig, "svg")
        sections.append({
            "chart": chart, "png": f"{chart.slug}.png",
            "svg": inline_svg(svg, f"{chart.title_zh} {chart.title_en}"),
            "has_data": bool(frame["status"].eq(PLOTTED).any()),
            "notes": chart_notes(chart, frame, regions),
            "rows": table_rows(frame, config),
        })
    html = render_html({
        "sections": sections,
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
