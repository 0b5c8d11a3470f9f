"""RECIST 1.1 response with known answers: CR, PR, SD, PD by growth over the nadir, nodes by short axis."""
from __future__ import annotations

import pytest

from tests.factories.follow_up import Blob, Scene, sphere, write_study

CENTRE = (-22.0, 5.0, 12.0)


def _lesion(radius_mm: float) -> Blob:
    return sphere(6, CENTRE, radius_mm)


def _node(short_mm: float, long_mm: float) -> Blob:
    """A lymph node whose axial long and short axes are ``long_mm`` and ``short_mm``."""
    return Blob(7, (20.0, -20.0, 20.0), (long_mm / 2.0, short_mm / 2.0, short_mm / 2.0))


def _compare(tmp_path, *scenes, days=None):
    from volseg import api

    folders, images = [], []
    for t, scene in enumerate(scenes):
        folder, image = write_study(tmp_path / f"t{t}", scene)
        folders.append(folder)
        images.append(image)
    options = api.CompareOptions(registration="none", interval_days=days)
    return api.compare(folders, tmp_path / "out", images=images, html=False, options=options).comparison.recist


@pytest.mark.parametrize(("before_mm", "after_mm", "category", "rule"), [
    (15.0, 10.0, "PR", "below the baseline sum"),  # 30 → 20 mm: -33 %
    (15.0, 14.0, "SD", "neither PR nor PD"),  # 30 → 28 mm: -7 %
    (10.0, 13.0, "PD", "over the nadir"),  # 20 → 26 mm: +30 %, +6 mm
])
def test_category_by_the_target_sum(tmp_path, before_mm, after_mm, category, rule):
    recist = _compare(tmp_path, Scene(lesions=(_lesion(before_mm),)), Scene(lesions=(_lesion(after_mm),)))
    assert recist.category == category, recist.rule
    assert rule in recist.rule
    assert recist.baseline_sum_mm == pytest.approx(2 * before_mm, abs=2.5)
    assert recist.timepoints[1].sum_mm == pytest.approx(2 * after_mm, abs=2.5)


def test_complete_response_with_a_node_back_under_10_mm(tmp_path):
    before = Scene(lesions=(_lesion(8.0), _node(short_mm=18.0, long_mm=24.0)))
    after = Scene(lesions=(_node(short_mm=8.0, long_mm=12.0),))
    recist = _compare(tmp_path, before, after)
    kinds = {t.lesion_id: (t.kind, t.measure) for t in recist.targets}
    assert kinds == {"liver_tumor-1": ("lesion", "long_axis"), "lymph_node-1": ("lymph_node", "short_axis")}
    node = recist.lymph_nodes[0]
    assert node.short_axis_mm[0] == pytest.approx(18.0, abs=2.5) and node.short_axis_mm[1] < 10.0
    assert node.normal_at_last
    assert recist.category == "CR", recist.rule
    assert recist.timepoints[1].sum_mm > 0  # the node still counts its short axis: CR nonetheless


def test_a_node_under_15_mm_is_not_a_target_and_persisting_keeps_non_cr(tmp_path):
    before = Scene(lesions=(_lesion(10.0), _node(short_mm=12.0, long_mm=16.0)))
    after = Scene(lesions=(_node(short_mm=12.0, long_mm=16.0),))
    recist = _compare(tmp_path, before, after)
    assert [t.lesion_id for t in recist.targets] == ["liver_tumor-1"]
    assert recist.non_target_ids == ["lymph_node-1"]
    assert recist.category == "PR" and "non-target" in recist.rule  # targets gone, an enlarged node remains


def test_three_time_points_pd_over_the_nadir_below_the_baseline(tmp_path):
    scenes = [Scene(lesions=(_lesion(r),)) for r in (15.0, 9.0, 12.0)]  # 30 → 18 → 24 mm
    recist = _compare(tmp_path, *scenes, days=(60.0, 60.0))
    t0, t1, t2 = recist.timepoints
    assert t1.category == "PR"
    assert t2.nadir_timepoint == 1 and t2.nadir_sum_mm == pytest.approx(t1.sum_mm)
    assert t2.change_from_baseline_percent < 0  # still below the baseline ...
    assert t2.category == "PD" and recist.category == "PD"  # ... but >= 20 % and >= 5 mm over the nadir
    assert recist.nadir_timepoint == 1 and recist.nadir_sum_mm == pytest.approx(t1.sum_mm)


def test_no_lesion_at_baseline_is_not_evaluable(tmp_path):
    recist = _compare(tmp_path, Scene(), Scene())
    assert recist.category == "NE" and recist.targets == []
