"""Autosave journal and crash recovery: a process killed with SIGKILL loses no edit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from app.editing.editor import LabelEditor, empty_labels
from app.editing.journal import Journal, series_dir, workspace_root
from app.editing.recovery import pending_recovery
from app.study.geometry import ImageVolume

ROOT = Path(__file__).resolve().parents[1]
STUDY, SERIES = "1.2.3.4", "1.2.3.4.5"

# The scripted session, run by the child (with a journal) and by the test (without one).
SCRIPT = """
import numpy as np
from app.editing.editor import LabelEditor, empty_labels
from app.study.geometry import ImageVolume

def session(journal_factory=None):
    rng = np.random.default_rng(7)
    vol = ImageVolume(rng.normal(0, 50, (12, 64, 64)).astype(np.float32), (2.0, 0.7, 0.7),
                      np.array([-20.0, 5.0, 100.0]))
    vol.array[6, 20:40, 20:40] = 400.0
    overlay = empty_labels(vol, "Vertebrae")
    overlay.image.array[3, 10:20, 10:20] = 2  # the model's output being corrected
    ed = LabelEditor(overlay, intensity=vol)
    journal = journal_factory(ed) if journal_factory else None
    n = np.array([0.0, 0.0, 1.0])
    w = lambda k, j, i: vol.index_to_world(np.array([i, j, k], float))
    for s in range(8):
        ed.begin_stroke(w(s, 5 + s, 3), n)
        for x in range(3, 60, 7):
            ed.continue_stroke(w(s, 5 + s + x // 9, x))
        ed.end_stroke()
    ed.undo()
    ed.undo()
    ed.redo()
    ed.set_label(3)
    ed.intensity_range = (300.0, 500.0)
    ed.fill(w(6, 30, 30), n)
    ed.begin_stroke(w(3, 15, 15), n, erase=True)
    ed.end_stroke()
    ed.undo()  # the last change is an undo: the redo stack must come back too
    return ed, journal
"""


def _session():
    ns: dict = {}
    exec(SCRIPT, ns)
    return ns["session"]


CHILD = (
    SCRIPT
    + f"""
import sys, time
from app.editing.journal import Journal
ed, j = session(lambda ed: Journal(ed.history, ed.overlay, "{STUDY}", "{SERIES}"))
print("READY", flush=True)
time.sleep(60)
"""
)


def test_sigkill_then_restore_voxel_for_voxel(tmp_path, monkeypatch):
    monkeypatch.setenv("OSTEOVIEW_WORKSPACE_DIR", str(tmp_path))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "READY"
        time.sleep(1.0)  # the journal's promise: on disk within 1 s of the edit
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    expected, _ = _session()()
    rec = pending_recovery(STUDY, SERIES)
    assert rec is not None and "Vertebrae" in rec.describe()
    (layer,) = rec.restore()
    np.testing.assert_array_equal(layer.overlay.image.array, expected.data)
    assert layer.overlay.labels[3][0] == "label 3"
    # the undo history came back too: undo everything and the model's output is what remains
    ed = LabelEditor(layer.overlay, history=layer.history)
    assert ed.history.can_redo
    ed.redo()
    expected.redo()
    np.testing.assert_array_equal(ed.data, expected.data)
    while ed.undo():
        pass
    while expected.undo():
        pass
    np.testing.assert_array_equal(ed.data, expected.data)


def test_saved_edits_are_not_offered_and_discard(tmp_path):
    vol = ImageVolume(np.zeros((2, 20, 20), np.float32))
    ed = LabelEditor(empty_labels(vol))
    j = Journal(ed.history, ed.overlay, STUDY, SERIES, root=tmp_path)
    ed.begin_stroke(vol.index_to_world(np.array([5.0, 5.0, 1.0])), (0, 0, 1))
    ed.end_stroke()
    assert j.flush()
    assert pending_recovery(STUDY, SERIES, tmp_path) is not None
    j.mark_saved()
    assert j.flush()
    assert pending_recovery(STUDY, SERIES, tmp_path) is None
    ed.undo()  # after the save: offered again
    assert j.flush()
    rec = pending_recovery(STUDY, SERIES, tmp_path)
    assert rec is not None and "1 unsaved change" in rec.describe()
    rec.discard()
    assert pending_recovery(STUDY, SERIES, tmp_path) is None
    j.close()


def test_failed_write_is_reported_and_edits_stay(tmp_path):
    blocker = tmp_path / "ws"
    blocker.write_text("a file where the workspace folder should be")
    errors: list[str] = []
    vol = ImageVolume(np.zeros((2, 20, 20), np.float32))
    ed = LabelEditor(empty_labels(vol))
    j = Journal(ed.history, ed.overlay, STUDY, SERIES, on_error=errors.append, root=blocker)
    ed.begin_stroke(vol.index_to_world(np.array([5.0, 5.0, 1.0])), (0, 0, 1))
    ed.end_stroke()
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert errors and "Autosave failed" in errors[0] and "kept in memory" in errors[0]
    assert ed.data.sum() > 0 and ed.history.can_undo
    blocker.unlink()  # the disk is back: the queued records are written on the retry
    assert j.flush(timeout=10)
    (layer,) = pending_recovery(STUDY, SERIES, blocker).restore()
    np.testing.assert_array_equal(layer.overlay.image.array, ed.data)
    j.close(discard=True)


def test_workspace_location(monkeypatch, tmp_path):
    monkeypatch.delenv("OSTEOVIEW_WORKSPACE_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert workspace_root() == tmp_path / "osteoview" / "workspaces"
    assert series_dir("a", "b").parent == workspace_root()
    assert series_dir("a", "b") != series_dir("a", "c")
