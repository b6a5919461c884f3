"""Messages between the viewer and its child processes, without pickle.

The decode children (``app.study.decode_pool``) read hostile files with native codecs: a code
stream that takes over a child could send back anything, and unpickling it would run code in the
viewer. So every message, in both directions and for every child, is a frame that can only
carry data: a JSON header and zero or more raw numpy arrays, each sent with ``send_bytes``:

    message 1      b"OVIPC1\\n" + UTF-8 JSON {"kind": str, "body": {...}, "arrays": [...]}
    message 2..n   the bytes of each array (C order, little-endian), one message per array

``arrays`` lists ``{"dtype": str, "shape": [int, ...]}`` per payload; the dtype must be one of
``DTYPES`` (plain numbers and booleans: no objects, no records) and the payload exactly as long
as the shape says. Lengths are checked before a byte is read (``recv_bytes(maxlength)``), so a
claim of a huge array costs nothing. Anything else raises ``ProtocolError``; after one, the
stream is out of step and the connection must be closed (the callers end that child).

Typed readers (``text``, ``number``, ...) check the fields of a body: a wrong type is a
``ProtocolError`` naming the field, never a value passed on.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

MAGIC = b"OVIPC1\n"
# plain numbers only: the payload is copied into an array of this type, never interpreted
DTYPES = frozenset(
    ["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"]
)
MAX_HEADER_BYTES = 64 << 20  # a request's series metadata and source paths are far less
MAX_ARRAYS = 4096
MAX_NDIM = 8
MAX_PAYLOAD_BYTES = 16 << 30  # all arrays of one message; callers may pass a tighter cap


class ProtocolError(ValueError):
    """A message that is not a well-formed frame; says what was wrong with it."""


def send(conn: Connection, kind: str, body: dict | None = None,
         arrays: Sequence[np.ndarray] = ()) -> None:  # fmt: skip
    """Send one message: ``body`` must be JSON data (numpy scalars are converted)."""
    payloads = [_little_endian(np.asarray(a)) for a in arrays]
    header = {
        "kind": kind,
        "body": body or {},
        "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in payloads],
    }
    text = json.dumps(header, default=_plain, separators=(",", ":"))
    conn.send_bytes(MAGIC + text.encode())
    for a in payloads:
        conn.send_bytes(a.reshape(-1).view(np.uint8))


def recv(
    conn: Connection, max_payload: int = MAX_PAYLOAD_BYTES, part_timeout: float | None = None
) -> tuple[str, dict, list[np.ndarray]]:
    """(kind, body, arrays) of the next message. Raises ProtocolError for a malformed one,
    EOFError or OSError when the pipe ends (as ``Connection.recv_bytes``). With
    ``part_timeout``, an array that has not begun to arrive that many seconds after the part
    before it is a ProtocolError rather than a wait without end."""
    head = _recv_limited(conn, len(MAGIC) + MAX_HEADER_BYTES, "header")
    if not head.startswith(MAGIC):
        raise ProtocolError("not an OsteoView message (bad magic)")
    header = parse_header(head[len(MAGIC) :])
    arrays = []
    left = max_payload
    for n, (dtype, shape) in enumerate(_specs(header["arrays"])):
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > left:
            raise ProtocolError(f"array {n} claims {nbytes} bytes, over the {max_payload} cap")
        left -= nbytes
        if part_timeout is not None and not conn.poll(part_timeout):
            raise ProtocolError(f"array {n} did not arrive within {part_timeout:.0f} s")
        data = _recv_limited(conn, nbytes, f"array {n}")
        if len(data) != nbytes:
            raise ProtocolError(f"array {n} has {len(data)} bytes, its shape needs {nbytes}")
        # a copy: writable like the arrays it replaces, and not tied to the received bytes
        arrays.append(np.frombuffer(data, dtype=dtype).reshape(shape).copy())
    return header["kind"], header["body"], arrays


def parse_header(raw: bytes) -> dict:
    """The checked header: kind a str, body a dict, arrays a list (checked by ``recv``)."""
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"header is not JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict) or set(header) != {"kind", "body", "arrays"}:
        raise ProtocolError("header must be an object with kind, body and arrays")
    text(header, "kind")
    mapping(header, "body")
    if not isinstance(header["arrays"], list) or len(header["arrays"]) > MAX_ARRAYS:
        raise ProtocolError(f"header arrays must be a list of at most {MAX_ARRAYS}")
    return header


def _specs(specs: list) -> list[tuple[np.dtype, tuple[int, ...]]]:
    out = []
    for n, spec in enumerate(specs):
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape"}:
            raise ProtocolError(f"array {n}: expected {{dtype, shape}}")
        if not isinstance(spec["dtype"], str) or spec["dtype"] not in DTYPES:
            raise ProtocolError(f"array {n}: dtype {spec['dtype']!r} is not allowed")
        shape = spec["shape"]
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(is_int(v) and v >= 0 for v in shape)):  # fmt: skip
            raise ProtocolError(f"array {n}: shape must be up to {MAX_NDIM} integers >= 0")
        out.append((np.dtype(spec["dtype"]), tuple(shape)))
    return out


def _recv_limited(conn: Connection, limit: int, what: str) -> bytes:
    try:
        return conn.recv_bytes(limit)
    except OSError:
        # recv_bytes refuses a longer message by closing the connection ("bad message
        # length"); a pipe error leaves it open and is the caller's to report
        if conn.closed:
            raise ProtocolError(f"{what} longer than the {limit} bytes allowed") from None
        raise


def _little_endian(a: np.ndarray) -> np.ndarray:
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    if a.dtype.str not in DTYPES:
        raise TypeError(f"arrays of {a.dtype} cannot be sent")  # the sender's own mistake
    return a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)


def _plain(value: Any) -> Any:
    """JSON for the numpy values a body may hold (``extra`` of a result); nothing else."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be sent in a message")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ProtocolError("duplicate key in header")
    return out


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---- typed readers of a body's fields ------------------------------------------------------------
_MISSING = object()


