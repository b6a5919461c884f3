"""The DICOMweb client against the real Orthanc: search, retrieve into the cache (progress,
cancel, resume), the pull command, and each bad case with its message and nothing half-written."""

from __future__ import annotations

import pytest

from app.cli import main
from app.pacs import PacsCancelled, PacsError
from app.pacs.cache import StudyCache
from app.pacs.client import PacsClient
from app.study import load
from tests.pacs.conftest import free_port
from tests.pacs.helpers import cutting_proxy, malformed_json_server, small_ct


@pytest.fixture()
def archive(orthanc, tmp_path):
    """Orthanc holding two small CT studies of two patients; yields (server, {pid: (uid, paths)})."""
    orthanc.clear()
    studies = {}
    for n, pid in enumerate(("PACS-0001", "PACS-0002")):
        uid, paths = small_ct(tmp_path / "src" / pid, slices=6 + 6 * n, patient_id=pid, seed=n)
        orthanc.upload(paths)
        studies[pid] = (uid, paths)
    return orthanc, studies


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return StudyCache()


def client_for(server, cache, password=None, url=None) -> PacsClient:
    pw = server.password if password is None else password
    return PacsClient(url or server.dicomweb, server.user, pw, cache=cache, timeout_s=10)


def test_search_by_patient_name_date_and_modality(archive, cache) -> None:
    server, studies = archive
    client = client_for(server, cache)
    assert {h.study_uid for h in client.search()} == {u for u, _ in studies.values()}
    hits = client.search(patient_id="PACS-0002")
    assert [h.study_uid for h in hits] == [studies["PACS-0002"][0]]
    assert hits[0].patient_name == "PHANTOM^PACS-0002" and hits[0].study_date == "20260315"
    assert hits[0].instances == 12
    assert len(client.search(patient_name="PHANTOM*")) == 2
    assert len(client.search(study_date="20260301-20260331", modality="CT")) == 2
    assert client.search(modality="MR") == []
    assert client.search(study_date="19990101") == []


def test_retrieve_into_the_cache_with_progress_then_from_cache(archive, cache) -> None:
    server, studies = archive
    uid, paths = studies["PACS-0002"]
    seen = []
    folder = client_for(server, cache).retrieve(uid, progress=lambda d, t: seen.append((d, t)))
    assert folder.parent == cache.root and str(cache.root).endswith("xdg-cache/osteoview/pacs")
    assert seen[0] == (0, 12) and seen[-1] == (12, 12)
    loaded = load(folder)
    (series,) = loaded.all_series()
    assert loaded.studies[0].study_uid == uid and series.shape == (12, 32, 40)
    original = load(paths[0].parent).all_series()[0]
    assert (series.image.array == original.image.array).all()
    # complete now: a second retrieve needs no server at all
    down = PacsClient(f"http://127.0.0.1:{free_port()}/dicom-web", cache=cache, timeout_s=2)
    assert down.retrieve(uid) == folder


def test_cancel_keeps_whole_instances_and_the_next_retrieve_resumes(archive, cache) -> None:
    server, studies = archive
    uid, _ = studies["PACS-0002"]
    client = client_for(server, cache)
    count = {"n": 0}

    def cancel() -> bool:
        count["n"] += 1
        return count["n"] > 5

    with pytest.raises(PacsCancelled, match="cancelled after 5 of 12"):
        client.retrieve(uid, cancel=cancel)
    assert not cache.is_complete(uid) and len(cache.present(uid)) == 5
    seen = []
    client.retrieve(uid, progress=lambda d, t: seen.append(d))
    assert seen[0] == 5 and seen[-1] == 12 and cache.is_complete(uid)


def test_dropped_connection_is_resumed(archive, cache) -> None:
    server, studies = archive
    uid, _ = studies["PACS-0002"]
    port = int(server.url.rsplit(":", 1)[1])
    # the series answer is ~36 KB: cut the first two connections after 12 KB of answer
    with cutting_proxy(port, after_bytes=12_000, cuts=2) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/dicom-web"
        folder = client_for(server, cache, url=url).retrieve(uid)
        assert proxy.cut == 2
    assert cache.is_complete(uid) and len(list(folder.glob("*/*.dcm"))) == 12


