"""Shared by the Grad-CAM sanity tests: a copy of a task's weights whose network weights are
shuffled (Adebayo et al.'s model-randomisation check) and the share of a map's mass in a region."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import numpy as np

from app.engine.runtime import sha256_of


def shuffled_weights(src: Path, dst: Path, files: list[str]) -> Path:
    """``src`` copied to ``dst`` with every float weight tensor (2-D or more) of ``files``
    permuted, the same permutation for a tensor of the same name in two files (the shipped graph
    and the head cut from it must stay one network), and the manifest's digests updated."""
    import onnx
    from onnx import numpy_helper

    shutil.copytree(src, dst)
    for name in files:
        model = onnx.load(str(dst / name))
        for t in model.graph.initializer:
            arr = numpy_helper.to_array(t)
            if arr.dtype == np.float32 and arr.ndim >= 2:
                rng = np.random.default_rng(zlib.crc32(t.name.encode()))
                shuffled = rng.permutation(arr.ravel()).reshape(arr.shape)
                t.CopyFrom(numpy_helper.from_array(shuffled, t.name))
        onnx.save(model, str(dst / name))
    manifest = dst / "manifest.json"
    doc = json.loads(manifest.read_text())
    for name, entry in doc["files"].items():
        entry.update(sha256=sha256_of(dst / name), bytes=(dst / name).stat().st_size)
    manifest.write_text(json.dumps(doc))
    return dst


def mass_share(values: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """(share of the map's positive mass inside ``region``, the region's share of the cells: what
    a map spread evenly would score)."""
    pos = np.maximum(np.asarray(values, np.float64), 0)
    total = float(pos.sum())
    share = float(pos[region].sum()) / total if total > 0 else 0.0
    return share, float(np.mean(region))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    x, y = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])
