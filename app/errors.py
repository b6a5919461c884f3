"""User-facing errors shared by the CLI, the batch and the viewer's workers: the one list of
exception types that mean "bad input or environment, say it in one line" rather than "a bug,
keep the traceback", and the one place that words an OS error.

Kept apart from ``app.cli`` so that ``python -m app.cli`` and the ``osteoview`` script see the
same classes; nothing heavy is imported until ``user_errors()`` is called.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Every exception type that reports bad input or a bad environment (unreadable file,
    read-only folder, missing or modified weights, an input the task does not take, a cancel)."""
    from app.analysis.tasks import UnknownTask
    from app.engine.adapter import AnalysisCancelled, ExplainUnavailable, InputRejected
    from app.engine.runtime import WeightsError
    from app.findings.io import FindingsFormatError
    from app.findings.pseudonym import PseudonymKeyError
    from app.study.model import LoadCancelled, StudyLoadError

    return (
        CliError,
        StudyLoadError,
        InputRejected,
        ExplainUnavailable,
        WeightsError,
        UnknownTask,
        FindingsFormatError,
        PseudonymKeyError,
        LoadCancelled,
        AnalysisCancelled,
        OSError,  # permission denied, read-only or full disk, missing file: all the user's to fix
    )


_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EEXIST: "it already exists",
}


def os_error_reason(exc: OSError) -> str:
    """The reason in words ("permission denied"), never "[Errno 13] ..."."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    if exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def _is_output(path: Path, out: Path) -> bool:
    """``path`` is ``out``, inside it, or a hidden temporary or staging name beside it."""
    if _inside(path, out):
        return True
    beside = path.parent.resolve() == out.parent.resolve()
    return beside and path.name.startswith(".") and out.name in path.name


def describe_os_error(exc: OSError, outputs: tuple[str | os.PathLike, ...] = ()) -> str:
    """ "cannot read X: permission denied" or "cannot write X: ..." (X being one of ``outputs``,
    the files and folders the command writes, or inside one); without a file name, the reason."""
    reason = os_error_reason(exc)
    if exc.filename is None:
        return reason
    path = Path(os.fsdecode(exc.filename))
    writing = any(_is_output(path, Path(out)) for out in outputs if out)
    if exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
        writing = True
    return f"cannot {'write' if writing else 'read'} {path}: {reason}"
