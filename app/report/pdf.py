"""The PDF report: identifiers, each model run (provenance, findings, key images), the reader's views
and impression. Everything is driven by the ``AnalysisResult`` (finding hierarchy, overlay types),
so a task added later needs no change here.

Text is real text (pdftotext extracts it); images are embedded losslessly and enlarged by whole
pixels until they reach at least ``MIN_DPI`` at their printed size.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    CondPageBreak,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.findings.io import StudyRef, atomic_path, software_version
from app.findings.types import DEMO_DISCLAIMER, AnalysisResult, Finding
from app.report.key_images import KeyImage, standard_key_images
from app.study.model import Series

PAGE_SIZES = {"A4": A4, "LETTER": LETTER}
MIN_DPI = 200  # printed images are enlarged to at least this (the requirement is 150)
BANNER_COLOUR = colors.HexColor("#C0392B")
POSITIVE_ROW = colors.HexColor("#FBE3E1")


@dataclass
class ReportRun:
    """One model run: its result and, for the standard key images, the series it ran on
    (``series`` for a one-input task; ``inputs`` by slot for several: each input gets key images
    with the overlays computed on it)."""

    result: AnalysisResult
    series: Series | None = None
    key_images: list[KeyImage] | None = None  # precomputed; else made from the inputs
    window: tuple[float, float] | None = None
    inputs: dict[str, Series] = field(default_factory=dict)

    def input_series(self) -> dict[str, Series]:
        if self.inputs:
            return dict(self.inputs)
        return {"": self.series} if self.series is not None else {}


def run_key_images(run: ReportRun) -> list[KeyImage]:
    """Key images per input, each with only the overlays tied to that input's slot."""
    if run.key_images is not None:
        return run.key_images
    inputs = run.input_series()
    images: list[KeyImage] = []
    for slot, series in inputs.items():
        result = run.result
        if len(inputs) > 1:
            mine = [o for o in result.overlays if not o.slot or o.slot == slot]
            result = replace(result, overlays=mine)
        for k in standard_key_images(result, series, run.window):
            if len(inputs) > 1:
                k = replace(k, caption=f"{slot}: {k.caption}")
            images.append(k)
    return images


@dataclass
class ReportInput:
    study: StudyRef
    runs: list[ReportRun]
    views: Sequence[tuple[str, np.ndarray]] = ()  # (caption, RGB uint8) arranged in the viewer
    impression: str = ""
    reader_name: str = ""
    signed_off: str = ""  # ISO time of sign-off, "" if not signed
    anonymise: bool = False
    page_size: str = "A4"  # "A4" or "Letter"
    title: str = "OsteoView analysis report"
    generated: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


# ---- finding hierarchy ------------------------------------------------------------------------
def ordered_findings(findings: list[Finding]) -> list[tuple[Finding, int]]:
    """Findings with their depth, each child right after its parent (same side where given)."""

    def parent_of(f: Finding) -> int | None:
        if not f.parent:
            return None
        candidates = [n for n, p in enumerate(findings) if p.label == f.parent and p is not f]
        same_side = [n for n in candidates if findings[n].side == f.side]
        chosen = same_side or [n for n in candidates if not findings[n].side] or candidates
        return chosen[0] if chosen else None

    parents = [parent_of(f) for f in findings]
    children: dict[int | None, list[int]] = {}
    for n, p in enumerate(parents):
        children.setdefault(p, []).append(n)
    out: list[tuple[Finding, int]] = []
    seen: set[int] = set()

    def visit(n: int, depth: int) -> None:
        if n in seen:
            return
        seen.add(n)
        out.append((findings[n], depth))
        for c in children.get(n, []):
            visit(c, depth + 1)

    for n in children.get(None, []):
        visit(n, 0)
    for n in range(len(findings)):  # cycles or dangling parents: still listed
        visit(n, 0)
    return out


# ---- page furniture ---------------------------------------------------------------------------
def _numbered_canvas(footer: str):
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
def _styles():
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


