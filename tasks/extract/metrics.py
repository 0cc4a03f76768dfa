"""Find every quantity in a report's text: value, unit, normalised value and unit, qualifier.

Pure functions over strings. The pipeline per sentence:
  scan_quantities   regex over the folded sentence → Quantity candidates (bare numbers too)
  resolve_sentence  ranges, old→new pairs, shared units in lists, bare 万/亿 money, beds
  to_metrics        subject, indicator and year for each quantity that has a unit
Units, qualifiers and every word list live in config/ (units.csv, metric_rules.yaml).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache


from tasks.extract.outline import Outline
from tasks.records import Metric, Section
from tasks.extract.kinds import breakdown_opening, kind_of, scope_of
from tasks.extract.subjects import (assign_indicator, clause_start, clean_phrase, find_subject, indicator_patterns,
                                    joins_categories, phrase_after)  # fmt: skip
from tasks.extract.text import CN_NUMERAL_CHARS, PINYIN_GLOSS, parse_chinese_numeral
from tasks.extract.vocab import metric_rules, units


@dataclass(slots=True)
class Quantity:
    """One number found in a sentence, with offsets into that sentence."""

    start: int
    end: int
    num_start: int
    value: float
    value_high: float | None = None
    unit: str | None = None  # surface unit (万/余 excluded), None for a bare number
    multiplier: float = 1.0
    unit_written: str = ""  # unit as written, multiplier and 余/多 included: 万余人次
    approx: bool = False  # 余/多
    qualifier: str | None = None
    role: str | None = None
    chinese: bool = False  # written in Chinese numerals (两个)


# --- the regular expressions, built once from config ---------------------------------
def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    rules = metric_rules()
    not_followed = rules["unit_not_followed_by"]
    # Units grouped by their first character (元(?:/人/月|…|) rather than 元/人/月|…|元): the
    # engine tries each branch of an alternation in turn, and a number followed by no unit
    # would try all 76. The same unit wins, since only one group can start at a position and
    # each group keeps the longest-first order.
    units_by_first: dict[str, list[str]] = {}
    for surface in sorted(units(), key=len, reverse=True):
        stop = not_followed.get(surface)
        guard = f"(?!{_alternation(stop)})" if stop else ""
        units_by_first.setdefault(surface[0], []).append(re.escape(surface[1:]) + guard)
    unit_groups = "|".join(re.escape(first) + (f"(?:{'|'.join(rests)})" if rests != [""] else "")
                           for first, rests in units_by_first.items())
    approx = _alternation(rules["approx_markers"])
    mult = _alternation(list(rules["multipliers"]))
    ranges = _alternation(rules["range_connectors"])
    adjacent = rules["not_adjacent"].strip("[]")
    ordinals = "".join(f"(?<!{re.escape(p)}\\d)" for p in rules["ordinal_prefixes"])
    quantity = (
        # Not inside a code, a name or a longer number (N95, 3+1, 2.0, 1/3), not an ordinal (第3批),
        # and not followed by letters or + (5A级, 1+8+X): these never measure anything. The
        # checks come after the first digit so that the pattern starts with \d, which lets
        # the regex engine skip to digits instead of trying every position.
        rf"(?P<num>\d(?<![\d./{adjacent}]\d){ordinals}(?:\d*(?:,\d{{3}})+(?:\.\d+)?|\d*(?:\.\d+)?))"
        rf"(?![{adjacent}])"
        rf"(?:[ ]{{0,2}}(?:{ranges})[ ]{{0,2}}(?P<num2>\d+(?:\.\d+)?))?"
        rf"[ ]{{0,2}}(?P<a1>{approx})?(?P<mult>{mult})?(?P<a2>{approx})?[ ]{{0,2}}"
        rf"(?P<unit>{unit_groups})?"
    )
    # The cue is checked after the first numeral (one lookbehind per cue length), so that the
    # pattern starts with a numeral and the regex engine skips to them. Same matches as cue
    # then numerals: no cue starts with a unit character or ends with a numeral.
    cues_by_length: dict[int, list[str]] = {}
    for cue in rules["chinese_count_cues"]:
        cues_by_length.setdefault(len(cue), []).append(cue)
    after_cue = "|".join(f"(?<=(?:{_alternation(cues)})[{CN_NUMERAL_CHARS}])" for cues in cues_by_length.values())
    cn_count = (
        rf"(?P<cn>[{CN_NUMERAL_CHARS}](?:{after_cue})[{CN_NUMERAL_CHARS}]*)"
        rf"(?P<cnunit>个|家|项|名|户|次|场|所|座|批|处|条|件|位)"
    )
    return {
        "quantity": re.compile(quantity),
        "cn_count": re.compile(cn_count),
    }


_DIGIT = re.compile(r"\d")


# --- scanning --------------------------------------------------------------------------
def scan_quantities(sentence: str) -> list[Quantity]:
    """All numeric quantities of a folded sentence, bare numbers included (for lists/pairs)."""
    patterns = _patterns()
    found = _digit_quantities(sentence, patterns["quantity"].finditer(sentence), 0)
    return _add_chinese_counts(found, sentence, patterns["cn_count"].finditer(sentence), 0)


def _digit_quantities(text: str, matches: Iterable[re.Match[str]], offset: int) -> list[Quantity]:
    """The quantities of the `matches` of the quantity pattern in `text`, with offsets into the
    sentence that starts at `offset` of `text`. One loop, no call per number."""
    found: list[Quantity] = []
    multipliers = _multipliers()
    for match in matches:
        number, num2, a1, mult_char, a2, unit = match.groups()  # the pattern's six groups, in order
        if "," in number:
            if not _THOUSANDS.fullmatch(number):
                continue
            value = float(number.replace(",", ""))
        else:
            value = float(number)
        start, end = match.span()
        if unit is None:
            if mult_char is None:
                if num2 is not None:
                    continue  # 2021-2035, 1-12: a span of years or months, not a quantity
                end, written = match.end("num"), ""
            else:
                end = match.end("mult")  # a bare 万/亿, kept for money detection
                written = text[match.end("num"):end].strip()
        else:
            written = text[match.end("num2" if num2 is not None else "num"):end].strip()
        start -= offset
        found.append(Quantity(start, end - offset, start, value, float(num2) if num2 else None, unit,
                              multipliers[mult_char] if mult_char else 1.0, written, bool(a1 or a2)))  # fmt: skip
    return found


def _add_chinese_counts(found: list[Quantity], text: str, matches: Iterable[re.Match[str]],
                        offset: int) -> list[Quantity]:  # fmt: skip
    """`found` with the Chinese counts among the `matches` of the count pattern, in sentence order."""
    chinese = [q for m in matches if (q := _chinese_count(text, m, offset))]
    if chinese:  # appended after the digits: put back in sentence order
        found += chinese
        found.sort(key=lambda q: q.start)
    return found


@lru_cache(maxsize=1)
def _multipliers() -> dict[str, float]:
    return {char: float(factor) for char, factor in metric_rules()["multipliers"].items()}


_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")


def _chinese_count(text: str, match: re.Match[str], offset: int) -> Quantity | None:
    value = parse_chinese_numeral(match.group("cn"))
    start = match.start("cn")
    if value is None or value < 2 or _inside_quotes(text, offset, start):
        return None
    return Quantity(
        start=start - offset, end=match.end() - offset, num_start=start - offset, value=float(value),
        unit=match.group("cnunit"), unit_written=match.group("cnunit"), chinese=True,
    )  # fmt: skip


def _inside_quotes(text: str, sentence_start: int, pos: int) -> bool:
    return text.count("“", sentence_start, pos) > text.count("”", sentence_start, pos)


# --- resolving a sentence --------------------------------------------------------------
def resolve_sentence(sentence: str, quantities: list[Quantity]) -> list[Quantity]:
    """Apply the sentence-level rules; return quantities that now have a unit."""
    if len(quantities) > 1:  # ranges, pairs and lists need two numbers
        # 由/从 opens every change: without one in the sentence, no pair is a change
        opened = _change_openers().search(sentence) is not None
        quantities = _merge_unit_ranges(sentence, quantities, opened)
        if opened:
            _mark_changes(sentence, quantities)
        _mark_successive_raises(sentence, quantities)
        _share_list_units(sentence, quantities)
    _money_from_bare_multiplier(sentence, quantities)
    kept = [q for q in quantities if q.unit is not None]
    for q in kept:  # bare numbers are dropped: no need to qualify them
        _apply_qualifiers(sentence, q)
    return kept


def _between(sentence: str, left: Quantity, right: Quantity) -> str:
    return sentence[left.end:right.start].strip()


def _merge_unit_ranges(sentence: str, quantities: list[Quantity], opened: bool = True) -> list[Quantity]:
    """30%-50% → one range; but 从1050元/月至1134元/月 is a change, kept as two (`opened`:
    whether the sentence holds a change opener at all)."""
    connectors = _connectors()["range"]
    merged: list[Quantity] = []
    for q in quantities:
        prev = merged[-1] if merged else None
        if (
            prev is not None and prev.unit is not None and q.unit is not None and prev.unit == q.unit
            and prev.multiplier == q.multiplier and prev.value_high is None
            and _between(sentence, prev, q) in connectors
            and not (opened and _opened_by_change(sentence, prev))
        ):  # fmt: skip
            merged[-1] = replace(prev, end=q.end, value_high=q.value, approx=prev.approx or q.approx)
            continue
        merged.append(q)
    return merged


def _opened_by_change(sentence: str, q: Quantity) -> bool:
    return _change_openers().search(sentence, max(0, q.start - 6), q.start) is not None


@lru_cache(maxsize=1)
def _change_openers() -> re.Pattern[str]:
    return re.compile(_alternation(metric_rules()["change_openers"]))


@lru_cache(maxsize=1)
def _connectors() -> dict:
    rules = metric_rules()
    return {"range": frozenset(rules["range_connectors"]), "change": tuple(rules["change_connectors"]),
            "money_cues": tuple(rules["money_cues"]), "money_window": int(rules["money_cue_window"])}  # fmt: skip


def _mark_changes(sentence: str, quantities: list[Quantity]) -> None:
    """由X提高至Y / 从X调整为Y: X previous, Y current; a bare X takes Y's unit."""
    connectors = _connectors()["change"]
    for left, right in zip(quantities, quantities[1:]):
        if right.unit is None or not _opened_by_change(sentence, left):
            continue
        gap = _between(sentence, left, right)
        if len(gap) > 8 or not gap.endswith(connectors):
            continue
        if left.unit is None:
            _copy_unit(left, right)
        left.role, right.role = "previous", "current"


