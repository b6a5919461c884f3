"""Fonts for the report that cover the scripts patient names come in.

reportlab's built-in fonts (Helvetica, Courier) know only Western European characters: an
Arabic, Hebrew, Greek, Cyrillic or CJK name would print as boxes. So, found at run time:

- DejaVu Sans (Debian ``fonts-dejavu-core``; matplotlib ships a copy too): Latin, Greek,
  Cyrillic, Arabic, Hebrew and U+FFFD; embedded (subset) in the PDF.
- TrueType CJK fonts when installed (Debian ``fonts-wqy-microhei``: Chinese, Japanese kana and
  Korean hangul; ``fonts-droid-fallback``: no hangul), tried in that order: embedded, so every
  viewer shows them and pdftotext extracts them.
- Otherwise reportlab's CID fonts for CJK (no font file needed; the PDF viewer supplies the
  glyphs: Acrobat and most viewers do, poppler needs its ``poppler-data`` language pack).

``OSTEOVIEW_FONT_DIRS`` (folders separated by ``os.pathsep``) replaces the folders searched, so
tests can check the fallback with no font at all.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

SANS = "OsteoView-Sans"
SANS_BOLD = "OsteoView-Sans-Bold"
CJK_PREFIX = "OsteoView-CJK-"
SANS_FILES = {SANS: "DejaVuSans.ttf", SANS_BOLD: "DejaVuSans-Bold.ttf"}
# TrueType-outline CJK fonts reportlab can embed (CFF-based OpenType such as Noto CJK it cannot).
CJK_FILES = ("wqy-microhei.ttc", "wqy-zenhei.ttc", "DroidSansFallbackFull.ttf",
             "DroidSansFallback.ttf", "NanumGothic.ttf")  # fmt: skip
# CID fonts by script, used when no CJK TrueType font is installed.
CID_JAPANESE, CID_KOREAN, CID_CHINESE = "HeiseiMin-W3", "HYSMyeongJo-Medium", "STSong-Light"


@dataclass
class FontSet:
    """The registered fonts and the characters each covers (cmap code points)."""

    sans: str | None = None
    sans_bold: str | None = None
    cjk: list[str] = field(default_factory=list)  # in the order they are tried
    coverage: dict[str, frozenset[int]] = field(default_factory=dict)
    cid_registered: set[str] = field(default_factory=set)

    def covers(self, font: str | None, char: str) -> bool:
        return font is not None and ord(char) in self.coverage.get(font, frozenset())

    def cjk_font(self, char: str) -> str | None:
        """The first embedded CJK font that has ``char``."""
        return next((f for f in self.cjk if self.covers(f, char)), None)

    def cid_font(self, char: str) -> str:
        """The CID font for a CJK character (kana: Japanese, hangul: Korean, else Chinese)."""
        code = ord(char)
        if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF:
            name = CID_JAPANESE
        elif 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            name = CID_KOREAN
        else:
            name = CID_CHINESE
        if name not in self.cid_registered:
            from reportlab.pdfbase.cidfonts import UnicodeCIDFont

            pdfmetrics.registerFont(UnicodeCIDFont(name))
            self.cid_registered.add(name)
        return name


def _font_dirs() -> list[Path]:
    override = os.environ.get("OSTEOVIEW_FONT_DIRS")
    if override is not None:
        return [Path(p) for p in override.split(os.pathsep) if p]
    dirs = [
        Path("/usr/share/fonts"),
        Path("/usr/local/share/fonts"),
        Path.home() / ".local" / "share" / "fonts",
        Path.home() / ".fonts",
        Path("/Library/Fonts"),
        Path("/System/Library/Fonts"),
        Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts",
    ]
    spec = importlib.util.find_spec("matplotlib")  # its DejaVu copy, without importing it
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf")
    return dirs


def find_font_files(names: tuple[str, ...]) -> dict[str, Path]:
    """The first file found for each of ``names`` under the font folders."""
    wanted = {n.lower(): n for n in names}
    found: dict[str, Path] = {}
    for base in _font_dirs():
        if not base.is_dir():
            continue
        for folder, _dirs, files in os.walk(base):
            for f in files:
                name = wanted.get(f.lower())
                if name is not None and name not in found:
                    found[name] = Path(folder) / f
            if len(found) == len(wanted):
                return found
    return found


def _register(name: str, path: Path) -> frozenset[int] | None:
    try:
        font = TTFont(name, str(path), subfontIndex=0)  # the first face of a collection (.ttc)
    except (TTFError, OSError, ValueError) as exc:
        print(f"osteoview: report font {path} not usable ({exc})", file=sys.stderr)
        return None
    pdfmetrics.registerFont(font)
    return frozenset(font.face.charToGlyph)


_fonts: FontSet | None = None
_lock = threading.Lock()


def report_fonts() -> FontSet:
    """Find and register the fonts once per process."""
    global _fonts
    with _lock:
        if _fonts is not None:
            return _fonts
        fonts = FontSet()
        files = find_font_files((*SANS_FILES.values(), *CJK_FILES))
        for name, filename in SANS_FILES.items():
            if filename in files and (cov := _register(name, files[filename])) is not None:
                fonts.coverage[name] = cov
                setattr(fonts, "sans" if name == SANS else "sans_bold", name)
        for n, filename in enumerate(CJK_FILES):
            name = f"{CJK_PREFIX}{n}"
            if filename in files and (cov := _register(name, files[filename])) is not None:
                fonts.coverage[name] = cov
                fonts.cjk.append(name)
        if fonts.sans_bold is None:
            fonts.sans_bold = fonts.sans
        _fonts = fonts
        return fonts


def reset_for_tests() -> None:
    """Forget the fonts found (tests change ``OSTEOVIEW_FONT_DIRS``)."""
    global _fonts
    with _lock:
        _fonts = None
