"""The pickle-free message format between the viewer and its children (app.ipc): arrays of every
allowed dtype come back bit for bit, and anything malformed (header types, a truncated or
over-long payload, an object dtype, an oversize claim, a pickle) is refused with a clear error
before it is used. The decode pool turns a child's pickle into that file's error without
loading it, and a request, result and finding make the trip to the explanation child intact."""

from __future__ import annotations

import json
import os
import pickle
import struct
import threading
from multiprocessing import Pipe
from pathlib import Path

import numpy as np
import pytest

from app import ipc

REPO = Path(__file__).resolve().parents[1]
FEMUR = REPO / "resources/demo/femur-ao/trochanteric_A2_left"


def _pipe():
    rx, tx = Pipe(duplex=False)
    return rx, tx


def _through(kind: str, body: dict, arrays=(), **recv_kwargs):
    rx, tx = _pipe()
    # a thread: a payload larger than the pipe's buffer blocks until it is read
    sender = threading.Thread(target=ipc.send, args=(tx, kind, body, arrays))
    sender.start()
    try:
        return ipc.recv(rx, **recv_kwargs)
    finally:
        sender.join(10)


def _raw(*messages: bytes) -> object:
    """A connection with these raw messages coming, as a hostile child would write them (from
    a thread: a message larger than the pipe's buffer waits for its reader)."""
    rx, tx = _pipe()

    def write() -> None:
        try:
            for m in messages:
                tx.send_bytes(m)
        except OSError:
            pass  # the reader refused the frame and closed its end
        finally:
            tx.close()

    threading.Thread(target=write, daemon=True).start()
    return rx


def _header(arrays: list, kind: str = "ok", body: dict | None = None) -> bytes:
    return ipc.MAGIC + json.dumps({"kind": kind, "body": body or {}, "arrays": arrays}).encode()


@pytest.mark.parametrize("dtype", sorted(ipc.DTYPES))
def test_every_allowed_dtype_comes_back_exactly(dtype):
    rng = np.random.default_rng(7)
    a = (rng.random((3, 5, 7)) * 200 - 50).astype(np.dtype(dtype))
    kind, body, [b] = _through("ok", {"n": 1, "x": 2.5, "s": "é", "l": [None, True]}, [a])
    assert kind == "ok" and body == {"n": 1, "x": 2.5, "s": "é", "l": [None, True]}
    assert b.dtype == a.dtype and b.shape == a.shape and b.flags.writeable
    assert b.tobytes() == a.tobytes()


def test_shapes_byte_order_and_sharing():
    big_endian = np.arange(12, dtype=">i2").reshape(3, 4)
    view = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]  # not contiguous
    empty, scalar = np.zeros((0, 4), np.uint8), np.array(3.5)
    _, _, out = _through("x", {}, [big_endian, view, empty, scalar])
    assert out[0].dtype == np.dtype("<i2")
    for sent, got in zip((big_endian, view, empty, scalar), out, strict=True):
        np.testing.assert_array_equal(sent, got)
        assert sent.shape == got.shape
    table = ipc.ArrayTable()
    assert table.add(view) == table.add(view) == 0 and table.add(empty) == 1


@pytest.mark.parametrize(
    "header, says",
    [
        ({"kind": 3, "body": {}, "arrays": []}, "'kind' must be a string"),
        ({"kind": "ok", "body": [], "arrays": []}, "'body' must be an object"),
        ({"kind": "ok", "body": {}}, "kind, body and arrays"),
        ({"kind": "ok", "body": {}, "arrays": [], "code": "x"}, "kind, body and arrays"),
        ({"kind": "ok", "body": {}, "arrays": {}}, "must be a list"),
        ({"kind": "ok", "body": {}, "arrays": [{"dtype": "<f4"}]}, "expected {dtype, shape}"),
        ({"kind": "ok", "body": {}, "arrays": [{"dtype": "<f4", "shape": [True]}]}, "integers"),
        ({"kind": "ok", "body": {}, "arrays": [{"dtype": "<f4", "shape": [-1]}]}, "integers"),
        ({"kind": "ok", "body": {}, "arrays": [{"dtype": "<f4", "shape": [2.0]}]}, "integers"),
        ({"kind": "ok", "body": {}, "arrays": [{"dtype": "<f4", "shape": [1] * 9}]}, "up to 8"),
    ],
)
def test_header_types_are_checked(header, says):
    rx = _raw(ipc.MAGIC + json.dumps(header).encode())
    with pytest.raises(ipc.ProtocolError, match=says):
        ipc.recv(rx)


