"""A child taken over by a hostile file (``python -m tests.ipc_hostile_child``): it sends
a pickle whose loading would create the file named by ``$OSTEOVIEW_TEST_MARKER``, at start and
in answer to every message. Used by tests/test_ipc.py to show that the viewer's side never
unpickles what a child sends."""

from __future__ import annotations

import os
import pickle
from multiprocessing.connection import Connection


class Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # what an attacker's pickle does: call anything on load
        return (open, (self.marker, "w"))


def main() -> None:
    rx = Connection(os.dup(0), writable=False)
    tx = Connection(os.dup(1), readable=False)
    evil = pickle.dumps(("ready", Payload(os.environ["OSTEOVIEW_TEST_MARKER"])))
    tx.send_bytes(evil)  # at once (the explanation child's "ready"), then for every message
    while True:
        try:
            rx.recv_bytes()
        except (EOFError, OSError):
            return
        tx.send_bytes(evil)


if __name__ == "__main__":
    main()