def _mark_successive_raises(sentence: str, quantities: list[Quantity]) -> None:
    """提高至950元/人/月，12月将提高至1041元/人/月: one standard raised twice in a sentence.
    Each value a raise reaches (提高至, 调整为 …) with the same unit is superseded by the
    next one: previous, and the last current (an old→new pair in another wording)."""
    connectors = _connectors()["change"][:-2]  # not the bare 至/到 of ranges and dates
    raised = [q for q in quantities if q.unit is not None and q.role is None
              and sentence[max(0, q.start - 4):q.start].rstrip().endswith(connectors)]  # fmt: skip
    for i, earlier in enumerate(raised):
        later = next((q for q in raised[i + 1:] if q.unit == earlier.unit and q.multiplier == earlier.multiplier), None)
        if later is None:
            continue
        what, then = _raised_thing(sentence, earlier), _raised_thing(sentence, later)
        if not then or then == what:  # 12月将提高至… / 再次提高到…: the same standard again
            earlier.role, later.role = "previous", "current"


def _raised_thing(sentence: str, q: Quantity) -> str:
    """What a raise raises: the noun of its clause before the connector, time words out;
    with none there (调整为1709元), the previous clause's, up to its first number."""
    start = clause_start(sentence, q.start)
    thing = _thing(sentence[start:q.start])
    if not thing and start > 1:
        previous = sentence[clause_start(sentence, start - 1):start - 1]
        thing = _thing(_DIGIT.split(previous)[0])
    return thing


