"""RECIST 1.1 target selection and sums on lesions with known sizes."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from volseg.postprocess.burden import is_measurable, organ_key, select_targets, tumour_burden


@dataclass(frozen=True)
class L:
    instance_id: str
    long_axis_mm: float
    short_axis_mm: float
    kind: str = "lesion"
    class_name: str = "tumor"
    host_organ: str | None = None
    volume_ml: float = 1.0


def test_at_most_five_targets_and_two_per_organ():
    lesions = [L("liver-1", 50, 30, host_organ="liver"), L("liver-2", 40, 20, host_organ="liver"),
               L("liver-3", 35, 20, host_organ="liver"), L("lungL-1", 30, 20, host_organ="lung_upper_lobe_left"),
               L("lungR-1", 25, 20, host_organ="lung_lower_lobe_right"), L("lungR-2", 24, 20, host_organ="lung_lower_lobe_right"),
               L("spleen-1", 22, 10, host_organ="spleen"), L("bone-1", 21, 10, host_organ="vertebrae_L1")]
    targets = select_targets(lesions, slice_thickness_mm=1.0)
    # liver-3 is the third liver lesion; lungR-* are the second and third lung lesions (lungs are one organ)
    assert targets == ["liver-1", "liver-2", "lungL-1", "lungR-1", "spleen-1"]
    rows = {b.class_name: b for b in tumour_burden(lesions, targets)}
    assert rows["all"].recist_target_sum_mm == pytest.approx(50 + 40 + 30 + 25 + 22)
    assert rows["all"].n_recist_targets == 5
    assert rows["all"].lesion_count == 8


def test_nodes_count_by_short_axis_and_only_from_15_mm():
    nodes = [L("ln-1", 40, 14.9, kind="lymph_node", class_name="lymph_nodes"),
             L("ln-2", 30, 22, kind="lymph_node", class_name="lymph_nodes"),
             L("ln-3", 28, 18, kind="lymph_node", class_name="lymph_nodes"),
             L("ln-4", 27, 16, kind="lymph_node", class_name="lymph_nodes")]
    lesion = L("t-1", 19, 12, class_name="tumor")
    targets = select_targets(nodes + [lesion], slice_thickness_mm=2.0)
    assert targets == ["ln-2", "t-1", "ln-3"]  # nodes are one organ: at most two
    rows = {b.class_name: b for b in tumour_burden(nodes + [lesion], targets, classes=["lymph_nodes", "tumor"])}
    assert rows["all"].recist_target_sum_mm == pytest.approx(22 + 19 + 18)
    assert rows["lymph_nodes"].recist_target_sum_mm == pytest.approx(22 + 18)
    assert rows["tumor"].n_recist_targets == 1


def test_measurability_follows_slice_thickness():
    small = L("t", 11.0, 5.0)
    assert is_measurable(small, slice_thickness_mm=5.0)
    assert not is_measurable(small, slice_thickness_mm=6.0)  # needs >= 2 × 6 mm
    assert not is_measurable(L("t", 9.9, 5.0), slice_thickness_mm=1.0)


def test_organ_key_merges_paired_organs():
    assert organ_key(L("a", 1, 1, host_organ="kidney_left")) == organ_key(L("b", 1, 1, host_organ="kidney_right"))
    assert organ_key(L("a", 1, 1, host_organ="lung_upper_lobe_left")) == "lung"
    assert organ_key(L("a", 1, 1, class_name="liver_tumor")) == "liver_tumor"


def test_empty_classes_still_get_a_row():
    rows = tumour_burden([], [], classes=["lymph_nodes"])
    assert [(r.class_name, r.lesion_count, r.recist_target_sum_mm) for r in rows] == [
        ("lymph_nodes", 0, 0.0), ("all", 0, 0.0)]
