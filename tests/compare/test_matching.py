"""Lesion matching with known answers: a split, a merge, centroid matching within the tolerance."""
from __future__ import annotations

import pytest

from tests.factories.follow_up import Scene, rigid, sphere, write_study

# one lesion made of two overlapping spheres (a dumbbell) vs the same two spheres pulled apart
JOINED = (sphere(6, (-30.0, 5.0, 12.0), 8.0), sphere(6, (-16.0, 5.0, 12.0), 8.0))
APART = (sphere(6, (-32.0, 5.0, 12.0), 7.0), sphere(6, (-12.0, 5.0, 12.0), 7.0))


def _compare(tmp_path, before, after, *, moved=None, **options):
    from volseg import api

    t0, i0 = write_study(tmp_path / "t0", before)
    t1, i1 = write_study(tmp_path / "t1", after, moved=moved)
    return api.compare([t0, t1], tmp_path / "out", images=[i0, i1], html=False,
                       options=api.CompareOptions(**options)).comparison


def test_a_lesion_that_splits(tmp_path):
    c = _compare(tmp_path, Scene(lesions=JOINED), Scene(lesions=APART), registration="label_map")
    assert [(m.status, m.before_ids, m.after_ids) for m in c.matches] == [
        ("split", ["liver_tumor-1"], ["liver_tumor-1", "liver_tumor-2"])]
    split = c.matches[0]
    assert split.method == "overlap"
    # RECIST: a split lesion counts as the sum of its pieces
    target = c.recist.targets[0]
    pieces = [c.lesion(1, i).longest_diameter_mm for i in split.after_ids]
    assert target.diameters_mm[1] == pytest.approx(sum(pieces))
    assert target.ids_by_timepoint == [["liver_tumor-1"], ["liver_tumor-1", "liver_tumor-2"]]


def test_lesions_that_merge(tmp_path):
    c = _compare(tmp_path, Scene(lesions=APART), Scene(lesions=JOINED), registration="none")
    assert [(m.status, m.before_ids, m.after_ids) for m in c.matches] == [
        ("merged", ["liver_tumor-1", "liver_tumor-2"], ["liver_tumor-1"])]
    merged = c.matches[0]
    assert merged.volume_ml_before == pytest.approx(c.lesion(0, "liver_tumor-1").volume_ml
                                                    + c.lesion(0, "liver_tumor-2").volume_ml)
    # RECIST: the merged lesion's diameter goes to the first target, 0 mm to the other
    first, second = c.recist.targets
    assert first.diameters_mm[1] == pytest.approx(c.lesion(1, "liver_tumor-1").longest_diameter_mm)
    assert second.diameters_mm[1] == 0.0


def test_nearest_centroid_within_the_tolerance_when_nothing_overlaps(tmp_path):
    before = Scene(lesions=(sphere(6, (-22.0, 5.0, 12.0), 4.0),))
    after = Scene(lesions=(sphere(6, (-13.0, 5.0, 12.0), 4.0),))  # 9 mm away: no overlap
    near = _compare(tmp_path / "a", before, after, registration="none")
    assert [(m.status, m.method) for m in near.matches] == [("matched", "centroid")]
    assert near.matches[0].centroid_distance_mm == pytest.approx(9.0, abs=1.0)
    far = _compare(tmp_path / "b", before, after, registration="none", match_tolerance_mm=5.0)
    assert sorted(m.status for m in far.matches) == ["disappeared", "new"]


def test_rigid_fit_and_resampling_conventions():
    import numpy as np

    from volseg.compare.geometry import apply, resample_labels, rigid_fit, rotation_deg
    from volseg.volume import Volume

    truth = rigid(10.0, (20.0, -5.0, 3.0))
    points = np.array([[0, 0, 0], [30, 0, 0], [0, 40, 0], [0, 0, 50], [10, 20, 30.0]])
    fitted = rigid_fit(points, apply(truth, points))
    assert np.allclose(fitted, truth) and rotation_deg(fitted) == pytest.approx(10.0)
    assert np.allclose(rigid_fit(points[:2], points[:2] + 5.0)[:3, 3], 5.0)  # two points: translation only
    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    labels[2, 3, 4] = 7
    moving = Volume(labels, np.diag([2.0, 2.0, 2.0, 1.0]))
    onto = Volume(np.zeros((10, 10, 10), dtype=np.uint8), np.diag([2.0, 2.0, 2.0, 1.0]))
    shift = np.eye(4)
    shift[:3, 3] = (2.0, 0.0, 0.0)  # onto's point x lies at x + 2 mm in moving
    mapped = resample_labels(moving, onto, shift)
    assert np.argwhere(mapped == 7).tolist() == [[1, 3, 4]]


def test_organ_dice_in_one_pass_equals_dice_per_label():
    import numpy as np

    from volseg.compare.register import organ_dice
    from volseg.postprocess.compare import dice

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 4, (12, 11, 10)), rng.integers(0, 6, (12, 11, 10))
    pairs = [(1, 1), (2, 5), (3, 2), (3, 9)]
    expected = [dice(a == i, b == j) for i, j in pairs]
    assert organ_dice(a, b, pairs) == pytest.approx(expected)
