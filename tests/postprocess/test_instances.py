"""Instances: explicit connectivity, minimum size in mm³, order, and the lesion-class naming rule."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.postprocess.instances import (
    default_instance_classes,
    instance_kind,
    split_classes,
    split_instances,
)


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


def _reference_instances(labels, classes, connectivity, min_voxels):
    """Each class on its own: scipy's labelling of its mask, largest first, ties by first voxel."""
    from scipy import ndimage

    rank = {6: 1, 18: 2, 26: 3}[connectivity]
    out = []
    for label in sorted(classes):
        comps, n = ndimage.label(labels == label, structure=ndimage.generate_binary_structure(3, rank))
        flat = comps.ravel()  # C order
        found = []
        for c in range(1, n + 1):
            where = np.flatnonzero(flat == c)
            if where.size >= min_voxels:
                found.append((-where.size, int(where[0]), c))
        for number, (_, _, c) in enumerate(sorted(found), start=1):
            box = ndimage.find_objects((comps == c).astype(np.uint8))[0]
            out.append((label, classes[label], number, box, comps[box] == c))
    return out


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("order", ["C", "F"])
def test_all_classes_in_one_labelling_equal_each_class_on_its_own(connectivity, order):
    rng = np.random.default_rng(connectivity)
    labels = rng.integers(0, 5, size=(17, 13, 11)).astype(np.uint8)  # every class in many pieces
    labels[rng.random(labels.shape) < 0.5] = 0
    labels = np.asarray(labels, order=order)
    classes = {4: "tumor", 2: "cyst", 3: "nodule"}
    for min_volume in (0.0, 3.0):
        got = split_classes(labels, classes, voxel_volume_mm3=1.0, connectivity=connectivity,
                            min_volume_mm3=min_volume)
        want = _reference_instances(labels, classes, connectivity, min_volume)
        assert len(got) == len(want) > 20
        for inst, (label, name, number, box, mask) in zip(got, want):
            assert (inst.label, inst.class_name, inst.number, inst.box) == (label, name, number, box)
            assert np.array_equal(inst.mask, mask)
