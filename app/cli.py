"""Command line: ``osteoview [PATH]`` opens the viewer; subcommands run headless.

Each subcommand lives in ``app/commands/<name>.py`` with ``register(subparsers)``; bad input ends
with one readable line on stderr naming the file and the reason and a non-zero exit code, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from app.errors import CliError, describe_os_error, user_errors

__all__ = ["CliError", "main"]  # commands import CliError from here

COMMANDS = ("info", "export", "demo", "tasks", "analyze", "screenshot", "pull")


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


def _one_line(exc: BaseException, args: argparse.Namespace) -> str:
    """The message a user sees: an OS error says what could not be read or written and why."""
    if isinstance(exc, OSError):
        outputs = tuple(str(v) for v in (getattr(args, "out", None), _report_arg(args)) if v)
        return describe_os_error(exc, outputs)
    return str(exc) or type(exc).__name__


def _report_arg(args: argparse.Namespace) -> str | None:
    report = getattr(args, "report", None)
    return report if isinstance(report, str) else None


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
    except user_errors() as exc:
        print(f"osteoview {args.command}: {_one_line(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"osteoview {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
