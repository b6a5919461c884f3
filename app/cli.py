"""Command line: ``osteoview [PATH]`` opens the viewer; subcommands run headless.

Each subcommand lives in ``app/commands/<name>.py`` with ``register(subparsers)``; bad input ends
with one readable line on stderr naming the file and the reason and a non-zero exit code, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from app.errors import CliError

COMMANDS = ("info", "export", "demo", "tasks", "analyze", "screenshot")


def _user_errors() -> tuple[type[BaseException], ...]:
    from app.analysis.tasks import UnknownTask
    from app.engine.adapter import AnalysisCancelled, InputRejected
    from app.engine.runtime import WeightsError
    from app.study.model import LoadCancelled, StudyLoadError

    return (
        CliError,
        StudyLoadError,
        InputRejected,
        WeightsError,
        UnknownTask,
        LoadCancelled,
        AnalysisCancelled,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
        NotADirectoryError,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osteoview",
        description="OsteoView: bone and spine radiology viewer with AI predictions "
        "(demo weights: trained on synthetic phantoms, not for clinical use).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"app.commands.{name}")
        except ImportError:
            continue  # a command whose code has not landed yet
        module.register(sub)
    return parser


def _open_viewer(paths: list[str]) -> int:
    try:
        from app.ui.main import run_viewer
    except ImportError as exc:
        print(f"osteoview: the viewer is not available ({exc})", file=sys.stderr)
        return 2
    return run_viewer(paths)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        return _open_viewer(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename:
            msg = f"{exc.filename}: {exc.strerror}"
        print(f"osteoview {args.command}: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"osteoview {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
