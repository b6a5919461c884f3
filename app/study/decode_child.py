"""Entry point of a ``decode_pool`` child: ``python -m app.study.decode_child``.

``app.ipc`` frames (JSON and raw arrays, no pickle) go over the child's stdin (paths in) and
stdout (arrays out); descriptor 1 is then pointed at stderr so that a codec printing to stdout
cannot corrupt them.
"""

from __future__ import annotations

import os
from multiprocessing.connection import Connection

from app.study.decode_pool import serve


def _cap_memory() -> None:
    """A code stream may claim any image size: past half the machine's memory the decoder
    gets a MemoryError here (a clean reason) instead of the OOM killer choosing a victim."""
    try:
        import resource  # POSIX only

        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = max(2 << 30, total // 2)
        if soft == resource.RLIM_INFINITY or soft > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass  # no limit to be had here: the child still contains a crash


def main() -> None:
    _cap_memory()
    rx = Connection(os.dup(0), writable=False)
    tx = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    import pydicom.pixels  # noqa: F401 - imported before the first request, not during it

    serve(rx, tx)


if __name__ == "__main__":
    main()
