"""`volseg models install` on the folders the publishers' own programs fill (issue 16, item 4):
a TotalSegmentator home or results folder, a Raidionics models folder, a MONAI bundle folder."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from volseg.errors import ModelError
from volseg.segmenters.catalogue import get_entry
from volseg.segmenters.weights import (
    install_from_source,
    installed_path,
    read_lock,
    require_installed,
    verify,
)

TS_FAST = ("Dataset297_TotalSegmentator_total_3mm_1559subj/"
           "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "volseg-home"
    monkeypatch.setenv("VOLSEG_HOME", str(home))
    monkeypatch.delenv("VOLSEG_OFFLINE", raising=False)
    monkeypatch.delenv("VOLSEG_MIRROR", raising=False)
    return home


def write_nnunet_folder(folder: Path, seed: int = 0) -> Path:
    """dataset.json, plans.json and fold_0/checkpoint_final.pth (bytes only: nothing loads them here)."""
    (folder / "fold_0").mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "spleen": 1}}))
    (folder / "plans.json").write_text(json.dumps({"configurations": {}}))
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(hashlib.sha256(str(seed).encode()).digest() * 64)
    return folder


def ts_folders(results: Path, name: str) -> list[str]:
    """Write every dataset folder of catalogue entry ``name`` under ``results``; their names."""
    tops = []
    for wf in get_entry(name).weights:
        top = wf.members[0].split("/")[0]
        trainer = wf.members[0].split("/")[1]
        write_nnunet_folder(results / top / trainer, seed=len(tops))
        tops.append(top)
    return tops


def test_ts_results_folder_installs_as_the_named_model_and_records_hashes(home, tmp_path):
    results = tmp_path / "results"
    ts_folders(results, "total-fast")
    [r] = install_from_source(results, model="total-fast")
    assert r.name == "total-fast" and r.source.startswith("TotalSegmentator folder")
    folder = require_installed("total-fast")
    assert (folder / TS_FAST / "fold_0" / "checkpoint_final.pth").is_file()
    report = verify("total-fast")
    assert report.ok and {c.name for c in report.checks} == {
        f"{TS_FAST}/dataset.json", f"{TS_FAST}/plans.json", f"{TS_FAST}/fold_0/checkpoint_final.pth"}
    lock = read_lock()
    checkpoint = results / TS_FAST / "fold_0" / "checkpoint_final.pth"
    pinned = lock.sha256("total-fast", get_entry("total-fast").version, f"{TS_FAST}/fold_0/checkpoint_final.pth")
    assert pinned == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert set(r.recorded) == {c.name for c in report.checks}


def test_ts_home_is_recognised_without_naming_the_model(home, tmp_path):
    ts_home = tmp_path / ".totalsegmentator"
    results = ts_home / "nnunet" / "results"
    ts_folders(results, "total-fast")
    ts_folders(results, "total")
    (ts_home / "config.json").write_text("{}")
    for stray in ("a", "b"):  # files named like another entry's weights do not get in the way
        (ts_home / stray).mkdir()
        (ts_home / stray / "model.pt").write_bytes(b"x")
    found = install_from_source(ts_home)
    assert sorted(r.name for r in found) == ["total", "total-fast"]
    assert installed_path("total") is not None and verify("total").ok


def test_raidionics_models_folder(home, tmp_path):
    raidionics_home = tmp_path / ".raidionics"  # Raidionics unzips each model into resources/models/
    models = raidionics_home / "resources" / "models"
    for task in ("MRI_GBM", "MRI_Brain"):
        (models / task / "fold0").mkdir(parents=True)
        (models / task / "pre_processing.ini").write_text("[Default]\n")
        (models / task / "fold0" / "model.onnx").write_bytes(task.encode() * 100)
    (models / "MRI_GBM" / "pipeline.json").write_text("{}")
    [r] = install_from_source(raidionics_home)
    assert r.name == "raidionics-mri-gbm"
    assert [x.name for x in install_from_source(models, model="raidionics-mri-gbm")] == [r.name]
    folder = require_installed("raidionics-mri-gbm")
    assert (folder / "MRI_Brain" / "fold0" / "model.onnx").read_bytes() == b"MRI_Brain" * 100
    assert verify("raidionics-mri-gbm").ok


def _bundle(root: Path, checkpoint: bytes) -> Path:
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "inference.json").write_text("{}")
    (root / "configs" / "metadata.json").write_text(json.dumps({"version": "0.2.5"}))
    (root / "models" / "model.pt").write_bytes(checkpoint)
    return root


def test_monai_bundle_folder(home, tmp_path, monkeypatch):
    from volseg.segmenters import catalogue as cat

    checkpoint = b"weights" * 1000
    entry = get_entry("wholebody_ct_segmentation")
    weights = tuple(w.model_copy(update={"publisher_hash": cat.PublisherHash(
        algorithm="md5", value=hashlib.md5(checkpoint).hexdigest())}) if w.archive is None else w
        for w in entry.weights)
    entries = {**cat.load_catalogue(), entry.name: entry.model_copy(update={"weights": weights})}
    from volseg.segmenters.weights import bundle as bundle_module

    monkeypatch.setattr(cat, "load_catalogue", lambda: entries)
    monkeypatch.setattr(bundle_module, "load_catalogue", lambda: entries)
    bundle = _bundle(tmp_path / "wholeBody_ct_segmentation", checkpoint)
    [r] = install_from_source(bundle)
    assert r.name == "wholebody_ct_segmentation"
    folder = require_installed(r.name)
    assert (folder / "model.pt").read_bytes() == checkpoint
    assert (folder / "bundle" / "wholeBody_ct_segmentation" / "configs" / "inference.json").is_file()
    assert verify(r.name).ok
    renamed = _bundle(tmp_path / "my_bundle", checkpoint)  # any folder name, when the model is named
    assert install_from_source(renamed, model=r.name)[0].name == r.name


def test_a_pinned_file_that_differs_is_refused(home, tmp_path):
    bundle = _bundle(tmp_path / "wholeBody_ct_segmentation", b"not the publisher's checkpoint")
    with pytest.raises(ModelError, match="model.pt of wholebody_ct_segmentation does not match the publisher's md5"):
        install_from_source(bundle)
    assert installed_path("wholebody_ct_segmentation") is None


def test_a_member_that_differs_from_the_lock_is_refused_and_the_old_install_kept(home, tmp_path):
    results = tmp_path / "results"
    ts_folders(results, "total-fast")
    install_from_source(results, model="total-fast")
    checkpoint = results / TS_FAST / "fold_0" / "checkpoint_final.pth"
    checkpoint.write_bytes(b"tampered" + checkpoint.read_bytes()[8:])
    with pytest.raises(ModelError, match="checkpoint_final.pth of total-fast .* does not match the lock"):
        install_from_source(results, model="total-fast")
    assert verify("total-fast").ok  # the first installation is untouched


def test_a_wrong_folder_names_what_is_missing_in_one_line(home, tmp_path):
    results = tmp_path / "results"
    ts_folders(results, "total-fast")
    (results / TS_FAST / "fold_0" / "checkpoint_final.pth").unlink()
    with pytest.raises(ModelError) as info:
        install_from_source(results, model="total-fast")
    message = info.value.message
    assert "\n" not in message and f"{TS_FAST}/fold_0/checkpoint_final.pth" in message
    assert "lacks 1 file(s) of total-fast: Dataset297_TotalSegmentator_total_3mm_1559subj.zip" in message
    assert installed_path("total-fast") is None
    with pytest.raises(ModelError, match="no catalogued model is complete"):
        install_from_source(results)


def test_unpacked_installs_are_locked_but_not_exported(home, tmp_path):
    from volseg.segmenters.weights import export_bundle
    from volseg.segmenters.weights.lock import build_lock

    results = tmp_path / "results"
    ts_folders(results, "total-fast")
    install_from_source(results, model="total-fast")
    lock = build_lock()
    assert lock.sha256("total-fast", get_entry("total-fast").version, f"{TS_FAST}/plans.json")
    with pytest.raises(ModelError, match="installed from an unpacked folder"):
        export_bundle(["total-fast"], tmp_path / "out.zip")


def test_require_lock_applies_to_unpacked_members(home, tmp_path):
    results = tmp_path / "results"
    ts_folders(results, "total-fast")
    with pytest.raises(ModelError, match="--require-lock: total-fast .* is not in the lock file"):
        install_from_source(results, model="total-fast", require_lock=True, lock_path=tmp_path / "none.json")
    assert installed_path("total-fast") is None


def test_a_publishers_folder_is_identified(tmp_path):
    from volseg.segmenters.weights.publishers import identify_path

    folder = write_nnunet_folder(tmp_path / "results" / TS_FAST)
    assert [e.name for e in identify_path(folder)] == ["total-fast"]
    assert identify_path(write_nnunet_folder(tmp_path / "Dataset901_Other" / "nnUNetTrainer__p__3d")) == []


def test_models_show_names_the_reference_of_each_path(capsys):
    from volseg.cli.main import main

    assert main(["models", "show", "total-fast"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "-m total-fast follows the TotalSegmentator pipeline: RAS reorientation, resampling to 3 × 3 × 3 mm" in out
    assert "--model PATH on its nnU-Net folder follows nnU-Net's own predictor semantics" in out


def test_results_folder_and_release_zip_give_the_same_labels(tmp_path, monkeypatch):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network on a shared host: one thread is much faster
    try:
        _same_labels(tmp_path, monkeypatch)
    finally:
        torch.set_num_threads(threads)


def _same_labels(tmp_path, monkeypatch):
    """The same fabricated weights under TotalSegmentator's names: installed from its results folder
    in one VOLSEG_HOME and from the release-layout zip in another, `segment -m total-fast` agrees."""
    pytest.importorskip("nnunetv2")
    import zipfile

    import nibabel as nib
    import numpy as np

    from tests.factories.nnunet_model import write_random_model
    from volseg.cli.main import main
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom

    results = tmp_path / "ts-home" / "nnunet" / "results"
    write_random_model(results / TS_FAST)
    [asset] = [w.name for w in get_entry("total-fast").weights]
    release = tmp_path / "release"
    release.mkdir()
    with zipfile.ZipFile(release / asset, "w", zipfile.ZIP_DEFLATED) as zf:  # as the release asset
        for path in sorted((results / TS_FAST.split("/")[0]).rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(results).as_posix())
    ct = write_nifti(make_phantom((24, 20, 8), (8.0, 8.0, 15.0)).image, tmp_path / "ct.nii.gz")
    labels = {}
    for how, source in (("folder", results), ("zip", release)):
        monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / f"home-{how}"))
        assert main(["models", "install", str(source), "-m", "total-fast"]) == 0
        out = tmp_path / f"out-{how}"
        assert main(["segment", str(ct), "-m", "total-fast", "--force", "-o", str(out)]) == 0
        labels[how] = np.asarray(nib.load(out / "segmentation.nii.gz").dataobj)
    assert labels["folder"].shape == labels["zip"].shape
    assert np.array_equal(labels["folder"], labels["zip"]) and len(np.unique(labels["zip"])) > 1


def test_model_path_on_a_publishers_folder_says_which_entry_it_is(tmp_path, caplog):
    pytest.importorskip("nnunetv2")
    import logging

    from tests.factories.nnunet_model import write_random_model
    from volseg.segmenters.registry import load_segmenter

    folder = write_random_model(tmp_path / "results" / TS_FAST)
    with caplog.at_level(logging.INFO, logger="volseg"):
        segmenter = load_segmenter(str(folder), device="cpu")
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "TotalSegmentator's folder for catalogue model total-fast" in said
    assert "nnU-Net's own predictor semantics" in said and "`-m total-fast` follows the TotalSegmentator" in said
    assert segmenter.name != "total-fast"  # still the plain nnU-Net folder
