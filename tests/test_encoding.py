"""tasks.crawl.encoding.decode_html: the fixed order BOM → header → meta → detection → UTF-8."""

from __future__ import annotations

import codecs
import random

import pytest

from tasks.crawl.encoding import codec_for_label, decode_html
from tests.faultserver import GARBAGE, GBK_PAGE, GBK_TEXT

pytestmark = pytest.mark.timeout(10)

# 镕 堃 喆 珺 are GBK characters outside GB2312: a strict gb2312 decoder fails on them.
OUTSIDE_GB2312 = "镕堃喆珺"
REPORT = "<html><head>{meta}<title>县政府工作报告</title></head><body><p>朱镕基、王堃、李喆、张珺。地区生产总值123.4亿元，增长5.6%。</p></body></html>"


def report(meta: str = "") -> str:
    return REPORT.format(meta=meta)


def test_gbk_outside_gb2312_declared_gb2312_decodes_as_gb18030():
    body = report().encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        body.decode("gb2312")  # why the label must be widened
    page = decode_html(body, "text/html; charset=GB2312")
    assert page.text == report() and all(char in page.text for char in OUTSIDE_GB2312)
    assert (page.encoding, page.encoding_source, page.replaced_chars) == ("gb18030", "header", 0)


@pytest.mark.parametrize("label", ["gb2312", "GBK", "gb_2312-80", "x-gbk", "GB18030", "cp936", "csGB2312", "chinese"])
def test_chinese_labels_map_to_gb18030(label):
    assert codec_for_label(label) == "gb18030"


@pytest.mark.parametrize("label", [None, "", "no-such-charset", "base64", "rot13", "utf-7"])
def test_unknown_or_non_text_labels_are_ignored(label):
    assert codec_for_label(label) is None


def test_meta_charset_is_used_without_header():
    body = report('<meta charset="gbk">').encode("gbk")
    page = decode_html(body, "text/html")
    assert (page.text, page.encoding, page.encoding_source) == (report('<meta charset="gbk">'), "gb18030", "meta")


def test_meta_http_equiv_is_used():
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312" />'
    page = decode_html(report(meta).encode("gbk"), None)
    assert page.encoding_source == "meta" and OUTSIDE_GB2312[0] in page.text


def test_xml_declaration_counts_as_meta():
    text = '<?xml version="1.0" encoding="GBK"?>' + report()
    page = decode_html(text.encode("gbk"), "application/xhtml+xml")
    assert (page.text, page.encoding_source) == (text, "meta")


def test_meta_beyond_the_scan_window_is_not_seen():
    text = "<!--" + "x" * 5000 + "-->" + report('<meta charset="gbk">')
    page = decode_html(text.encode("gbk"), None)
    assert page.encoding_source == "detected" and page.text == text


def test_header_wins_over_meta():
    body = report('<meta charset="big5">').encode("gbk")
    page = decode_html(body, 'text/html; charset="GBK"')
    assert page.encoding_source == "header" and page.text == report('<meta charset="big5">')


def test_page_without_any_charset_is_detected():
    page = decode_html(GBK_PAGE, "text/html")
    assert (page.text, page.encoding, page.encoding_source) == (GBK_TEXT, "gb18030", "detected")


def test_lying_utf8_header_on_gbk_bytes_falls_back_to_detection():
    page = decode_html(report().encode("gbk"), "text/html; charset=utf-8")
    assert page.text == report() and page.encoding == "gb18030"
    assert page.encoding_source == "detected:header-rejected" and page.replaced_chars == 0


def test_lying_utf8_header_falls_back_to_meta_when_there_is_one():
    text = report('<meta charset="gb2312">')
    page = decode_html(text.encode("gbk"), "text/html; charset=utf-8")
    assert (page.text, page.encoding_source) == (text, "meta:header-rejected")


@pytest.mark.parametrize("line_end", ["\n", ""], ids=["lines", "minified"])
def test_lying_header_is_caught_on_a_mostly_ascii_page(line_end):
    # 20 KB of ASCII script around a little Chinese: replacements are few per character
    # of the page but nearly all of the non-ASCII characters; detection must still find GBK.
    text = "<script>" + f"var a = 1;{line_end}" * 2000 + "</script>" + report()
    page = decode_html(text.encode("gbk"), "text/html; charset=utf-8")
    assert page.text == text and page.encoding_source == "detected:header-rejected"


def test_mildly_wrong_header_still_wins():
    # One stray byte in a long UTF-8 page: the header is right, the byte is replaced and counted.
    body = (report() * 20).encode("utf-8") + b"\xff" + report().encode("utf-8")
    page = decode_html(body, "text/html; charset=utf-8")
    assert (page.encoding, page.encoding_source, page.replaced_chars) == ("utf-8", "header", 1)


def test_utf8_bytes_under_a_stale_gb2312_meta_read_as_utf8():
    text = report('<meta http-equiv="Content-Type" content="text/html; charset=gb2312">')
    page = decode_html(text.encode("utf-8"), "text/html")
    assert (page.text, page.encoding, page.encoding_source) == (text, "utf-8", "detected:meta-rejected")


def test_unknown_header_label_falls_through_to_meta():
    text = report('<meta charset="gbk">')
    page = decode_html(text.encode("gbk"), "text/html; charset=x-made-up")
    assert (page.text, page.encoding_source) == (text, "meta")


@pytest.mark.parametrize(("bom", "codec"), [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                                            (codecs.BOM_UTF16_BE, "utf-16-be")])  # fmt: skip
def test_bom_beats_everything(bom, codec):
    page = decode_html(bom + report('<meta charset="gbk">').encode(codec), "text/html; charset=gbk")
    assert (page.text, page.encoding, page.encoding_source) == (report('<meta charset="gbk">'), codec, "bom")


def test_ascii_page_defaults_to_utf8():
    page = decode_html(b"<html><body>plain</body></html>", None)
    assert (page.encoding, page.encoding_source, page.replaced_chars) == ("utf-8", "default", 0)


_RNG = random.Random(7)


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff", b"\x00" * 64, b"\x81", "中".encode()[:2], GARBAGE, *(_RNG.randbytes(n) for n in (1, 7, 300, 5000))],
)
@pytest.mark.parametrize("content_type", [None, "text/html", "text/html; charset=utf-8", "text/html; charset=gbk",
                                          "text/html; charset=", "charset=\"\"; charset=utf-16"])  # fmt: skip
def test_garbage_never_raises(body, content_type):
    page = decode_html(body, content_type)
    assert isinstance(page.text, str) and page.replaced_chars >= 0 and page.encoding


def test_undecodable_bytes_are_counted():
    page = decode_html(GARBAGE, "text/html")
    assert page.replaced_chars > 0 and page.replaced_chars == page.text.count("\ufffd")
