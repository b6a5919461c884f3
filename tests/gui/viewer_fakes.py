"""Fake adapters for the viewer's tests: they follow the adapter contract and compute their
overlays from the image they get, so the viewer code around them is what is tested."""

from __future__ import annotations

import time

import numpy as np

from app.engine.adapter import Adapter, InputRejected, ModelInfo, ModelOutput, StageTimer
from app.engine.task import InputSlot, TaskSpec
from app.findings.types import (
    Box,
    BoxOverlay,
    Finding,
    HeatmapOverlay,
    LabelMapOverlay,
)

LABEL_COLOURS = {1: ("V1", (255, 0, 0)), 2: ("V2", (0, 255, 0)), 3: ("V3", (0, 0, 255))}


def _spec(task_id: str, title: str, slot: InputSlot, cls: str) -> TaskSpec:
    return TaskSpec(task_id, title, (slot,), f"tests.gui.viewer_fakes:{cls}")


class _Fake(Adapter):
    def model_info(self) -> ModelInfo:
        return ModelInfo("viewer-test-fake", "0", {"none": "0" * 64}, "nothing")


CT_SLOT = InputSlot("ct", "a CT volume", modalities=("CT",), kinds=("volume",))
IMAGE_SLOT = InputSlot("radiograph", "a radiograph", kinds=("projection", "image", "volume"))


class FakeVolumeAdapter(_Fake):
    """Bright voxels split into three 'vertebrae' by height; one heatmap per class; boxes."""

    spec = _spec("fake-volume", "Fake volume task", CT_SLOT, "FakeVolumeAdapter")
    paper = "none (test double)"
    labels = ("V1", "V2", "V3")

    def __init__(self, work_s: float = 0.0) -> None:
        self.work_s = work_s  # seconds of real numpy work (GIL released in BLAS), in chunks

    def infer(self, request, timer: StageTimer) -> ModelOutput:
        image = request.primary.image
        with timer.stage("segmentation", 0.0):
            bright = image.array > 300
            lab = np.zeros(image.shape, np.uint8)
            ks = np.flatnonzero(bright.any(axis=(1, 2)))
            if ks.size:
                edges = np.linspace(ks.min(), ks.max() + 1, 4).astype(int)
                for n in range(3):
                    sl = slice(edges[n], edges[n + 1])
                    lab[sl][bright[sl]] = n + 1
        with timer.stage("classification", 0.4):
            _busy(self.work_s, timer, timer.progress, 0.4, 0.9)
        heat = (image.array.astype(np.float32) - image.array.min()) / max(np.ptp(image.array), 1)
        findings = [Finding("fracture", 0.8, 0.5, group="patient")]
        for n, name in enumerate(self.labels):
            p = 0.2 + 0.3 * n
            findings.append(Finding(name, p, 0.5, "vertebra", "fracture", region_id=name))
        overlays = [
            LabelMapOverlay(
                "Vertebrae (fake)", image=image.with_array(lab), labels=LABEL_COLOURS, opacity=1.0
            ),
            HeatmapOverlay("Map V1", image=image.with_array(heat), label="V1"),
            HeatmapOverlay("Map V2", image=image.with_array(1 - heat), label="V2"),
        ]
        return ModelOutput(findings, overlays, summary="fake: patient-level p=0.80")


class FakeImageAdapter(_Fake):
    """Radiographs: sides, a hierarchy, a heatmap per class and a box on each side."""

    spec = _spec("fake-image", "Fake image task", IMAGE_SLOT, "FakeImageAdapter")
    paper = "none (test double)"
    labels = ("fracture", "A", "B")

    def check_slot(self, slot, series) -> None:
        super().check_slot(slot, series)
        if not series.image.is_2d:
            raise InputRejected("Fake image task needs a radiograph; this series is a volume.")

    def infer(self, request, timer: StageTimer) -> ModelOutput:
        image = request.primary.image
        nk, nj, ni = image.shape
        with timer.stage("maps", 0.0):
            jj, ii = np.mgrid[0:nj, 0:ni].astype(np.float32)
            right_half = (ii < ni / 2).astype(np.float32)[None]
            left_half = 1 - right_half
        findings, boxes = [], []
        for side, box in (
            ("right", (0, 0, ni / 2 - 1, nj - 1)),
            ("left", (ni / 2, 0, ni - 1, nj - 1)),
        ):
            findings += [
                Finding("fracture", 0.7, 0.5, "fracture", side=side),
                Finding("A", 0.6, 0.5, "type", "fracture", side=side),
                Finding("B", 0.3, 0.5, "type", "fracture", side=side),
            ]
            boxes.append(Box(*box, k=0, caption=f"ROI {side}"))
        overlays = [
            HeatmapOverlay("CAM A", image=image.with_array(right_half), label="A", opacity=0.6),
            HeatmapOverlay("CAM B", image=image.with_array(left_half), label="B", opacity=0.6),
            BoxOverlay("ROI", reference=image, boxes=boxes, color=(255, 0, 255)),
        ]
        return ModelOutput(findings, overlays, summary="fake image")


class RejectingAdapter(FakeVolumeAdapter):
    spec = _spec("fake-reject", "Fake rejecting task", CT_SLOT, "RejectingAdapter")

    def infer(self, request, timer):
        raise InputRejected("Fake needs an axial CT covering the neck; this CT covers the abdomen.")


class SlowAdapter(FakeVolumeAdapter):
    """Works until cancelled (for Cancel and close-while-running tests)."""

    spec = _spec("fake-slow", "Fake slow task", CT_SLOT, "SlowAdapter")

    def infer(self, request, timer):
        with timer.stage("waiting", 0.0):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                timer.check_cancel()
                time.sleep(0.02)
        raise AssertionError("SlowAdapter was never cancelled")


def _busy(seconds: float, timer: StageTimer, progress, f0: float, f1: float) -> None:
    """Real CPU work in chunks: matrix products (BLAS releases the GIL) and FFTs."""
    if seconds <= 0:
        return
    rng = np.random.default_rng(0)
    a = rng.standard_normal((384, 384)).astype(np.float32)
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        timer.check_cancel()
        a = np.tanh(a @ a.T * 1e-3)
        np.fft.rfft2(a)
        if progress:
            progress("classification", f0 + (f1 - f0) * min(elapsed / seconds, 1.0))
