"""Turn a page's bytes into text, deciding the encoding in one fixed order.

Order (Scrapy's, with WHATWG label handling): byte-order mark → charset in the HTTP
Content-Type → `<meta charset>` / `<meta http-equiv=Content-Type>` / `<?xml encoding?>`
in the first 4 KB → detection (valid UTF-8 first, then charset-normalizer) → UTF-8.

- GB2312/GBK labels and their aliases decode as GB18030, a superset: pages labelled
  gb2312 routinely contain GBK-only characters (镕, 堃, 喆). Big5 reads as Big5-HKSCS and
  latin-1/ascii as windows-1252, as browsers do.
- An unknown label (or a non-text codec such as "base64") falls through to the next step.
- The header beats the meta, as the standard order says, even when it lies a little.
  A declaration (header or meta) is overruled only when the bytes contradict it:
  decoding with it replaces more than settings.ENCODING_MAX_REPLACED_RATIO of the
  non-ASCII characters, or it names another charset while the body is UTF-8 by that
  same measure (a CMS converted to UTF-8 that kept its old gb2312 meta).
- `encoding_source` names the step used: "bom" | "header" | "meta" | "detected" |
  "default", followed by ":header-rejected" and/or ":meta-rejected" for each
  declaration overruled, e.g. "meta:header-rejected".
- Undecodable bytes become U+FFFD and are counted in `replaced_chars`; decoding never
  raises, whatever the bytes.
"""

from __future__ import annotations

import codecs
import logging
import re

from charset_normalizer import from_bytes

from tasks import settings
from tasks.records import DecodedPage

log = logging.getLogger(__name__)

_META_SCAN_BYTES = 4096  # declarations are looked for in this many leading bytes (as w3lib does)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^"';\s]+)""", re.I)
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([a-z0-9_.:-]+)""", re.I)
# WHATWG labels Python does not know, mapped to the codec browsers use for them.
_LABEL_ALIASES = {
    "x-gbk": "gb18030", "gb_2312-80": "gb18030", "gb_2312": "gb18030", "csgb2312": "gb18030",
    "chinese": "gb18030", "iso-ir-58": "gb18030", "csiso58gb231280": "gb18030", "x-euc-cn": "gb18030",
    "windows-936": "gb18030", "x-x-big5": "big5hkscs", "cn-big5": "big5hkscs", "csbig5": "big5hkscs",
    "unicode-1-1-utf-8": "utf-8", "unicode11utf8": "utf-8", "unicode20utf8": "utf-8", "x-unicode20utf8": "utf-8",
}  # fmt: skip
# Python codec names widened to the superset browsers decode with.
_CODEC_UPGRADES = {
    "gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs", "ascii": "cp1252", "iso8859-1": "cp1252",
}  # fmt: skip
# A lead byte ≥ 0x80 and the byte after it (GBK and Big5 trail bytes reach down to 0x40).
_NON_ASCII_RUN = re.compile(rb"(?:[\x80-\xff][\x40-\xff]?)+")
_UNSUPPORTED = frozenset({"utf-7"})  # never honoured by browsers; a known XSS vector


def decode_html(body: bytes, content_type: str | None) -> DecodedPage:
    """Decode a page following the module's order; never raises on bad bytes."""
    bom_page = _decode_bom(body)
    if bom_page is not None:
        return bom_page
    rejected: list[str] = []
    for step, codec in _declared_codecs(body, content_type):
        page = _decode_counting(body, codec, step)
        if not _contradicted(page, body):
            return _noting_rejections(page, rejected)
        log.info("%s charset %s contradicted by the bytes (%d replaced); trying the next step",
                 step, codec, page.replaced_chars)  # fmt: skip
        rejected.append(step)
    page = _decode_detected(body) or _decode_counting(body, "utf-8", "default")
    return _noting_rejections(page, rejected)


