"""``osteoview screenshot PATH --out FILE.png [--overlay-truth] [--task T]``: render the viewer
with PATH loaded in a real X server (Xvfb is started when there is no display) and write what is
on screen, VTK views included."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.atomic import check_can_write


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "screenshot",
        help="render the viewer with a study loaded and save a PNG",
        description=__doc__,
    )
    p.add_argument("path", help="DICOM file or folder, NIfTI or image file")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument(
        "--overlay-truth", action="store_true", help="draw the ground truth from truth.json"
    )
    p.add_argument("--task", default=None, help="run this task and show its result")
    p.add_argument("--size", default="1500x900", help="window size WxH (default 1500x900)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.errors import CliError

    if not Path(args.path).exists():
        raise FileNotFoundError(2, "No such file or directory", args.path)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CliError(f"{out}: the output must be a .png file")
    if not out.parent.exists():
        raise CliError(f"{out.parent}: output folder does not exist")
    check_can_write(out)  # before rendering: a read-only folder fails at once
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError as exc:
        raise CliError(f"--size {args.size}: expected WxH, e.g. 1500x900") from exc

    from app.ui.xserver import ensure_display

    if ensure_display() is None:
        raise CliError("no X display and Xvfb is not installed: cannot render the viewer")
    from app.ui.screenshot import take_screenshot

    shown = take_screenshot(args.path, str(out), args.overlay_truth, args.task, (w, h))
    layers = ", ".join(shown["layers"]) or "none"
    print(f"{out}: {shown['size'][0]}x{shown['size'][1]}, {shown['series']}, layers: {layers}")
    if shown.get("summary"):
        print(f"{args.task}: {shown['summary']}")
    return 0
