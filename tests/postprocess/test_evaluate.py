"""Dice, HD95, ASSD, lesion and airway detection against known answers (and MONAI where installed)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.postprocess.synthetic import branching_tree, draw_tubes, ellipsoid, grid_affine
from volseg.postprocess.evaluate import detect_lesions, dice, overlap, spacing_of
from volseg.postprocess.evaluate_airway import detect_airway
from volseg.postprocess.evaluate_maps import StructurePair, pair_structures, score_maps

SPACING = (0.8, 1.2, 2.5)  # anisotropic


def _plate(shape, lo, size):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, a + n) for a, n in zip(lo, size))] = True
    return mask


@pytest.mark.parametrize("axis,voxels", [(0, 3), (1, 2), (2, 1), (2, 2)])
def test_a_plate_shifted_by_d_mm_has_hd95_d(axis, voxels):
    # a plate thin along the shift axis and wide across it: its two big faces move by exactly d
    size = [40, 40, 40]
    size[axis] = 4
    shape = (60, 60, 60)
    a = _plate(shape, (10, 10, 10), size)
    lo = [10, 10, 10]
    lo[axis] += voxels
    b = _plate(shape, lo, size)
    d = voxels * SPACING[axis]
    o = overlap(b, a, SPACING)
    assert o.hd95_mm == pytest.approx(d, abs=1e-9)
    assert 0.0 < o.assd_mm <= d
    assert o.dice == pytest.approx(max(4 - voxels, 0) / 4)


def test_a_box_shifted_diagonally_has_hausdorff_at_most_the_shift():
    shape = (50, 50, 30)
    a = _plate(shape, (10, 10, 5), (20, 20, 10))
    b = _plate(shape, (13, 12, 6), (20, 20, 10))
    o = overlap(b, a, SPACING)
    shift = math.hypot(3 * 0.8, 2 * 1.2, 2.5)
    assert 0.0 < o.assd_mm < o.hd95_mm <= shift + 1e-9
    assert o.dice == pytest.approx(2 * 17 * 18 * 9 / (2 * 20 * 20 * 10))


def test_identical_and_empty_masks():
    shape = (10, 10, 10)
    a = _plate(shape, (2, 2, 2), (4, 4, 4))
    none = np.zeros(shape, bool)
    same = overlap(a, a, SPACING)
    assert (same.dice, same.hd95_mm, same.assd_mm) == (1.0, 0.0, 0.0)
    both_empty = overlap(none, none, SPACING)
    assert (both_empty.dice, both_empty.hd95_mm, both_empty.assd_mm) == (1.0, 0.0, 0.0)
    for p, r in ((none, a), (a, none)):
        one = overlap(p, r, SPACING)
        assert one.dice == 0.0 and math.isnan(one.hd95_mm) and math.isnan(one.assd_mm)
    assert dice(none, none) == 1.0


def test_spacing_of_a_rotated_grid_is_its_column_lengths():
    from tests.postprocess.synthetic import rotation

    affine = grid_affine(SPACING, rotation("z", 30) @ rotation("x", 20))
    assert spacing_of(affine) == pytest.approx(SPACING)


def _blobs(shape, centres, radius):
    zz = np.indices(shape).transpose(1, 2, 3, 0)
    mask = np.zeros(shape, bool)
    for c in centres:
        mask |= ((zz - np.asarray(c)) ** 2).sum(-1) <= radius ** 2
    return mask


def test_lesion_detection_counts_known_hits_misses_and_false_positives():
    shape = (60, 60, 20)
    ref = _blobs(shape, [(10, 10, 10), (30, 30, 10), (50, 50, 10)], 4)
    pred = _blobs(shape, [(10, 10, 10), (31, 30, 10)], 4)  # two found
    pred |= _blobs(shape, [(50, 44, 10)], 2)  # grazes the third: Dice of the pair well below 0.1
    pred |= _blobs(shape, [(10, 50, 10)], 3)  # a false positive
    d = detect_lesions(pred, ref, min_overlap=0.1)
    assert (d.n_reference, d.n_predicted, d.n_detected) == (3, 4, 2)
    assert d.recall == pytest.approx(2 / 3) and d.precision == pytest.approx(2 / 4) and d.false_positives == 2
    strict = detect_lesions(pred, ref, min_overlap=0.95)
    assert strict.n_detected == 1  # only the identical lesion
    none = detect_lesions(np.zeros(shape, bool), ref)
    assert none.recall == 0.0 and math.isnan(none.precision) and none.false_positives == 0


def test_airway_detection_finds_the_missing_branches():
    segments = branching_tree((0.0, 0.0, 0.0), (0.0, 0.0, -1.0), generations=3,
                              lengths=(40.0, 30.0, 22.0), radii=(8.0, 5.5, 4.0))
    affine = grid_affine((1.0, 1.1, 1.5), np.eye(3), origin=(-60.0, -60.0, -110.0))
    shape = (121, 110, 80)
    ref = draw_tubes(shape, affine, segments)
    full = detect_airway(ref, ref, affine)
    assert full.n_reference_branches == 7 and full.branches_detected == 1.0
    assert full.tree_length_detected == pytest.approx(1.0)
    assert full.reference_length_mm == pytest.approx(40 + 2 * 30 + 4 * 22, rel=0.1)
    # the prediction misses the two generation-2 branches on one side
    leaves = [s for s in segments if s[3] == 2][:2]
    pred = draw_tubes(shape, affine, [s for s in segments if not any(s is leaf for leaf in leaves)])
    part = detect_airway(pred, ref, affine)
    assert part.n_detected_branches == 5
    # each missing leaf's first 5.5 mm lies inside its parent's tube (radius 5.5 mm), so is found
    assert part.tree_length_detected == pytest.approx(1 - 2 * (22 - 5.5) / (40 + 2 * 30 + 4 * 22), abs=0.03)


def test_structures_match_by_name_else_by_index():
    pairs = pair_structures({1: "liver", 2: "liver_tumor"}, {1: "liver_tumor", 2: "liver", 3: "spleen"}, [1, 2], [1, 2])
    assert pairs == [StructurePair("liver_tumor", 2, 1), StructurePair("liver", 1, 2), StructurePair("spleen", None, 3)]
    by_index = pair_structures(None, None, [1, 3], [1, 2])
    assert [(p.name, p.pred_label, p.ref_label) for p in by_index] == [("label_1", 1, 1), ("label_2", 2, 2),
                                                                          ("label_3", 3, 3)]


def test_score_maps_gives_lesion_rows_and_volumes():
    shape = (40, 40, 20)
    ref = np.zeros(shape, np.uint8)
    ref[_blobs(shape, [(10, 10, 10), (30, 30, 10)], 4)] = 2
    pred = np.zeros(shape, np.uint8)
    pred[_blobs(shape, [(10, 10, 10)], 4)] = 2
    affine = grid_affine(SPACING, np.eye(3))
    [score] = score_maps(pred, ref, affine, [StructurePair("liver_tumor", 2, 2)])
    assert score.lesions.recall == 0.5 and score.lesions.false_positives == 0
    assert score.ref_volume_ml == pytest.approx(2 * score.pred_volume_ml)
    assert score.pred_volume_ml == pytest.approx((pred == 2).sum() * 0.8 * 1.2 * 2.5 / 1000)


# ---- MONAI, where installed ------------------------------------------------------------------
def _monai(pred, ref, spacing):
    monai = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    p, r = (torch.from_numpy(m[None, None].astype(np.float32)) for m in (pred, ref))
    dsc = float(monai.compute_dice(p, r, include_background=True)[0, 0])
    hd95 = float(monai.compute_hausdorff_distance(p, r, include_background=True, percentile=95,
                                                  spacing=list(spacing))[0, 0])
    assd = float(monai.compute_average_surface_distance(p, r, include_background=True, symmetric=True,
                                                        spacing=list(spacing))[0, 0])
    return dsc, hd95, assd


@pytest.mark.parametrize("shift_mm", [(0.0, 0.0, 5.0), (2.4, -3.6, 2.5), (4.0, 0.0, 0.0)])
def test_matches_monai_on_shifted_ellipsoids(shift_mm):
    pytest.importorskip("monai")
    shape = (70, 50, 30)
    affine = grid_affine(SPACING, np.eye(3), origin=(-28.0, -30.0, -37.5))
    ref = ellipsoid(shape, affine, (0.0, 0.0, 0.0), (15.0, 11.0, 20.0))
    pred = ellipsoid(shape, affine, shift_mm, (15.0, 11.0, 20.0))
    ours = overlap(pred, ref, SPACING)
    dsc, hd95, assd = _monai(pred, ref, SPACING)
    assert ours.dice == pytest.approx(dsc, abs=1e-6)
    assert ours.hd95_mm == pytest.approx(hd95, abs=1e-4)
    assert ours.assd_mm == pytest.approx(assd, abs=1e-4)
    print(f"\nshift {shift_mm} mm: Dice {ours.dice:.4f}/{dsc:.4f} HD95 {ours.hd95_mm:.3f}/{hd95:.3f} "
          f"ASSD {ours.assd_mm:.3f}/{assd:.3f} (volseg/MONAI)")
