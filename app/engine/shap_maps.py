"""SHAP maps for image classifiers: ``shap``'s Partition explainer with an Image masker, run on
the model's own input and asked for one output only.

What makes it fast (measured in ``tests/benchmarks/test_bench_shap.py``):

- numba compiles shap's partition tree and credit functions once per process (10-30 s on this
  shared CPU, plus 2.5-4 s to import shap): ``warm_up()`` does that at viewer start-up in the
  explanation child (``app.analysis.explain_child``), so the first "Explain" does not pay for
  it. This is all of the gain over a plain call: 7-11x on the first click;
- the image is the network input (192 px for femur), not the radiograph;
- ``predict`` returns the one output asked, so the explainer spends its evaluations on that
  output's coalitions and the adapter can ask ONNX Runtime for that output alone;
- the model sees batches of masked images (``DEFAULT_BATCH``).

Once both are warm, the last three save nothing measurable for the femur network: the 500 model
evaluations are 86-93% of either call, and ONNX Runtime costs the same per image at batch 10 and
100, so ours and shap's default call take the same time (0.94-1.07x).

``shap`` (and with it numba, pandas, scikit-learn: ~5 s to import) is imported inside the
functions, so importing this module costs nothing on the viewer's start-up path.

The blur masker is shap's ``Image`` masker with OpenCV's ``cv2.blur`` replaced by the same box
filter from SciPy (a normalised box, anchor at the centre, reflect-101 borders), because OpenCV is
not a dependency; everything else (the axis-aligned partition tree, masking, Owen values) is
shap's own code.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from app.engine.adapter import AnalysisCancelled, CancelFn, ProgressFn
from app.findings import HeatmapOverlay
from app.study.geometry import ImageVolume

PredictFn = Callable[[np.ndarray], np.ndarray]  # (N, *image.shape) -> (N,) or (N, K)

DEFAULT_MASKER = "blur(16,16)"
# Masked images per model call. For the femur network ONNX Runtime's cost per image was the
# same at 10 and at 100 (500 images: 2.5-3.0 s either way, measured on this shared 2-core CPU);
# a batch mostly saves Python round trips, and matters for networks that batch better. Bigger
# batches make the Owen recursion expand coalitions breadth-first instead of by priority: at
# 250 the femur map correlated only 0.77 with shap's default call (batch 10) on one phantom, at
# 100 0.96 on both measured (tests/benchmarks/test_bench_shap.py).
DEFAULT_BATCH = 100
_global_random_lock = threading.Lock()  # see shap_map
_BLUR = re.compile(r"^blur\((\d+),\s*(\d+)\)$")


def box_blur(image: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """``cv2.blur(image, kernel)`` without OpenCV: a normalised kx x ky box (kx along columns,
    as in OpenCV), anchored at the kernel's centre, borders reflected without repeating the edge
    pixel (OpenCV's BORDER_REFLECT_101 = SciPy's "mirror"). Channels are blurred separately."""
    from scipy.ndimage import uniform_filter

    kx, ky = kernel
    arr = np.asarray(image, np.float64)
    size = (ky, kx) + (1,) * (arr.ndim - 2)
    return uniform_filter(arr, size=size, mode="mirror").astype(image.dtype, copy=False)


@lru_cache(maxsize=8)
def partition_tree(shape: tuple[int, int, int], split_channels: bool = False) -> np.ndarray:
    """The masker's hierarchy of pixel coalitions, built once per shape (read-only), in shap's
    format: leaf ids are flat indices of the (H, W, C) array, row n joins two nodes into node
    M + n, column 3 is the node's size.

    ``split_channels=False`` is shap's own Image masker rule: halve the longer image axis (rows
    on a tie) and keep a pixel's channels together until single pixels, which suits colour.
    shap builds it with a numba function that holds the GIL (0.27-0.37 s for 192 x 192 here, a
    stall of the viewer's event loop); built here in Python, which hands the GIL over every few
    milliseconds, it is the same tree (same coalitions, same left/right order, checked against
    shap's in tests/test_explain_shap_maps.py), so the values are the same.

    ``split_channels=True``: a stack of slices laid out as channels (cervical stage 2: 24 slices
    of one vertebra) needs the slice axis split like the others, longest axis first, so that a
    coalition is a block of the vertebra and the map can say which slices matter.
    """
    tree = _build_tree(shape, split_channels)
    tree.setflags(write=False)
    return tree


def _build_tree(shape: tuple[int, int, int], split_channels: bool) -> np.ndarray:
    nx, ny, nz = shape
    m = nx * ny * nz
    tree = np.zeros((m - 1, 4))
    row = 0

    def build(x0: int, x1: int, y0: int, y1: int, z0: int, z1: int) -> int:
        nonlocal row
        wx, wy, wz = x1 - x0, y1 - y0, z1 - z0
        if wx == wy == wz == 1:
            flat = (x0 * ny + y0) * nz + z0
            # shap's builder numbers its leaves from the far end (leaf id M - 1 - flat index),
            # so its coalitions are these boxes reflected through the image centre: kept, so
            # the values are shap's own
            return flat if split_channels else m - 1 - flat
        if split_channels:
            axis = 0 if wx >= wy and wx >= wz else 1 if wy >= wz else 2
        else:  # shap: x when it is the longer image axis, else y, channels only at the end
            axis = 0 if wx >= wy and wx > 1 else 1 if wy > 1 else 2
        if axis == 0:
            mid = x0 + wx // 2
            left, right = build(x0, mid, y0, y1, z0, z1), build(mid, x1, y0, y1, z0, z1)
        elif axis == 1:
            mid = y0 + wy // 2
            left, right = build(x0, x1, y0, mid, z0, z1), build(x0, x1, mid, y1, z0, z1)
        else:
            mid = z0 + wz // 2
            left, right = build(x0, x1, y0, y1, z0, mid), build(x0, x1, y0, y1, mid, z1)
        tree[row] = (left, right, 0.0, wx * wy * wz)
        row += 1
        return m + row - 1

    build(0, nx, 0, ny, 0, nz)
    return tree


@lru_cache(maxsize=1)
def _blur_masker_class() -> type:
    import shap

    class BlurImageMasker(shap.maskers.Image):
        """shap.maskers.Image("blur(kx,ky)", shape) with the blur done by ``box_blur`` and the
        partition tree taken from ``partition_tree`` (cached per shape)."""

        def __init__(
            self, kernel: tuple[int, int], shape: tuple[int, ...], split_channels: bool = False
        ) -> None:
            self._split_channels = split_channels
            # A numeric mask value lets shap's constructor run without cv2; the string form
            # (and its per-image blurred background) is set back afterwards.
            super().__init__(0.0, shape)
            self.blur_kernel = tuple(kernel)
            self.input_mask_value = self.mask_value = f"blur({kernel[0]},{kernel[1]})"
            self.fixed_background = False
            self._source: np.ndarray | None = None
            self._blurred: np.ndarray | None = None

        def build_partition_tree(self) -> None:
            shape = tuple(int(s) for s in self.input_shape)
            self.clustering = partition_tree(shape, self._split_channels)

        def __call__(self, mask, x):
            x = np.asarray(x)
            if x.size != int(np.prod(self.input_shape)):
                raise ValueError(f"image of {x.size} values, masker built for {self.input_shape}")
            if self._source is not x:  # shap passes the same array for every mask of a row
                self._blurred = box_blur(x.reshape(self.input_shape), self.blur_kernel).ravel()
                self._source = x
            flat = x.ravel()
            if mask is None:
                out = self._blurred.copy()
            else:
                out = np.where(mask, flat, self._blurred)
            return (out.reshape(1, *x.shape),)

    return BlurImageMasker


def make_masker(spec: str, shape: tuple[int, ...], split_channels: bool = False):
    """A shap Image masker for an (H, W, C) image: "blur(kx,ky)" (OpenCV not needed) or shap's
    own "inpaint_telea" / "inpaint_ns" (these need OpenCV). ``split_channels``: see
    ``partition_tree``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError(f"an Image masker needs an (H, W, C) shape, not {shape}")
    m = _BLUR.match(spec.replace(" ", ""))
    if m:
        kernel = (int(m.group(1)), int(m.group(2)))
        return _blur_masker_class()(kernel, shape, split_channels)
    if spec in ("inpaint_telea", "inpaint_ns") and not split_channels:
        import shap

        return shap.maskers.Image(spec, shape)
    raise ValueError(f"unknown masker '{spec}': use blur(kx,ky), inpaint_telea or inpaint_ns")


class _CountingModel:
    """The predict function as shap sees it: one output column, cancel checked before every
    batch, progress after it."""

    def __init__(
        self,
        predict: PredictFn,
        image_shape: tuple[int, ...],
        output_index: int | None,
        max_evals: int,
        progress: ProgressFn | None,
        cancel: CancelFn | None,
    ) -> None:
        self.predict, self.image_shape = predict, image_shape
        self.output_index = output_index
        self.max_evals = max_evals
        self.progress, self.cancel = progress, cancel
        self.evals = 0
        self.calls = 0
        self.largest_batch = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.cancel is not None and self.cancel():
            raise AnalysisCancelled("explanation cancelled")
        x = np.asarray(x, np.float32).reshape(len(x), *self.image_shape)
        out = np.asarray(self.predict(x), np.float64)
        if out.ndim == 2 and self.output_index is not None:
            out = out[:, self.output_index]
        elif out.ndim != 1:
            raise ValueError(f"predict returned shape {out.shape}; give output_index")
        self.evals += len(x)
        self.calls += 1
        self.largest_batch = max(self.largest_batch, len(x))
        if self.progress is not None:
            self.progress("SHAP", min(1.0, self.evals / max(self.max_evals, 1)))
        return out


def shap_map(
    predict: PredictFn,
    image: np.ndarray,
    output_index: int | None = None,
    *,
    max_evals: int = 500,
    masker: str = DEFAULT_MASKER,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    keep_channels: bool = False,
    split_channels: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """SHAP values of one output of ``predict`` for ``image``, by shap's Partition explainer.

    ``image`` is the model's own input, (H, W) or channels last (H, W, C); ``predict`` takes a
    batch shaped like it, (N, H, W[, C]) float32, and returns (N,) or (N, K) (then
    ``output_index`` picks the column explained). Returns the values, (H, W) float32 summed over
    channels (or (H, W, C) with ``keep_channels``), and an info dict: masker, evals asked and
    made, model calls, seconds, base value (fully masked) and the output on the image; the values
    add up to output - base (Owen values are efficient). ``split_channels`` makes coalitions
    blocks across channels too (a stack of slices; see ``partition_tree``); ``seed`` fixes shap's
    tie-breaking so a map is reproducible. Raises AnalysisCancelled when
    ``cancel()`` turns true (checked before every model call).
    """
    import shap  # lazy: ~5 s of imports (numba, pandas, scikit-learn)

    image = np.asarray(image, np.float32)
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    hwc = image if image.ndim == 3 else image[..., None]
    model = _CountingModel(predict, image.shape, output_index, max_evals, progress, cancel)
    m = make_masker(masker, hwc.shape, split_channels)
    explainer = shap.explainers.Partition(model, m)
    # The Owen recursion breaks ties between equally promising coalitions with np.random's
    # global stream; a fixed seed makes a map reproducible (and the cache honest). The state is
    # restored afterwards, and explanations take turns, so two threads explaining at once (the
    # viewer and a batch) cannot reseed each other's stream mid-way.
    t0 = time.perf_counter()
    with _global_random_lock:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            explanation = explainer(
                hwc[None], max_evals=max_evals, batch_size=batch_size, silent=True
            )
        finally:
            np.random.set_state(state)
    seconds = time.perf_counter() - t0
    values = np.asarray(explanation.values[0], np.float32).reshape(hwc.shape)
    base = float(np.ravel(explanation.base_values)[0])
    info = {
        "method": "SHAP (shap.PartitionExplainer)",
        "masker": m.input_mask_value if isinstance(m.input_mask_value, str) else masker,
        "max_evals": int(max_evals),
        "evals": int(model.evals),
        "model_calls": int(model.calls),
        "batch_size": int(batch_size),
        "seconds": round(seconds, 4),
        "base_value": base,
        "output_value": base + float(values.sum()),
        "shap_version": shap.__version__,
    }
    out = values if keep_channels and image.ndim == 3 else values.sum(-1)
    return np.ascontiguousarray(out, np.float32), info


def signed_overlay(
    name: str, grid: ImageVolume, label: str, slot: str, info: dict[str, Any], note: str = ""
) -> HeatmapOverlay:
    """A SHAP map (``grid``: the values in the study's geometry) as the viewer and report show
    one: a diverging colormap over a range symmetric about zero, so the neutral middle means
    "no contribution" and red pushes the output up, blue down; named with the masker and the
    evaluations made (``info`` from ``shap_map``), and ``note`` (what was explained) if given."""
    peak = float(np.abs(grid.array).max()) or 1.0
    how = f"{info['masker']}, {info['evals']} evals" + (f"; {note}" if note else "")
    return HeatmapOverlay(
        name=f"SHAP {name} ({how})",
        image=grid,
        colormap="coolwarm",
        value_range=(-peak, peak),
        label=label,
        visible=True,
        opacity=0.5,
        slot=slot,
    )


_warm = threading.Event()
_warm_lock = threading.Lock()


def warm_up() -> float:
    """Import shap and compile its numba functions with a tiny explanation (once per process).

    Meant for a background thread at viewer start-up: the first real explanation then starts at
    once. Returns the seconds it took (0.0 when already warm); safe to call from any thread.
    """
    if _warm.is_set():
        return 0.0
    with _warm_lock:
        if _warm.is_set():
            return 0.0
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        tiny = rng.random((8, 8), dtype=np.float32)
        weights = rng.random((8, 8), dtype=np.float32)

        def linear(x: np.ndarray) -> np.ndarray:
            return (x * weights).reshape(len(x), -1).sum(1)

        shap_map(linear, tiny, max_evals=40, masker="blur(3,3)", batch_size=16)
        _warm.set()
        return time.perf_counter() - t0


def is_warm() -> bool:
    return _warm.is_set()


def start_warm_up() -> threading.Thread:
    """``warm_up`` in a daemon thread (the one call the viewer makes at start-up)."""
    thread = threading.Thread(target=_quiet_warm_up, name="shap-warm-up", daemon=True)
    thread.start()
    return thread


def _quiet_warm_up() -> None:
    # A failed warm-up only means the first explanation pays the cost (or reports the error).
    try:
        warm_up()
    except Exception:  # noqa: BLE001
        pass
