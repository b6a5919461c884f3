"""Tasks are declared once (models/<task>/task.py) and discovered; a broken one is listed with
its reason; the viewer's task list follows the slots a series can fill."""

import numpy as np
import pytest

from app.analysis import tasks
from app.analysis.tasks import UnknownTask, available_tasks, get_adapter, tasks_accepting
from app.commands.tasks import describe
from app.study.geometry import ImageVolume
from app.study.model import Series


def _series(modality: str, kind: str, body_part: str = "", view: str = "") -> Series:
    s = Series("1.2.3", modality, "test", ImageVolume(np.zeros((2, 4, 4))), kind=kind)
    s.body_part, s.view_position = body_part, view
    return s


def test_every_task_folder_is_discovered_once():
    ids = tasks.task_ids()
    assert len(ids) == len(set(ids))
    assert {
        "cervical-fracture",
        "femur-ao",
        "calcaneus-fracture",
        "spine-xray",
        "lumbar-mri",
    } <= set(ids)
    assert {"cervical-fracture", "femur-ao"} <= set(available_tasks())


def test_tasks_accepting_matches_modality_and_kind():
    ct = tasks_accepting(_series("CT", "volume"))
    xr = tasks_accepting(_series("DX", "projection"))
    assert "cervical-fracture" in ct and "femur-ao" not in ct
    assert "femur-ao" in xr and "cervical-fracture" not in xr


def test_unknown_task_is_a_clear_error():
    with pytest.raises(UnknownTask, match="unknown task 'nope'"):
        get_adapter("nope")


def test_body_part_and_view_named_by_the_file_narrow_the_choice():
    assert "femur-ao" in tasks_accepting(_series("DX", "projection", "PELVIS"))
    assert "femur-ao" not in tasks_accepting(_series("DX", "projection", "FOOT"))
    assert "femur-ao" not in tasks_accepting(_series("DX", "projection", "HIP", "LAT"))


def test_a_task_whose_adapter_is_missing_is_listed_with_the_reason(monkeypatch):
    from app.engine.task import InputSlot, TaskSpec

    spec = TaskSpec("ghost", "Ghost", (InputSlot("ct", "a CT"),), "models.no_such:Adapter")
    monkeypatch.setitem(tasks._REGISTERED, "ghost", spec)
    row = next(r for r in describe() if r["id"] == "ghost")
    assert not row["available"] and "no_such" in row["state"]
    assert "ghost" not in available_tasks()


def test_a_broken_declaration_is_listed_not_hidden(monkeypatch):
    entry = tasks.TaskEntry("broken_pkg", None, "SyntaxError: invalid syntax")
    monkeypatch.setattr(tasks, "_discovered", lambda: (entry,))
    rows = describe()
    assert rows[0]["id"] == "broken_pkg" and "SyntaxError" in rows[0]["state"]
