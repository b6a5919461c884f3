"""The input-domain measure itself (app.engine.domain): features, the shrunk Mahalanobis distance,
its JSON form, the pinned digest, and the no-call fields through findings.json and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.engine.domain import (
    FEATURE_NAMES,
    NO_CALL_REASON,
    DomainError,
    DomainModel,
    check_domain,
    image_features,
    ledoit_wolf,
    load_domain_model,
)
from app.findings.io import read_findings, write_result
from app.findings.types import AnalysisResult, Finding, Provenance


def _smooth_noisy(rng: np.random.Generator, n: int = 64, noise: float = 0.02) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n] / n
    blob = np.exp(-((xx - rng.uniform(0.3, 0.7)) ** 2 + (yy - 0.5) ** 2) / 0.05)
    return blob + rng.normal(0, noise, (n, n))


def test_features_have_their_names_and_see_texture_and_clipping():
    rng = np.random.default_rng(0)
    smooth = image_features(_smooth_noisy(rng))
    assert smooth.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(smooth))
    grainy = image_features(_smooth_noisy(rng, noise=0.3))
    top_band = FEATURE_NAMES.index("log_power_band0")
    assert grainy[top_band] > smooth[top_band] + 0.5  # more power near Nyquist
    clipped = np.clip(_smooth_noisy(rng), 0.1, 0.3)
    share = FEATURE_NAMES.index("share_at_max")
    assert image_features(clipped)[share] > 0.05 > smooth[share]


def test_ledoit_wolf_shrinks_more_with_fewer_samples():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 10)) @ np.diag(np.linspace(0.2, 3.0, 10))  # far from identity
    _, shrink_many = ledoit_wolf(z - z.mean(0))
    _, shrink_few = ledoit_wolf(z[:15] - z[:15].mean(0))
    assert 0.0 <= shrink_many < shrink_few <= 1.0


def test_distance_separates_unlike_images_and_round_trips_json():
    rng = np.random.default_rng(2)
    train = np.stack([image_features(_smooth_noisy(rng)) for _ in range(60)])
    model = DomainModel.fit(train)
    model.calibrate([model.distance(image_features(_smooth_noisy(rng))[None]) for _ in range(40)])
    like = model.distance(image_features(_smooth_noisy(rng))[None])
    unlike = model.distance(image_features(rng.uniform(size=(64, 64)))[None])
    assert like <= model.threshold < unlike
    again = DomainModel.from_json(json.loads(json.dumps(model.to_json())))
    x = image_features(_smooth_noisy(rng))[None]
    assert math.isclose(again.distance(x), model.distance(x), rel_tol=1e-9)
    assert again.threshold == model.threshold
    check = check_domain(again, {"a": x, "b": image_features(rng.uniform(size=(64, 64)))[None]})
    assert not check.in_domain and check.per_slot["b"] > check.threshold >= check.per_slot["a"]


def test_max_and_median_aggregates():
    rng = np.random.default_rng(3)
    train = np.stack([image_features(_smooth_noisy(rng)) for _ in range(40)])
    rows = np.stack([image_features(_smooth_noisy(rng)) for _ in range(4)]
                    + [image_features(rng.uniform(size=(64, 64)))])  # fmt: skip
    by_max, by_median = DomainModel.fit(train, "max"), DomainModel.fit(train, "median")
    assert by_max.distance(rows) == pytest.approx(by_max.distances(rows).max())
    assert by_median.distance(rows) == pytest.approx(np.median(by_median.distances(rows)))
    assert by_median.distance(rows) < by_max.distance(rows)


class _Adapter:
    """Stands in for an OnnxAdapter whose package pins a domain digest."""

    def __init__(self, folder):
        self.weights_dir = self.default_weights_dir = folder


def test_a_shipped_domain_model_must_match_its_pinned_digest(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    model = DomainModel.fit(np.stack([image_features(_smooth_noisy(rng)) for _ in range(10)]))
    (tmp_path / "domain.json").write_text(json.dumps(model.to_json()))
    adapter = _Adapter(tmp_path)
    monkeypatch.setattr("app.engine.domain.pinned_domain_digest", lambda a: "0" * 64)
    with pytest.raises(DomainError, match="does not match"):
        load_domain_model(adapter)
    monkeypatch.setattr("app.engine.domain.pinned_domain_digest", lambda a: None)
    assert load_domain_model(adapter).threshold == model.threshold
    (tmp_path / "domain.json").unlink()
    assert load_domain_model(adapter) is None
    assert check_domain(None, None).in_domain  # no model shipped: calls as before, noted


def _result(no_call: str) -> AnalysisResult:
    prov = Provenance("t", "m", "1", {}, "p", "phantoms")
    prov.domain_check = {"measure": "x", "distance": 9.0, "threshold": 3.0, "in_domain": False}
    findings = [Finding("fracture", 0.81), Finding("normal", 0.19)]
    return AnalysisResult("t", findings, [], prov, "s", {}, no_call)


def test_findings_json_writes_no_call_and_reads_it_back(tmp_path):
    write_result(_result(NO_CALL_REASON), tmp_path / "a")
    doc = json.loads((tmp_path / "a" / "findings.json").read_text())
    assert doc["no_call"] == NO_CALL_REASON
    assert [f["call"] for f in doc["findings"]] == ["no call", "no call"]
    assert doc["findings"][0]["probability"] == pytest.approx(0.81)
    assert doc["provenance"]["domain_check"]["in_domain"] is False
    back = read_findings(tmp_path / "a").result
    assert back.no_call == NO_CALL_REASON and back.provenance.domain_check["distance"] == 9.0
    write_result(_result(""), tmp_path / "b")
    doc = json.loads((tmp_path / "b" / "findings.json").read_text())
    assert [f["call"] for f in doc["findings"]] == ["positive", "negative"]


def test_scale_floor_keeps_a_nearly_fixed_feature_from_dominating():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 4))
    x[:, 3] = 0.5 + rng.normal(0, 1e-4, 80)  # the generator holds this one nearly fixed
    odd = np.array([[0.0, 0.0, 0.0, 0.53]])  # a small absolute change in it
    unfloored = DomainModel.fit(x, scale_floor=0.0).distance(odd)
    floored = DomainModel.fit(x, scale_floor=0.02)
    assert unfloored > 100 and floored.distance(odd) < unfloored / 20
    assert floored.calibration["scale_floor"] == 0.02
    assert floored.distance(np.array([[6.0, 0.0, 0.0, 0.5]])) > 4  # real departures still count
