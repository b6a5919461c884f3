"""Write ``osteoview.1`` from the command line's own argparse help, so the man page says what
``osteoview --help`` says and cannot drift from it (``python packaging/make_manpage.py OUT``)."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _roff(text: str) -> str:
    """Plain text safe inside roff: backslashes doubled, lines starting with . or ' escaped."""
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def manpage(version: str) -> str:
    sys.path.insert(0, str(ROOT))
    from app.cli import build_parser

    parser = build_parser()
    parser.prog = "osteoview"
    date = datetime.date.today().isoformat()
    out = [
        f'.TH OSTEOVIEW 1 "{date}" "OsteoView {version}" "User Commands"',
        ".SH NAME",
        "osteoview \\- bone and spine radiology viewer with AI predictions",
        ".SH SYNOPSIS",
        ".B osteoview",
        "[\\fIPATH\\fR]",
        ".br",
        ".B osteoview",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        _roff(parser.description or ""),
        ".PP",
        "Without a command, opens the viewer, with PATH (a DICOM file or folder, DICOMDIR, NIfTI "
        "or image file) loaded when given.",
        ".SH COMMANDS",
    ]
    for name, sub in _subparsers(parser).items():
        out += [f".SS {name}", ".nf", _roff(sub.format_help().rstrip()), ".fi"]
    out += [
        ".SH ENVIRONMENT",
        ".TP",
        ".B OSTEOVIEW_THREADS",
        "Threads each model session uses (default: all cores, less one on 2 to 4 cores).",
        ".SH FILES",
        ".TP",
        ".I /opt/osteoview",
        "The self-contained program (no Python needed).",
        ".SH SEE ALSO",
        "The README and ARCHITECTURE.md in the source tree.",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    from app import __version__

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("osteoview.1")
    target.write_text(manpage(__version__))
    print(target)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
