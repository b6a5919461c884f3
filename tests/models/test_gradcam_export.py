"""The Grad-CAM export step on freshly exported networks (torch): what a re-export ships.

For spine and cervical, ``add_gradcam_outputs`` after the torch export leaves the shipped output
equal to torch's, exposes the chosen layer's feature map, and cuts a head whose score is the
network's own logit (torch's, before the sigmoid/softmax); the manifest lists the head.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


def test_spine_classifier_export_keeps_probabilities_and_cuts_the_head(tmp_path):
    import onnxruntime as ort

    from models.spine_xray.export import (
        FILES,
        GRADCAM_HEAD,
        add_gradcam_outputs,
        export_graphs,
        write_manifest,
    )
    from models.spine_xray.networks import DEMO, build_classifier, build_unet

    torch.manual_seed(0)
    nets = {v: build_unet(DEMO, v).eval() for v in ("ap", "lateral")}
    nets["classifier"] = build_classifier(DEMO).eval()
    export_graphs(nets, DEMO, tmp_path)
    entry = add_gradcam_outputs(tmp_path)[FILES["classifier"]]
    size = DEMO.classifier.input_size
    rng = np.random.default_rng(0)
    ap, lat = (rng.random((3, 1, size, size), dtype=np.float32) for _ in range(2))
    sess = ort.InferenceSession(str(tmp_path / FILES["classifier"]))
    probs, f_ap, f_lat = sess.run(None, {"ap": ap, "lateral": lat})
    with torch.no_grad():
        logits = nets["classifier"](torch.from_numpy(ap), torch.from_numpy(lat)).numpy()
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits), 1), atol=1e-5)
    assert f_ap.shape == (3, DEMO.classifier.widths[2], size // 16, size // 16)  # layer3
    head = ort.InferenceSession(str(tmp_path / entry["head"]))
    names = entry["features"]
    (score,) = head.run(None, {names["ap"]: f_ap, names["lateral"]: f_lat})
    np.testing.assert_allclose(score, logits, atol=1e-4)
    doc = json.loads(write_manifest(tmp_path, DEMO, {"gradcam": {"x": entry}}).read_text())
    assert GRADCAM_HEAD in doc["files"] and doc["gradcam"]["x"]["head"] == GRADCAM_HEAD


def test_cervical_stage2_export_keeps_probabilities_and_cuts_the_head(tmp_path):
    import onnxruntime as ort

    from models.cervical_fracture import pipeline as P
    from models.cervical_fracture.export import (
        GRADCAM_HEAD,
        _Stage2Probs,
        add_gradcam_outputs,
        export_stage2,
        max_difference,
        shipped_files,
    )
    from models.cervical_fracture.networks import DEMO, build_stage2

    torch.manual_seed(2)
    net = build_stage2(DEMO.stage2).eval()
    export_stage2(net, tmp_path / "stage2.onnx")
    entry = add_gradcam_outputs(tmp_path)["stage2.onnx"]
    x = np.random.default_rng(2).random((2, P.SEQ_LEN, 3, P.CROP_SIZE, P.CROP_SIZE), np.float32)
    assert max_difference(tmp_path / "stage2.onnx", _Stage2Probs(net).eval(), x) < 1e-4
    sess = ort.InferenceSession(str(tmp_path / "stage2.onnx"))
    names = [o.name for o in sess.get_outputs()]
    assert names == ["prob", entry["features"]]
    feats = sess.run(None, {"sequence": x})[1]
    assert feats.shape[0] == 2 * P.SEQ_LEN  # one feature map per triplet
    head = ort.InferenceSession(str(tmp_path / entry["head"]))
    shape = np.array(x.shape, np.int64)
    (score,) = head.run(None, {entry["features"]: feats, "sequence_shape": shape})
    with torch.no_grad():
        logit = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(score, logit, atol=1e-4)
    assert shipped_files(tmp_path)[-1] == GRADCAM_HEAD
