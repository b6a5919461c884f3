"""tests/gpu/bench.py on this machine (no GPU): the GPU part is skipped with the engine's reason,
the CPU figures are real; with a GPU pretended (sessions asked for CUDA fall back to the CPU),
both columns and the speed-up are filled, so the side-by-side code runs too. Tiny sizes."""

from __future__ import annotations

import json

import pytest

from app.engine import device as D
from tests.gpu import bench


@pytest.fixture(autouse=True)
def fresh_choice(monkeypatch):
    monkeypatch.delenv("OSTEOVIEW_DEVICE", raising=False)
    D.forget_choice()
    yield
    D.forget_choice()


TINY = ["--repeat", "1", "--batch", "1", "--tasks", "femur-ao", "--no-paper"]


def test_without_cuda_the_gpu_part_is_skipped_with_the_reason(tmp_path, capsys):
    import onnxruntime as ort

    if D.CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    out = tmp_path / "figures.json"
    assert bench.main([*TINY, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GPU: skipped (this ONNX Runtime has no CUDA provider); CPU only" in printed
    figures = json.loads(out.read_text())
    assert figures["gpu"] is False
    (row,) = figures["end_to_end_s"]
    assert row["name"].startswith("femur-ao") and row["cpu"] > 0 and row["gpu"] is None
    (net,) = figures["throughput_img_per_s"]
    assert net["name"] == "femur-ao femur_ao.onnx" and net["cpu"] > 0 and net["gpu"] is None


def test_side_by_side_when_a_gpu_is_found(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "gpu_status", lambda: "")
    out = tmp_path / "figures.json"
    assert bench.main([*TINY, "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["gpu"] is True
    for row in figures["end_to_end_s"] + figures["throughput_img_per_s"]:
        assert row["cpu"] > 0 and row["gpu"] > 0
    assert "x\n" in capsys.readouterr().out  # the speed-up column


@pytest.mark.slow
def test_paper_configuration_on_cpu(tmp_path):
    """Exports the paper networks (ResNet-50 + BiLSTM 768; about a minute) at a tiny size."""
    pytest.importorskip("torch")
    rows = bench.paper_per_study([bench.CPU], slices=2, size=64, vertebrae=1, repeat=1)
    assert [r["name"] for r in rows] == [
        "paper config stage 1", "paper config stage 2", "paper config study"
    ]  # fmt: skip
    assert all(r["cpu"] > 0 and r["gpu"] is None for r in rows)
    assert rows[2]["cpu"] == pytest.approx(rows[0]["cpu"] + rows[1]["cpu"])
