"""Class 3, values: NaN/Inf voxels, negative labels and incomplete plans give warnings or one-line
errors, never NaN statistics or tracebacks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.faults.makers import write
from volseg.cli.main import main
from volseg.postprocess.measure import intensity_stats, measure_structures, outside_fov_mask


def _ct_with_damage() -> tuple[np.ndarray, np.ndarray]:
    """A 12³ CT: air (−1000 HU) around a 6³ body of 40 HU with one NaN and one −Inf voxel in it."""
    image = np.full((12, 12, 12), -1000.0, dtype=np.float32)
    image[3:9, 3:9, 3:9] = 40.0
    image[5, 5, 5], image[6, 6, 6] = np.nan, -np.inf
    labels = np.zeros(image.shape, np.uint8)
    labels[3:9, 3:9, 3:9] = 1
    return image, labels


def test_nonfinite_voxels_are_left_out_of_statistics_and_fov():
    image, labels = _ct_with_damage()
    assert outside_fov_mask(image) is None  # −Inf is damage, not scanner padding
    (body,) = measure_structures(labels, np.eye(4), {1: "body"}, image=image, outside_fov=outside_fov_mask(image))
    assert body.voxel_count == 216 and not body.touches_fov
    assert (body.intensity.mean_hu, body.intensity.std_hu, body.intensity.median_hu) == (40.0, 0.0, 40.0)
    assert intensity_stats(np.array([np.nan, np.inf])) is None


def test_nonfinite_voxels_are_counted_in_the_report_warnings(tmp_path):
    import nibabel as nib

    from volseg.api import measure

    image, labels = _ct_with_damage()
    img_path, seg_path = tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(image, np.eye(4)), str(img_path))
    nib.save(nib.Nifti1Image(labels, np.eye(4)), str(seg_path))
    result = measure(seg_path, tmp_path / "out", image=img_path)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert ("2 voxels are not finite (1 NaN, 1 ±Inf): left out of intensity statistics and never taken "
            "as the edge of the field of view") in report["warnings"]
    assert not any("field of view" in w and "cut" in w for w in report["warnings"])
    assert "nan" not in (tmp_path / "out" / "volumetry.csv").read_text().lower()
    assert result is not None


def test_negative_label_is_exit_3_naming_the_file(tmp_path, capsys):
    import nibabel as nib

    labels = np.zeros((6, 6, 6), np.int16)
    labels[1:4, 1:4, 1:4], labels[0, 0, 0] = 1, -1
    path = tmp_path / "neg.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), str(path))
    assert main(["measure", str(path), "-o", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "neg.nii.gz: segmentation must hold non-negative integer labels" in err and "Traceback" not in err


@pytest.mark.parametrize("key", ["normalization_schemes", "patch_size"])
def test_plans_lacking_a_key_is_exit_7_naming_file_and_key(tmp_path, key):
    pytest.importorskip("torch")
    from tests.factories.nnunet_model import write_random_model
    from volseg.errors import ModelError
    from volseg.segmenters.backends.nnunet_folder import read_model_folder

    folder = write_random_model(tmp_path / "model")
    plans_path = folder / "plans.json"
    plans = json.loads(plans_path.read_text())
    for config in plans["configurations"].values():
        config.pop(key, None)
    write(plans_path, json.dumps(plans).encode())
    with pytest.raises(ModelError, match=f"plans.json lacks the key '{key}' in configuration") as info:
        read_model_folder(folder)
    assert info.value.exit_code == 7 and info.value.path == str(plans_path)


def test_plans_lacking_ct_intensity_properties(tmp_path):
    from volseg.errors import ModelError
    from volseg.segmenters.backends.nnunet_plans import check_plans

    plans = {"configurations": {"3d": {"spacing": [1, 1, 1], "patch_size": [8, 8, 8],
                                       "normalization_schemes": ["CTNormalization"],
                                       "use_mask_for_norm": [False]}},
             "foreground_intensity_properties_per_channel": {"0": {"mean": 1.0, "std": 2.0}}}
    with pytest.raises(ModelError, match="lacks the key 'percentile_00_5'"):
        check_plans(plans, "3d", tmp_path / "plans.json")
