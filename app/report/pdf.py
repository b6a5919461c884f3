"""The PDF report: identifiers, each model run (provenance, findings, key images), the reader's views
and impression. Everything is driven by the ``AnalysisResult`` (finding hierarchy, overlay types),
so a task added later needs no change here.

Text is real text (pdftotext extracts it); images are embedded losslessly and enlarged by whole
pixels until they reach at least ``MIN_DPI`` at their printed size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.platypus import (
    CondPageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.atomic import atomic_path
from app.findings.io import StudyRef, software_version
from app.findings.types import DEMO_DISCLAIMER, AnalysisResult, Finding
from app.findings.wording import decide_in
from app.report.flowables import (
    MIN_DPI,
    banner,
    image_grid,
    key_value_table,
    numbered_canvas,
    para,
    styles,
)
from app.report.key_images import KeyImage, standard_key_images
from app.report.text import paragraph_markup
from app.study.model import Series

__all__ = [
    "MIN_DPI",
    "ReportInput",
    "ReportRun",
    "build_report",
    "ordered_findings",
    "run_key_images",
]

PAGE_SIZES = {"A4": A4, "LETTER": LETTER}
ABNORMAL_ROW = colors.HexColor("#FBE3E1")  # the only findings in colour are abnormal ones
ABNORMAL_TEXT = colors.HexColor("#B0201A")
NO_CALL_GREY = colors.HexColor("#8C8C8C")  # probabilities of a no-call result


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
    measurements: list[str] = field(default_factory=list)  # the reader's, one line each
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


def _findings_table(result: AnalysisResult, width: float, st) -> Table:
    header = ["Finding", "Side", "Group", "Probability", "Threshold", "Decision"]
    rows = [[para(h, st["cell"]) for h in header]]
    styles = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE4EA")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#BBBBBB")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    for n, (f, depth) in enumerate(ordered_findings(result.findings), start=1):
        prefix = "\u00a0\u00a0\u00a0\u00a0" * depth + ("\u203a " if depth else "")
        prob = "n/a" if not math.isfinite(f.probability) else f"{f.probability:.3f}"
        decision = decide_in(result, f)
        cell = st["cell"]
        if decision.abnormal:
            cell = ParagraphStyle(
                "ab", parent=st["cell"], fontName="Helvetica-Bold", textColor=ABNORMAL_TEXT
            )
        if decision.no_call:  # outside the training domain: probabilities greyed, no decision
            cell = ParagraphStyle("nc", parent=st["cell"], textColor=NO_CALL_GREY)
        rows.append(
            [
                Paragraph(prefix + paragraph_markup(f.label, cell.fontName, cell.fontSize), cell),
                para(f.side or "", st["cell"]),
                para(f.group or "", st["cell"]),
                para(prob, cell),
                para(f"{f.threshold:.3f}", st["cell"]),
                para(decision.text, cell),
            ]
        )
        if decision.abnormal:
            styles.append(("BACKGROUND", (0, n), (-1, n), ABNORMAL_ROW))
    widths = [0.27, 0.08, 0.12, 0.12, 0.11, 0.30]
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
    story: list = [CondPageBreak(6 * cm), para(f"Task: {r.task_id}", st["h2"])]
    if r.summary:
        story.append(para(r.summary, st["body"]))
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
    story += [Spacer(1, 0.15 * cm), banner(banner_text, width, st), Spacer(1, 0.2 * cm)]
    if r.no_call:
        story += [banner(f"{r.no_call[0].upper()}{r.no_call[1:]}: the probabilities below are "
                         "shown greyed, for reference only.", width, st), Spacer(1, 0.2 * cm)]  # fmt: skip
    sha = [
        para(f"{name}: {digest}", st["mono"])
        for name, digest in sorted(prov.weights_sha256.items())
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
        ("Domain check", domain_text(prov.domain_check)),
    ]
    story += [key_value_table(rows, width, st), Spacer(1, 0.3 * cm)]
    story += [para("Findings", st["h3"]), _findings_table(r, width, st), Spacer(1, 0.3 * cm)]
    images = run_key_images(run)
    if images:
        story += [CondPageBreak(8 * cm), para("Key images", st["h3"])]
        story += image_grid([(k.caption, k.rgb) for k in images], width, st)
    return story


def build_report(inp: ReportInput, path: Path) -> Path:
    """Write the PDF to ``path`` atomically (temporary name, then rename)."""
    path = Path(path)
    size_key = inp.page_size.upper()
    if size_key not in PAGE_SIZES:
        raise ValueError(f"page size must be A4 or Letter, not '{inp.page_size}'")
    pagesize = PAGE_SIZES[size_key]
    study = inp.study.anonymised_copy() if inp.anonymise else inp.study
    st = styles()
    margin = 1.5 * cm
    width = pagesize[0] - 2 * margin
    disclaimers = {
        r.result.provenance.disclaimer for r in inp.runs if r.result.provenance.disclaimer
    }
    story: list = [para(inp.title, st["title"]), para(f"Generated {inp.generated}", st["small"])]
    if disclaimers or not inp.runs:
        text = "; ".join(sorted(disclaimers)) or DEMO_DISCLAIMER
        story += [Spacer(1, 0.2 * cm), banner(f"Demo weights: {text}", width, st)]
    story += [
        Spacer(1, 0.3 * cm),
        para("Patient and study", st["h2"]),
        key_value_table(_study_rows(study), width, st),
    ]
    for run in inp.runs:
        story += _run_section(run, width, st)
    if inp.views:
        story += [CondPageBreak(8 * cm), para("Views arranged by the reader", st["h2"])]
        story += image_grid(list(inp.views), width, st)
    if inp.measurements:
        story += [CondPageBreak(3 * cm), para("Measurements", st["h2"])]
        story += [para(line, st["body"], width) for line in inp.measurements]
    story += [CondPageBreak(5 * cm), para("Reader's impression", st["h2"])]
    impression = inp.impression.strip()
    if impression:
        story += [
            para(line, st["body"], width) if line.strip() else Paragraph("&nbsp;", st["body"])
            for line in impression.splitlines()
        ]
    else:
        story.append(para("No impression entered.", st["body"]))
    signed = (
        f"Signed off by {inp.reader_name} at {inp.signed_off}"
        if inp.signed_off
        else "Not signed off"
    )
    if inp.reader_name and not inp.signed_off:
        signed = f"Reader: {inp.reader_name} (not signed off)"
    story += [Spacer(1, 0.2 * cm), para(signed, st["body"])]

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
        doc.build(story, canvasmaker=numbered_canvas(footer))
    return path


def domain_text(check: dict) -> str:
    """The provenance's input-domain check in one line."""
    if not check:
        return "-"
    if check.get("distance") is None:
        return f"{check.get('measure', '')}: {check.get('note', '') or 'not checked'}"
    verdict = "within" if check.get("in_domain") else "OUTSIDE"
    return (
        f"{verdict} the training domain: distance {check['distance']:.2f}, threshold "
        f"{check['threshold']:.2f} ({check.get('measure', '')})"
    )