def _get(d: dict, key: str, default: Any) -> Any:
    if not isinstance(d, dict):
        raise ProtocolError(f"expected an object holding {key!r}")
    value = d.get(key, default)
    if value is _MISSING:
        raise ProtocolError(f"{key!r} is missing")
    return value


def text(d: dict, key: str, default: Any = _MISSING) -> str:
    value = _get(d, key, default)
    if not isinstance(value, str):
        raise ProtocolError(f"{key!r} must be a string")
    return value


def number(d: dict, key: str, default: Any = _MISSING, optional: bool = False) -> float | None:
    value = _get(d, key, default)
    if optional and value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ProtocolError(f"{key!r} must be a number")
    return float(value)


def integer(d: dict, key: str, default: Any = _MISSING) -> int:
    value = _get(d, key, default)
    if not is_int(value):
        raise ProtocolError(f"{key!r} must be an integer")
    return value


def flag(d: dict, key: str, default: Any = _MISSING, optional: bool = False) -> bool | None:
    value = _get(d, key, default)
    if optional and value is None:
        return None
    if not isinstance(value, bool):
        raise ProtocolError(f"{key!r} must be true or false")
    return value


def mapping(d: dict, key: str, default: Any = _MISSING) -> dict:
    value = _get(d, key, default)
    if not isinstance(value, dict):
        raise ProtocolError(f"{key!r} must be an object")
    return value


def items(d: dict, key: str, default: Any = _MISSING) -> list:
    value = _get(d, key, default)
    if not isinstance(value, list):
        raise ProtocolError(f"{key!r} must be a list")
    return value


def numbers(d: dict, key: str, length: int, default: Any = _MISSING) -> tuple[float, ...]:
    """A list of exactly ``length`` numbers."""
    value = items(d, key, default)
    if len(value) != length or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise ProtocolError(f"{key!r} must be {length} numbers")
    return tuple(float(v) for v in value)


def strings(d: dict, key: str, default: Any = _MISSING) -> list[str]:
    value = items(d, key, default)
    if not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"{key!r} must be a list of strings")
    return list(value)


def array(arrays: list[np.ndarray], d: dict, key: str) -> np.ndarray:
    """The payload a field refers to by its index."""
    n = integer(d, key)
    if not 0 <= n < len(arrays):
        raise ProtocolError(f"{key!r} refers to array {n}, the message has {len(arrays)}")
    return arrays[n]


class ArrayTable:
    """Arrays to send with a message, each once: the same array referred to twice (a CT that
    is a request's input and a box overlay's reference) travels once."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self._index: dict[int, int] = {}

    def add(self, a: np.ndarray) -> int:
        n = self._index.get(id(a))
        if n is None:
            n = self._index[id(a)] = len(self.arrays)
            self.arrays.append(a)  # kept: the id stays this array's while the table lives
        return n


# ---- the child processes these frames travel between ------------------------------------
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout, for -m


def spawn_python_child(module: str) -> tuple[subprocess.Popen, Connection, Connection]:
    """``python -m module`` with this checkout on its path, and (process, to-child,
    from-child) connections over its stdin and stdout. Shared by the decode pool and the
    explanation child; every message on them is a frame of this module."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    tx = Connection(_owned_fd(proc.stdin), readable=False)
    rx = Connection(_owned_fd(proc.stdout), writable=False)
    return proc, tx, rx


def _owned_fd(stream) -> int:
    """The descriptor of a Popen pipe, owned by the caller (the file object is closed)."""
    fd = os.dup(stream.fileno())
    stream.close()
    return fd


def end_child(proc: subprocess.Popen | None, *conns: Connection | None) -> None:
    """Close a child's connections and kill it if it still runs (it may be mid-way through a
    hostile file or a long explanation: nothing of its work is wanted any more)."""
    for conn in conns:
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
    if proc is not None:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            pass
