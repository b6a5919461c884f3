"""``osteoview demo --out DIR [--seed N] [--task T ...]``: write the synthetic demo studies.

Each task's phantom generator (declared in ``models/<task>/task.py``) writes a few studies, DICOM plus a
``truth.json`` with the ground truth, into ``DIR/<task>/<case>/``. They are synthetic phantoms,
not patients. A task whose phantom code is not available is skipped with a note on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.analysis.tasks import PhantomUnavailable, phantom_module, task_specs


def _phantom_tasks() -> list[str]:
    return [s.id for s in task_specs() if s.phantom]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="write synthetic demo studies (phantoms with ground truth) into a folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--task",
        action="append",
        choices=_phantom_tasks(),
        metavar="TASK",
        help=f"only this task (repeatable); one of: {', '.join(_phantom_tasks())}",
    )
    p.set_defaults(func=run)


def _check_out_dir(out: Path) -> None:
    from app.cli import CliError

    if out.exists() and not out.is_dir():
        raise CliError(f"{out}: --out must be a folder, and this is a file")
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise CliError(f"{out}: cannot create the folder, {parent} is a file")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{out}: cannot create the folder ({exc.strerror or exc})") from exc
    probe = out / ".osteoview-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CliError(f"{out}: folder is not writable ({exc.strerror or exc})") from exc


def write_demos(out: Path, seed: int = 0, tasks: list[str] | None = None) -> dict[str, list[Path]]:
    """Write every (or the named) task's demo studies; returns task -> study folders.

    Unavailable tasks are reported on stderr and left out of the result.
    """
    written: dict[str, list[Path]] = {}
    for task in tasks or _phantom_tasks():
        try:
            module = phantom_module(task)
        except PhantomUnavailable as exc:
            print(f"osteoview demo: skipping {exc}", file=sys.stderr)
            continue
        written[task] = [Path(p) for p in module.write_demo(out, seed=seed)]
    return written


def run(args: argparse.Namespace) -> int:
    from app.cli import CliError

    out = Path(args.out)
    _check_out_dir(out)
    tasks = list(dict.fromkeys(args.task)) if args.task else None
    written = write_demos(out, args.seed, tasks)
    if not written:
        raise CliError("no phantom generator is available; nothing was written")
    for task, paths in written.items():
        for p in paths:
            try:
                shown = p.relative_to(out)
            except ValueError:
                shown = p
            print(f"{task}\t{out / shown}")
    total = sum(len(p) for p in written.values())
    print(f"wrote {total} synthetic studies (phantoms, not patients) into {out}", file=sys.stderr)
    return 0
