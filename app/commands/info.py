"""``osteoview info PATH [--json]``: what a folder or file holds, as the loader sees it.

JSON: ``{"studies": [{"study_uid", "patient", "series": [{"series_uid", "modality",
"description", "kind", "shape", "spacing_mm", "dtype", "window", "warnings", "files"}]}],
"errors": [{"path", "reason"}]}``. Shape and spacing list the slice axis first (k, j, i).
Files that could not be loaded are listed under "errors"; the exit code is 0 when anything
loaded, 2 (with one line on stderr) when nothing could.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from typing import TextIO

from app.study.model import LoadResult, Series

PROGRESS_MIN_TOTAL = 100  # only big loads show progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="list the studies and series in PATH (with --json: machine-readable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="DICOM folder/file, DICOMDIR, NIfTI or image")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


class StderrProgress:
    """Progress on stderr for big loads, only when stderr is a terminal (no noise in logs)."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label, self.stream = label, stream
        self.enabled = stream.isatty()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < PROGRESS_MIN_TOTAL:
            return
        self.shown = True
        print(f"\r{self.label}: {100 * done // total:3d}%", end="", file=self.stream, flush=True)

    def close(self) -> None:
        if self.shown:
            blank = "\r" + " " * (len(self.label) + 6) + "\r"
            print(blank, end="", file=self.stream, flush=True)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[TextIO]:
    """Codec libraries (OpenJPEG, GDCM) print to file descriptor 2 on bad input; the loader
    already reports those files with a reason, so their lines are dropped. Yields a stream on
    the real stderr for progress."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    real = os.fdopen(os.dup(saved), "w")
    try:
        os.dup2(devnull, 2)
        yield real
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        real.close()


def load_quietly(path: str, label: str) -> LoadResult:
    """``app.study.load`` with stderr progress, and pydicom's format warnings and codec chatter
    silenced (the loader reports what matters as series warnings and per-file errors)."""
    from app.study import load

    with _native_stderr_silenced() as real_stderr:
        progress = StderrProgress(label, real_stderr)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return load(path, progress=progress)
        finally:
            progress.close()


def series_dict(s: Series) -> dict:
    arr = s.image.array
    return {
        "series_uid": s.series_uid,
        "modality": s.modality,
        "description": s.description,
        "kind": s.kind,
        "shape": list(s.shape),
        "spacing_mm": [round(float(v), 6) for v in s.spacing_mm],
        "channels": int(arr.shape[3]) if arr.ndim == 4 else 1,
        "dtype": str(arr.dtype),
        "window": list(s.window) if s.window is not None else None,
        "invert": s.invert,
        "body_part": s.body_part,
        "view_position": s.view_position,
        "warnings": list(s.warnings),
        "files": len(s.source_paths),
    }


def result_dict(result: LoadResult) -> dict:
    return {
        "studies": [
            {
                "study_uid": st.study_uid,
                "patient": asdict(st.patient),
                "series": [series_dict(s) for s in st.series],
            }
            for st in result.studies
        ],
        "errors": [{"path": e.path, "reason": e.reason} for e in result.errors],
    }


def _fmt(values, digits: int = 3) -> str:
    return " x ".join(f"{v:.{digits}g}" if isinstance(v, float) else str(v) for v in values)


def print_table(result: LoadResult) -> None:
    for st in result.studies:
        p = st.patient
        who = ", ".join(x for x in (p.name, p.patient_id, p.study_date, p.study_description) if x)
        print(f"Study {st.study_uid}" + (f"  ({who})" if who else ""))
        print(f"  {'kind':<10} {'mod':<4} {'shape (k x j x i)':<20} {'spacing mm':<26} description")
        for s in st.series:
            shape = _fmt(s.shape) + (" x 3" if s.image.is_rgb else "")
            spacing = _fmt([float(v) for v in s.spacing_mm], 4)
            print(f"  {s.kind:<10} {s.modality:<4} {shape:<20} {spacing:<26} {s.description}")
            print(f"  {'':<10} uid {s.series_uid}")
            for w in s.warnings:
                print(f"  {'':<10} warning: {w}")
    if result.errors:
        print(f"Errors ({len(result.errors)} file(s) not loaded):")
        for e in result.errors:
            print(f"  {e.path}: {e.reason}")


def run(args: argparse.Namespace) -> int:
    result = load_quietly(args.path, "loading")
    try:
        if args.json:
            json.dump(result_dict(result), sys.stdout, indent=2)
            print()
        else:
            print_table(result)
        sys.stdout.flush()
    except BrokenPipeError:  # `osteoview info ... | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0
