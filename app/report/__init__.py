"""PDF reports (reportlab): identifiers, model runs with provenance, findings, key images.

``build_report(ReportInput(...), path)`` is the one entry point; the viewer passes its arranged
views as ``(caption, RGB array)`` pairs, the CLI passes none.
"""

from app.report.key_images import KeyImage, standard_key_images
from app.report.pdf import ReportInput, ReportRun, build_report, ordered_findings

__all__ = [
    "KeyImage",
    "ReportInput",
    "ReportRun",
    "build_report",
    "ordered_findings",
    "standard_key_images",
]
