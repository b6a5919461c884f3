"""``osteoview export PATH [--series UID] --out FILE.nii.gz``: one series as NIfTI.

The NIfTI affine maps voxel (i, j, k) to RAS millimetres (DICOM LPS with x and y negated), so
any NIfTI tool places the volume where the scanner did, gantry tilt included (the affine is then
sheared). Without --series, PATH must hold one series, or the largest volume is exported
(volumes and label maps before radiographs, then by voxel count) and stderr says which and lists
the other UIDs. Colour (RGB) series cannot be exported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.info import load_quietly
from app.errors import describe_os_error
from app.study.model import Series
from app.study.nifti import write_nifti


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write one series as NIfTI (.nii/.nii.gz, RAS affine)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="DICOM folder/file, DICOMDIR, NIfTI or image")
    p.add_argument(
        "--series",
        metavar="UID",
        help="series UID as `osteoview info` prints it (default: the largest volume)",
    )
    p.add_argument("--out", required=True, metavar="FILE.nii.gz", help="output NIfTI file")
    p.set_defaults(func=run)


def _size_rank(s: Series) -> tuple[int, int]:
    k, j, i = s.shape
    return (1 if s.kind in ("volume", "labelmap") else 0, k * j * i)


def choose_series(all_series: list[Series], uid: str | None) -> tuple[Series, str | None]:
    """The series to export, and a note for stderr when the choice was automatic."""
    from app.cli import CliError

    if uid:
        matches = [s for s in all_series if s.series_uid == uid]
        if not matches:
            known = ", ".join(s.series_uid for s in all_series)
            raise CliError(f"series {uid} not found (series here: {known})")
        return matches[0], None
    if len(all_series) == 1:
        return all_series[0], None
    best = max(all_series, key=_size_rank)
    others = ", ".join(s.series_uid for s in all_series if s is not best)
    note = (
        f"{len(all_series)} series found; exporting the largest, {best.series_uid} "
        f"({best.kind}, {' x '.join(map(str, best.shape))}); others: {others}. "
        "Use --series UID to choose."
    )
    return best, note


def run(args: argparse.Namespace) -> int:
    from app.cli import CliError

    out = Path(args.out)
    if not (out.name.endswith(".nii.gz") or out.name.endswith(".nii")):
        raise CliError(f"{out}: the output name must end in .nii.gz or .nii")
    result = load_quietly(args.path, "loading")
    series, note = choose_series(result.all_series(), args.series)
    if note:
        print(f"osteoview export: {note}", file=sys.stderr)
    if series.image.is_rgb:
        raise CliError(
            f"series {series.series_uid} is a colour (RGB) image; NIfTI export takes grayscale"
        )
    try:
        write_nifti(series.image, out)
    except ValueError as exc:  # geometry with no valid affine: says which file and why
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(describe_os_error(exc, (out,))) from exc
    for w in series.warnings:
        print(f"osteoview export: warning: {w}", file=sys.stderr)
    print(f"wrote {out} ({series.modality} {series.kind}, {' x '.join(map(str, series.shape))})")
    return 0
