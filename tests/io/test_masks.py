"""A folder of per-class masks (TotalSegmentator's default output) read as one label map."""
from __future__ import annotations

import json

import numpy as np
import pytest

from volseg.errors import GeometryError, InputError
from volseg.io.masks import is_masks_folder, read_masks, read_segmentation
from volseg.io.nifti import write_nifti
from volseg.volume import Volume

SHAPE = (10, 8, 6)
AFFINE = np.diag([2.0, 1.5, 3.0, 1.0])  # 9 mm³ voxels


def _mask(folder, name, box, affine=AFFINE, shape=SHAPE):
    array = np.zeros(shape, dtype=np.uint8)
    array[box] = 1
    return write_nifti(Volume(array, affine), folder / f"{name}.nii.gz")


@pytest.fixture()
def masks_dir(tmp_path):
    folder = tmp_path / "segmentations"
    folder.mkdir()
    _mask(folder, "spleen", np.s_[0:2, 0:2, 0:2])  # 8 voxels
    _mask(folder, "liver", np.s_[5:8, 4:8, 2:5])  # 36 voxels
    _mask(folder, "aorta", np.s_[0:0])  # empty, as TotalSegmentator writes empty classes too
    return folder


def test_names_come_from_files_in_alphabetical_order(masks_dir):
    masks = read_masks(masks_dir)
    assert masks.labels.names() == {1: "aorta", 2: "liver", 3: "spleen"}
    array = masks.image.volume.array
    assert [int(np.count_nonzero(array == i)) for i in (1, 2, 3)] == [0, 36, 8]
    assert np.array_equal(masks.image.volume.affine, AFFINE)
    assert masks.overlap_voxels == 0 and masks.warnings == ()


def test_overlapping_masks_are_counted_and_warned(masks_dir, caplog):
    _mask(masks_dir, "kidney", np.s_[1:3, 1:3, 0:1])  # 4 voxels, 1 of them inside spleen
    masks = read_masks(masks_dir)
    assert masks.overlap_voxels == 1
    assert "1 voxels lie in more than one mask" in masks.warnings[0]
    assert "more than one mask" in caplog.text
    kidney, spleen = masks.labels.index_of("kidney"), masks.labels.index_of("spleen")
    array = masks.image.volume.array
    assert array[1, 1, 0] == kidney  # "kidney" < "spleen": the first alphabetically keeps the voxel
    assert (np.count_nonzero(array == kidney), np.count_nonzero(array == spleen)) == (4, 7)


def test_a_mask_on_another_grid_is_a_geometry_error_naming_it(masks_dir):
    _mask(masks_dir, "stomach", np.s_[0:1], affine=np.diag([2.0, 1.5, 2.0, 1.0]))
    with pytest.raises(GeometryError, match=r"stomach\.nii\.gz: mask grid"):
        read_masks(masks_dir)
    (masks_dir / "stomach.nii.gz").unlink()
    _mask(masks_dir, "stomach", np.s_[0:1], shape=(10, 8, 7))
    with pytest.raises(GeometryError, match=r"stomach\.nii\.gz"):
        read_masks(masks_dir)


def test_folders_without_masks(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert not is_masks_folder(tmp_path) and not is_masks_folder(tmp_path / "missing")
    with pytest.raises(InputError, match="no .nii.gz mask files"):
        read_masks(tmp_path)


def test_read_segmentation_tells_label_maps_from_mask_folders(masks_dir, tmp_path):
    image, names, warnings = read_segmentation(masks_dir)
    assert names.names()[2] == "liver" and warnings == ()
    path = write_nifti(Volume(np.ones(SHAPE, np.uint8), AFFINE), tmp_path / "seg.nii.gz")
    image, names, warnings = read_segmentation(path)
    assert names is None and image.volume.shape == SHAPE


def test_measure_reads_a_masks_folder_by_name(masks_dir, tmp_path):
    from volseg import api

    ct = write_nifti(Volume(np.full(SHAPE, 40, np.int16), AFFINE), tmp_path / "ct.nii.gz")
    result = api.measure(masks_dir, tmp_path / "m", image=ct)
    volumes = {s.name: s.volume_ml for s in result.report.structures}
    assert volumes == pytest.approx({"aorta": 0.0, "liver": 36 * 9 / 1000, "spleen": 8 * 9 / 1000})
    assert result.report.structure("liver").voxel_count == 36
    csv = (tmp_path / "m" / "volumetry.csv").read_text().splitlines()
    assert [line.split(",")[2] for line in csv[1:]] == ["aorta", "liver", "spleen"]
    labels = json.loads((tmp_path / "m" / "labels.json").read_text())["labels"]
    assert [lab["name"] for lab in labels] == ["aorta", "liver", "spleen"]


def test_measure_of_a_real_totalsegmentator_masks_folder(shared_data, tmp_path):
    from volseg import api

    example = shared_data / "totalseg-example"
    result = api.measure(example / "example_seg_lung_vessels", tmp_path / "m",
                         image=example / "example_ct_sm.nii.gz")
    assert [s.name for s in result.report.structures] == \
        ["lung_airways", "lung_airways_wall", "lung_arteries", "lung_veins"]
