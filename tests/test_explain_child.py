"""Explanations in the warm child process (app.analysis.explain_child): the same map as in this
process, progress passed back, Cancel honoured, the parent's cache used, a child that dies
reported in words and replaced, and adapters the child cannot build explained here."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.analysis import explain_child as ec
from app.analysis.explain import ExplanationCache, explain
from app.analysis.request import single_input
from app.analysis.runner import run_analysis
from app.engine.adapter import AnalysisCancelled
from app.study import load

FEMUR = Path(__file__).resolve().parents[1] / "resources/demo/femur-ao/trochanteric_A2_left"
WARM_S = 600  # shap imported and numba compiled at low priority on a shared 2-core CPU


@pytest.fixture(scope="module")
def femur():
    from app.analysis.tasks import get_adapter

    adapter = get_adapter("femur-ao")
    request = single_input(adapter, load(FEMUR).all_series()[0])
    result = run_analysis(adapter, request)
    return adapter, request, result, result.finding("fracture", "left")


@pytest.fixture(scope="module")
def child():
    made = ec.ExplainChild()
    made.start()
    assert made.wait_ready(WARM_S)
    assert isinstance(made.warm, float), made.warm  # seconds, not a failure message
    yield made
    made.stop()


def test_the_child_makes_the_same_map_with_progress(femur, child, monkeypatch):
    adapter, request, result, finding = femur
    steps = []
    [theirs] = child.explain("femur-ao", request, result, finding, "shap",
                             progress=lambda s, f: steps.append((s, f)))  # fmt: skip
    [ours] = explain(adapter, request, result, finding, "shap", cache=None)
    assert theirs.name == ours.name and theirs.slot == "radiograph"
    np.testing.assert_array_equal(theirs.image.array, ours.image.array)
    assert [s for s, _ in steps if s == "SHAP"] and steps[-1] == ("explained", 1.0)
    # explain_anywhere sends a registered adapter there and keeps the cache here
    monkeypatch.setattr(ec, "_child", child)
    cache = ExplanationCache()
    first = ec.explain_anywhere(adapter, request, result, finding, "shap", cache=cache)
    again = ec.explain_anywhere(adapter, request, result, finding, "shap", cache=cache)
    assert again is first and cache.hits == 1 and cache.misses == 1


def test_cancel_reaches_the_child(femur, child):
    _, request, result, finding = femur
    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(AnalysisCancelled):
        child.explain("femur-ao", request, result, finding, "shap", cancel=cancel)
    # the child is still there and answers the next request
    [ov] = child.explain("femur-ao", request, result, finding, "shap")
    assert ov.name.startswith("SHAP left fracture")


def test_an_unregistered_adapter_is_explained_here(femur, monkeypatch):
    adapter, request, result, finding = femur

    class Custom(type(adapter)):
        pass

    class NoChild:
        def explain(self, *args, **kwargs):
            raise AssertionError("sent to the child")

    monkeypatch.setattr(ec, "_child", NoChild())
    [ov] = ec.explain_anywhere(Custom(), request, result, finding, "cam", cache=None)
    assert ov.name.startswith("CAM")


def test_a_child_that_dies_is_reported_and_replaced(femur, child):
    _, request, result, finding = femur

    def kill_it() -> bool:  # asked while the child explains: it dies there
        if child.proc is not None and child.proc.poll() is None:
            os.kill(child.proc.pid, signal.SIGKILL)
            child.proc.wait(10)
        return False

    with pytest.raises(ec.ExplainChildError, match="explanation process ended"):
        child.explain("femur-ao", request, result, finding, "shap", cancel=kill_it)
    assert child.proc is None
    # the next request starts a new child (it warms up again first)
    [ov] = child.explain("femur-ao", request, result, finding, "shap")
    assert ov.name.startswith("SHAP left fracture")


def test_stopping_ends_an_explanation_under_way(femur, child):
    """The viewer quitting mid-explanation: stop() does not wait for the map."""
    _, request, result, finding = femur
    errors: list[Exception] = []
    started = threading.Event()

    def run() -> None:
        try:
            child.explain("femur-ao", request, result, finding, "shap",
                          progress=lambda s, f: started.set())  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - what the worker would report
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(WARM_S)
    t0 = time.perf_counter()
    child.stop()
    thread.join(30)
    assert not thread.is_alive() and time.perf_counter() - t0 < 10
    assert len(errors) == 1 and isinstance(errors[0], ec.ExplainChildError), errors
    assert child.proc is None