def charset_from_content_type(content_type: str | None) -> str | None:
    """The charset label of a Content-Type header value, as written."""
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def charset_from_meta(body: bytes) -> str | None:
    """The label in the first `<meta>` charset declaration or XML declaration, as written."""
    head = body[:_META_SCAN_BYTES]
    match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    return match.group(1).decode("ascii") if match else None


def codec_for_label(label: str | None) -> str | None:
    """Python codec for a charset label, GB2312/GBK widened to GB18030; None if unknown."""
    if not label:
        return None
    name = _LABEL_ALIASES.get(label.strip().lower(), label.strip().lower())
    try:
        name = codecs.lookup(name).name
        b"a".decode(name)  # raises LookupError for bytes-to-bytes codecs such as base64
    except LookupError:
        return None
    except ValueError:
        pass  # a text codec that cannot decode this one byte (utf-16) is still a text codec
    return None if name in _UNSUPPORTED else _CODEC_UPGRADES.get(name, name)


def _declared_codecs(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    declared = []
    header = codec_for_label(charset_from_content_type(content_type))
    if header:
        declared.append(("header", header))
    meta = codec_for_label(charset_from_meta(body))
    if meta:
        # A document that can carry an ASCII <meta> is not UTF-16 (WHATWG rule).
        declared.append(("meta", "utf-8" if meta.startswith(("utf-16", "utf-32")) else meta))
    return declared


def _decode_bom(body: bytes) -> DecodedPage | None:
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return _decode_counting(body[len(bom):], codec, "bom")
    return None


def _decode_detected(body: bytes) -> DecodedPage | None:
    if body.isascii():
        return None  # nothing to detect; UTF-8 (the default) reads it correctly
    as_utf8 = _decode_counting(body, "utf-8", "detected")
    if not _mostly_replaced(as_utf8):
        return as_utf8
    best = from_bytes(_detection_sample(body)).best()
    codec = codec_for_label(best.encoding) if best is not None else None
    if codec is None or codec.startswith(("utf-16", "utf-32")):
        return None  # UTF-16 without a BOM is a misdetection of short or binary input
    return _decode_counting(body, codec, "detected")


def _detection_sample(body: bytes) -> bytes:
    """The non-ASCII stretches of `body`, each with its trail bytes, joined by spaces.

    charset-normalizer samples a few chunks of its input; on a page that is mostly ASCII
    script and markup those chunks can miss the Chinese text and report cp1252.
    """
    return b" ".join(_NON_ASCII_RUN.findall(body))


def _decode_counting(body: bytes, codec: str, source: str) -> DecodedPage:
    try:
        return DecodedPage(text=body.decode(codec), encoding=codec, encoding_source=source)
    except UnicodeDecodeError:
        text = body.decode(codec, errors="replace")
        return DecodedPage(text=text, encoding=codec, encoding_source=source, replaced_chars=text.count("\ufffd"))


def _contradicted(page: DecodedPage, body: bytes) -> bool:
    """The bytes disagree with the declared codec: many replacements, or they are UTF-8."""
    if _mostly_replaced(page):
        return True
    if page.encoding == "utf-8" or body.isascii():
        return False
    return not _mostly_replaced(_decode_counting(body, "utf-8", "detected"))


def _mostly_replaced(page: DecodedPage) -> bool:
    # Measured against non-ASCII characters: a GBK page that is 99 % ASCII markup still
    # loses every Chinese character when read as UTF-8.
    if not page.replaced_chars:
        return False  # the usual case: nothing to count
    non_ascii = len(page.text) - len(page.text.encode("ascii", "ignore"))  # counted in C, not per character
    return page.replaced_chars > settings.ENCODING_MAX_REPLACED_RATIO * max(non_ascii, 1)


def _noting_rejections(page: DecodedPage, rejected: list[str]) -> DecodedPage:
    if rejected:
        page.encoding_source += "".join(f":{step}-rejected" for step in rejected)
    return page
