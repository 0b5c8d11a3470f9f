"""RECIST axes on one connected piece of a slice; fragmented cross-sections; edge-cut lesions."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.postprocess.synthetic import centred_affine
from volseg.postprocess.diameters import axial_diameters
from volseg.postprocess.lesions import measure_instances

SPACING = (0.8, 1.0, 2.5)  # anisotropic in-plane: rows 0.8 mm, columns 1.0 mm


def _u_shape(shape=(70, 50, 6)):
    """Two bars joined by a bridge one slice below: one 3-D lesion, two pieces on slices 2 and 3."""
    mask = np.zeros(shape, bool)
    mask[10:60, 10:15, 2:4] = True  # bar A: 50 rows × 5 columns = 40 × 5 mm
    mask[10:30, 35:40, 2:4] = True  # bar B: 20 rows × 5 columns = 16 × 5 mm
    mask[10:13, 10:40, 1] = True  # bridge: 3 rows × 30 columns, connects A and B in 3-D
    return mask


def _alone(mask, keep):
    out = np.zeros_like(mask)
    out[keep] = mask[keep]
    return out


def test_long_axis_is_measured_on_one_piece_and_fragments_are_summed():
    mask = _u_shape()
    affine = centred_affine(SPACING, np.eye(3), mask.shape)
    axes = axial_diameters(mask, affine)
    bar_a = axial_diameters(_alone(mask, np.s_[:, :20, 2:4]), affine)
    bar_b = axial_diameters(_alone(mask, np.s_[:, 30:, 2:4]), affine)
    # bar A alone: diagonal of its outline, ~ sqrt(40² + 5²) mm, well below the A-to-B chord (~50 mm)
    assert bar_a.long_axis_mm == pytest.approx(np.hypot(40 - 0.8, 5), abs=1.0)
    assert axes.long_axis_mm == pytest.approx(bar_a.long_axis_mm, abs=1e-9)
    assert axes.short_axis_mm == pytest.approx(bar_a.short_axis_mm, abs=1e-9) and axes.short_axis_mm < 6.0
    assert axes.slice_index in (2, 3)
    assert axes.fragments_on_slice == 2
    assert axes.fragments_sum_mm == pytest.approx(bar_a.long_axis_mm + bar_b.long_axis_mm, abs=1e-9)
    assert [c.length_mm for c in axes.fragments] == pytest.approx([bar_a.long_axis_mm, bar_b.long_axis_mm])
    # every caliper end lies in the measurement slice, on its own bar (columns 10-15 or 35-40)
    inv = np.linalg.inv(affine)
    for caliper, cols in zip(axes.fragments, ((9.5, 14.5), (34.5, 39.5))):
        for end in caliper.endpoints_ras_mm:
            ijk = inv[:3, :3] @ np.asarray(end) + inv[:3, 3]
            assert ijk[2] == pytest.approx(axes.slice_index, abs=1e-6)
            assert cols[0] - 1e-6 <= ijk[1] <= cols[1] + 1e-6


def test_a_single_piece_is_not_fragmented():
    mask = np.zeros((30, 30, 3), bool)
    mask[5:25, 8:20, 1] = True
    axes = axial_diameters(mask, np.diag([*SPACING, 1.0]))
    assert axes.fragments_on_slice == 1 and len(axes.fragments) == 1
    assert axes.fragments_sum_mm == pytest.approx(axes.long_axis_mm)
    assert axes.fragments[0].endpoints_ras_mm == axes.long_axis_endpoints_ras_mm


def test_instances_carry_fragments_and_touches_fov():
    labels = np.zeros((70, 50, 6), np.uint8)
    labels[_u_shape()] = 2
    labels[0:5, 20:25, 2:4] = 2  # a second lesion on the array's first face
    labels[40:45, 25:30, 2:4] = 2  # a third one next to the CT padding outside the reconstruction circle
    image = np.full(labels.shape, 40, np.int16)
    image[40:45, 30:50, :] = -2048
    affine = centred_affine(SPACING, np.eye(3), labels.shape)
    rows = measure_instances(labels, affine, {2: "liver_tumor"}, image=image)
    by_id = {r.instance_id: r for r in rows}
    u = by_id["liver_tumor-1"]
    assert u.fragments_on_slice == 2 and len(u.fragment_calipers) == 2 and not u.touches_fov
    assert u.fragments_sum_mm > u.long_axis_mm
    assert {r.instance_id for r in rows if r.touches_fov} == {"liver_tumor-2", "liver_tumor-3"}
    no_image = {r.instance_id: r.touches_fov for r in measure_instances(labels, affine, {2: "liver_tumor"})}
    assert no_image == {"liver_tumor-1": False, "liver_tumor-2": True, "liver_tumor-3": False}


def test_edge_cut_lesions_are_not_recist_targets():
    from volseg.postprocess.burden import select_targets

    rows = measure_instances(_u_shape().astype(np.uint8) * 2,
                             centred_affine(SPACING, np.eye(3), (70, 50, 6)), {2: "liver_tumor"})
    assert select_targets(rows, slice_thickness_mm=2.5) == ["liver_tumor-1"]
    cut = [dataclasses.replace(rows[0], touches_fov=True)]
    assert select_targets(cut, slice_thickness_mm=2.5) == []


def test_lesion_picture_draws_every_piece():
    from tests.reports.test_pictures import _png_pixels
    from volseg.labels import LabelTable
    from volseg.reports.model import InstanceRow
    from volseg.reports.pictures import DisplayVolumes, lesion_picture
    from volseg.volume import Volume

    labels = np.zeros((70, 50, 6), np.uint8)
    labels[_u_shape()] = 2
    affine = centred_affine(SPACING, np.eye(3), labels.shape)
    m = measure_instances(labels, affine, {2: "liver_tumor"})[0]
    fields = set(InstanceRow.model_fields)
    row = InstanceRow(**{k: v for k, v in m.__dict__.items() if k in fields}).model_dump()
    display = DisplayVolumes.build(Volume(labels, affine), None, is_ct=False)
    table = LabelTable.from_names({2: "liver_tumor"})
    picture = lesion_picture(display, table, row)
    pixels = _png_pixels(picture.png)
    orange = (pixels[..., 0] > 0.9) & (pixels[..., 1] > 0.45) & (pixels[..., 1] < 0.65) & (pixels[..., 2] < 0.2)
    yellow = (pixels[..., 0] > 0.9) & (pixels[..., 1] > 0.8) & (pixels[..., 2] < 0.2)
    assert orange.sum() > 20 and yellow.sum() > 50
    assert "2 separate pieces" in picture.caption


def test_instances_measured_on_several_cores_equal_those_of_one(monkeypatch):
    labels = np.zeros((70, 50, 6), np.uint8)
    labels[_u_shape()] = 2
    labels[0:5, 20:25, 2:4] = 2
    labels[40:45, 25:30, 2:4] = 2
    labels[50:60, 30:45, 0:3] = 3
    image = np.full(labels.shape, 40, np.int16)
    affine = centred_affine(SPACING, np.eye(3), labels.shape)
    measured = {}
    for workers in ("1", "3"):
        monkeypatch.setenv("VOLSEG_WORKERS", workers)
        measured[workers] = measure_instances(labels, affine, {2: "liver_tumor", 3: "kidney_cyst"}, image=image)
    assert measured["1"] == measured["3"] and len(measured["1"]) == 4