def test_headers_that_are_not_json_objects():
    for raw, says in [
        (ipc.MAGIC + b'{"kind": "a", "kind": "b", "body": {}, "arrays": []}', "duplicate key"),
        (ipc.MAGIC + b"\xff\xfe", "not JSON"),
        (ipc.MAGIC + b"[" * 100_000, "not JSON"),
        (ipc.MAGIC + b"[]", "must be an object"),
        (b"OVIPC2\n{}", "bad magic"),
    ]:
        with pytest.raises(ipc.ProtocolError, match=says):
            ipc.recv(_raw(raw))


def test_body_fields_are_typed():
    d = {"s": "a", "n": 1, "b": True, "l": [1, 2.5], "none": None}
    assert ipc.text(d, "s") == "a" and ipc.number(d, "n") == 1.0 and ipc.integer(d, "n") == 1
    assert ipc.numbers(d, "l", 2) == (1.0, 2.5) and ipc.number(d, "none", optional=True) is None
    assert ipc.text(d, "absent", "default") == "default"
    for call, says in [
        (lambda: ipc.number(d, "b"), "'b' must be a number"),  # a bool is no number
        (lambda: ipc.integer(d, "l"), "'l' must be an integer"),
        (lambda: ipc.text(d, "n"), "'n' must be a string"),
        (lambda: ipc.flag(d, "n"), "true or false"),
        (lambda: ipc.numbers(d, "l", 3), "3 numbers"),
        (lambda: ipc.text(d, "absent"), "'absent' is missing"),
        (lambda: ipc.array([], {"i": 0}, "i"), "the message has 0"),
    ]:
        with pytest.raises(ipc.ProtocolError, match=says):
            call()


def test_a_truncated_frame_is_refused():
    spec = [{"dtype": "<f8", "shape": [10]}]
    short = np.zeros(5).tobytes()
    with pytest.raises(ipc.ProtocolError, match="array 0 has 40 bytes, its shape needs 80"):
        ipc.recv(_raw(_header(spec), short))
    with pytest.raises(EOFError):  # the payload never came: the child ended mid-frame
        ipc.recv(_raw(_header(spec)))
    rx, tx = _pipe()  # a message cut inside itself: length says 80, 8 bytes follow, then EOF
    tx.send_bytes(_header(spec))
    os.write(tx.fileno(), struct.pack("!i", 80) + b"12345678")
    tx.close()
    with pytest.raises(OSError, match="end of file during message"):
        ipc.recv(rx)


def test_a_payload_longer_than_its_shape_is_refused_unread():
    rx = _raw(_header([{"dtype": "|u1", "shape": [2, 2]}]), b"12345")
    with pytest.raises(ipc.ProtocolError, match="array 0 longer than the 4 bytes allowed"):
        ipc.recv(rx)
    assert rx.closed  # the stream is out of step: nothing more is read from it


def test_disallowed_dtypes_are_refused_both_ways():
    for dtype in ("|O", "<c16", "|V8", "<M8[s]", "<U4", "|S4", "object"):
        rx = _raw(_header([{"dtype": dtype, "shape": [1]}]), b"\0" * 8)
        with pytest.raises(ipc.ProtocolError, match="is not allowed"):
            ipc.recv(rx)
    rx, tx = _pipe()
    with pytest.raises(TypeError, match="cannot be sent"):
        ipc.send(tx, "ok", {}, [np.array([object()], dtype=object)])
    with pytest.raises(TypeError, match="cannot be sent"):
        ipc.send(tx, "ok", {"x": object()})
    assert not rx.poll(0)  # nothing of a refused message was written


