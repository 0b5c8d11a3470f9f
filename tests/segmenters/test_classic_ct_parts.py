"""Known answers for the parts of classic-ct: block grid, left/right split, body wall rays, airways."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.segmenters.classic import fat
from volseg.segmenters.classic.airway_tips import _geodesic_steps, _tip_centres
from volseg.segmenters.classic.grid import BlockGrid
from volseg.segmenters.classic.split import LEFT, RIGHT, _label_sides, _minimal_cut


def test_block_grid_means_blocks_and_maps_back_exactly():
    grid = BlockGrid.for_spacing((7, 5, 4), (0.8, 1.2, 2.6), target_mm=2.5)
    assert grid.factors == (3, 2, 1) and grid.coarse_shape == (3, 3, 4)
    array = np.arange(7 * 5 * 4, dtype=np.int16).reshape(7, 5, 4)
    means = grid.down_mean(array)
    assert means[0, 0, 0] == pytest.approx(array[0:3, 0:2, 0].mean())
    assert means[1, 2, 3] == pytest.approx(array[3:6, 4:5, 3].mean())  # partial block at the edge
    up = grid.up(np.arange(36).reshape(3, 3, 4))
    assert up.shape == (7, 5, 4)
    assert up[5, 3, 2] == np.arange(36).reshape(3, 3, 4)[1, 1, 2]
    box = (slice(3, 7), slice(1, 5), slice(0, 4))
    np.testing.assert_array_equal(grid.up(np.arange(36).reshape(3, 3, 4), box), up[box])


def _two_balls(neck_radius: float):
    """Two 15 mm balls at x = ±30 mm joined by a cylinder along x (1 mm grid, RAS x = index - 50)."""
    i, j, k = np.indices((101, 40, 40)).astype(float)
    x, y, z = i - 50.0, j - 20.0, k - 20.0
    balls = ((x - 30) ** 2 + y**2 + z**2 <= 225) | ((x + 30) ** 2 + y**2 + z**2 <= 225)
    neck = (np.abs(x) <= 16) & (y**2 + z**2 <= neck_radius**2)
    return balls | neck, x


def test_touching_lungs_split_at_their_neck_by_side_of_the_patient():
    mask, x = _two_balls(neck_radius=6.0)
    sides = _label_sides(mask, x, midline=0.0, spacing=(1.0, 1.0, 1.0))
    assert np.all(sides[mask & (x < -3)] == LEFT) and np.all(sides[mask & (x > 3)] == RIGHT)
    assert not sides[~mask].any()


def test_one_lung_alone_takes_its_side_from_the_midline():
    mask, x = _two_balls(neck_radius=6.0)
    right_only = mask & (x > 20)
    sides = _label_sides(right_only, x, midline=0.0, spacing=(1.0, 1.0, 1.0))
    assert np.all(sides[right_only] == RIGHT)
    sides = _label_sides(right_only, x, midline=50.0, spacing=(1.0, 1.0, 1.0))  # midline to its right
    assert np.all(sides[right_only] == LEFT)


def test_minimal_cut_goes_through_the_thinnest_place_near_the_midline():
    mask, x = _two_balls(neck_radius=4.0)
    _, y, z = np.indices(mask.shape) - np.array([0, 20, 20])[:, None, None, None]
    mask &= (x != 6) | (y**2 + z**2 <= 1)  # the neck pinches to a thread at x = 6, off the midline
    sides = _minimal_cut(mask, x, midline=0.0, spacing=(1.0, 1.0, 1.0))
    assert np.all(sides[mask & (x <= 5)] == LEFT) and np.all(sides[mask & (x >= 8)] == RIGHT)


def test_wall_radius_is_the_outer_edge_of_the_first_thick_tissue_inside_the_skin():
    steps = np.arange(0.0, 60.0, fat.RAY_STEP_MM)
    ray = np.full(steps.size, fat.OUTSIDE, np.uint8)
    ray[:30] = fat.DEEP                  # viscera and the muscle wall up to 30 mm
    ray[30:50] = fat.FAT                 # subcutaneous fat, with a 2 mm septum
    ray[38:40] = fat.DEEP
    ray[50:52] = fat.DEEP                # skin
    thin_patient = ray.copy()
    thin_patient[30:50] = fat.DEEP       # muscle right under the skin: no subcutaneous fat
    radius = fat._wall_radius(np.stack([ray, thin_patient]), steps)
    assert radius[0] == pytest.approx(29.0)
    assert radius[1] == pytest.approx(51.0 - fat.SKIN_MM)


def test_fat_touching_air_or_on_a_thin_line_is_partial_volume():
    hu = np.full((12, 12, 12), 40, np.int16)
    hu[2:10, 2:10, 2:10] = -100          # a block of fat
    hu[5, 5, 5] = -1000                  # with an air bubble inside
    hu[11, :, 6] = -100                  # and a one-voxel line of fat-range values
    mask = fat.fat_mask(hu, np.ones(hu.shape, bool))
    assert mask[3, 3, 3] and not mask[5, 5, 4] and not mask[5, 5, 5]
    assert not mask[11, :, 6].any()


def test_geodesic_steps_and_tips_of_a_forked_tube():
    tree = np.zeros((30, 30, 60), bool)
    tree[14:16, 14:16, 30:60] = True     # trunk coming down from the top
    for k in range(30):                  # two arms going down and apart
        tree[14 - k // 3:16 - k // 3, 14:16, 29 - k] = True
        tree[14 + k // 3:16 + k // 3, 14:16, 29 - k] = True
    seed = np.zeros_like(tree)
    seed[:, :, 59] = tree[:, :, 59]
    distance = _geodesic_steps(tree, seed)
    assert distance[14, 14, 59] == 0 and distance[14, 14, 30] == 29
    tips = _tip_centres(tree, distance)
    assert len(tips) == 2 and sorted(t[0] for t in tips)[0] < 10 < sorted(t[0] for t in tips)[1]
    assert all(t[2] <= 1 for t in tips)
