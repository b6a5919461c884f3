"""Ground truth written beside synthetic demo studies (``truth.json``), read back as overlays.

Format (every phantom generator writes this; the viewer's ``--overlay-truth`` reads it)::

    {
      "task": "cervical-fracture",
      "source": "synthetic phantom, seed 3",
      "labels": {...task-specific classification truth, JSON values...},
      "labelmaps": [{"name": "Vertebrae (truth)", "file": "truth_labels.nii.gz",
                     "labels": {"1": ["C1", [255, 0, 0]], ...}}],
      "boxes": [{"name": "Femoral heads (truth)",
                 "boxes": [{"i0": 10, "j0": 20, "i1": 50, "j1": 60, "k": 0, "caption": "right"}]}],
      "landmarks": [{"name": "L1", "position_lps": [x, y, z]}]
    }

Label maps are NIfTI in the study's world frame (so they land where the image is); box indices
refer to the study image's (i = column, j = row, k = slice) grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app.findings.types import Box, BoxOverlay, LabelMapOverlay, Landmark, LandmarkOverlay, Overlay
from app.study.geometry import ImageVolume
from app.study.nifti import read_nifti, write_nifti

TRUTH_FILE = "truth.json"


@dataclass
class Truth:
    task: str
    labels: dict
    overlays: list[Overlay] = field(default_factory=list)
    source: str = ""


def find_truth(study_path: Path) -> Path | None:
    """truth.json in the study folder, or beside a single-file study."""
    p = Path(study_path)
    for candidate in (p / TRUTH_FILE, p.parent / TRUTH_FILE):
        if candidate.is_file():
            return candidate
    return None


def load_truth(study_path: Path, reference: ImageVolume | None = None) -> Truth | None:
    path = find_truth(study_path)
    if path is None:
        return None
    data = json.loads(path.read_text())
    overlays: list[Overlay] = []
    for lm in data.get("labelmaps", []):
        image = read_nifti(path.parent / lm["file"])
        labels = {int(k): (v[0], tuple(v[1])) for k, v in lm.get("labels", {}).items()}
        overlays.append(LabelMapOverlay(name=lm["name"], image=image, labels=labels))
    for bx in data.get("boxes", []):
        boxes = [
            Box(b["i0"], b["j0"], b["i1"], b["j1"], int(b.get("k", 0)), b.get("caption", ""))
            for b in bx["boxes"]
        ]
        overlays.append(BoxOverlay(name=bx["name"], reference=reference, boxes=boxes))
    if data.get("landmarks"):
        marks = [Landmark(m["name"], tuple(m["position_lps"])) for m in data["landmarks"]]
        overlays.append(LandmarkOverlay(name="Landmarks (truth)", landmarks=marks))
    return Truth(data.get("task", ""), data.get("labels", {}), overlays, data.get("source", ""))


def write_truth(
    study_dir: Path,
    task: str,
    labels: dict,
    source: str,
    labelmaps: list[tuple[str, ImageVolume, dict[int, tuple[str, tuple[int, int, int]]]]] = (),
    boxes: list[tuple[str, list[dict]]] = (),
    landmarks: list[dict] = (),
) -> Path:
    """Write truth.json (+ one NIfTI per label map) into ``study_dir``."""
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    maps = []
    for n, (name, image, table) in enumerate(labelmaps):
        fname = f"truth_labels_{n}.nii.gz" if n else "truth_labels.nii.gz"
        write_nifti(image, study_dir / fname)
        maps.append(
            {
                "name": name,
                "file": fname,
                "labels": {str(k): [v[0], list(v[1])] for k, v in table.items()},
            }
        )
    doc = {
        "task": task,
        "source": source,
        "labels": labels,
        "labelmaps": maps,
        "boxes": [{"name": n, "boxes": b} for n, b in boxes],
        "landmarks": list(landmarks),
    }
    out = study_dir / TRUTH_FILE
    out.write_text(json.dumps(doc, indent=2))
    return out
