"""Regenerate the bundled demo studies (``make run`` opens this folder).

    .venv/bin/python resources/demo/make_demo.py [--seed 0] [--out resources/demo]

Calls every available task's phantom generator (declared in ``models/<task>/task.py``) with a fixed seed, then
re-encodes each DICOM file losslessly (JPEG 2000, decoded by pylibjpeg-openjpeg or GDCM) so the
folder stays commit-sized. Tasks whose phantom code is missing are skipped with a note. The
studies are synthetic phantoms, not patients (see README.md here).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, when run as a script

from app.analysis.tasks import task_specs  # noqa: E402
from app.commands.demo import write_demos  # noqa: E402

PHANTOMS = [s.id for s in task_specs() if s.phantom]

SEED = 0
SIZE_BUDGET_MB = 10.0


def compress_dicom(path: Path) -> bool:
    """Re-encode one DICOM file as JPEG 2000 lossless in place; False if it cannot be."""
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    ds = pydicom.dcmread(path)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return True
    try:
        ds.compress(JPEG2000Lossless)
    except Exception as exc:  # noqa: BLE001 - no encoder: keep the uncompressed file
        print(f"make_demo: {path}: left uncompressed ({exc})", file=sys.stderr)
        return False
    tmp = path.with_suffix(".tmp")
    ds.save_as(tmp, enforce_file_format=True)
    tmp.replace(path)
    return True


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--no-compress", action="store_true", help="keep uncompressed DICOM")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for task in PHANTOMS:  # start clean: no stale studies from an older generator
        if (out / task).is_dir():
            shutil.rmtree(out / task)
    written = write_demos(out, seed=args.seed)
    if not args.no_compress:
        for dcm in sorted(out.rglob("*.dcm")):
            compress_dicom(dcm)
    for task in written:
        print(f"{task}: {len(written[task])} studies, {folder_mb(out / task):.2f} MB")
    total = folder_mb(out)
    print(f"total {total:.2f} MB in {out}")
    if total > SIZE_BUDGET_MB:
        print(f"make_demo: warning: over the {SIZE_BUDGET_MB:g} MB budget", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
