"""Intensity statistics for every modality, in the image's own units; HU only for CT in HU (judged by
the modality tag and the value range, not by air); a warning when the geometry is probably missing."""
from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest

from volseg import api
from volseg.io.nifti import GEOMETRY_MISSING, read_nifti, write_nifti
from volseg.postprocess.intensity import intensity_unit, is_ct_in_hu
from volseg.reports.tables import VOLUMETRY_COLUMNS
from volseg.volume import Volume

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _liver_crop() -> np.ndarray:
    """A CT crop with no air: fat (-100 HU) around liver (60 HU)."""
    image = np.full((10, 10, 10), -100, np.int16)
    image[2:8, 2:8, 2:8] = 60
    return image


def test_ct_crop_without_air_is_hu():
    assert is_ct_in_hu(_liver_crop(), "CT") and is_ct_in_hu(_liver_crop(), None)
    assert intensity_unit(_liver_crop(), None) == "HU"


def test_mr_and_positive_untagged_images_are_image_units():
    mr = np.random.default_rng(0).uniform(0, 900, (10, 10, 10))
    assert intensity_unit(mr, "MR") == "image units (MR)"
    assert intensity_unit(mr, None) == "image units (modality unknown)"
    assert intensity_unit(_liver_crop(), "MR") == "image units (MR)"  # the tag wins
    assert not is_ct_in_hu(np.full((4, 4, 4), 20000.0), "CT")  # no scanner stores such HU


def _study(tmp_path, image: np.ndarray, name: str):
    labels = np.zeros(image.shape, np.uint8)
    labels[2:8, 2:8, 2:8] = 1
    ct = write_nifti(Volume(image, AFFINE), tmp_path / f"{name}.nii.gz")
    seg = write_nifti(Volume(labels, AFFINE), tmp_path / f"{name}_seg.nii.gz")
    return api.measure(seg, tmp_path / name, image=ct)


def test_mr_gets_intensity_statistics_in_image_units(tmp_path):
    image = np.full((10, 10, 10), 100.0, np.float32)
    image[2:8, 2:8, 2:8] = np.arange(216, dtype=np.float32).reshape(6, 6, 6) + 500  # 500..715
    result = _study(tmp_path, image, "mr")
    row = result.report.structure("label_1")
    assert row.intensity_unit == "image units (modality unknown)"
    assert row.mean_intensity == pytest.approx(607.5) and row.min_intensity == 500 and row.max_intensity == 715
    assert row.mean_hu is None and row.std_hu is None
    assert any("not HU" in w for w in result.report.warnings)
    with open(result.outputs["volumetry"], newline="") as fh:
        (line,) = list(csv.DictReader(fh))
    assert float(line["mean_intensity"]) == pytest.approx(607.5) and line["mean_hu"] == ""
    assert line["intensity_unit"] == "image units (modality unknown)"
    assert "Mean (image units)" in result.outputs["html"].read_text()


def test_ct_crop_keeps_hu_columns(tmp_path):
    row = _study(tmp_path, _liver_crop(), "crop").report.structure("label_1")
    assert row.intensity_unit == "HU"
    assert row.mean_hu == pytest.approx(60.0) and row.mean_intensity == pytest.approx(60.0)


def test_volumetry_columns_name_their_units():
    assert {"mean_intensity", "p95_intensity", "intensity_unit", "mean_hu"} <= set(VOLUMETRY_COLUMNS)


def test_identity_affine_is_warned(tmp_path):
    path = tmp_path / "noaffine.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), np.eye(4)), str(path))
    assert GEOMETRY_MISSING in read_nifti(path).source.warnings
    fine = write_nifti(Volume(np.zeros((3, 3, 3), np.int16), AFFINE), tmp_path / "fine.nii.gz")
    assert GEOMETRY_MISSING not in read_nifti(fine).source.warnings


def test_lits_crop_is_warned(shared_data, tmp_path):
    folder = shared_data / "lits117-crop"
    report = api.measure(folder / "lits117_128cube_label.nii.gz", tmp_path / "out",
                         image=folder / "lits117_128cube_ct.nii.gz").report
    assert any(w.startswith("geometry probably missing") for w in report.warnings)
    assert any(s.mean_hu is not None for s in report.structures)  # a CT crop keeps HU