def _thing(text: str) -> str:
    head = _RAISE_WORDS.sub("", clean_phrase(text))
    return "".join(c for c in head if "\u4e00" <= c <= "\u9fff")


_RAISE_WORDS = re.compile(r"((19|20)\d{2}年)?(\d{1,2}月(份)?)?(起|以来|开始)?|我[县市区省]|再次|又|将|已|进一步|"
                          r"提高至|提高到|提升至|提升到|调整为|调整到|调整至|调标至|上调至|上调到|增加到|增加至|增至|降至|下调至")


def _share_list_units(sentence: str, quantities: list[Quantity]) -> None:
    """3000、1900、3800万元: bare numbers joined by 、/和/及 take the unit of the last one."""
    for i in range(len(quantities) - 2, -1, -1):
        left, right = quantities[i], quantities[i + 1]
        if left.unit is not None or right.unit is None:
            continue
        if _between(sentence, left, right) not in ("、", "和", "及", ",", "，"):
            continue
        if _is_enumerator(sentence, left):
            continue
        _copy_unit(left, right)


def _is_enumerator(sentence: str, q: Quantity) -> bool:
    """1、新增…: a list marker at the start of a sentence or clause, not a quantity."""
    before = sentence[:q.start].rstrip()
    return (not before or before[-1] in "。；;：:") and sentence[q.end:q.end + 1] in ("、", ".")


