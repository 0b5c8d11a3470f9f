"""Issue 15's Must-show pair: the right matches, changes within 2 %, the right RECIST category."""
from __future__ import annotations

import csv
import math

import numpy as np

from tests.compare.conftest import INTERVAL_DAYS

GROWTH = 1.3 ** 3  # +30 % in diameter


def _by_status(comparison):
    return {m.status: m for m in comparison.matches}


def test_registration_recovers_the_rotation_and_shift(must_show_result, must_show_pair):
    reg = must_show_result.comparison.registrations[0]
    assert reg.registered_on == "image" and reg.initialisation == "organ_centroids"
    assert reg.quality == "good" and reg.warning is None
    assert abs(reg.rotation_deg - 10.0) < 1.0
    matrix = np.asarray(reg.matrix_ras_mm)
    probe = np.array([[-24.0, 8.0, 14.0], [30.0, 12.0, 12.0], [0.0, 0.0, 0.0]])  # lesions and the centre
    moved = probe @ matrix[:3, :3].T + matrix[:3, 3]
    truth = probe @ must_show_pair.matrix[:3, :3].T + must_show_pair.matrix[:3, 3]
    assert np.abs(moved - truth).max() < 2.0  # mm: one voxel
    assert reg.centroid_residual_mm < 2.0 and reg.mean_organ_dice > 0.85


def test_matches_growth_disappearance_and_new_lesion(must_show_result):
    c = must_show_result.comparison
    assert sorted(m.status for m in c.matches) == ["disappeared", "matched", "new"]
    by = _by_status(c)
    grown = by["matched"]
    assert grown.before_ids == ["liver_tumor-1"] and grown.after_ids == ["liver_tumor-1"]
    assert grown.method == "overlap"
    ratio = grown.volume_ml_after / grown.volume_ml_before
    assert abs(ratio / GROWTH - 1.0) < 0.02
    assert abs(grown.volume_change_percent - 100.0 * (GROWTH - 1.0)) < 0.02 * 100.0 * GROWTH
    assert abs(grown.diameter_change_percent - 30.0) < 5.0
    expected_dt = INTERVAL_DAYS * math.log(2.0) / math.log(GROWTH)
    assert abs(grown.doubling_time_days / expected_dt - 1.0) < 0.03
    assert by["disappeared"].before_ids == ["liver_tumor-2"] and by["disappeared"].after_ids == []
    assert by["new"].after_ids == ["liver_tumor-2"] and by["new"].before_ids == []


def test_recist_is_pd_by_the_new_lesion(must_show_result):
    recist = must_show_result.comparison.recist
    assert [t.lesion_id for t in recist.targets] == ["liver_tumor-1", "liver_tumor-2"]
    assert recist.category == "PD"
    assert recist.rule.startswith("new lesion")
    assert recist.new_lesion_ids == ["T1:liver_tumor-2"]
    base, follow = recist.timepoints
    assert base.category is None and follow.category == "PD"
    # the disappeared target counts 0 mm: the sum is the grown lesion's diameter alone
    assert follow.sum_mm == recist.targets[0].diameters_mm[1] and recist.targets[1].diameters_mm[1] == 0.0
    assert abs(follow.sum_mm - 31.2) < 3.0  # 2 × 15.6 mm, measured on 2 mm voxels
    assert recist.nadir_sum_mm == base.sum_mm


def test_lesion_measurements_in_baseline_space(must_show_result):
    c = must_show_result.comparison
    new = c.lesion(1, "liver_tumor-2")
    assert new.recist_role == "new" and new.track_id == "T1:liver_tumor-2"
    assert np.allclose(new.centroid_baseline_mm, (30.0, 12.0, 12.0), atol=2.0)
    assert c.lesion(0, "liver_tumor-1").recist_role == "target"
    assert c.studies[1].days_from_baseline == INTERVAL_DAYS and c.studies[1].days_source == "option"


def test_outputs_are_written_and_valid(must_show_result):
    from volseg.compare.schema import load_comparison

    outputs = must_show_result.outputs
    assert {"comparison", "lesion_changes", "organ_changes"} <= set(outputs)
    loaded = load_comparison(outputs["comparison"])
    assert loaded.recist.category == "PD" and loaded.schema_version == "1.0.0"
    with outputs["lesion_changes"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["matched", "disappeared", "new"]
    assert abs(float(rows[0]["volume_ml_after"]) / float(rows[0]["volume_ml_before"]) / GROWTH - 1) < 0.02
    with outputs["organ_changes"].open() as fh:
        organs = {r["name"]: r for r in csv.DictReader(fh)}
    assert {"liver", "spleen", "kidney_left", "kidney_right"} <= set(organs)
    assert abs(float(organs["kidney_left"]["volume_change_percent"])) < 3.0  # unchanged organ
    assert abs(float(organs["spleen"]["mean_intensity_after"]) - 45.0) < 1e-6
    assert organs["spleen"]["intensity_unit"] == "HU"
