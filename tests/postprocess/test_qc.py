"""QC flags on synthetic label maps with known defects."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.postprocess.measure import StructureMeasurement, measure_structures
from volseg.postprocess.qc import expected_max_components, midline, qc_structures, side_of

SPACING = 4.0


def _map(boxes: dict[str, list[tuple[tuple[int, int], ...]]], shape=(60, 40, 40), x0_mm=-100.0):
    """Label map of axis-aligned boxes (voxel index ranges), RAS grid of 4 mm voxels."""
    labels = np.zeros(shape, dtype=np.uint8)
    names = {}
    for n, (name, parts) in enumerate(boxes.items(), start=1):
        names[n] = name
        for (i0, i1), (j0, j1), (k0, k1) in parts:
            labels[i0:i1, j0:j1, k0:k1] = n
    affine = np.diag([SPACING, SPACING, SPACING, 1.0])
    affine[:3, 3] = (x0_mm, -80.0, -80.0)
    return measure_structures(labels, affine, names), affine, shape


def _flags(boxes, **kw):
    ms, affine, shape = _map(boxes, **kw)
    centre = affine[:3, :3] @ ((np.array(shape) - 1) / 2) + affine[:3, 3]
    qc = qc_structures(ms, fov_centre_ras_mm=centre)
    return {m.name: set(qc[m.label].flags) for m in ms}, {m.name: qc[m.label].notes for m in ms}


SPINE = [((28, 32), (10, 14), (5, 35))]  # x indices 28-31: centre index 29.5


def test_laterality_from_the_spine_midline_not_x_zero():
    # spine at x = 38 mm; kidney_left centroid at x = 6 mm: right of x = 0 but left of the spine
    # (RAS: the patient's left is smaller x), kidney_right at x = 70 mm
    ok = {"vertebrae_L1": SPINE, "kidney_left": [((20, 24), (10, 20), (10, 20))],
          "kidney_right": [((36, 40), (10, 20), (10, 20))]}
    flags, _ = _flags(ok, x0_mm=-80.0)
    assert "laterality_mismatch" not in flags["kidney_left"]
    assert "laterality_mismatch" not in flags["kidney_right"]
    swapped = {"vertebrae_L1": SPINE, "kidney_left": ok["kidney_right"], "kidney_right": ok["kidney_left"]}
    flags, notes = _flags(swapped, x0_mm=-80.0)
    assert "laterality_mismatch" in flags["kidney_left"]
    assert "laterality_mismatch" in flags["kidney_right"]
    assert any("spine" in n for n in notes["kidney_left"])


def test_laterality_without_a_spine_uses_the_pairs_midpoint():
    swapped = {"lung_left": [((40, 50), (5, 30), (5, 30))], "lung_right": [((5, 15), (5, 30), (5, 30))],
               "adrenal_gland_left": [((35, 37), (15, 17), (15, 17))],
               "adrenal_gland_right": [((20, 22), (15, 17), (15, 17))]}
    flags, notes = _flags(swapped)
    assert all("laterality_mismatch" in f for f in flags.values())
    assert "paired structures" in notes["lung_left"][-1]


def test_midline_falls_back_to_the_field_of_view_centre_with_a_margin():
    ms, affine, shape = _map({"kidney_left": [((26, 28), (10, 12), (10, 12))]})
    centre = affine[:3, :3] @ ((np.array(shape) - 1) / 2) + affine[:3, 3]
    line = midline(ms, fov_centre_ras_mm=centre)
    assert line.source == "field-of-view centre" and line.x_mm == pytest.approx(centre[0])
    qc = qc_structures(ms, fov_centre_ras_mm=centre)
    assert "laterality_mismatch" not in qc[1].flags  # 0-12 mm right of the FOV centre: within the margin
    assert midline(ms) is None


def test_fragmented_truncated_and_empty():
    boxes = {"liver": [((5, 15), (5, 15), (5, 15)), ((20, 25), (5, 10), (5, 10))],
             "colon": [((30, 32), (5, 7), (5, 7)), ((35, 37), (5, 7), (5, 7)), ((40, 42), (5, 7), (5, 7))],
             "spleen": [((0, 5), (20, 30), (20, 30))],  # touches the array edge
             "pancreas": []}
    flags, notes = _flags(boxes)
    assert "fragmented" in flags["liver"]
    assert "fragmented" not in flags["colon"]
    assert "truncated" in flags["spleen"]
    assert flags["pancreas"] == {"empty"}
    assert "2 connected components (expected at most 1)" in notes["liver"][0]


def _m(name, volume_ml, touches=False):
    return StructureMeasurement(1, name, 1, volume_ml, None, (0.0, 0.0, 0.0), None, None, 1, volume_ml, touches, False)


@pytest.mark.parametrize("name, volume, touches, flagged", [
    ("liver", 1500.0, False, False), ("liver", 600.0, False, True), ("liver", 2500.0, False, True),
    ("liver", 600.0, True, False),  # cut by the FOV: small is expected
    ("spleen", 400.0, True, True),  # ... but too large stays too large
    ("pancreas", 18.8, False, True), ("kidney_left", 80.0, False, True), ("kidney_left", 400.0, False, False),
    ("heart", 5.0, False, False),  # no cited range: never flagged
])
def test_volume_out_of_adult_reference_range(name, volume, touches, flagged):
    qc = qc_structures([_m(name, volume, touches)])
    assert ("volume_out_of_range" in qc[1].flags) is flagged


def test_component_table_and_sides():
    assert expected_max_components("liver") == 1
    assert expected_max_components("rib_left_7") == 1
    assert expected_max_components("small_bowel") is None
    assert expected_max_components("liver_tumor") is None
    assert expected_max_components("some_new_structure") is None
    assert side_of("rib_left_7") == "left" and side_of("kidney_right") == "right"
    assert side_of("heart") is None and side_of("leftover") is None