def _copy_unit(target: Quantity, source: Quantity) -> None:
    target.unit, target.multiplier = source.unit, source.multiplier
    target.unit_written = source.unit_written


def _money_from_bare_multiplier(sentence: str, quantities: list[Quantity]) -> None:
    """高龄津贴1800万 / 销售金额达2.92亿: a bare 万/亿 is yuan when money is being talked about."""
    rules = _connectors()
    window = rules["money_window"]
    for q in quantities:
        if q.unit is not None or q.multiplier == 1.0:
            continue
        around = sentence[max(0, q.start - window):q.end + window]
        if any(cue in around for cue in rules["money_cues"]):
            q.unit = "元"
            q.unit_written = sentence[q.num_start:q.end].lstrip("0123456789., ")


def _apply_qualifiers(sentence: str, q: Quantity) -> None:
    (pre, pre_of, pre_ends), (post, post_of, post_starts) = _qualifier_patterns()
    # a qualifier word ends right before the number (spaces aside): its last character must
    # be there; the window is sliced only when the character next to the number allows one
    found = None
    left = sentence[q.start - 1] if q.start else ""
    if left in pre_ends or left.isspace():
        before = sentence[max(0, q.start - 8):q.start].rstrip()
        found = pre.search(before) if before and before[-1] in pre_ends else None
    q.qualifier = "over" if q.approx else (pre_of[found.group()] if found else None)
    found = None
    right = sentence[q.end:q.end + 1]
    if right in post_starts or right.isspace():
        after = sentence[q.end:q.end + 6].lstrip()
        found = post.match(after) if after and after[0] in post_starts else None
    if found:
        q.qualifier = post_of[found.group()]


@lru_cache(maxsize=1)
def _qualifier_patterns() -> tuple[tuple[re.Pattern[str], dict[str, str], frozenset[str]], ...]:
    """One pattern per side of the number, word → qualifier, and the characters a word of
    that side can touch the number with. Before the number the longest word ending there
    wins (不超过 is le, not the 超过 inside it)."""
    rules = metric_rules()
    sides = []
    for groups, anchor, edge in ((rules["pre_qualifiers"], "$", -1), (rules["post_qualifiers"], "", 0)):
        qualifier_of = {word: qualifier for qualifier, words in groups.items() for word in words}
        sides.append((re.compile(f"(?:{_alternation(list(qualifier_of))}){anchor}"), qualifier_of,
                      frozenset(word[edge] for word in qualifier_of if word)))
    return tuple(sides)


# --- units ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _unit_rules() -> dict:
    """units.csv and the period/rate words, compiled: one search says whether any word of a
    group is in the clause (most clauses have none), then the groups are tried in order."""
    rules = metric_rules()

    def groups(table: dict[str, list[str]]) -> tuple[re.Pattern[str], list[tuple[str, re.Pattern[str]]]]:
        words = [w for prefixes in table.values() for w in prefixes]
        ordered = [(norm, re.compile(_alternation(prefixes))) for norm, prefixes in table.items() if prefixes]
        return re.compile(_alternation(words) if words else "(?!)"), ordered

    return {
        "units": units(),
        "bed_cues": tuple(rules["bed_cues"]),
        "periods": groups(rules["period_prefixes"]),
        "rates": {unit_norm: groups(table) for unit_norm, table in rules["rate_completions"].items()},
    }


