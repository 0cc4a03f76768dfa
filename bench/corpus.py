"""A synthetic corpus of N report pages in the sample site's templates, served on loopback.

Pages are spread round-robin over the five bundled sites. Each body recombines the
paragraphs of the seed reports (the `seed:` article of each site's content): a preamble,
then 2–4 numbered parts (一、 …) holding subsections ((一) …) with their numbered items
(1. or 1、 as the site's seed writes them), renumbered so every level counts 1, 2, 3.
Years are shifted to the report's year; other figures are perturbed by a seeded RNG
(dates and percentages stay plausible), so the same N always gives the same bytes.
Each page has its own 索引号 in its site's shape, a release date, and a title holding
"XXXX年度工作总结". Listing pages are paginated, newest first.

Rendered pages are kept zlib-compressed (`PackedCorpus`: about 11 MB per 1,000 pages,
42 % of their rendered size) and inflated per request, so the serving process holds
bytes, not 10,000 rendered pages or their bodies as Python strings.
"""

from __future__ import annotations

import dataclasses
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sample_site import Article, Corpus, Resource, SiteSpec, article_path, load_sample_sites
from sample_site.corpus import add_listings, newest_first
from sample_site.model import CHINA_TZ
from sample_site.render import render_article, render_portal, render_robots

DEFAULT_SEED = 20240601
PER_PAGE = 20  # listing lines per page (the real columns show 15–20)
FIRST_YEAR, LAST_YEAR = 2012, 2024  # summary years of the generated reports

_CN_DIGITS = "一二三四五六七八九"
_L1 = re.compile(r"^[一二三四五六七八九十]+、")
_L2 = re.compile(r"^\([一二三四五六七八九十]+\)")
_L3 = re.compile(r"^\d{1,2}[.、](?!\d)")
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?(?![A-Za-z0-9])")
_YEAR_AFTER, _YEAR_BEFORE, _DATE_UNITS = "年-—~～至", "-—~～至", "月日号时"
_PLAN_WORDS = ("思路", "计划", "打算", "谋划", "要点", "规划")
_MID_HEADINGS = ("重大项目和特色亮点工作", "主要做法和成效", "存在的问题和不足", "创新举措和经验")
_TITLES = ("{org}{y}年度工作总结", "{org}{y}年度工作总结及{n}年工作计划",
           "{org}{y}年度工作总结和{n}年度工作思路", "{org}{y}年度工作总结与{n}年工作要点")  # fmt: skip


@dataclass(frozen=True)
class Block:
    """One (一)-level subsection of a seed report: heading, then items (numbered or plain)."""

    heading: str
    items: tuple[tuple[bool, str], ...]
    year: int  # the seed's summary year: years in the text shift relative to it
    plan: bool  # it sits under the seed's plan part (…年工作思路)


@dataclass(frozen=True)
class SeedPool:
    preambles: tuple[tuple[str, int], ...]  # (paragraph, seed summary year)
    blocks: tuple[Block, ...]


