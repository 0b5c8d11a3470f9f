"""The foundation issue's must-shows on real data (../shared/data)."""
import csv
import json

import nibabel as nib
import numpy as np
import pytest

from volseg.io import read_image

FOUR_FILES = {"segmentation.nii.gz", "labels.json", "report.json", "volumetry.csv"}


def test_segment_nifti_writes_four_files_on_the_input_grid(shared_data, tmp_path, cli):
    src = shared_data / "totalseg-example" / "example_ct.nii.gz"
    proc = cli("segment", src, "-o", tmp_path / "out1")
    assert proc.returncode == 0, proc.stderr
    assert FOUR_FILES <= {p.name for p in (tmp_path / "out1").iterdir()}
    seg = nib.load(str(tmp_path / "out1" / "segmentation.nii.gz"))
    ct = nib.load(str(src))
    assert seg.shape == ct.shape
    np.testing.assert_array_equal(seg.affine, ct.affine)
    labels = json.loads((tmp_path / "out1" / "labels.json").read_text())
    assert {lab["name"] for lab in labels["labels"]} >= {"body", "lung_left", "lung_right"}


def test_segment_dicom_series_matches_a_careful_conversion(shared_data, tmp_path, cli):
    """Our label map lies on the DICOM grid exactly as SimpleITK's series reader places it."""
    import SimpleITK as sitk

    src = shared_data / "chest-ct-dicom"
    proc = cli("segment", src, "-o", tmp_path / "out2")
    assert proc.returncode == 0, proc.stderr
    assert FOUR_FILES <= {p.name for p in (tmp_path / "out2").iterdir()}
    seg = nib.load(str(tmp_path / "out2" / "segmentation.nii.gz"))
    ours = read_image(src).volume
    assert seg.shape == ours.shape
    np.testing.assert_allclose(seg.affine, ours.affine, atol=1e-6)

    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(src))
    reader.SetFileNames(files)
    ref = reader.Execute()
    ref_array = sitk.GetArrayFromImage(ref).transpose(2, 1, 0)  # -> i, j, k
    lps = np.eye(4)
    lps[:3, :3] = np.array(ref.GetDirection()).reshape(3, 3) * np.array(ref.GetSpacing())
    lps[:3, 3] = ref.GetOrigin()
    ref_affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    np.testing.assert_allclose(ours.affine, ref_affine, atol=1e-3)
    np.testing.assert_array_equal(ours.array, ref_array)   # same slice order, same rows/columns
    assert ours.orientation == "LPS"                       # axial: columns → L, rows → P, slices → S


def test_measure_reproduces_reference_volumes_with_names(shared_data, tmp_path, cli):
    d = shared_data / "totalseg-example"
    proc = cli("measure", d / "example_seg_fast_force_split.nii.gz", "--image", d / "example_ct.nii.gz",
               "--labels", d / "label_map_total_v2.json", "-o", tmp_path / "out3")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "out3" / "volumetry.csv") as fh:
        rows = {r["name"]: r for r in csv.DictReader(fh)}
    expected = {"spleen": 261.0, "kidney_right": 192.6, "kidney_left": 137.4, "liver": 1125.7,
                "stomach": 130.6, "pancreas": 18.8, "aorta": 49.7}
    for name, ml in expected.items():
        assert float(rows[name]["volume_ml"]) == pytest.approx(ml, abs=0.05), name
    assert len(rows) == 117  # every class of the map, present or empty
    assert rows["brain"]["empty"] == "1"
    # patient frame: the spleen lies on the patient's left (RAS x < 0), the liver on the right
    assert float(rows["spleen"]["centroid_r_mm"]) < float(rows["liver"]["centroid_r_mm"])
    assert 20 < float(rows["liver"]["mean_hu"]) < 150
    report = json.loads((tmp_path / "out3" / "report.json").read_text())
    assert report["input"]["file_name"] == "example_ct.nii.gz"