def test_an_oversize_claim_costs_nothing():
    claim = [{"dtype": "<f8", "shape": [1 << 20, 1 << 20]}]  # 8 TiB
    with pytest.raises(ipc.ProtocolError, match="claims 8796093022208 bytes, over the"):
        ipc.recv(_raw(_header(claim)))
    two = [{"dtype": "|u1", "shape": [600]}, {"dtype": "|u1", "shape": [600]}]
    with pytest.raises(ipc.ProtocolError, match="array 1 claims 600 bytes, over the 1000"):
        ipc.recv(_raw(_header(two), b"\0" * 600, b"\0" * 600), max_payload=1000)
    with pytest.raises(ipc.ProtocolError, match="header longer than"):
        ipc.recv(_raw(b"\0" * (len(ipc.MAGIC) + ipc.MAX_HEADER_BYTES + 1)))


def test_a_payload_that_never_comes_is_not_waited_for():
    rx, tx = _pipe()
    tx.send_bytes(_header([{"dtype": "|u1", "shape": [4]}]))
    with pytest.raises(ipc.ProtocolError, match="did not arrive within 0 s"):
        ipc.recv(rx, part_timeout=0.05)


class _Marker:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_is_refused_and_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(("ok", _Marker(marker)))
    with pytest.raises(ipc.ProtocolError, match="bad magic"):
        ipc.recv(_raw(evil))
    with pytest.raises(ipc.ProtocolError, match="not JSON"):  # behind a forged magic
        ipc.recv(_raw(ipc.MAGIC + evil))
    rx = _raw(_header([{"dtype": "|u1", "shape": [len(evil)]}]), evil)
    _, _, [payload] = ipc.recv(rx)  # as a payload it is only bytes
    assert payload.tobytes() == evil
    assert not marker.exists()
    pickle.loads(evil)  # the same bytes do run code when unpickled (the test can fail)
    assert marker.exists()


def test_the_decode_pool_turns_a_childs_pickle_into_that_files_error(tmp_path, monkeypatch):
    from app.study import decode_pool

    marker = tmp_path / "pwned"
    monkeypatch.setenv("OSTEOVIEW_TEST_MARKER", str(marker))

    class Hostile(decode_pool._Worker):
        def __init__(self) -> None:
            self.proc, self.tx, self.rx = ipc.spawn_python_child("tests.ipc_hostile_child")

    monkeypatch.setattr(decode_pool, "_Worker", Hostile)
    pool = decode_pool.DecodePool(size=1)
    try:
        [(path, (status, reason))] = list(pool.decode_many([("a.dcm", 30.0)]))
    finally:
        pool.close()
    assert path == "a.dcm" and status == "error"
    assert reason.startswith("the image decoder sent back a malformed answer (")
    assert not marker.exists()
    assert not pool._idle  # the child was ended, not kept


def test_the_decode_child_refuses_a_pickled_request(tmp_path):
    """The child side too: a pickle sent to a decode child ends it without being loaded."""

    marker = tmp_path / "pwned"
    proc, tx, rx = ipc.spawn_python_child("app.study.decode_child")
    try:
        tx.send_bytes(pickle.dumps(_Marker(marker)))
        assert proc.wait(60) == 0
    finally:
        tx.close()
        rx.close()
    assert not marker.exists()


def _femur_run(focus_lps=None):
    """(request, result) of the femur task on its demo study, as the viewer makes them."""
    from app.analysis.request import single_input
    from app.analysis.runner import run_analysis
    from app.analysis.tasks import get_adapter
    from app.study import load

    adapter = get_adapter("femur-ao")
    loaded = load(FEMUR)
    request = single_input(adapter, loaded.all_series()[0], loaded.studies[0])
    request.focus_lps = focus_lps
    return request, run_analysis(adapter, request)


