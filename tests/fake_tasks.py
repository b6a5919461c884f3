"""Fake task adapters for the output-path tests (findings.json, report, analyze, batch).

They follow the real adapter contract and compute their outputs from the image (nothing is
hard-coded per study), so a test that feeds them a study proves the code around them:

- ``fake-ct``: CT volume -> label map of bright bone split into three "vertebrae" V1-V3 by height,
  a patient-level finding with per-vertebra children; a vertebra's probability is the share of
  its voxels above 1000 HU times ten (a dense "fracture" blob makes it positive).
- ``fake-xr``: radiograph -> a heatmap (smoothed brightness), boxes around the hot regions, and a
  fracture -> type -> subtype hierarchy for each side.

Register them with ``register(monkeypatch)``; a subprocess can call ``register_globally()``.
"""

from __future__ import annotations

import os
import time

import numpy as np
from scipy import ndimage

from app.engine.adapter import Adapter, ModelOutput, StageTimer
from app.engine.task import InputSlot, TaskSpec
from app.findings.types import (
    Box,
    BoxOverlay,
    Finding,
    HeatmapOverlay,
    LabelMapOverlay,
)
from app.study.geometry import ImageVolume

CALLS = {"fake-ct": 0, "fake-xr": 0}
VERTEBRA_COLOURS = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}


CT_SPEC = TaskSpec(
    "fake-ct",
    "Fake CT task",
    (InputSlot("ct", "a CT volume", modalities=("CT",), kinds=("volume",)),),
    "tests.fake_tasks:FakeCTAdapter",
)
XR_SPEC = TaskSpec(
    "fake-xr",
    "Fake radiograph task",
    (
        InputSlot(
            "radiograph", "a hip radiograph", modalities=("DX", "CR"), kinds=("projection", "image")
        ),
    ),
    "tests.fake_tasks:FakeXrayAdapter",
)


def register(monkeypatch) -> None:
    from app.analysis import tasks

    monkeypatch.setitem(tasks._REGISTERED, "fake-ct", CT_SPEC)
    monkeypatch.setitem(tasks._REGISTERED, "fake-xr", XR_SPEC)


def register_globally() -> None:
    from app.analysis import tasks

    tasks.register(CT_SPEC)
    tasks.register(XR_SPEC)


class FakeModelInfo:
    """Test doubles have no weights; their model info says so (and is complete)."""

    def model_info(self):
        from app.engine.adapter import ModelInfo

        return ModelInfo(
            model_name=f"{self.task_id} test model",
            version="0.0-test",
            weights_sha256={"fake.onnx": "ab" * 32},
            trained_on="synthetic phantoms",
        )


def _slow_down() -> None:
    """Batch kill tests need a study to take a while."""
    delay = float(os.environ.get("FAKE_ADAPTER_SLEEP", "0"))
    if delay:
        time.sleep(delay)


class FakeCTAdapter(FakeModelInfo, Adapter):
    spec = CT_SPEC
    paper = "none (test double)"
    labels = ("fracture", "V1", "V2", "V3")
    coarse_labelmap = False  # True: put the label map on a coarser, shifted grid

    def infer(self, request, timer: StageTimer) -> ModelOutput:
        CALLS["fake-ct"] += 1
        vol = request.primary.image
        with timer.stage("segment", 0.0):
            _slow_down()
            hu = vol.array.astype(np.float32)
            bone = hu > 300
            labels = np.zeros(vol.shape, dtype=np.uint8)
            # Rank slices by height (LPS z), whatever order the loader stacked them in:
            # V1 is the top third of the bone, as C1 is the top vertebra.
            z = vol.index_to_world(np.array([[0.0, 0.0, float(k)] for k in range(vol.shape[0])]))[
                :, 2
            ]
            ks = [k for k in np.argsort(-z) if bone[k].any()]
            for n, chunk in enumerate(np.array_split(np.array(ks, dtype=int), 3)):
                for k in chunk:
                    labels[k][bone[k]] = n + 1
        with timer.stage("classify", 0.6):
            findings = []
            probs = []
            for v in (1, 2, 3):
                region = labels == v
                share = float((hu[region] > 1000).mean()) if region.any() else 0.0
                p = min(1.0, share * 10)
                probs.append(p)
                findings.append(
                    Finding(f"V{v}", p, 0.5, group="vertebra", parent="fracture", region_id=f"V{v}")
                )
            patient = 1 - float(np.prod([1 - p for p in probs]))
            findings.insert(0, Finding("fracture", patient, 0.5, group="patient"))
        image = vol.with_array(labels)
        if self.coarse_labelmap:
            image = _coarsen(labels, vol)
        overlay = LabelMapOverlay(
            name="Vertebrae",
            image=image,
            labels={v: (f"V{v}", VERTEBRA_COLOURS[v]) for v in (1, 2, 3)},
            opacity=0.5,
        )
        return ModelOutput(findings, [overlay], summary=f"patient-level fracture p={patient:.2f}")


