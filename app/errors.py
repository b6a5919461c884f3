"""User-facing errors shared by the CLI and its commands (kept apart from ``app.cli`` so that
``python -m app.cli`` and the ``osteoview`` script see the same class)."""


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""