def test_connection_that_keeps_dropping_fails_clearly_and_pull_writes_nothing(
    archive, cache, tmp_path, monkeypatch, capsys
) -> None:
    server, studies = archive
    uid, _ = studies["PACS-0002"]
    port = int(server.url.rsplit(":", 1)[1])
    monkeypatch.setenv("OSTEOVIEW_PACS_PASSWORD", server.password)
    out = tmp_path / "pulled"
    with cutting_proxy(port, after_bytes=12_000, cuts=50) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/dicom-web"
        code = main(
            ["pull", "--server", url, "--study", uid, "--out", str(out), "--user", "reader"]
        )
    err = capsys.readouterr().err
    assert (
        code == 2
        and "connection dropped (or the answer ended early) 3 times" in err
        and "Traceback" not in err
    )
    assert not out.exists() and not cache.is_complete(uid)
    assert not list(tmp_path.glob(".staging-*"))


def test_pull_command_end_to_end(archive, cache, tmp_path, monkeypatch, capsys) -> None:
    server, studies = archive
    uid, _ = studies["PACS-0001"]
    monkeypatch.setenv("OSTEOVIEW_PACS_PASSWORD", server.password)
    out = tmp_path / "pulled"
    code = main(["pull", "--server", server.dicomweb, "--study", uid, "--out", str(out),
                 "--user", server.user])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "6 instance(s)" in capsys.readouterr().out
    assert load(out).studies[0].study_uid == uid


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_password", "refused the user name or password (401"),
        ("server_down", "cannot connect"),
        ("not_found", "no study 1.2.3.999 on the server"),
        ("malformed", "malformed JSON"),
    ],
)
def test_pull_bad_cases(archive, cache, tmp_path, monkeypatch, capsys, case, expected) -> None:
    server, studies = archive
    uid = studies["PACS-0001"][0]
    url, password = server.dicomweb, server.password
    if case == "wrong_password":
        password = "not-" + server.password
    elif case == "server_down":
        url = f"http://127.0.0.1:{free_port()}/dicom-web"
    elif case == "not_found":
        uid = "1.2.3.999"
    monkeypatch.setenv("OSTEOVIEW_PACS_PASSWORD", password)
    out = tmp_path / "pulled"
    argv = ["pull", "--study", uid, "--out", str(out), "--user", server.user]
    if case == "malformed":
        with malformed_json_server() as bad:
            code = main([*argv, "--server", bad])
            url = bad
    else:
        code = main([*argv, "--server", url])
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert err.startswith(f"osteoview pull: {url}") and "Traceback" not in err
    assert not out.exists() and not list(cache.root.glob("*/*/*.dcm"))


def test_search_errors_are_pacs_errors(archive, cache) -> None:
    server, _ = archive
    with pytest.raises(PacsError, match="401"):
        client_for(server, cache, password="wrong").search()
    with malformed_json_server() as bad:
        with pytest.raises(PacsError, match="malformed JSON"):
            PacsClient(bad, cache=cache, timeout_s=5).search(patient_id="X")


def test_analyze_a_pacs_query_as_a_batch(archive, cache, tmp_path, monkeypatch, capsys) -> None:
    from tests import fake_tasks

    fake_tasks.register(monkeypatch)
    server, studies = archive
    monkeypatch.setenv("OSTEOVIEW_PACS_PASSWORD", server.password)
    out = tmp_path / "out"
    query = f"dicomweb:{server.dicomweb}/studies?StudyDate=20260301-20260331&ModalitiesInStudy=CT"
    argv = ["analyze", query, "--task", "fake-ct", "--out", str(out), "--user", server.user]
    assert main(argv) == 0, capsys.readouterr().err
    assert "2 of 2 studies analysed" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and p.name[0] != ".") == sorted(
        uid for uid, _ in studies.values()
    )
    assert main(argv) == 0  # resumed: nothing to do
    assert capsys.readouterr().err.count("done in an earlier run") == 2
    bad = f"dicomweb:{server.dicomweb}/studies?Colour=blue"
    assert main(["analyze", bad, "--task", "fake-ct", "--out", str(out)]) == 2
    assert "keys PatientID" in capsys.readouterr().err


def test_analyze_checks_the_task_before_retrieving(archive, cache, tmp_path, capsys) -> None:
    server, studies = archive
    uid = studies["PACS-0001"][0]
    out = tmp_path / "out"
    code = main(["analyze", f"dicomweb:{server.dicomweb}/studies/{uid}", "--task", "no-such",
                 "--out", str(out)])  # fmt: skip
    assert code == 2 and "unknown task 'no-such'" in capsys.readouterr().err
    assert not cache.present(uid) and not out.exists()
