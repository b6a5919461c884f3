"""``osteoview analyze PATH --task T --out DIR``: run a task headless on one study or a batch.

PATH is one study (a DICOM folder, a file) or, with ``--batch`` or when it holds only
subfolders (the RSNA ``train_images/<StudyInstanceUID>/`` layout), a folder of studies. One study
writes DIR/findings.json and its overlay files; a batch writes DIR/<study>/ per study and
DIR/summary.csv, skips studies already done (unless --force) and exits 1 if any study failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.analysis.batch import run_batch
from app.analysis.discovery import looks_like_batch
from app.analysis.one_study import AnalyzeOptions, StudyRun, analyze_study
from app.analysis.staging import REPORT_FILE, staged_study
from app.findings.io import FINDINGS_FILE, read_document
from app.findings.wording import decide_in
from app.report.pdf import ordered_findings


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="run a task on a study (or a folder of studies) and write findings.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="a study (folder or file) or a folder of studies")
    from app.analysis.tasks import task_ids

    p.add_argument("--task", required=True, help=f"task id: {', '.join(task_ids())}")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--report",
        nargs="?",
        const=True,
        default=None,
        metavar="FILE.pdf",
        help=f"also write a PDF report (to FILE.pdf, or DIR/{REPORT_FILE} without a name; "
        "in a batch, one per study)",
    )
    p.add_argument(
        "--series", metavar="UID", help="analyse this series (default: the one the task accepts)"
    )
    p.add_argument(
        "--input",
        action="append",
        metavar="SLOT=SERIES_UID_OR_PATH",
        help="fill one of the task's inputs yourself (repeatable), e.g. lateral=1.2.3 or "
        "fracture_mask=mask.png; `osteoview tasks` lists each task's inputs",
    )
    p.add_argument(
        "--explain",
        action="append",
        choices=("shap", "cam", "all"),
        metavar="METHOD",
        help="also explain the positive findings (the most probable one when none is) by shap, "
        "cam or all (repeatable); the maps are written beside findings.json (NPY + PNG) and "
        "the report shows them",
    )
    p.add_argument(
        "--seg",
        action="store_true",
        help="also write the task's label maps as DICOM SEG (DIR/seg-<name>.dcm) over the "
        "DICOM series each was computed on",
    )
    p.add_argument("--force", action="store_true", help="analyse again where results exist")
    p.add_argument(
        "--anonymise",
        "--anonymize",
        action="store_true",
        help="replace patient and study identifiers in outputs by a pseudonym keyed with this "
        "installation's secret (created on first use in the user's config folder)",
    )
    p.add_argument(
        "--anonymise-key",
        "--anonymize-key",
        metavar="FILE",
        help="key the pseudonyms with this file's bytes instead (at least 16; the same key gives "
        "the same pseudonyms on every machine); implies --anonymise",
    )
    p.add_argument("--page-size", choices=("A4", "Letter"), default="A4", help="report paper size")
    from app.pacs.options import add_analyze_arguments  # --user, --cache-size, --send

    add_analyze_arguments(p)
    p.add_argument(
        "--cluster",
        metavar="local:N|dask://HOST:PORT",
        help="run a batch on Dask: N local worker processes, or an existing scheduler "
        "(one study per task; same outputs and summary.csv; resumable)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--batch", action="store_true", help="PATH holds one subfolder or file per study"
    )
    mode.add_argument(
        "--single", action="store_true", help="PATH is one study even if it has subfolders"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.analysis.request import parse_input_overrides
    from app.analysis.tasks import UnknownTask, get_adapter
    from app.cli import CliError
    from app.pacs.options import prepare as prepare_pacs

    args.path = prepare_pacs(args)  # a dicomweb: study becomes its folder in the local cache
    path, out = Path(args.path), Path(args.out)
    if not path.exists():
        raise CliError(f"{path}: no such file or folder")
    if out.exists() and not out.is_dir():
        raise CliError(f"{out}: exists and is not a folder")
    try:
        adapter = get_adapter(args.task)
        args.inputs = parse_input_overrides(args.input)
    except (UnknownTask, ValueError) as exc:
        raise CliError(str(exc)) from exc
    args.pseudonym_key = None
    if args.anonymise_key:
        from app.findings.pseudonym import read_key_file

        args.pseudonym_key = read_key_file(args.anonymise_key)  # checked before any work
        args.anonymise = True
    args.explain = _explain_methods(args.explain, adapter)
    if args.seg and args.anonymise:  # a SEG copies the source images' patient module
        raise CliError("--seg cannot be combined with --anonymise (a SEG names the patient)")
    batch = args.batch or (not args.single and looks_like_batch(path))
    if batch:
        return _run_batch(args, path, out, adapter)
    return _run_single(args, path, out, adapter)


def _explain_methods(asked: list[str] | None, adapter) -> tuple[str, ...]:
    """--explain values checked against what the task can do, so a method the task lacks fails
    before any study is loaded; "all" is every method it has."""
    from app.cli import CliError

    asked = list(dict.fromkeys(asked or []))
    if not asked:
        return ()
    have = tuple(adapter.explain_methods)
    if not have:
        raise CliError(f"{adapter.task_id} has no explanation methods")
    if "all" in asked:
        return have
    missing = [m for m in asked if m not in have]
    if missing:
        raise CliError(
            f"{adapter.task_id} cannot explain by {', '.join(missing)} (it has: {', '.join(have)})"
        )
    return tuple(asked)


def _run_batch(args, path: Path, out: Path, adapter) -> int:
    from app.cli import CliError

    if args.report not in (None, True):
        raise CliError(f"{args.report}: in a batch --report takes no file name (one per study)")
    if not path.is_dir():
        raise CliError(f"{path}: --batch needs a folder of studies")
    options = _options(args)
    if getattr(args, "cluster", None):  # the same batch, one Dask task per study
        from app.analysis.cluster import run_batch_on_cluster

        result = run_batch_on_cluster(
            path, adapter, out, options, args.cluster, bool(args.report), args.force
        )
    else:
        result = run_batch(
            path, adapter, out, options, make_report=bool(args.report), force=args.force
        )
    ok = sum(r.status == "ok" for r in result.rows)
    failed = result.failed
    print(f"{ok} of {len(result.rows)} studies analysed; summary: {result.summary_path}")
    for row in failed:
        print(f"failed: {row.study}: {row.reason}")
    return 1 if failed else 0


class _StageLine:
    """Stage progress on a terminal only, so piped stderr holds nothing but real messages."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, fraction: float) -> None:
        if self.tty:
            sys.stderr.write(f"\r\033[Kanalysing: {stage} {fraction:.0%}")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _run_single(args, path: Path, out: Path, adapter) -> int:
    from app.cli import CliError

    existing = out / FINDINGS_FILE
    if existing.exists() and not args.force:
        raise CliError(f"{existing}: already exists; use --force to analyse again")
    report = None
    if args.report is True:
        report = out / REPORT_FILE
    elif args.report:
        report = Path(args.report)
        if report.suffix.lower() != ".pdf":
            raise CliError(f"{report}: the report must be a .pdf file")
    options = _options(args)
    line = _StageLine()
    # Everything is written into a staging folder beside DIR and published when complete: a
    # report that fails half-way leaves no findings.json behind to block the next run.
    try:
        with staged_study(out, report) as (staging, staged_report):
            options.report = staged_report
            run = analyze_study(path, adapter, staging, options, progress=line)
    finally:
        line.clear()
    run.findings_path = out / FINDINGS_FILE
    run.report_path = report
    _print_summary(run)
    if getattr(args, "send", None):  # results back to the PACS as SEG / SR / Encapsulated PDF
        from app.pacs.options import send

        send(args, run)
    return 0