def _coarsen(labels: np.ndarray, vol: ImageVolume) -> ImageVolume:
    """Every second voxel in-plane: a grid with double spacing and a shifted origin."""
    sub = np.ascontiguousarray(labels[:, ::2, ::2])
    origin = vol.index_to_world(np.array([0.0, 0.0, 0.0]))
    return ImageVolume(
        sub, (vol.spacing[0], vol.spacing[1] * 2, vol.spacing[2] * 2), origin, vol.direction
    )


class FakeXrayAdapter(FakeModelInfo, Adapter):
    spec = XR_SPEC
    paper = "none (test double)"
    labels = ("fracture", "A", "B", "A1")

    def infer(self, request, timer: StageTimer) -> ModelOutput:
        CALLS["fake-xr"] += 1
        vol = request.primary.image
        with timer.stage("heatmap", 0.0):
            _slow_down()
            img = vol.array[0].astype(np.float32)
            smooth = ndimage.gaussian_filter(img, 3)
            lo, hi = np.percentile(smooth, [50, 100])
            heat = np.clip((smooth - lo) / max(hi - lo, 1e-6), 0, 1)
        with timer.stage("boxes", 0.7):
            regions, n = ndimage.label(heat > 0.5)
            boxes = []
            for sl in ndimage.find_objects(regions):
                j, i = sl
                side = "right" if (i.start + i.stop) / 2 < img.shape[1] / 2 else "left"
                boxes.append(
                    Box(i.start, j.start, i.stop - 1, j.stop - 1, 0, side, float(heat[sl].max()))
                )
        findings = []
        half = img.shape[1] // 2
        for side, part in (("right", heat[:, :half]), ("left", heat[:, half:])):
            p = float(part.max())
            findings += [
                Finding("fracture", p, 0.5, group="fracture", side=side, region_id=side),
                Finding("A", p * 0.9, 0.5, group="type", parent="fracture", side=side),
                Finding("B", p * 0.1, 0.5, group="type", parent="fracture", side=side),
                Finding("A1", p * 0.8, 0.5, group="subtype", parent="A", side=side),
            ]
        overlays = [
            HeatmapOverlay(
                name="CAM fracture",
                image=vol.with_array(heat[None]),
                colormap="jet",
                label="fracture",
                opacity=0.6,
            ),
            BoxOverlay(name="Boxes from CAM", reference=vol, boxes=boxes, color=(255, 255, 0)),
        ]
        return ModelOutput(findings, overlays, summary=f"{len(boxes)} hot region(s)")


# ---- test studies as arrays ---------------------------------------------------------------------
def ct_phantom(fracture_in: int | None = 2, shape=(30, 48, 48)) -> ImageVolume:
    """A column of three bone blocks in soft tissue; ``fracture_in`` gets a dense blob.

    k grows toward the feet (direction[:, 2] = -z), as axial CT stacks often do.
    """
    nk, nj, ni = shape
    hu = np.full(shape, -1000.0, dtype=np.float32)
    hu[:, 6:-6, 6:-6] = 40.0
    third = nk // 3
    for n in range(3):
        k0, k1 = n * third + 1, (n + 1) * third - 1
        hu[k0:k1, 16:32, 18:30] = 600.0
    if fracture_in is not None:
        n = fracture_in - 1
        k = n * third + third // 2
        hu[k - 2 : k + 2, 20:28, 20:27] = 1500.0
    direction = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]])
    return ImageVolume(hu, (2.0, 1.0, 1.0), np.array([-24.0, -20.0, 40.0]), direction)


def radiograph_phantom(shape=(120, 160)) -> np.ndarray:
    """uint16 radiograph with one bright spot on the patient's right (image left)."""
    rng = np.random.default_rng(0)
    img = 1000 + 50 * rng.standard_normal(shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img += 2500 * np.exp(-((yy - 60) ** 2 + (xx - 40) ** 2) / (2 * 8.0**2))
    return np.clip(img, 0, 65535).astype(np.uint16)
