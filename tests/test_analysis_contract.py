"""The analysis layer's contract, for every task and for fake tasks with two inputs and an
optional mask: inputs resolve (or say exactly what is missing), overlays are tied to input slots,
provenance is complete, cancel takes effect at the next stage boundary, explanations are a
separate, cached, cancellable step, and a batch is split by study."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.analysis import explain as explain_mod
from app.analysis.discovery import discover_studies, looks_like_batch
from app.analysis.one_study import AnalyzeOptions, analyze_study
from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.analysis.tasks import available_tasks, get_adapter, get_spec
from app.engine.adapter import AnalysisCancelled, ExplainUnavailable, InputRejected
from app.study import load
from app.study.dicom_writer import PatientTags, write_radiograph, write_series
from app.study.geometry import ImageVolume
from tests import fake_pair_task
from tests.fake_pair_task import CALLS, FakePairAdapter

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo"


def _radiograph(seed: int, bright_at: tuple[int, int]) -> ImageVolume:
    rng = np.random.default_rng(seed)
    arr = (1000 + 30 * rng.standard_normal((1, 80, 60))).astype(np.uint16)
    j, i = bright_at
    arr[0, j - 6 : j + 6, i - 6 : i + 6] = 4000
    return ImageVolume(arr, (1.0, 0.2, 0.2), np.zeros(3), np.eye(3))


def _pair_study(root: Path, views=("AP", "LL"), study_uid: str = "1.2.826.0.1.3680043.8.498.1"):
    for n, view in enumerate(views):
        write_radiograph(
            _radiograph(n, (20 + 10 * n, 30)).array[0], root / view / "image.dcm",
            series_description=f"spine {view}", view_position=view, study_uid=study_uid,
            patient=PatientTags(body_part="LSPINE"),
        )  # fmt: skip
    return root


@pytest.fixture()
def pair(monkeypatch):
    fake_pair_task.register(monkeypatch)
    FakePairAdapter.stage_s = 0.0
    FakePairAdapter.stage_ends = []
    return FakePairAdapter()


def _check_result(adapter, request, result) -> None:
    assert result.task_id == adapter.task_id
    assert all(ov.slot in request.inputs for ov in result.overlays), "overlay not tied to a slot"
    prov = result.provenance
    assert prov.model_name and prov.model_version and prov.weights_sha256
    assert prov.created and prov.device and prov.paper and prov.disclaimer
    assert prov.timings_s and all(v >= 0 for v in prov.timings_s.values())
    assert set(prov.inputs) == set(request.inputs)
    for slot, rec in prov.inputs.items():
        assert rec["series_uid"] == request.inputs[slot].series_uid
        assert rec["origin"] in ("auto", "user", "edited")


def test_two_inputs_resolve_and_each_overlay_names_its_input(pair, tmp_path):
    study = _pair_study(tmp_path / "s")
    loaded = load(study)
    request = resolve_inputs(pair.spec, loaded, study, adapter=pair)
    assert request["ap"].view_position == "AP" and request["lateral"].view_position == "LL"
    assert "mask" not in request.inputs
    result = run_analysis(pair, request)
    _check_result(pair, request, result)
    slots = {ov.name: ov.slot for ov in result.overlays}
    assert slots == {
        "AP brightness": "ap", "AP peak": "ap", "Lateral mask": "lateral", "Lateral box": "lateral"
    }  # fmt: skip
    assert result.extra["mask_used"] == "predicted"


def test_a_missing_view_is_named(pair, tmp_path):
    study = _pair_study(tmp_path / "s", views=("AP",))
    with pytest.raises(InputRejected) as exc:
        resolve_inputs(pair.spec, load(study), study, adapter=pair)
    msg = str(exc.value)
    assert "fake-pair needs an AP and a lateral radiograph of one study" in msg
    assert "this study has only an AP" in msg and str(study) in msg


def test_the_user_overrides_a_slot_and_a_given_mask_is_used(pair, tmp_path):
    study = _pair_study(tmp_path / "s")
    loaded = load(study)
    lat = next(s for s in loaded.all_series() if s.view_position == "LL")
    mask_px = np.zeros(lat.shape[1:], np.uint8)
    mask_px[5:15, 5:15] = 255
    Image.fromarray(mask_px).save(tmp_path / "mask.png")
    from app.analysis.request import series_by_uid_or_path

    mask = series_by_uid_or_path(loaded, str(tmp_path / "mask.png"), load)
    request = resolve_inputs(pair.spec, loaded, study, adapter=pair, overrides={"mask": mask})
    assert request.origins == {"ap": "auto", "lateral": "auto", "mask": "user"}
    result = run_analysis(pair, request)
    assert result.extra["mask_used"] == "given"
    lm = next(o for o in result.overlays if o.name == "Lateral mask")
    assert int(lm.image.array.sum()) == 100


def test_an_input_of_the_wrong_kind_is_refused_even_when_the_user_chose_it(pair, tmp_path):
    study = _pair_study(tmp_path / "s")
    loaded = load(study)
    write_series(
        ImageVolume(np.zeros((3, 8, 8), np.int16), (1, 1, 1), np.zeros(3), np.eye(3)),
        tmp_path / "ct", "CT",
    )  # fmt: skip
    from app.analysis.request import series_by_uid_or_path

    wrong = series_by_uid_or_path(loaded, str(tmp_path / "ct"), load)
    request = resolve_inputs(pair.spec, loaded, study, adapter=pair, overrides={"ap": wrong})
    with pytest.raises(InputRejected, match="needs an AP radiograph"):
        run_analysis(pair, request)


def test_cancel_takes_effect_within_100_ms_of_a_stage_boundary(pair, tmp_path):
    study = _pair_study(tmp_path / "s")
    request = resolve_inputs(pair.spec, load(study), study, adapter=pair)
    FakePairAdapter.stage_s = 0.3
    flag = threading.Event()
    threading.Timer(0.15, flag.set).start()  # during the first stage
    with pytest.raises(AnalysisCancelled):
        run_analysis(pair, request, cancel=flag.is_set)
    raised = time.perf_counter()
    assert len(FakePairAdapter.stage_ends) == 1, "a stage started after cancel was asked"
    assert raised - FakePairAdapter.stage_ends[0] < 0.100


def test_explanations_are_a_separate_cached_cancellable_step(pair, tmp_path):
    study = _pair_study(tmp_path / "s")
    request = resolve_inputs(pair.spec, load(study), study, adapter=pair)
    result = run_analysis(pair, request)
    finding = result.findings[0]
    cache = explain_mod.ExplanationCache()
    before = CALLS["explain"]
    seen = []
    maps = explain_mod.explain(pair, request, result, finding, "occlusion",
                               progress=lambda s, f: seen.append(f), cache=cache)  # fmt: skip
    assert [m.slot for m in maps] == ["ap"] and maps[0].colormap == "coolwarm"
    assert seen == sorted(seen) and seen[-1] == 1.0
    again = explain_mod.explain(pair, request, result, finding, "occlusion", cache=cache)
    assert again is maps and CALLS["explain"] == before + 1 and cache.hits == 1
    with pytest.raises(ExplainUnavailable, match="occlusion"):
        explain_mod.explain(pair, request, result, finding, "shap", cache=cache)
    FakePairAdapter.stage_s = 0.05
    flag = threading.Event()
    threading.Timer(0.12, flag.set).start()
    t0 = time.perf_counter()
    with pytest.raises(AnalysisCancelled):
        explain_mod.explain(pair, request, result, result.findings[1], "occlusion",
                            cancel=flag.is_set, cache=cache)  # fmt: skip
    assert time.perf_counter() - t0 < 0.12 + 0.05 + 0.100


def test_a_batch_is_split_by_study_not_by_folder(pair, tmp_path):
    one = _pair_study(tmp_path / "one")
    assert not looks_like_batch(one), "the AP/ and LAT/ folders of one study are one study"
    root = tmp_path / "batch"
    _pair_study(root / "a_ap_side", views=("AP",), study_uid="1.2.826.0.1.3680043.8.498.7")
    _pair_study(root / "a_lat_side", views=("LL",), study_uid="1.2.826.0.1.3680043.8.498.7")
    _pair_study(root / "b", study_uid="1.2.826.0.1.3680043.8.498.8")
    entries = discover_studies(root)
    assert [(e.name, len(e.paths)) for e in entries] == [("a_ap_side", 2), ("b", 1)]
    run = analyze_study(entries[0].paths, pair, tmp_path / "out", AnalyzeOptions())
    assert set(run.request.inputs) == {"ap", "lateral"}


@pytest.mark.parametrize("task_id", ["cervical-fracture", "femur-ao", "lumbar-mri",
                                     "calcaneus-fracture", "spine-xray"])  # fmt: skip
def test_every_available_task_runs_through_the_runner(task_id, tmp_path):
    if task_id not in available_tasks():
        pytest.skip(f"{task_id}: model not built in this tree")
    adapter = get_adapter(task_id)
    spec = get_spec(task_id)
    studies = sorted(p for p in (DEMO / task_id).iterdir() if p.is_dir())
    last = None
    for study in studies:
        try:
            request = resolve_inputs(spec, load(study), study, adapter=adapter)
            result = run_analysis(adapter, request)
        except InputRejected as exc:  # demo weights may decline a phantom after a look inside
            last = exc
            continue
        _check_result(adapter, request, result)
        return
    pytest.fail(f"{task_id}: no demo study ran ({last})")