def _first_group(text: str, start: int, end: int,
                 compiled: tuple[re.Pattern[str], list[tuple[str, re.Pattern[str]]]]) -> str | None:  # fmt: skip
    """The first group with a word in text[start:end] (searched in place: the patterns are
    alternations of literal words, which read nothing around the window)."""
    any_word, ordered = compiled
    if any_word.search(text, start, end) is None:
        return None
    return next((norm for norm, pattern in ordered if pattern.search(text, start, end)), None)


def normalise_unit(sentence: str, q: Quantity, clause_from: int) -> tuple[str, str | None]:
    """(unit_norm, counter) for a quantity, given the sentence it stands in and where its
    clause starts (subjects.clause_start)."""
    rules = _unit_rules()
    unit_norm, counter = rules["units"][q.unit]
    if unit_norm == "bed" and q.unit == "张" and not any(c in sentence for c in rules["bed_cues"]):
        return "item", "张"
    if unit_norm == "yuan" and q.unit == "元":
        norm = _first_group(sentence, clause_from, q.start, rules["periods"])
        if norm:
            return norm, None
    rates = rules["rates"].get(unit_norm)
    if rates is not None:  # 每月150元/人, 每人1200元/月: half the rate is before
        norm = _first_group(sentence, clause_from, q.start, rates)
        if norm:
            return norm, None
    if unit_norm == "item" and q.multiplier != 1.0:
        counter = q.unit_written.replace("余", "").replace("多", "") or counter
    return unit_norm, counter


# --- sentences to metrics ---------------------------------------------------------------
def max_metrics_per_page() -> int:
    return int(metric_rules()["max_metrics_per_page"])


def extract_metrics(outline: Outline, index_no: str | None = None,
                    sentences: list[tuple[int, int]] | None = None) -> list[Metric]:  # fmt: skip
    """Every quantity of the body, in document order, placed in the section that holds it.

    `sentences` are iter_sentences(outline.folded_text), when the caller has them already.
    At most max_metrics_per_page (a report has hundreds; more is a broken page, and
    reading all of it would only cost time): the caller warns when the cap is reached.
    """
    sections: dict[str | None, Section] = {s.section_id: s for s in outline.sections}
    starts, owners = outline.starts, outline.owners
    body, folded_body = outline.body_text, outline.folded_text
    metrics: list[Metric] = []
    cap = max_metrics_per_page()
    # Both patterns run once over the whole body (a call per sentence costs more than the scan)
    # and each sentence takes the matches that start in it: the same matches a scan of the
    # sentence alone finds, since no match spans, and no lookaround reads past, a line break,
    # a 。！？ or closing quote, or a clause mark. A sentence cut elsewhere (a long one, see
    # bounded_spans) is scanned alone.
    patterns = _patterns()
    numbers = list(patterns["quantity"].finditer(folded_body))
    number_starts = [match.start() for match in numbers]
    counts = list(patterns["cn_count"].finditer(folded_body))
    count_starts = [match.start() for match in counts]
    for start, end in iter_sentences(folded_body) if sentences is None else sentences:
        first_number = bisect.bisect_left(number_starts, start)
        first_count = bisect.bisect_left(count_starts, start)
        last_number = bisect.bisect_left(number_starts, end, first_number)
        last_count = bisect.bisect_left(count_starts, end, first_count)
        if first_number == last_number and first_count == last_count:
            continue  # half the sentences hold no number at all
        folded = folded_body[start:end]
        if _bounded_by_marks(folded_body, start, end):
            found = _digit_quantities(folded_body, numbers[first_number:last_number], start)
            if first_count < last_count:
                found = _add_chinese_counts(found, folded_body, counts[first_count:last_count], start)
        else:
            found = scan_quantities(folded)
        quantities = resolve_sentence(folded, found)
        if not quantities:
            continue

        span = bisect.bisect_right(starts, start) - 1
        if span + 1 >= len(starts) or starts[span + 1] >= end:  # the sentence lies in one section
            section_of = _constant(sections.get(owners[span]) if span >= 0 else None)
        else:
            def section_of(position: int, _start: int = start) -> Section | None:
                return sections.get(outline.section_at(_start + position))

        sentence = Sentence(body[start:end], folded, section_of)
        metrics.extend(metrics_of_sentence(sentence, index_no, len(metrics), quantities))
        if len(metrics) >= cap:
            return metrics[:cap]
    return metrics


