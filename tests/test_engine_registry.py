"""The registry finds the landed tasks and preselects by the series' modality and kind."""

import numpy as np
import pytest

from app.engine.registry import UnknownTask, available_tasks, get_adapter, tasks_accepting
from app.study.geometry import ImageVolume
from app.study.model import Series


def _series(modality: str, kind: str) -> Series:
    return Series("1.2.3", modality, "test", ImageVolume(np.zeros((2, 4, 4))), kind=kind)


def test_landed_tasks_are_available():
    assert {"cervical-fracture", "femur-ao"} <= set(available_tasks())


def test_tasks_accepting_matches_modality_and_kind():
    ct = tasks_accepting(_series("CT", "volume"))
    xr = tasks_accepting(_series("DX", "projection"))
    assert "cervical-fracture" in ct and "femur-ao" not in ct
    assert "femur-ao" in xr and "cervical-fracture" not in xr


def test_unknown_task_is_a_clear_error():
    with pytest.raises(UnknownTask, match="unknown task 'nope'"):
        get_adapter("nope")


def test_body_part_named_by_the_file_narrows_the_choice():
    hip = _series("DX", "projection")
    hip.body_part = "PELVIS"
    foot = _series("DX", "projection")
    foot.body_part = "FOOT"
    assert "femur-ao" in tasks_accepting(hip)
    assert "femur-ao" not in tasks_accepting(foot)