def _p(text: str, style) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _banner(text: str, width: float, st) -> Table:
    t = Table([[Paragraph(escape(text), st["banner"])]], colWidths=[width])
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


def _key_value_table(rows: list[tuple[str, object]], width: float, st) -> Table:
    data = [
        [_p(k, st["cell"]), v if not isinstance(v, str) else _p(v or "-", st["cell"])]
        for k, v in rows
    ]
    t = Table(data, colWidths=[4.2 * cm, width - 4.2 * cm])
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


def _image_flowable(rgb: np.ndarray, max_w: float, max_h: float) -> Image:
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


def _image_grid(images: Sequence[tuple[str, np.ndarray]], width: float, st) -> list:
    """Two images per row, each with its caption beneath."""
    col_w = (width - 0.4 * cm) / 2
    out = []
    for n in range(0, len(images), 2):
        cells = []
        for caption, rgb in images[n : n + 2]:
            cells.append([_image_flowable(rgb, col_w, 9.5 * cm), _p(caption, st["caption"])])
        while len(cells) < 2:
            cells.append("")
        t = Table([cells], colWidths=[col_w + 0.2 * cm] * 2)
        t.setStyle(
            TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")])
        )
        out.append(KeepTogether([t, Spacer(1, 0.2 * cm)]))
    return out


def _findings_table(result: AnalysisResult, width: float, st) -> Table:
    header = ["Finding", "Side", "Group", "Probability", "Threshold", "Call"]
    rows = [[_p(h, st["cell"]) for h in header]]
    styles = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE4EA")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#BBBBBB")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    for n, (f, depth) in enumerate(ordered_findings(result.findings), start=1):
        prefix = "\u00a0\u00a0\u00a0\u00a0" * depth + ("\u203a " if depth else "")
        prob = "n/a" if not math.isfinite(f.probability) else f"{f.probability:.3f}"
        call = "POSITIVE" if f.positive else "negative"
        cell = ParagraphStyle(
            "c", parent=st["cell"], fontName="Helvetica-Bold" if f.positive else "Helvetica"
        )
        rows.append(
            [
                Paragraph(prefix + escape(f.label), cell),
                _p(f.side or "", st["cell"]),
                _p(f.group or "", st["cell"]),
                _p(prob, cell),
                _p(f"{f.threshold:.3f}", st["cell"]),
                _p(call, cell),
            ]
        )
        if f.positive:
            styles.append(("BACKGROUND", (0, n), (-1, n), POSITIVE_ROW))
    widths = [0.36, 0.1, 0.16, 0.13, 0.12, 0.13]
    t = Table(rows, colWidths=[width * w for w in widths], repeatRows=1)
    t.setStyle(TableStyle(styles))
    return t


def _study_rows(study: StudyRef) -> list[tuple[str, object]]:
    p = study.patient
    rows = [
        ("Patient name", p.name),
        ("Patient ID", p.patient_id),
        ("Birth date", p.birth_date),
        ("Sex", p.sex),
        ("Study date", p.study_date),
        ("Accession", p.accession),
        ("Modality", study.modality),
        ("Body part", study.body_part),
        ("Study description", p.study_description),
        ("Series", study.series_description),
        ("Study UID", study.study_uid),
    ]
    if study.anonymised:
        rows.append(("Identifiers", "anonymised: patient and study identifiers removed"))
    return rows


