"""``osteoview analyze`` on one study: outputs, report, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.study.dicom_writer import PatientTags, write_radiograph, write_series
from tests import fake_tasks
from tests.fake_tasks import ct_phantom, radiograph_phantom

REPO = Path(__file__).resolve().parents[1]
PATIENT = PatientTags(name="ROE^RICHARD", patient_id="PID-31", accession="ACC-31")


@pytest.fixture(autouse=True)
def _fake_tasks(monkeypatch, tmp_path):
    fake_tasks.register(monkeypatch)
    # Anonymising creates the installation's pseudonym secret: never in the real home.
    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(tmp_path / "secret" / "pseudonym.key"))


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("studies")
    write_series(
        ct_phantom(fracture_in=2), root / "ct", patient=PATIENT, series_description="neck CT"
    )
    write_radiograph(radiograph_phantom(), root / "hip.dcm", patient=PATIENT)
    (root / "notes.txt").write_text("not an image")
    return root


def _one_line_error(capsys, rc: int, *must_contain: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert rc == 2, captured
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    for text in must_contain:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def test_ct_writes_findings_labelmap_and_report(studies, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["analyze", str(studies / "ct"), "--task", "fake-ct", "--out", str(out), "--report"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    doc = json.loads((out / "findings.json").read_text())
    assert doc["task_id"] == "fake-ct"
    assert doc["study"]["patient"]["name"] == "ROE^RICHARD"
    assert {f["label"]: f["call"] for f in doc["findings"]} == {
        "fracture": "positive",
        "V1": "negative",
        "V2": "positive",
        "V3": "negative",
    }
    assert (out / doc["overlays"][0]["file"]).is_file()
    assert {"load_s", "analysis_s", "segment"} <= set(doc["timings_s"])
    assert (out / "report.pdf").stat().st_size > 10_000
    assert "V2: present" in captured.out and "V1: absent" in captured.out
    assert "POSITIVE" not in captured.out and "findings.json" in captured.out
    assert captured.err == ""  # no progress noise when stderr is not a terminal

    # Running again into the same folder needs --force.
    rc = main(["analyze", str(studies / "ct"), "--task", "fake-ct", "--out", str(out)])
    _one_line_error(capsys, rc, "findings.json", "--force")
    assert (
        main(["analyze", str(studies / "ct"), "--task", "fake-ct", "--out", str(out), "--force"])
        == 0
    )


def test_radiograph_outputs_and_anonymised_report_file(studies, tmp_path, capsys):
    out, pdf = tmp_path / "xr", tmp_path / "elsewhere" / "hip report.pdf"
    rc = main(
        [
            "analyze",
            str(studies / "hip.dcm"),
            "--task",
            "fake-xr",
            "--out",
            str(out),
            "--report",
            str(pdf),
        ]
        + ["--anonymise", "--page-size", "Letter"]
    )
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "findings.json").read_text())
    heat, boxes = doc["overlays"]
    assert np.load(out / heat["npy"], allow_pickle=False).shape == (1, 120, 160)
    assert (out / heat["png"]).is_file()
    assert boxes["boxes"][0]["mm"]["width_mm"] > 0
    assert "ROE" not in (out / "findings.json").read_text()
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "ROE^RICHARD" not in text and "PID-31" not in text and "fracture" in text
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "letter" in info


def test_series_option_picks_the_series(tmp_path, capsys):
    folder = tmp_path / "two"
    for n in (1, 3):  # two series of one study in one folder, fractures in V1 and V3
        names = [f"s{n}_{k:03d}.dcm" for k in range(30)]
        write_series(
            ct_phantom(fracture_in=n),
            folder,
            patient=PATIENT,
            study_uid="1.2.3.99",
            file_names=names,
        )
    uids = _series_uids(folder)
    assert len(uids) == 2
    for uid in uids:
        out = tmp_path / uid
        assert (
            main(["analyze", str(folder), "--task", "fake-ct", "--out", str(out), "--series", uid])
            == 0
        )
        doc = json.loads((out / "findings.json").read_text())
        assert doc["study"]["series_uid"] == uid
    positives = {
        uid: [
            f["label"]
            for f in json.loads((tmp_path / uid / "findings.json").read_text())["findings"]
            if f["call"] == "positive"
        ]
        for uid in uids
    }
    assert sorted(map(tuple, positives.values())) == [("fracture", "V1"), ("fracture", "V3")]
    rc = main(
        [
            "analyze",
            str(folder),
            "--task",
            "fake-ct",
            "--out",
            str(tmp_path / "p"),
            "--series",
            "9.9.9",
        ]
    )
    _one_line_error(capsys, rc, str(folder), "no series 9.9.9")


def _series_uids(folder: Path) -> list[str]:
    from app.study import load

    return [s.series_uid for s in load(folder).all_series()]


@pytest.mark.parametrize(
    ("target", "task", "expected"),
    [
        ("notes.txt", "fake-ct", "notes.txt"),
        ("hip.dcm", "fake-ct", "needs a CT volume"),
        ("ct", "fake-xr", "needs a hip radiograph"),
        ("missing_folder", "fake-ct", "missing_folder"),
        ("ct", "no-such-task", "unknown task"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(studies, tmp_path, capsys, target, task, expected):
    rc = main(["analyze", str(studies / target), "--task", task, "--out", str(tmp_path / "o")])
    line = _one_line_error(capsys, rc, expected)
    if task != "no-such-task":
        assert str(studies / target) in line
    assert not (tmp_path / "o" / "findings.json").exists()


def test_bad_input_in_a_real_process(studies, tmp_path):
    """The installed entry point's behaviour: exit code 2, one stderr line, no traceback."""
    launcher = (
        "import sys; from tests.fake_tasks import register_globally; register_globally(); "
        "from app.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", launcher, "analyze", str(studies / "hip.dcm"), "--task", "fake-ct"]
        + ["--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "hip.dcm" in proc.stderr and "needs a CT volume" in proc.stderr


def test_real_hip_radiograph_report(real_data, tmp_path, capsys):
    """A real 2140x1760 CR through the whole output path (fake model, real decoding and geometry)."""
    out = tmp_path / "hip"
    src = real_data / "xray_nema_wg04" / "RG2_UNC.dcm"
    rc = main(["analyze", str(src), "--task", "fake-xr", "--out", str(out), "--report"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "findings.json").read_text())
    assert doc["study"]["modality"] == "CR"
    heat = np.load(out / doc["overlays"][0]["npy"], allow_pickle=False)
    assert heat.shape[1:] == (2140, 1760)
    text = subprocess.run(
        ["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True
    ).stdout
    assert "CAM fracture" in text and "Key images" in text


# ---- the real task adapters through the same path ------------------------------------------------
def test_femur_demo_end_to_end(tmp_path, capsys):
    """The real femur adapter on a demo pelvis: both sides, class maps as PNG + NumPy, boxes in mm."""
    from app.findings.io import read_findings
    from models.femur_ao.phantom import write_demo

    study = next(p for p in write_demo(tmp_path / "demo") if "B2_right" in str(p))
    out = tmp_path / "out"
    rc = main(["analyze", str(study), "--task", "femur-ao", "--out", str(out), "--report"])
    assert rc == 0, capsys.readouterr().err
    saved = read_findings(out)
    sides = {f.side for f in saved.result.findings}
    assert sides == {"left", "right"}
    by_key = {(f.side, f.label): f for f in saved.result.findings}
    assert by_key[("right", "B2")].parent == "B" and by_key[("right", "B")].parent == "fracture"
    heat = [d for d in saved.document["overlays"] if d["type"] == "heatmap"]
    assert heat and all((out / d["png"]).is_file() and (out / d["npy"]).is_file() for d in heat)
    boxes = [b for d in saved.document["overlays"] if d["type"] == "boxes" for b in d["boxes"]]
    assert boxes and all(b["mm"]["width_mm"] > 0 for b in boxes)
    text = subprocess.run(
        ["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True
    ).stdout
    assert "CAM" in text and "Key images" in text and "B2" in text


def _csv_rows(path: Path) -> dict[str, dict]:
    import csv

    with open(path, newline="") as f:
        return {row["study"]: row for row in csv.DictReader(f)}


def _pdf_page_pixels(pdf: Path, page: int, tmp_path: Path) -> np.ndarray:
    from PIL import Image

    prefix = tmp_path / f"p{page}"
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "100",
            "-f",
            str(page),
            "-l",
            str(page),
            "-png",
            "-singlefile",
            str(pdf),
            str(prefix),
        ],
        check=True,
    )
    return np.asarray(Image.open(f"{prefix}.png").convert("RGB")).astype(int)


def _pages_with(pdf: Path, text: str) -> list[int]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    return [
        p
        for p in range(1, pages + 1)
        if text
        in subprocess.run(
            ["pdftotext", "-f", str(p), "-l", str(p), str(pdf), "-"], capture_output=True, text=True
        ).stdout
    ]


def test_cervical_demo_batch_end_to_end(tmp_path, capsys):
    """The real cervical adapter on its demo phantoms: batch, findings, label map in place, PDF."""
    from app.findings.io import read_findings
    from app.study.nifti import read_nifti
    from models.cervical_fracture.phantom import LABEL_TABLE, write_demo

    studies = write_demo(tmp_path / "demo")
    root, out = studies[0].parent, tmp_path / "out"
    rc = main(["analyze", str(root), "--task", "cervical-fracture", "--out", str(out), "--report"])
    assert rc == 0, capsys.readouterr()
    rows = _csv_rows(out / "summary.csv")
    assert set(rows) == {s.name for s in studies}
    for row in rows.values():
        assert row["status"] == "ok" and row["modality"] == "CT"
        probs = [
            float(row[f"p:{v}"])
            for v in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "patient_overall")
        ]
        assert all(0.0 <= p <= 1.0 for p in probs)
    for study in studies:
        saved = read_findings(out / study.name)
        labels = [f.label for f in saved.result.findings]
        assert (
            labels[:7] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"] and "patient_overall" in labels
        )
        assert saved.result.provenance.weights_sha256 and saved.document["disclaimer"]
        # The predicted label map sits on the truth label map in world space (no flip, no shift).
        predicted = saved.result.overlays[0].image
        truth = read_nifti(study / "truth_labels.nii.gz")
        np.testing.assert_allclose(predicted.affine_lps(), truth.affine_lps(), atol=1e-3)
        p, t = np.asarray(predicted.array), np.asarray(truth.array)
        both = ((p > 0) & (p <= 7) & (p == t)).sum()
        dice = 2 * both / (((p > 0) & (p <= 7)).sum() + ((t > 0) & (t <= 7)).sum())
        assert dice > 0.6, (study.name, dice)
        # The report's key images show flagged vertebrae in their label-map colours.
        pdf = out / study.name / "report.pdf"
        positives = [f for f in saved.result.findings if f.positive and f.region_id]
        key_pages = _pages_with(pdf, "Key images")
        assert key_pages
        pixels = np.concatenate([_pdf_page_pixels(pdf, n, tmp_path) for n in key_pages])
        for f in positives:
            colour = np.array(LABEL_TABLE[int(f.region_id)][1])
            assert (np.abs(pixels - colour).max(axis=-1) <= 30).sum() > 50, f.label
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        assert (
            "patient_overall" in text
            and "trained on synthetic phantoms, not for clinical use" in text
        )


def test_cervical_declines_the_real_abdomen_ct(real_data, tmp_path, capsys):
    src = real_data / "totalsegmentator" / "example_ct_dicom"
    rc = main(["analyze", str(src), "--task", "cervical-fracture", "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert rc == 2 and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert str(src) in captured.err and "cervical" in captured.err.lower()
    assert not (tmp_path / "o" / "findings.json").exists()