def test_a_request_result_and_finding_make_the_trip_intact():
    from app.analysis.explain_child import explain_from_record, explain_record

    request, result = _femur_run(focus_lps=(1.0, 2.0, 3.0))
    finding = result.finding("fracture", "left")
    body, arrays = explain_record("femur-ao", request, result, finding, "shap")
    kind, body, arrays = _through("explain", body, arrays)
    task_id, req, res, found, method = explain_from_record(body, arrays)
    assert (kind, task_id, method) == ("explain", "femur-ao", "shap")
    assert found == finding and res.findings == result.findings
    assert req.input_hash() == request.input_hash() and req.focus_lps == (1.0, 2.0, 3.0)
    assert req.study.series[0] is req.primary  # one series, referred to twice, sent once
    assert req.study.patient == request.study.patient and req.origins == request.origins
    s0, s1 = request.primary, req.primary
    for field in ("series_uid", "modality", "kind", "window", "invert", "source_paths", "meta"):
        assert getattr(s1, field) == getattr(s0, field), field
    assert res.provenance == result.provenance and res.summary == result.summary
    assert [type(o) for o in res.overlays] == [type(o) for o in result.overlays]
    for theirs, ours in zip(res.overlays, result.overlays, strict=True):
        assert (theirs.name, theirs.slot, theirs.opacity) == (ours.name, ours.slot, ours.opacity)
        for attr in ("image", "reference"):
            a, b = getattr(theirs, attr, None), getattr(ours, attr, None)
            assert (a is None) == (b is None)
            if b is not None:
                np.testing.assert_array_equal(a.array, b.array)
                np.testing.assert_array_equal(a.affine_lps(), b.affine_lps())
        assert getattr(theirs, "boxes", None) == getattr(ours, "boxes", None)
        assert getattr(theirs, "labels", None) == getattr(ours, "labels", None)


def test_a_results_extra_keeps_its_arrays_on_the_trip():
    from app.analysis.explain_child import explain_from_record, explain_record

    request, result = _femur_run()
    boxes = np.arange(12, dtype=np.float32).reshape(3, 4)
    result.extra["test"] = {"boxes": boxes, "per_slice": [np.int16([1, 2]), 3], "n": np.int64(7)}
    finding = result.finding("fracture", "left")
    body, arrays = explain_record("femur-ao", request, result, finding, "shap")
    _, body, arrays = _through("explain", body, arrays)
    extra = explain_from_record(body, arrays)[2].extra["test"]
    assert isinstance(extra["boxes"], np.ndarray) and extra["boxes"].dtype == np.float32
    np.testing.assert_array_equal(extra["boxes"], boxes)
    assert extra["per_slice"][0].dtype == np.int16 and extra["per_slice"][1] == 3
    assert extra["n"] == 7


def test_the_explanation_child_reports_a_pickle_as_a_bad_message(tmp_path, monkeypatch):
    from app.analysis import explain_child as ec

    marker = tmp_path / "pwned"
    monkeypatch.setenv("OSTEOVIEW_TEST_MARKER", str(marker))
    spawn = ipc.spawn_python_child
    monkeypatch.setattr(ipc, "spawn_python_child",
                        lambda module: spawn("tests.ipc_hostile_child"))  # fmt: skip
    child = ec.ExplainChild()
    try:
        child.start()
        assert not child.wait_ready(60) and child.proc is None  # refused; that child ended
        # the next one is refused as well, before the request would be sent
        with pytest.raises(ec.ExplainChildError, match="sent a bad message .*bad magic"):
            child.explain("femur-ao", None, None, None, "shap")  # type: ignore[arg-type]
        assert child.proc is None
    finally:
        child.stop()
    assert not marker.exists()
