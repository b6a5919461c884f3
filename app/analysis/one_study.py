"""Headless analysis of one study: load -> resolve the task's inputs (``app.analysis.request``)
-> ``run_analysis`` -> findings.json and overlay files (``app.findings.io``) -> optional PDF report.

The one path that ``osteoview analyze STUDY``, each study of a batch (``batch_study``) and the
models' evaluations go through, so a held-out metric measures what a user gets.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.analysis.explain import explain_positives
from app.analysis.request import Loader, resolve_inputs, series_by_uid_or_path
from app.analysis.runner import run_analysis
from app.engine.adapter import Adapter, AnalysisRequest, InputRejected
from app.findings.io import StudyRef, write_result
from app.findings.types import AnalysisResult
from app.study.model import LoadResult, Series, Study, StudyLoadError


def default_loader(path: Path) -> LoadResult:
    from app.study import load  # lazy: the loader pulls in the DICOM decoders

    return load(path)


@dataclass
class AnalyzeOptions:
    series_uid: str | None = None  # shorthand for the first slot's override
    report: Path | None = None  # where the PDF goes; None for no report
    anonymise: bool = False
    page_size: str = "A4"
    inputs: dict[str, str] = field(default_factory=dict)  # slot -> series UID or file path
    explain: tuple[str, ...] = ()  # --explain: methods ("shap", "cam", "all") for the positives
    pseudonym_key: bytes | None = None  # --anonymise-key; None: the installation's secret
    anonymous_id: str = ""  # the pseudonym a batch already chose (its folder's name)
    seg: bool = False  # --seg: the label maps as DICOM SEG too (app.analysis.seg_out)


@dataclass
class StudyRun:
    study: Study
    series: Series  # the first input (what a one-input task read)
    result: AnalysisResult
    request: AnalysisRequest
    ref: StudyRef
    findings_path: Path
    report_path: Path | None
    timings_s: dict[str, float]


def load_study(path: Path | list[Path], loader: Loader = default_loader) -> LoadResult:
    """Load (several paths of one study are merged), turning 'nothing loadable here' into the
    loader's own error naming the path."""
    paths = [Path(p) for p in path] if isinstance(path, list) else [Path(path)]
    result = loader(paths[0])
    for extra in paths[1:]:
        _merge(result, loader(extra))
    path = paths[0] if len(paths) == 1 else paths[0].parent
    if not result.all_series():
        reasons = "; ".join(f"{Path(e.path).name}: {e.reason}" for e in result.errors[:3])
        raise StudyLoadError(str(path), reasons or "no image series found")
    return result


def _merge(into: LoadResult, other: LoadResult) -> None:
    """Add ``other``'s series to ``into``, joining studies with the same StudyInstanceUID."""
    by_uid = {st.study_uid: st for st in into.studies}
    for st in other.studies:
        if st.study_uid in by_uid:
            by_uid[st.study_uid].series.extend(st.series)
        else:
            into.studies.append(st)
            by_uid[st.study_uid] = st
    into.errors.extend(other.errors)


def request_for(
    loaded: LoadResult,
    adapter: Adapter,
    path: Path,
    options: AnalyzeOptions | None = None,
    loader: Loader = default_loader,
) -> AnalysisRequest:
    """The task's inputs from a loaded study, with the user's ``--input``/``--series`` choices."""
    options = options or AnalyzeOptions()
    chosen = dict(options.inputs)
    if options.series_uid:
        chosen.setdefault(adapter.slots[0].name, options.series_uid)
    overrides = {}
    for slot, value in chosen.items():
        try:
            overrides[slot] = series_by_uid_or_path(loaded, value, loader)
        except InputRejected as exc:
            raise InputRejected(f"{path}: --input {slot}: {exc}") from exc
    return resolve_inputs(adapter.spec, loaded, path, adapter=adapter, overrides=overrides)


def analyze_study(
    path: Path | list[Path],
    adapter: Adapter,
    out_dir: Path,
    options: AnalyzeOptions,
    loader: Loader = default_loader,
    progress: Callable[[str, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> StudyRun:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_study(path, loader)
    if isinstance(path, list):
        path = path[0] if len(path) == 1 else path[0].parent
    request = request_for(loaded, adapter, path, options, loader)
    study, series = request.study, request.primary
    timings["load_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    try:
        result = run_analysis(adapter, request, progress=progress, cancel=cancel)
    except InputRejected as exc:  # raised after a look inside (e.g. "does not cover the neck")
        if str(path) in str(exc):
            raise
        raise InputRejected(f"{path}: {exc}") from exc
    timings["analysis_s"] = time.perf_counter() - t1
    if options.explain:  # after the run, before writing: the maps go out with the findings
        t_explain = time.perf_counter()
        explain_positives(adapter, request, result, options.explain, progress, cancel)
        timings["explain_s"] = time.perf_counter() - t_explain
    t2 = time.perf_counter()
    ref = StudyRef.from_series(study, series, str(path))
    if options.anonymise:  # once, here: findings.json, the report and summary.csv agree
        ref = ref.anonymised_copy(options.pseudonym_key, options.anonymous_id)
    # findings.json records load and analysis time; writing time is only known once it is written.
    findings_path = write_result(result, out_dir, ref, dict(timings), anonymise=options.anonymise)
    if options.seg:
        from app.analysis.seg_out import write_label_segs

        for reason in write_label_segs(result, request, out_dir)[1]:
            print(f"no DICOM SEG for {reason}", file=sys.stderr)
    report_path = None
    if options.report is not None:
        from app.report import ReportInput, ReportRun, build_report  # lazy: reportlab

        report_path = build_report(
            ReportInput(
                study=ref,
                runs=[ReportRun(result, series, inputs=dict(request.inputs))],
                anonymise=options.anonymise,
                page_size=options.page_size,
            ),
            options.report,
        )
    timings["write_s"] = time.perf_counter() - t2
    return StudyRun(study, series, result, request, ref, findings_path, report_path, timings)
