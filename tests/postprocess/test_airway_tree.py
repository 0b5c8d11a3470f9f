"""A synthetic airway tree of known topology and lengths, drawn as tubes in mm."""
from __future__ import annotations

import numpy as np
import pytest

from tests.postprocess.synthetic import add_capsule, branching_tree, draw_tubes, grid_affine, rotation
from volseg.postprocess.airway_tree import airway_tree

LENGTHS = (40.0, 30.0, 22.0, 16.0)  # generations 0 (trachea) to 3
RADII = (8.0, 5.5, 4.0, 3.0)
SEGMENTS = branching_tree((0.0, 0.0, 0.0), (0.0, 0.0, -1.0), generations=4, lengths=LENGTHS, radii=RADII)
TRUE_LENGTH = sum(float(np.linalg.norm(s[1] - s[0])) for s in SEGMENTS)


def _grid(spacing, columns, margin=12.0):
    """A grid with axes ``columns`` and ``spacing`` that holds the whole tree."""
    pts = np.array([p for s in SEGMENTS for p in s[:2]])
    lo, hi = pts.min(axis=0) - margin, pts.max(axis=0) + margin
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    affine = grid_affine(spacing, columns)
    inv = np.linalg.inv(affine)
    idx = corners @ inv[:3, :3].T
    first, last = np.floor(idx.min(axis=0)), np.ceil(idx.max(axis=0))
    affine[:3, 3] = affine[:3, :3] @ first
    return tuple(int(n) for n in (last - first + 1)), affine


GRIDS = {
    "anisotropic-ras": ((0.8, 0.9, 1.5), np.eye(3)),
    "rotated-lpi-permuted": ((1.2, 0.7, 0.7), rotation("z", 30) @ np.array([[0, 0, -1.0], [-1.0, 0, 0], [0, -1.0, 0]]).T),
}


@pytest.fixture(scope="module", params=sorted(GRIDS))
def drawn(request):
    shape, affine = _grid(*GRIDS[request.param])
    return draw_tubes(shape, affine, SEGMENTS), affine


def test_topology_generations_and_lengths(drawn):
    mask, affine = drawn
    tree = airway_tree(mask, affine)
    assert tree.branch_count == 15
    assert tree.branches_per_generation == {0: 1, 1: 2, 2: 4, 3: 8}
    assert tree.max_generation == 3
    ids = {b.branch_id: b for b in tree.branches}
    for b in tree.branches:  # every child is one generation below its parent; parents have 2 children
        if b.parent_id is None:
            assert b.generation == 0
        else:
            assert ids[b.parent_id].generation == b.generation - 1
    children = [sum(1 for c in tree.branches if c.parent_id == b.branch_id) for b in tree.branches]
    assert sorted(children) == [0] * 8 + [2] * 7
    assert tree.total_centreline_length_mm == pytest.approx(TRUE_LENGTH, rel=0.05)
    # the trachea starts at its top (within its radius: thinning shortens a blunt end)
    assert tree.trachea.start_ras_mm[2] == pytest.approx(0.0, abs=RADII[0])
    assert tree.trachea.mean_diameter_mm == pytest.approx(2 * RADII[0], abs=1.0)
    for gen, radius in enumerate(RADII):
        diameters = [b.mean_diameter_mm for b in tree.branches if b.generation == gen]
        assert np.mean(diameters) == pytest.approx(2 * radius, abs=1.0)
    true_ml = mask.sum() * abs(np.linalg.det(affine[:3, :3])) / 1000
    assert tree.lumen_volume_ml == pytest.approx(true_ml)
    assert not tree.leak_suspected


def test_short_spurs_are_pruned():
    shape, affine = _grid(*GRIDS["anisotropic-ras"])
    mask = draw_tubes(shape, affine, SEGMENTS)
    # a bump 3 mm proud of the trachea wall: its skeleton spur stays within the trachea's lumen radius
    add_capsule(mask, affine, (0.0, 0.0, -20.0), (8.0, 0.0, -20.0), 3.0)
    tree = airway_tree(mask, affine)
    assert tree.branch_count == 15


def test_a_leak_outside_the_lungs_is_suspected():
    shape, affine = _grid(*GRIDS["anisotropic-ras"], margin=42.0)
    mask = draw_tubes(shape, affine, SEGMENTS)
    # the lungs: a box around the lobar and segmental branches, x -60..60, y -40..40, z -110..-40 mm
    lo = np.ceil(np.linalg.solve(affine[:3, :3], np.array([-60.0, -40.0, -110.0]) - affine[:3, 3])).astype(int)
    hi = np.floor(np.linalg.solve(affine[:3, :3], np.array([60.0, 40.0, -40.0]) - affine[:3, 3])).astype(int)
    lungs = np.zeros(shape, dtype=bool)
    lungs[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] = True
    assert not airway_tree(mask, affine, lungs=lungs).leak_suspected
    leaf = next(s for s in SEGMENTS if s[3] == 3 and s[1][0] > 0)[1]
    add_capsule(mask, affine, leaf, leaf + np.array([25.0, 0.0, 0.0]), 3.0)
    add_capsule(mask, affine, leaf + np.array([30.0, 0.0, 0.0]), leaf + np.array([30.0, 0.0, 0.0]), 9.0)
    tree = airway_tree(mask, affine, lungs=lungs)
    assert tree.leak_suspected
    assert "outside the lungs" in tree.leak_reasons[0]


def test_empty_mask():
    assert airway_tree(np.zeros((5, 5, 5), dtype=bool), np.eye(4)) is None
