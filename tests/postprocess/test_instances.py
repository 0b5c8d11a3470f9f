"""Instances: explicit connectivity, minimum size in mm³, order, and the lesion-class naming rule."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.postprocess.instances import default_instance_classes, instance_kind, split_instances


def _two_cubes_touching_at_a_corner() -> np.ndarray:
    labels = np.zeros((12, 12, 12), dtype=np.uint8)
    labels[1:4, 1:4, 1:4] = 2  # 27 voxels
    labels[4:8, 4:8, 4:8] = 2  # 64 voxels, sharing only a corner with the first
    labels[9:11, 9:11, 9:11] = 1  # another class
    return labels


@pytest.mark.parametrize("connectivity, expected", [(26, [91]), (18, [64, 27]), (6, [64, 27])])
def test_connectivity_is_explicit(connectivity, expected):
    found = split_instances(_two_cubes_touching_at_a_corner(), 2, "tumor", voxel_volume_mm3=1.0,
                            connectivity=connectivity)
    assert [i.voxel_count for i in found] == expected
    assert [i.instance_id for i in found] == [f"tumor-{n}" for n in range(1, len(expected) + 1)]


def test_minimum_size_is_in_cubic_millimetres():
    labels = _two_cubes_touching_at_a_corner()
    # voxels of 0.5 × 0.5 × 2 mm = 0.5 mm³: the 27-voxel cube holds 13.5 mm³, the 64-voxel one 32 mm³
    kept = split_instances(labels, 2, "tumor", voxel_volume_mm3=0.5, connectivity=6, min_volume_mm3=20.0)
    assert [i.voxel_count for i in kept] == [64]
    assert len(split_instances(labels, 2, "tumor", voxel_volume_mm3=0.5, connectivity=6,
                               min_volume_mm3=13.5)) == 2


def test_instances_lie_where_the_label_is():
    labels = _two_cubes_touching_at_a_corner()
    for inst in split_instances(labels, 2, "tumor", voxel_volume_mm3=1.0, connectivity=6):
        assert np.all(labels[inst.box][inst.mask] == 2)
    rebuilt = np.zeros(labels.shape, dtype=bool)
    for inst in split_instances(labels, 2, "tumor", voxel_volume_mm3=1.0, connectivity=6):
        rebuilt[inst.box] |= inst.mask
    assert np.array_equal(rebuilt, labels == 2)


def test_absent_class_has_no_instance():
    assert split_instances(np.zeros((3, 3, 3), np.uint8), 5, "tumor", voxel_volume_mm3=1.0) == []


def test_bad_connectivity_is_refused():
    with pytest.raises(ValueError, match="connectivity"):
        split_instances(np.ones((2, 2, 2), np.uint8), 1, "x", voxel_volume_mm3=1.0, connectivity=4)


def test_default_lesion_classes_by_name():
    names = ["liver", "liver_tumor", "lung_nodules", "kidney_cyst_left", "brain_metastases", "lesion",
             "lymph_nodes", "mediastinal_lymph_node", "tumour", "spleen", "lymphatic_duct", "colon"]
    assert default_instance_classes(names) == [
        "liver_tumor", "lung_nodules", "kidney_cyst_left", "brain_metastases", "lesion", "lymph_nodes",
        "mediastinal_lymph_node", "tumour"]
    assert instance_kind("lymph_nodes") == "lymph_node"
    assert instance_kind("mediastinal_lymph_node") == "lymph_node"
    assert instance_kind("liver_tumor") == "lesion"
