"""Any string a DICOM header can hold, made printable: the markup for one reportlab Paragraph.

- Control characters (NUL, escape, ...) and the bidi overrides that can make a name read as
  another (U+202A-U+202E, U+2066-U+2069) are replaced by U+FFFD, visibly.
- Values longer than a limit are cut with a note saying how many characters are not shown (a
  10,000-character name made a table row taller than the page: reportlab's LayoutError).
- Right-to-left text (Arabic, Hebrew) is shaped (Arabic letters joined, ``arabic-reshaper``) and
  put in display order (the Unicode bidi algorithm, ``python-bidi``) line by line: the lines are
  broken on the text in reading order first, so a name that wraps still reads from its start.
- Each character is set in a font that has it (``app.report.fonts``); one that none has becomes
  U+FFFD rather than an empty box.
"""

from __future__ import annotations

import unicodedata
from xml.sax.saxutils import escape

from reportlab.pdfbase.pdfmetrics import stringWidth

from app.report.fonts import FontSet, report_fonts

REPLACEMENT = "\ufffd"
MAX_FIELD_CHARS = 300  # an identifier longer than this is cut, visibly
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_RTL_CLASSES = {"R", "AL"}

try:  # optional at run time: without them RTL text stays in reading order, unshaped
    import arabic_reshaper
    from bidi import get_display
except ImportError:  # pragma: no cover - both are declared dependencies
    arabic_reshaper = None
    get_display = None


def visible_controls(text: str) -> str:
    """Control and bidi-override characters replaced by U+FFFD (tab and newline by a space)."""
    out = []
    for ch in text:
        if ch in "\t\n\r":
            out.append(" ")
        elif ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            out.append(REPLACEMENT)
        else:
            out.append(ch)
    return "".join(out)


def cut(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` up to ``limit`` characters, then a note of how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 [{len(text) - limit:,} more characters not shown]"


def has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in _RTL_CLASSES for ch in text)


def display_order(line: str) -> str:
    """One line in the order it is drawn left to right: Arabic joined, then bidi-reordered."""
    if get_display is None or not has_rtl(line):
        return line
    if arabic_reshaper is not None:
        line = arabic_reshaper.reshape(line)
    return get_display(line)


def _is_bold(font_name: str) -> bool:
    return "Bold" in font_name


def _winansi(ch: str) -> bool:
    try:
        ch.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _font_for(ch: str, base_font: str, fonts: FontSet) -> tuple[str | None, str]:
    """(font name or None for the style's own font, the character to draw)."""
    standard = base_font.startswith(("Helvetica", "Courier", "Times"))
    if not standard or _winansi(ch) or ch == " ":
        return None, ch
    sans = fonts.sans_bold if _is_bold(base_font) else fonts.sans
    if fonts.covers(sans, ch):
        return sans, ch
    cjk = fonts.cjk_font(ch)
    if cjk is not None:
        return cjk, ch
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "HALFWIDTH")):
        return fonts.cid_font(ch), ch
    if fonts.covers(sans, REPLACEMENT):
        return sans, REPLACEMENT
    return None, "?"  # no font at all beyond the built-in ones: still visible, never a box


def _runs(text: str, base_font: str, fonts: FontSet) -> list[tuple[str | None, str]]:
    runs: list[tuple[str | None, str]] = []
    for ch in text:
        font, drawn = _font_for(ch, base_font, fonts)
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + drawn)
        else:
            runs.append((font, drawn))
    return runs


def _markup(text: str, base_font: str, fonts: FontSet) -> str:
    parts = []
    for font, run in _runs(text, base_font, fonts):
        parts.append(escape(run) if font is None else f'<font name="{font}">{escape(run)}</font>')
    return "".join(parts)


def text_width(text: str, base_font: str, size: float) -> float:
    fonts = report_fonts()
    return sum(
        stringWidth(run, font or base_font, size) for font, run in _runs(text, base_font, fonts)
    )


def _wrap_logical(text: str, width: float, base_font: str, size: float) -> list[str]:
    """Greedy line breaks at spaces (characters when a word alone is too wide), measured on the
    shaped text, in reading order."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if text_width(display_order(candidate), base_font, size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while current and text_width(display_order(current), base_font, size) > width:
            lo, hi = 1, len(current)  # the longest head that fits (at least one character)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                fits = text_width(display_order(current[:mid]), base_font, size) <= width
                lo, hi = (mid, hi) if fits else (lo, mid - 1)
            lines.append(current[:lo])
            current = current[lo:]
    if current or not lines:
        lines.append(current)
    return lines


def paragraph_markup(
    value: object, base_font: str, size: float, width: float | None = None, limit: int | None = None
) -> str:
    """Markup for ``Paragraph(markup, style)`` showing ``value`` safely (see the module doc).

    ``width`` (points) is where the paragraph will be set: right-to-left text is broken into
    lines that fit it before reordering. ``limit`` cuts long values (``cut``).
    """
    text = visible_controls(str(value))
    if limit is not None:
        text = cut(text, limit)
    if all(_winansi(ch) for ch in text):
        return escape(text)  # the built-in fonts have it all: no font files to look for
    fonts = report_fonts()
    if not has_rtl(text):
        return _markup(text, base_font, fonts)
    # 0.93: room for the cell's padding and for reportlab measuring a little wider than we do
    lines = [text] if width is None else _wrap_logical(text, width * 0.93, base_font, size)
    return "<br/>".join(_markup(display_order(line), base_font, fonts) for line in lines)