def _constant(section: Section | None) -> Callable[[int], Section | None]:
    return lambda position: section


_SENTENCE_EDGES = frozenset("\n。！？!?”’」』）),，;；、")


def _bounded_by_marks(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] starts and ends at a line or text edge, or next to a sentence
    or clause mark of its own or of the sentence before it (what iter_sentences cuts at)."""
    return ((start == 0 or text[start - 1] in _SENTENCE_EDGES)
            and (end == len(text) or text[end - 1] in _SENTENCE_EDGES or text[end] == "\n"))  # fmt: skip


# A sentence: a run of anything but a line break or a terminator, then its terminators and
# closing quotes; or terminators alone (after a closing quote).
_SENTENCE = re.compile(r"[^\n。！？!?]+(?:[。！？!?]+[”’」』）)]*)?|[。！？!?]+[”’」』）)]*")


def iter_sentences(body_text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of every sentence of every paragraph of `body_text`: each ends
    after its 。！？ and any closing quote, or at the end of its line; blank ones are left out.

    A "sentence" longer than max_sentence_chars (a page without 。, a runaway paragraph)
    is cut at clause marks, so every rule that looks around a number stays local and cheap.
    """
    limit = int(metric_rules()["max_sentence_chars"])
    spans: list[tuple[int, int]] = []
    for match in _SENTENCE.finditer(body_text):
        start, end = match.span()
        if end - start > limit:
            if body_text[start:end].strip():
                spans.extend(bounded_spans(body_text, start, end, limit))
        elif not body_text[start:end].isspace():
            spans.append((start, end))
    return spans


_CLAUSE_MARKS = re.compile(r"[,，;；、]")
_NUMBER_CHARS = frozenset("0123456789.,%万亿千")