def _run_section(run: ReportRun, width: float, st) -> list:
    r, prov = run.result, run.result.provenance
    story: list = [CondPageBreak(6 * cm), _p(f"Task: {r.task_id}", st["h2"])]
    if r.summary:
        story.append(_p(r.summary, st["body"]))
    trained = prov.trained_on or ""
    banner_text = "Model weights " + (prov.disclaimer or f"trained on {trained or 'unknown data'}")
    # trained_on often repeats the disclaimer; show only what it adds.
    detail = "; ".join(
        part.strip()
        for part in trained.split(";")
        if part.strip() and part.strip() not in banner_text
    )
    if detail:
        banner_text += f" (trained on: {detail})"
    story += [Spacer(1, 0.15 * cm), _banner(banner_text, width, st), Spacer(1, 0.2 * cm)]
    sha = [
        _p(f"{name}: {digest}", st["mono"]) for name, digest in sorted(prov.weights_sha256.items())
    ]
    total = sum(prov.timings_s.values())
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in prov.timings_s.items())
    rows = [
        ("Model", f"{prov.model_name} version {prov.model_version}"),
        ("Paper", prov.paper),
        ("Weights sha256", sha or "-"),
        ("Trained on", trained),
        ("Device", prov.device),
        ("Date", prov.created),
        ("Timings", f"{timings} (total {total:.2f} s)" if timings else "-"),
    ]
    story += [_key_value_table(rows, width, st), Spacer(1, 0.3 * cm)]
    story += [_p("Findings", st["h3"]), _findings_table(r, width, st), Spacer(1, 0.3 * cm)]
    images = run_key_images(run)
    if images:
        story += [CondPageBreak(8 * cm), _p("Key images", st["h3"])]
        story += _image_grid([(k.caption, k.rgb) for k in images], width, st)
    return story


def build_report(inp: ReportInput, path: Path) -> Path:
    """Write the PDF to ``path`` atomically (temporary name, then rename)."""
    path = Path(path)
    size_key = inp.page_size.upper()
    if size_key not in PAGE_SIZES:
        raise ValueError(f"page size must be A4 or Letter, not '{inp.page_size}'")
    pagesize = PAGE_SIZES[size_key]
    study = inp.study.anonymised_copy() if inp.anonymise else inp.study
    st = _styles()
    margin = 1.5 * cm
    width = pagesize[0] - 2 * margin
    disclaimers = {
        r.result.provenance.disclaimer for r in inp.runs if r.result.provenance.disclaimer
    }
    story: list = [_p(inp.title, st["title"]), _p(f"Generated {inp.generated}", st["small"])]
    if disclaimers or not inp.runs:
        text = "; ".join(sorted(disclaimers)) or DEMO_DISCLAIMER
        story += [Spacer(1, 0.2 * cm), _banner(f"Demo weights: {text}", width, st)]
    story += [
        Spacer(1, 0.3 * cm),
        _p("Patient and study", st["h2"]),
        _key_value_table(_study_rows(study), width, st),
    ]
    for run in inp.runs:
        story += _run_section(run, width, st)
    if inp.views:
        story += [CondPageBreak(8 * cm), _p("Views arranged by the reader", st["h2"])]
        story += _image_grid(list(inp.views), width, st)
    story += [CondPageBreak(5 * cm), _p("Reader's impression", st["h2"])]
    impression = inp.impression.strip()
    if impression:
        story += [
            Paragraph(escape(line) or "&nbsp;", st["body"]) for line in impression.splitlines()
        ]
    else:
        story.append(_p("No impression entered.", st["body"]))
    signed = (
        f"Signed off by {inp.reader_name} at {inp.signed_off}"
        if inp.signed_off
        else "Not signed off"
    )
    if inp.reader_name and not inp.signed_off:
        signed = f"Reader: {inp.reader_name} (not signed off)"
    story += [Spacer(1, 0.2 * cm), _p(signed, st["body"])]

    footer = f"OsteoView {software_version()}"
    if disclaimers:
        footer += " \u00b7 " + "; ".join(sorted(disclaimers))
    with atomic_path(path) as tmp:
        doc = SimpleDocTemplate(
            str(tmp),
            pagesize=pagesize,
            leftMargin=margin,
            rightMargin=margin,
            topMargin=margin,
            bottomMargin=2.0 * cm,
            title=inp.title,
            author="OsteoView",
            creator=f"OsteoView {software_version()}",
        )
        doc.build(story, canvasmaker=_numbered_canvas(footer))
    return path
