"""A two-input fake task with an optional mask, honouring the adapter contract: ``ap`` and
``lateral`` radiographs of one study plus an optional ``mask`` on the lateral's grid.

Its outputs are computed from the images (nothing per study is hard-coded): a brightness heatmap
on the AP, a label map of bright pixels on the lateral (or the given mask), a box and a landmark
on each; its explanation ("occlusion") is a slow, cancellable map on the AP. Every stage is
timed, so the contract test can check cancel latency at stage boundaries.
"""

from __future__ import annotations

import time

import numpy as np

from app.engine.adapter import Adapter, ModelInfo, ModelOutput, StageTimer
from app.engine.task import RADIOGRAPH_MODALITIES, InputSlot, TaskSpec
from app.findings.types import (
    Box,
    BoxOverlay,
    Finding,
    HeatmapOverlay,
    LabelMapOverlay,
    Landmark,
    LandmarkOverlay,
)

PAIR_SPEC = TaskSpec(
    "fake-pair",
    "Fake two-view task",
    (
        InputSlot(
            "ap", "an AP radiograph", RADIOGRAPH_MODALITIES, ("projection", "image"),
            views=("AP", "PA"), short="an AP",
        ),
        InputSlot(
            "lateral", "a lateral radiograph", RADIOGRAPH_MODALITIES, ("projection", "image"),
            views=("LAT", "LL", "RL"), short="a lateral radiograph",
        ),
        InputSlot(
            "mask", "a mask on the lateral radiograph", kinds=("labelmap", "image", "projection"),
            required=False, mask_of="lateral", short="a mask",
        ),
    ),
    "tests.fake_pair_task:FakePairAdapter",
)  # fmt: skip
CALLS = {"infer": 0, "explain": 0}


def register(monkeypatch) -> None:
    from app.analysis import tasks

    monkeypatch.setitem(tasks._REGISTERED, PAIR_SPEC.id, PAIR_SPEC)


class FakePairAdapter(Adapter):
    spec = PAIR_SPEC
    paper = "none (test double)"
    labels = ("damaged", "bright-lateral")
    explain_methods = ("occlusion",)
    stage_s = 0.0  # seconds each stage sleeps (cancel-latency tests set it)
    stage_ends: list[float] = []

    def model_info(self) -> ModelInfo:
        return ModelInfo("fake-pair test model", "0.0-test", {"pair.onnx": "cd" * 32}, "nothing")

    def _stage_work(self) -> None:
        if self.stage_s:
            time.sleep(self.stage_s)
        self.stage_ends.append(time.perf_counter())

    def infer(self, request, timer: StageTimer) -> ModelOutput:
        CALLS["infer"] += 1
        ap, lat = request["ap"].image, request["lateral"].image
        with timer.stage("ap map", 0.1):
            a = ap.array[0].astype(np.float32)
            heat = (a - a.min()) / max(float(np.ptp(a)), 1e-6)
            self._stage_work()
        with timer.stage("lateral mask", 0.5):
            given = request.get("mask")
            if given is not None:
                labels = (np.asarray(given.image.array[0]) > 0).astype(np.uint8)
            else:
                b = lat.array[0].astype(np.float32)
                labels = (b > np.percentile(b, 90)).astype(np.uint8)
            self._stage_work()
        with timer.stage("classify", 0.8):
            p = float(labels.mean() * 5)
            self._stage_work()
        jj, ii = np.nonzero(labels)
        centre = (float(ii.mean()), float(jj.mean())) if ii.size else (0.0, 0.0)
        peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
        ap_point = ap.index_to_world(np.array([float(peak[1]), float(peak[0]), 0.0]))
        findings = [
            Finding("damaged", min(p, 1.0), 0.5, group="patient", region_id="1"),
            Finding("ap-peak", float(heat.max()), 0.5, group="view", region_id="AP peak"),
            Finding("lateral-box", min(p, 1.0), 0.5, group="view", region_id="lat-box"),
        ]
        box = Box(centre[0] - 5, centre[1] - 5, centre[0] + 5, centre[1] + 5, 0, "bright",
                  region_id="lat-box")  # fmt: skip
        overlays = [
            HeatmapOverlay("AP brightness", image=ap.with_array(heat[None]), label="damaged",
                           slot="ap"),  # fmt: skip
            LandmarkOverlay("AP peak", landmarks=[Landmark("AP peak", tuple(ap_point))], slot="ap"),
            LabelMapOverlay(
                "Lateral mask", image=lat.with_array(labels[None]),
                labels={1: ("bright", (255, 0, 0))}, slot="lateral",
            ),
            BoxOverlay("Lateral box", reference=lat, boxes=[box], slot="lateral"),
        ]  # fmt: skip
        used = "given" if given is not None else "predicted"
        return ModelOutput(findings, overlays, f"p(damaged)={p:.2f}", {"mask_used": used})

    def explain(self, request, result, finding, method, timer: StageTimer):
        CALLS["explain"] += 1
        ap = request["ap"].image
        a = ap.array[0].astype(np.float32)
        out = np.zeros_like(a)
        rows = np.array_split(np.arange(a.shape[0]), 8)
        for n, r in enumerate(rows):
            with timer.stage("occlusion", n / 8):
                out[r] = a[r] - a.mean()
                self._stage_work()
        return [HeatmapOverlay(f"Occlusion {finding.label}", image=ap.with_array(out[None]),
                               colormap="coolwarm", value_range=(-1.0, 1.0), label=finding.label,
                               slot="ap")]  # fmt: skip