def bounded_spans(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """(start, end) split into pieces of at most `limit` characters, at the last clause mark
    of each window, else where no number is cut in two."""
    while end - start > limit:
        window = text[start + limit // 2:start + limit]
        marks = [m.end() for m in _CLAUSE_MARKS.finditer(window)]
        cut = start + limit // 2 + marks[-1] if marks else start + limit
        while cut > start + 1 and text[cut - 1] in _NUMBER_CHARS and text[cut] in _NUMBER_CHARS:
            cut -= 1
        yield start, cut
        start = cut
    yield start, end


@dataclass
class Sentence:
    original: str  # as on the page
    folded: str  # tasks.extract.text.fold(original): same length, what the rules match
    section_of: Callable[[int], Section | None]  # sentence offset → section holding it


def metrics_of_sentence(sentence: Sentence, index_no: str | None = None, ordinal: int = 0,
                        quantities: list[Quantity] | None = None) -> list[Metric]:  # fmt: skip
    """The metrics of one sentence (`quantities`: its resolved quantities, if already found)."""
    folded, original = sentence.folded, sentence.original
    if quantities is None:
        quantities = resolve_sentence(folded, scan_quantities(folded))
    metrics: list[Metric] = []
    previous_subject: str | None = None
    previous_end = 0
    stripped = original.strip()
    years: list[tuple[int, bool, int]] | None = None  # the sentence's 20XX年, read when first needed
    first_nian = folded.find("年")  # a number after it may take a year from the sentence
    section_of = sentence.section_of
    listed = list_subjects(folded, quantities) if "、" in folded else {}
    previous_end_of_list = 0
    for index, q in enumerate(quantities):
        start, end, high = q.start, q.end, q.value_high
        clause_from = clause_start(folded, start)  # shared by the unit and the subject rules
        unit_norm, counter = normalise_unit(folded, q, clause_from)
        subject = listed.get(index) or find_subject(folded, start, end, previous_end, previous_subject, clause_from)
        previous_subject, previous_end = subject or previous_subject, end
        section = section_of(start)
        in_list = bool(metrics) and _LIST_GAP.fullmatch(folded, previous_end_of_list, start) is not None
        kind = kind_of(folded, start, clause_from, unit_norm, metrics[-1].kind if in_list else None, end)
        previous_end_of_list = end
        year = section.year if section else None
        if 0 <= first_nian < start:
            years = _year_mentions(folded) if years is None else years
            year = _year_before(years, start, year)
        # positional, in Metric's field order: a 17-keyword call costs three times as much
        metrics.append(Metric(
            index_no,
            section.section_id if section else None,  # section_id
            ordinal + len(metrics),  # ordinal
            q.value,  # value
            q.unit_written or q.unit or "",  # unit
            _norm(q.value * q.multiplier),  # value_norm
            unit_norm,
            high,  # value_high
            None if high is None else _norm(high * q.multiplier),  # value_high_norm
            q.qualifier,
            q.role,
            counter,
            _as_written(subject, folded, original, start),  # subject, in the page's own characters
            assign_indicator(subject, folded[max(0, start - 40):start], unit_norm, kind),  # indicator
            year,
            original[start:end].strip(),  # text
            stripped,  # sentence
            kind,
            scope_of(folded, start, clause_from, subject),
        ))  # fmt: skip
    if any(metric.kind == "part" for metric in metrics):
        guard_parts(folded, quantities, metrics)
    return metrics


def list_subjects(folded: str, quantities: list[Quantity]) -> dict[int, str]:
    """Subjects a list of quantities takes from the nouns listed before it: A、B、C分别增长
    7%、9%、10% gives A, B, C in turn. Index of the quantity → its subject."""
    subjects: dict[int, str] = {}
    i = 0
    while i < len(quantities):
        j = i
        while j + 1 < len(quantities) and _LIST_GAP.fullmatch(folded, quantities[j].end, quantities[j + 1].start):
            j += 1  # 7%、9% or 博士8万元、硕士5万元: a separator and at most a short name
        if j > i and (shared := _list_follower(folded, quantities, i, j)):
            subjects.update({k: shared for k in range(i, j + 1)})  # 博士8万元、硕士5万元购房补贴
        elif j > i:
            head = folded[:quantities[i].start]
            before = head[max(head.rfind(c) for c in "，,；;。:：！？") + 1:]  # the clause, 、 and all
            found = _RESPECTIVELY.search(before)
            if found is not None:
                nouns = [clean_phrase(n) for n in re.split("[、和及与]", before[: found.start()]) if n.strip()]
                if len(nouns) >= j - i + 1:
                    subjects.update({i + k: nouns[k] for k in range(j - i + 1) if nouns[k]})
                elif j == i + 1 and nouns and "城乡" in nouns[-1]:  # 城乡居民收入分别为A、B: 城镇, then 农村
                    subjects.update({i: nouns[-1].replace("城乡", "城镇", 1), j: nouns[-1].replace("城乡", "农村", 1)})
        i = j + 1
    return subjects


def _list_follower(folded: str, quantities: list[Quantity], i: int, j: int) -> str | None:
    """The noun after the last quantity of a list, when each item before it is named by a
    word or two only (博士8万元、硕士5万元购房补贴): what every item counts."""
    follower = phrase_after(folded, quantities[j].end)
    if follower is None:
        return None
    for k in range(i + 1, j + 1):
        lead = folded[quantities[k - 1].end:quantities[k].start].lstrip("、和及 ")
        if len(lead) > 4:
            return None
    return follower


# The text between two figures of a list: a separator and at most a short name. Matched in
# place (fullmatch(folded, end, start)); the spaces around it are what a strip would remove.
_LIST_GAP = re.compile(r"\s*[、和及]\s*[\u4e00-\u9fff]{0,4}\s*")
_RESPECTIVELY = re.compile(r"分别(增长|下降|增加|减少|提高|降低|达到|调整|上调|为|是|占|完成|实现)?(到|至|为)?$")


def guard_parts(folded: str, quantities: list[Quantity], metrics: list[Metric]) -> None:
    """A part (其中…, or a breakdown in brackets) feeds its own indicator, never its whole's:
    低保对象1200户，其中城市低保对象11户 — the 11 is not the number of 低保 households; nor
    the 34 of 新纳入低保对象620户(A类34户…). The whole is the last figure before the 其中 or
    the bracket of the part."""
    for index, metric in enumerate(metrics):
        if metric.kind != "part" or metric.indicator is None:
            continue
        start = quantities[index].start
        marker = max(breakdown_opening(folded, start), *(folded.rfind(word, 0, start) for word in _PART_MARKERS))
        whole = [k for k in range(index) if quantities[k].end <= marker]
        if not whole:
            continue
        counted = metrics[whole[-1]].indicator
        if counted is None and joins_categories(metrics[whole[-1]].subject):
            continue  # 孤儿及事实无人抚养儿童195人(事实无人抚养儿童166人,孤儿29人): each part is one of the joined
        named = counted == metric.indicator or _indicator_named(
            metric.indicator, folded[:quantities[whole[-1]].start])  # 福利彩票…销售金额2.92亿，其中刮刮乐0.92亿
        if named:
            metric.indicator = None


_PART_MARKERS = ("其中", "涵盖", "包括")


def _indicator_named(code: str | None, text: str) -> bool:
    """Whether the text before the whole already names what the part's indicator counts."""
    pattern = indicator_patterns().get(code or "")
    return pattern is not None and pattern.search("".join(text.split())) is not None


def _as_written(subject: str | None, folded: str, original: str, start: int) -> str | None:
    """The subject as the page writes it: rules match the folded sentence (統→统, a pinyin
    gloss blanked), the analyst reads the page's characters. Folding keeps offsets."""
    if not subject or folded is original:
        return subject
    at = folded.rfind(subject, 0, start)
    if at < 0:
        at = folded.find(subject, start)
    if at < 0:
        return subject
    end = at + len(subject)
    if "(" in original:  # a pinyin gloss cut by the folded phrase's ends goes whole, with its character
        for gloss in PINYIN_GLOSS.finditer(original, max(0, at - 8), end + 8):
            if gloss.start() <= at < gloss.end():
                at = gloss.start() - 1
            if gloss.start() < end < gloss.end():
                end = gloss.end()
    return original[at:end].strip()


def _norm(value: float) -> float:
    # round(x, 6) goes through a decimal string; a whole number (most counts) is its own rounding
    return value if value.is_integer() else round(value, 6)


def _year_mentions(sentence: str) -> list[tuple[int, bool, int]]:
    """(end, digit follows, year) of every 20XX年 of a sentence that may set a year, read once
    per sentence. A quantity refers to the nearest such year before it in its sentence, else
    to its section's; years inside 《》 titles, spans (2021-2035年) and baselines
    (在2019年基础上) do not count. A mention right before a digit (2023年5月) counts only for
    a number that starts right after it, since the rule reads the sentence up to each number."""
    mentions = []
    for match in _YEAR_MENTION.finditer(sentence):
        start, end = match.span()
        if sentence.count("《", 0, start) > sentence.count("》", 0, start):
            continue
        before = sentence[:start].rstrip()
        if before and before[-1] in "-—~至":  # 2021-2035年: the end of a span
            continue
        if sentence[end:end + 1] in "-—~" or sentence[end:end + 4].startswith("基础"):
            continue
        mentions.append((end, _DIGIT.match(sentence, end) is not None, int(match.group(1))))
    return mentions


def _year_before(mentions: list[tuple[int, bool, int]], position: int, default: int | None) -> int | None:
    best = default
    for end, digit_follows, year in mentions:
        if end > position:
            break
        if end == position or not digit_follows:
            best = year
    return best


# A year mention, 19XX年 or 20XX年 not after a digit or "." (20XX年度 too). The lookbehind
# comes after the 19/20, over all three characters, so that the pattern starts with them.
_YEAR_MENTION = re.compile(r"((?:19|20)(?<![\d.]\d\d)\d{2})年")