def _options(args: argparse.Namespace) -> AnalyzeOptions:
    """The analysis options the command line gives, for one study or a batch alike."""
    return AnalyzeOptions(
        series_uid=args.series,
        anonymise=args.anonymise,
        page_size=args.page_size,
        inputs=args.inputs,
        explain=args.explain,
        pseudonym_key=args.pseudonym_key,
        seg=args.seg,
    )


def _print_summary(run: StudyRun) -> None:
    r, prov = run.result, run.result.provenance
    doc, _ = read_document(run.findings_path)
    print(f"task: {r.task_id} ({prov.model_name} {prov.model_version}; {prov.disclaimer})")
    for slot, series in run.request.inputs.items():
        shape = "x".join(str(n) for n in series.shape)
        uid = "(anonymised)" if doc["study"].get("anonymised") else series.series_uid or "-"
        origin = run.request.origins.get(slot, "auto")
        chosen = " (chosen by you)" if origin == "user" else ""
        print(f"{slot}: {uid} ({series.modality} {series.kind}, {shape}){chosen}")
    if r.summary:
        print(f"summary: {r.summary}")
    check = prov.domain_check
    if check.get("distance") is not None:
        verdict = "in domain" if check.get("in_domain") else "OUTSIDE the training domain"
        print(f"domain check: distance {check['distance']:.2f}, threshold "
              f"{check['threshold']:.2f}: {verdict}")  # fmt: skip
    print("findings:" + (f" {r.no_call} (probabilities for reference only)" if r.no_call else ""))
    for f, depth in ordered_findings(r.findings):
        name = "  " * depth + (f"{f.side} " if f.side else "") + f.label
        decision = decide_in(r, f)
        print(f"  {name:<28} {f.probability:6.3f}  (threshold {f.threshold:.2f})  {decision.text}")
    for e in r.extra.get("explanations", []):
        done = ", ".join(e.get("overlays", [])) or f"unavailable: {e.get('unavailable', '')}"
        print(f"explained {e['finding']} by {e['method']}: {done}")
    times = ", ".join(f"{k} {v:.2f} s" for k, v in run.timings_s.items())
    print(f"time: {times}")
    files = [d.get(k) for d in doc.get("overlays", []) for k in ("file", "npy", "png") if d.get(k)]
    print(f"wrote {run.findings_path}" + (f" and {len(files)} overlay file(s)" if files else ""))
    if run.report_path:
        print(f"wrote {run.report_path}")
