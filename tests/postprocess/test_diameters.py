"""RECIST axes and Feret diameter of ellipsoids with known axes, on awkward grids."""
from __future__ import annotations

import numpy as np
import pytest

from tests.postprocess.synthetic import centred_affine, ellipsoid, rotation
from volseg.postprocess.chords import is_inside
from volseg.postprocess.diameters import axial_diameters, feret_diameter, outline_segments

# (spacing, grid axis directions as columns, shape, ellipsoid frame relative to the grid's axes)
LPI = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]).T  # axis 0 = I, 1 = L, 2 = P
GRIDS = {
    "ras-anisotropic": ((0.7, 0.9, 2.5), np.eye(3), (90, 80, 30)),
    "permuted-non-ras-rotated": ((2.5, 0.8, 0.6), rotation("z", 30) @ LPI, (30, 90, 90)),
    "oblique-tilted": ((0.7, 0.9, 2.0), rotation("x", 15) @ rotation("z", 10) @ np.diag([-1.0, -1.0, 1.0]),
                       (90, 90, 40)),
}
SEMI_AXES = {"flat": (20.0, 12.0, 9.0), "tall": (16.0, 11.0, 24.0)}


def _case(grid: str, shape_name: str, in_plane_deg: float = 35.0):
    spacing, columns, shape = GRIDS[grid]
    affine = centred_affine(spacing, columns, shape)
    cols = affine[:3, :3] / np.asarray(spacing)
    axial = int(np.argmax(np.abs(cols[2])))
    plane = [a for a in range(3) if a != axial]
    # the ellipsoid's first two axes lie in the grid's axial plane, its third along the slice normal
    in_plane = np.stack([cols[:, plane[0]], cols[:, plane[1]]], axis=1)
    q, _ = np.linalg.qr(in_plane)
    normal = np.cross(q[:, 0], q[:, 1])
    c, s = np.cos(np.radians(in_plane_deg)), np.sin(np.radians(in_plane_deg))
    frame = np.stack([c * q[:, 0] + s * q[:, 1], -s * q[:, 0] + c * q[:, 1], normal], axis=1)
    centre = (1.3, -0.7, 0.4)  # off the voxel lattice
    mask = ellipsoid(shape, affine, centre, SEMI_AXES[shape_name], frame)
    return mask, affine, spacing, axial


@pytest.mark.parametrize("grid", sorted(GRIDS))
@pytest.mark.parametrize("shape_name", sorted(SEMI_AXES))
def test_ellipsoid_axes_feret_and_volume(grid, shape_name):
    mask, affine, spacing, axial = _case(grid, shape_name)
    a, b, c = SEMI_AXES[shape_name]
    diagonal = float(np.linalg.norm(spacing))
    axes = axial_diameters(mask, affine)
    feret = feret_diameter(mask, affine)
    assert axes.axial_axis == axial
    assert axes.long_axis_mm == pytest.approx(2 * a, abs=diagonal)
    assert axes.short_axis_mm == pytest.approx(2 * b, abs=diagonal)
    assert feret.diameter_mm == pytest.approx(2 * max(a, b, c), abs=diagonal)
    volume = mask.sum() * abs(np.linalg.det(affine[:3, :3]))
    assert volume == pytest.approx(4 / 3 * np.pi * a * b * c, rel=0.01)


def test_calipers_are_consistent_with_the_reported_end_points():
    mask, affine, _, axial = _case("permuted-non-ras-rotated", "flat")
    axes = axial_diameters(mask, affine)
    p, q = (np.array(e) for e in axes.long_axis_endpoints_ras_mm)
    s, t = (np.array(e) for e in axes.short_axis_endpoints_ras_mm)
    assert np.linalg.norm(q - p) == pytest.approx(axes.long_axis_mm, abs=1e-6)
    assert np.linalg.norm(t - s) == pytest.approx(axes.short_axis_mm, abs=1e-6)
    assert abs((q - p) @ (t - s)) / (axes.long_axis_mm * axes.short_axis_mm) < 1e-6  # perpendicular
    inv = np.linalg.inv(affine)
    for point in (p, q, s, t):  # all four caliper ends lie in the reported slice
        assert (inv[:3, :3] @ point + inv[:3, 3])[axial] == pytest.approx(axes.slice_index, abs=1e-6)


def test_crop_offset_gives_the_same_answer_as_the_full_grid():
    mask, affine, _, _ = _case("ras-anisotropic", "tall")
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
    offset = tuple(s.start for s in box)
    full = axial_diameters(mask, affine)
    cropped = axial_diameters(mask[box], affine, offset=offset)
    assert cropped.slice_index == full.slice_index
    assert cropped.long_axis_mm == pytest.approx(full.long_axis_mm, abs=1e-9)
    assert cropped.short_axis_mm == pytest.approx(full.short_axis_mm, abs=1e-9)
    assert np.allclose(cropped.long_axis_endpoints_ras_mm, full.long_axis_endpoints_ras_mm, atol=1e-9)
    assert feret_diameter(mask[box], affine, offset=offset).diameter_mm == pytest.approx(
        feret_diameter(mask, affine).diameter_mm, abs=1e-9)


def test_long_axis_of_a_concave_outline_stays_inside_and_short_axis_spans_its_outer_extent():
    # a 'U' of 1 mm pixels: the diagonal (~23.7 mm) would cross the gap between the arms; the long
    # axis is the longest caliper inside: down one arm into the base, hypot(21, 3) mm; the
    # perpendicular chord spans the outer extent (the base, 11 mm)
    u = np.zeros((1, 21, 11), dtype=bool)
    u[0, :, :3] = True
    u[0, :, 8:] = True
    u[0, 18:, :] = True
    affine = np.array([[0, 0, 1.0, 0], [0, 1.0, 0, 0], [3.0, 0, 0, 0], [0, 0, 0, 1.0]])  # axis 0 = S
    axes = axial_diameters(u, affine)
    assert axes.axial_axis == 0
    assert axes.long_axis_mm == pytest.approx(np.hypot(21.0, 3.0), abs=0.1)
    assert axes.short_axis_mm == pytest.approx(11.0, abs=0.2)  # spans the base, not one arm
    a, b = (np.linalg.solve(affine[:3, :3], np.asarray(p))[1:] for p in axes.long_axis_endpoints_ras_mm)
    assert is_inside(u[0], a, b)[0]
    assert not is_inside(u[0], np.array([-0.5, 0.0]), np.array([20.5, 10.0]))[0]  # the diagonal is not


def test_outline_of_one_pixel_is_its_four_edge_midpoints():
    segs = outline_segments(np.ones((1, 1), dtype=bool))
    points = {tuple(p) for p in segs.reshape(-1, 2)}
    assert points == {(-0.5, 0.0), (0.5, 0.0), (0.0, -0.5), (0.0, 0.5)}
    assert len(segs) == 4


def test_empty_mask_has_no_diameters():
    empty = np.zeros((4, 4, 4), dtype=bool)
    assert axial_diameters(empty, np.eye(4)) is None
    assert feret_diameter(empty, np.eye(4)) is None
