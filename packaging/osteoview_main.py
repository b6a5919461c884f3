"""Entry point of the self-contained bundle (PyInstaller one-folder; ``packaging/osteoview.spec``).

A frozen program has no ``python -m``: the loader's decode children and the explanation child are
started as ``sys.executable -m MODULE`` (``app.ipc.spawn_python_child``), so this script runs those modules itself when asked, and the
CLI otherwise. ``OSTEOVIEW_STARTUP_PROBE=1`` opens the
viewer, prints the seconds from process start to its first shown window and quits
(``app/ui/startup_probe.py``).
"""

from __future__ import annotations

import os
import sys

# The modules the program starts as children of itself (see the docstring); each has a main().
# tests/packaging/test_entry.py finds every `sys.executable, "-m", ...` and `spawn_python_child("...")`
# in app/ and checks it is here.
CHILD_MODULES = ("app.study.decode_child", "app.analysis.explain_child")


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "-m" and sys.argv[2] in CHILD_MODULES:
        import importlib

        module = importlib.import_module(sys.argv[2])
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        module.main()  # each child module has a main(), as its `__main__` block calls
        return 0
    if os.environ.get("OSTEOVIEW_STARTUP_PROBE") == "1":
        from app.ui.startup_probe import probe

        return probe(sys.argv[1:])
    from app.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
