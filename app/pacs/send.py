"""``analyze --send``: an analysis's results as DICOM in the source study, stored on the PACS.

What goes back: a DICOM SEG of each label map (over the input series it was computed on), a
TID 1500 Comprehensive SR of the findings and probabilities (linked to the SEG segments), and
the PDF report as Encapsulated PDF when one was written. All are built before anything is sent,
so a result that cannot be expressed as DICOM sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from app.findings.dicom_pdf import write_pdf
from app.findings.dicom_seg import Algorithm, SegError, Segment, write_seg
from app.findings.dicom_sr import write_sr
from app.findings.types import AnalysisResult, LabelMapOverlay
from app.pacs.client import PacsClient
from app.pacs.errors import PacsError
from app.study.model import Series


@dataclass
class Outgoing:
    seg: list[Dataset]
    sr: Dataset
    pdf: Dataset | None

    def all(self) -> list[Dataset]:
        return [*self.seg, self.sr, *([self.pdf] if self.pdf is not None else [])]


def source_datasets(series: Series) -> list[Dataset]:
    """The headers of the DICOM files a loaded series came from, or PacsError."""
    out = []
    for path in series.source_paths:
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=True))  # headers are enough
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise PacsError(f"{path}: cannot be referenced from the results ({exc})") from exc
    if not out:
        raise PacsError(f"series {series.series_uid}: not loaded from DICOM, nothing to refer to")
    return out


def build_outgoing(
    result: AnalysisResult, inputs: dict[str, Series], report: Path | None = None
) -> Outgoing:
    """SEG(s), SR and Encapsulated PDF for ``result`` (see the module doc)."""
    if not inputs:
        raise PacsError("no input series to refer the results to")
    prov = result.provenance
    algorithm = Algorithm(prov.model_name, prov.model_version)
    first_slot = next(iter(inputs))
    sources = {slot: source_datasets(s) for slot, s in inputs.items()}
    segs = []
    for ov in result.overlays:
        if not isinstance(ov, LabelMapOverlay) or ov.image is None:
            continue
        slot = ov.slot or first_slot
        segments = [Segment(int(v), name, tuple(rgb)) for v, (name, rgb) in ov.labels.items()]
        try:
            segs.append(
                write_seg(ov.image, segments, sources[slot], algorithm, series_description=ov.name)
            )
        except SegError as exc:
            if "no labelled pixel" in str(exc):
                continue  # an empty map has nothing to show on the PACS
            raise PacsError(f"{ov.name}: cannot be written as DICOM SEG ({exc})") from exc
    sr = write_sr(result, sources[first_slot], segs[0] if segs else None)
    pdf = None
    if report is not None:
        title = f"OsteoView report: {result.task_id}"
        pdf = write_pdf(Path(report), sources[first_slot], title)
    return Outgoing(segs, sr, pdf)


def send_results(
    client: PacsClient, result: AnalysisResult, inputs: dict[str, Series], report: Path | None
) -> Outgoing:
    outgoing = build_outgoing(result, inputs, report)
    client.store(outgoing.all())
    return outgoing
