"""The report's building blocks: styles, paragraphs that print any text (``app.report.text``),
key/value and image tables, and the canvas that numbers pages "n of N"."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, Spacer, Table, TableStyle

from app.report.text import MAX_FIELD_CHARS, paragraph_markup

MIN_DPI = 200  # printed images are enlarged to at least this (the requirement is 150)
BANNER_COLOUR = colors.HexColor("#C0392B")
KEY_WIDTH = 4.2 * cm
CELL_PADDING = 12  # reportlab's default table cell padding, left plus right (points)


# ---- page furniture ---------------------------------------------------------------------------
def numbered_canvas(footer: str):
    class NumberedCanvas(rl_canvas.Canvas):
        """Defers pages until the end so each can say 'Page n of N'."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._draw_footer(total)
                super().showPage()
            super().save()

        def _draw_footer(self, total: int) -> None:
            width, _ = self._pagesize
            self.saveState()
            self.setFont("Helvetica", 7.5)
            self.setFillColor(colors.HexColor("#555555"))
            self.drawString(1.5 * cm, 1.0 * cm, footer)
            self.drawRightString(width - 1.5 * cm, 1.0 * cm, f"Page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


# ---- flowables --------------------------------------------------------------------------------
def styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "title": base["Title"],
        "h2": base["Heading2"],
        "h3": base["Heading3"],
        "body": base["BodyText"],
        "small": ParagraphStyle("small", parent=base["BodyText"], fontSize=8, leading=10),
        "mono": ParagraphStyle(
            "mono", parent=base["BodyText"], fontName="Courier", fontSize=7, leading=9
        ),
        "cell": ParagraphStyle("cell", parent=base["BodyText"], fontSize=8.5, leading=10.5),
        "caption": ParagraphStyle(
            "caption", parent=base["BodyText"], fontSize=8, leading=10, alignment=TA_CENTER
        ),
        "banner": ParagraphStyle(
            "banner",
            parent=base["BodyText"],
            fontName="Helvetica-Bold",
            fontSize=10.5,
            leading=13,
            textColor=colors.white,
            alignment=TA_CENTER,
        ),
    }


def para(
    text: object, style: ParagraphStyle, width: float | None = None, limit: int | None = None
) -> Paragraph:
    """A paragraph showing ``text`` as it is, whatever it holds (markup characters, controls,
    any script); ``width`` where it is set (for right-to-left line breaks), ``limit`` to cut."""
    markup = paragraph_markup(text, style.fontName, style.fontSize, width, limit)
    return Paragraph(markup, style)


def banner(text: str, width: float, st) -> Table:
    t = Table([[para(text, st["banner"], width - CELL_PADDING)]], colWidths=[width])
    t.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), BANNER_COLOUR),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return t


def key_value_table(rows: list[tuple[str, object]], width: float, st) -> Table:
    """Two columns; a text value longer than ``MAX_FIELD_CHARS`` is cut (a row must fit on a
    page: a table row cannot be split, and reportlab gives up with a LayoutError)."""
    value_width = width - KEY_WIDTH - CELL_PADDING
    data = [
        [
            para(k, st["cell"]),
            v
            if not isinstance(v, str)
            else para(v or "-", st["cell"], value_width, MAX_FIELD_CHARS),
        ]
        for k, v in rows
    ]
    t = Table(data, colWidths=[KEY_WIDTH, width - KEY_WIDTH])
    t.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#EEF2F5")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#BBBBBB")),
            ]
        )
    )
    return t


def image_flowable(rgb: np.ndarray, max_w: float, max_h: float) -> Image:
    """Fit within (max_w, max_h) points; enlarge by whole pixels to reach MIN_DPI when printed."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    scale_pt = min(max_w / w, max_h / h)
    draw_w, draw_h = w * scale_pt, h * scale_pt
    factor = max(1, math.ceil(MIN_DPI * (draw_w / 72.0) / w))
    image = PILImage.fromarray(rgb[..., :3])
    if factor > 1:
        image = image.resize((w * factor, h * factor), PILImage.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    buf.seek(0)
    return Image(buf, width=draw_w, height=draw_h)


def image_grid(images: Sequence[tuple[str, np.ndarray]], width: float, st) -> list:
    """Two images per row, each with its caption beneath."""
    col_w = (width - 0.4 * cm) / 2
    out = []
    for n in range(0, len(images), 2):
        cells = []
        for caption, rgb in images[n : n + 2]:
            cells.append(
                [image_flowable(rgb, col_w, 9.5 * cm), para(caption, st["caption"], col_w)]
            )
        while len(cells) < 2:
            cells.append("")
        t = Table([cells], colWidths=[col_w + 0.2 * cm] * 2)
        t.setStyle(
            TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")])
        )
        out.append(KeepTogether([t, Spacer(1, 0.2 * cm)]))
    return out