@dataclass
class BenchCorpus:
    """What the benchmark serves, and what it needs to know about it."""

    corpus: PackedCorpus
    sites: list[SiteSpec]  # with their article stubs (no bodies), newest first
    n_pages: int  # report pages
    n_listing_pages: dict[str, int]  # per site key
    raw_bytes: int  # rendered report pages, uncompressed

    def sample(self, k: int) -> list[tuple[str, str, Resource]]:
        """k report pages spread evenly over the corpus: (site key, path, resource)."""
        pages = [(site.key, a.path) for site in self.sites for a in site.articles]
        step = max(1, len(pages) // max(1, k))
        return [(key, path, self.corpus[path]) for key, path in pages[::step][:k]]


_Packed = tuple[bytes, str, datetime]  # zlib-compressed body, content type, last modified


class PackedCorpus(Corpus):
    """A `Corpus` whose bodies are held zlib-compressed and inflated on each read."""

    def __init__(self) -> None:
        super().__init__()  # for the lock: pages live in _packed, Corpus._items stays empty
        self._packed: dict[str, _Packed] = {}

    def __getitem__(self, path: str) -> Resource:
        with self._lock:
            packed, content_type, modified = self._packed[path]
        return Resource(zlib.decompress(packed), content_type, modified)

    def __setitem__(self, path: str, resource: Resource) -> None:
        if not path.startswith("/") or resource.status != 200 or resource.headers:
            raise ValueError(f"a packed corpus holds plain 200 pages under '/': {path!r}")
        packed = (zlib.compress(resource.body, 6), resource.content_type, resource.last_modified)
        with self._lock:
            self._packed[path] = packed

    def __delitem__(self, path: str) -> None:
        with self._lock:
            del self._packed[path]

    def __iter__(self) -> Iterator[str]:
        with self._lock:  # a snapshot, as Corpus iterates
            return iter(list(self._packed))

    def __len__(self) -> int:
        with self._lock:
            return len(self._packed)

    def packed_bytes(self) -> int:
        with self._lock:
            return sum(len(packed) for packed, _, _ in self._packed.values())


# --- seeds -----------------------------------------------------------------------------------
def seed_article(site: SiteSpec) -> Article:
    return next(a for a in site.articles if a.seed)


def summary_year(title: str) -> int:
    """The first year a title names: 2022 in …2022年度工作总结及2023年工作计划."""
    found = re.search(r"(20\d\d)年", title)
    if found is None:
        raise ValueError(f"no summary year (20XX年) in the title {title!r}")
    return int(found.group(1))


def parse_seed(paragraphs: tuple[str, ...], year: int) -> SeedPool:
    """Split a seed body into preambles and (一)-level blocks; top-level headings are dropped."""
    preambles, blocks = [], []
    heading: str | None = None
    items: list[tuple[bool, str]] = []
    plan, seen_part = False, False

    def flush() -> None:
        if heading is not None:
            blocks.append(Block(heading, tuple(items), year, plan))

    for text in (p.strip() for p in paragraphs):
        if _L1.match(text):
            flush()
            heading, items, seen_part = None, [], True
            plan = any(w in text[:30] for w in _PLAN_WORDS) or f"{year + 1}年" in text[:12]
            if len(text) > 60:  # a part written as one paragraph: becomes a fused subsection
                blocks.append(Block(_L1.sub("", text), (), year, plan))
        elif _L2.match(text):
            flush()
            heading, items = _L2.sub("", text), []
        elif heading is not None:
            marker = _L3.match(text)
            items.append((marker is not None, text[marker.end():] if marker else text))
        elif len(text) >= 40 and not (seen_part and _L3.match(text)):
            preambles.append((text, year))
    flush()
    return SeedPool(tuple(preambles), tuple(blocks))


def seed_pool(sites: list[SiteSpec], charset: str) -> SeedPool:
    """All seeds' preambles and blocks whose text the charset can encode (GBK sites)."""
    preambles, blocks = [], []
    for site in sites:
        seed = seed_article(site)
        pool = parse_seed(seed.paragraphs, summary_year(seed.title))
        preambles += [p for p in pool.preambles if _encodable(p[0], charset)]
        blocks += [b for b in pool.blocks if _encodable(_block_text(b), charset)]
    return SeedPool(tuple(preambles), tuple(blocks))


def _block_text(block: Block) -> str:
    return block.heading + "".join(text for _, text in block.items)


def _encodable(text: str, charset: str) -> bool:
    try:
        text.replace("\xa0", " ").encode(charset)
    except UnicodeEncodeError:
        return False
    return True


# --- bodies ----------------------------------------------------------------------------------
def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十 (outline labels go no higher)."""
    tens, units = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _CN_DIGITS[tens - 1] + "十")
    return head + (_CN_DIGITS[units - 1] if units else "")


def vary(text: str, shift: int, rng: random.Random) -> str:
    """Shift years by `shift`, keep dates, perturb every other figure by -25 %…+30 %."""

    def replace(match: re.Match[str]) -> str:
        token, start, end = match.group(), match.start(), match.end()
        after, before = text[end:end + 1], text[max(0, start - 1):start]
        if is_year(token, before, after):
            return str(int(token) + shift)
        if after and after in _DATE_UNITS:
            return token
        return perturb(token, rng, percent=bool(after) and after in "%％")

    return _NUMBER.sub(replace, text)


def is_year(token: str, before: str, after: str) -> bool:
    """2022年, 2021-2035 and 至2025 are years; 2000万元 is an amount."""
    if not (token.isdigit() and len(token) == 4 and 1990 <= int(token) <= 2039):
        return False
    return bool(after) and after in _YEAR_AFTER or bool(before) and before in _YEAR_BEFORE


def perturb(token: str, rng: random.Random, percent: bool = False) -> str:
    decimals = len(token.partition(".")[2])
    value = float(token) * rng.uniform(0.75, 1.3)
    if percent and float(token) <= 100:
        value = min(value, 100.0)
    if decimals == 0:
        return str(max(1, round(value)) if float(token) >= 1 else 0)
    return f"{value:.{decimals}f}"


def compose_body(pool: SeedPool, rng: random.Random, year: int, item_mark: str) -> tuple[str, ...]:
    """Preamble, then parts 一、… each with subsections (一)… and items 1. 2. …"""
    text, shift_from = rng.choice(pool.preambles)
    paragraphs = [vary(text, year - shift_from, rng)]
    n_parts = rng.randint(2, 4)
    for part in range(1, n_parts + 1):
        is_plan = part == n_parts
        paragraphs.append(f"{chinese_number(part)}、{part_heading(part, n_parts, year, rng)}")
        candidates = [b for b in pool.blocks if b.plan == is_plan] or list(pool.blocks)
        chosen = rng.sample(candidates, min(len(candidates), rng.randint(2, 4)))
        for number, block in enumerate(chosen, start=1):
            paragraphs += block_paragraphs(block, number, year, item_mark, rng)
    return tuple(paragraphs)


def part_heading(part: int, n_parts: int, year: int, rng: random.Random) -> str:
    if part == 1:
        return rng.choice((f"{year}年工作总结", f"{year}年度工作完成情况", f"{year}年主要工作成效"))
    if part == n_parts:
        return rng.choice((f"{year + 1}年工作思路", f"{year + 1}年工作计划", f"{year + 1}年工作打算"))
    return rng.choice(_MID_HEADINGS)


def block_paragraphs(block: Block, number: int, year: int, item_mark: str, rng: random.Random) -> list[str]:
    shift = year - block.year
    paragraphs = [f"({chinese_number(number)}){vary(block.heading, shift, rng)}"]
    item = 0
    for numbered, text in block.items:
        if numbered:
            item += 1
            paragraphs.append(f"{item}{item_mark}{vary(text, shift, rng)}")
        else:
            paragraphs.append(vary(text, shift, rng))
    return paragraphs


def item_mark(site: SiteSpec) -> str:
    """"1." or "1、", as the site's own seed numbers its items."""
    marks = [m.group()[-1] for p in seed_article(site).paragraphs if (m := _L3.match(p.strip()))]
    return max(set(marks), key=marks.count) if marks else "."


# --- articles --------------------------------------------------------------------------------
def plan_articles(site: SiteSpec, count: int, seed: int) -> list[Article]:
    """`count` article stubs (metadata, no body) for one site, ids ascending with the date."""
    rng = random.Random(f"{seed}:plan:{site.key}")
    template = seed_article(site)
    org = re.split(r"\d", template.title, maxsplit=1)[0]
    years = [rng.randint(FIRST_YEAR, LAST_YEAR) for _ in range(count)]
    released = sorted(datetime(y + 1, 1, 4, 8, tzinfo=CHINA_TZ)
                      + timedelta(days=rng.randint(0, 170), minutes=rng.randint(0, 600)) for y in years)
    if template.index_no is None:
        raise ValueError(f"the seed of {site.key} has no 索引号 to shape the generated ones on")
    prefix, _, tail = template.index_no.partition("/")
    serial = tail.rsplit("-", 1)[1]
    base_id = int(template.path.rsplit("_", 1)[1].removesuffix(".html"))
    stubs = []
    for k, moment in enumerate(released):
        year = moment.year - 1
        title = rng.choice(_TITLES).format(org=org, y=year, n=year + 1)
        stubs.append(_stub(site, template, title, org, moment, base_id + 17 * (k + 1),
                           f"{prefix}/{moment.year}-{_serial(serial, k)}"))  # fmt: skip
    return stubs


def _serial(seed_serial: str, k: int) -> str:
    """Unique per site, in the seed's width (zero-padded where the seed is)."""
    width = len(seed_serial)
    return f"{k + 1:0{width}d}" if seed_serial.startswith("0") else str(10 ** (width - 1) + k)


def _stub(site: SiteSpec, template: Article, title: str, org: str, released: datetime, art_id: int,
          index_no: str) -> Article:  # fmt: skip
    day = released.date()
    return dataclasses.replace(
        template, path=article_path(site, released, art_id), title=title, released=released,
        paragraphs=(), index_no=index_no, seed=None, synthetic=True,
        publish_date=day if template.publish_date else None,
        written_date=day if template.written_date else None,
        title_lines=(org, title[len(org):]) if template.title_lines else (),
    )  # fmt: skip


def report_year(article: Article) -> int:
    return summary_year(article.title)


# --- the corpus ------------------------------------------------------------------------------
def build_bench_corpus(n: int, seed: int = DEFAULT_SEED, per_page: int = PER_PAGE) -> BenchCorpus:
    """Render N report pages (round-robin over the sites), their listings, homes and robots."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seeds = load_sample_sites()
    counts = [n // len(seeds) + (1 if i < n % len(seeds) else 0) for i in range(len(seeds))]
    pairs = [(origin, dataclasses.replace(origin, articles=tuple(newest_first(plan_articles(origin, c, seed))),
                                          column=dataclasses.replace(origin.column, per_page=per_page)))
             for origin, c in zip(seeds, counts) if c]  # fmt: skip
    sites = [site for _, site in pairs]
    corpus, raw, listings = PackedCorpus(), 0, {}
    newest = max(a.released for site in sites for a in site.articles)
    corpus["/index.html"] = Resource(render_portal(sites), "text/html; charset=utf-8", newest)
    corpus["/robots.txt"] = Resource(render_robots(sites), "text/plain; charset=utf-8", newest)
    for origin, site in pairs:
        listings[site.key] = add_listings(corpus, site)
        raw += add_reports(corpus, site, seed_pool(seeds, site.charset), item_mark(origin), seed)
    return BenchCorpus(corpus, sites, sum(counts), listings, raw)


def add_reports(corpus: Corpus, site: SiteSpec, pool: SeedPool, mark: str, seed: int) -> int:
    """Render each report page of a site, one at a time; returns the bytes rendered."""
    total = 0
    for article in site.articles:
        body = compose_body(pool, random.Random(f"{seed}:{article.path}"), report_year(article), mark)
        page = render_article(site, dataclasses.replace(article, paragraphs=body))
        corpus[article.path] = Resource(page, site.content_type, article.released)
        total += len(page)
    return total
