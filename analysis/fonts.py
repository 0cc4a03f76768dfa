"""Find a font with Chinese glyphs for matplotlib, or say there is none.

matplotlib's default DejaVu Sans has no Han glyphs: Chinese labels would come out as
boxes. The report asks `find_cjk_font` once and falls back to Latin labels (with a
warning) when it returns None; it never fails for want of a font.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

log = logging.getLogger(__name__)

# Preferred families, best first; any other installed font that has the probe glyphs
# is accepted after these.
CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Noto Sans CJK JP", "Noto Sans CJK TC",
    "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN", "SimHei", "Microsoft YaHei",
    "PingFang SC",
)
# Characters every label of the report may need, the rarest region names included.
PROBE = "民政低保标准嵊州冷水滩慈溪仙居天台养老护理员床位"


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Family name of an installed font covering PROBE, or None."""
    _register_new_system_fonts()
    by_name: dict[str, str] = {}
    for entry in font_manager.fontManager.ttflist:
        by_name.setdefault(entry.name, entry.fname)
    ordered = [name for name in CJK_FAMILIES if name in by_name]
    ordered += sorted(name for name in by_name if name not in CJK_FAMILIES)
    for name in ordered:
        if _covers(by_name[name], PROBE):
            log.info("CJK font for charts: %s (%s)", name, by_name[name])
            return name
    return None


def _register_new_system_fonts() -> None:
    # matplotlib caches its font list on first use; a font package installed after that
    # (scripts/install-browser.sh) is invisible until added by hand.
    known = {Path(entry.fname) for entry in font_manager.fontManager.ttflist}
    for fname in font_manager.findSystemFonts():
        if Path(fname) not in known:
            try:
                font_manager.fontManager.addfont(fname)
            except (OSError, RuntimeError, ValueError) as exc:  # unreadable or exotic font file
                log.debug("skipping font %s: %s", fname, exc)


def _covers(fname: str, text: str) -> bool:
    try:
        charmap = FT2Font(fname).get_charmap()
    except (OSError, RuntimeError, ValueError):
        return False
    glyphs = {charmap.get(ord(ch)) for ch in set(text)}
    # a fallback font such as "Last Resort" maps every Han character to one box glyph
    return None not in glyphs and len(glyphs) == len(set(text))
