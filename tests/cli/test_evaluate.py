"""``volseg evaluate``: folders matched by study, outputs, grid and usage errors, exit codes."""
from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from volseg.cli.main import main

AFFINE = np.diag([0.8, 1.2, 2.5, 1.0])


def _save(path, array, affine=AFFINE, names=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(np.uint8), affine), str(path))
    if names is not None:
        target = path.parent / "labels.json" if path.name == "segmentation.nii.gz" else \
            path.with_name(path.name.replace(".nii.gz", ".json"))
        target.write_text(json.dumps({str(k): v for k, v in names.items()}))


def _maps():
    ref = np.zeros((40, 40, 20), np.uint8)
    ref[5:25, 5:25, 4:12] = 1  # liver
    ref[8:12, 8:12, 6:9] = 2  # tumour found
    ref[18:22, 18:22, 6:9] = 2  # tumour missed
    pred = ref.copy()
    pred[18:22, 18:22, 6:9] = 1
    pred[5:25, 5:25, 12] = 1  # liver one slice (2.5 mm) too long
    return pred, ref


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folders_matched_by_study_with_names_swapped(tmp_path):
    pred, ref = _maps()
    # reference: plain files with <name>.json; prediction: volseg output folders whose labels are swapped
    _save(tmp_path / "ref" / "case1.nii.gz", ref, names={1: "liver", 2: "liver_tumor"})
    swapped = np.where(pred == 1, 2, np.where(pred == 2, 1, 0))
    _save(tmp_path / "pred" / "case1" / "segmentation.nii.gz", swapped, names={1: "liver_tumor", 2: "liver"})
    _save(tmp_path / "ref" / "case2.nii.gz", ref, names={1: "liver", 2: "liver_tumor"})  # no prediction
    out = tmp_path / "out"
    code = main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(out)])
    assert code == 0
    rows = {r["structure"]: r for r in _rows(out / "evaluation.csv")}
    assert set(rows) == {"liver", "liver_tumor"}
    liver, tumour = rows["liver"], rows["liver_tumor"]
    assert liver["study_id"] == "case1" and liver["pred_label"] == "2" and liver["ref_label"] == "1"
    assert float(liver["hd95_mm"]) == pytest.approx(2.5)  # the extra slice
    assert float(tumour["dice"]) == pytest.approx(2 / 3, abs=1e-6)  # 2·48 / (48 + 96)
    assert (tumour["ref_lesions"], tumour["detected_lesions"], tumour["false_positive_lesions"]) == ("2", "1", "0")
    assert float(tumour["lesion_recall"]) == 0.5 and liver["lesion_recall"] == ""
    page = (out / "evaluation.html").read_text()
    assert "liver_tumor" in page and "case2: no prediction found" in page


def test_one_empty_mask_writes_empty_distances(tmp_path):
    pred, ref = _maps()
    pred[pred == 2] = 0
    _save(tmp_path / "p.nii.gz", pred)
    _save(tmp_path / "r.nii.gz", ref)
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "r.nii.gz"), "-o", str(tmp_path / "o")]) == 0
    rows = {r["structure"]: r for r in _rows(tmp_path / "o" / "evaluation.csv")}  # by index: label_1, label_2
    assert rows["label_2"]["dice"] == "0" and rows["label_2"]["hd95_mm"] == "" and rows["label_2"]["assd_mm"] == ""
    assert rows["label_1"]["hd95_mm"] != ""


def test_different_grids_are_a_geometry_error(tmp_path, capsys):
    pred, ref = _maps()
    shifted = AFFINE.copy()
    shifted[0, 3] = 5.0
    _save(tmp_path / "p.nii.gz", pred, affine=shifted)
    _save(tmp_path / "r.nii.gz", ref)
    code = main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "r.nii.gz"), "-o", str(tmp_path / "o")])
    assert code == 4
    err = capsys.readouterr().err
    assert "not the same physical grid" in err and "origin (5, 0, 0) vs (0, 0, 0)" in err
    assert not (tmp_path / "o" / "evaluation.csv").exists()


def test_file_against_folder_and_bad_overlap_are_usage_errors(tmp_path):
    pred, ref = _maps()
    _save(tmp_path / "p.nii.gz", pred)
    (tmp_path / "ref").mkdir()
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "ref"), "-o", str(tmp_path / "o")]) == 2
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "p.nii.gz"), "-o", str(tmp_path / "o"),
                 "--min-overlap", "0"]) == 2
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "p.nii.gz"), "-o", str(tmp_path / "o"),
                 "--instances", "nodule"]) == 2


def test_instances_option_names_the_lesion_classes(tmp_path):
    pred, ref = _maps()
    _save(tmp_path / "p.nii.gz", pred)
    _save(tmp_path / "r.nii.gz", ref)
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "r.nii.gz"), "-o", str(tmp_path / "o"),
                 "--instances", "label_2", "--min-overlap", "0.5"]) == 0
    rows = {r["structure"]: r for r in _rows(tmp_path / "o" / "evaluation.csv")}
    assert rows["label_2"]["detected_lesions"] == "1" and rows["label_2"]["lesion_min_overlap_dice"] == "0.5"
    assert rows["label_1"]["ref_lesions"] == ""
