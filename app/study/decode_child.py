"""Entry point of a ``decode_pool`` child: ``python -m app.study.decode_child``.

Messages are pickled over the child's stdin (paths in) and stdout (arrays out); descriptor 1 is
then pointed at stderr so that a codec printing to stdout cannot corrupt them.
"""

from __future__ import annotations

import os
from multiprocessing.connection import Connection

from app.study.decode_pool import serve


def main() -> None:
    rx = Connection(os.dup(0), writable=False)
    tx = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    import pydicom.pixels  # noqa: F401 - imported before the first request, not during it

    serve(rx, tx)


if __name__ == "__main__":
    main()
