"""mm-sized morphology: small balls as structuring elements and large ones through the EDT agree."""
import numpy as np
import pytest
from scipy import ndimage

from volseg.postprocess import morphology as morph


def _blobs(shape=(40, 36, 24), seed=0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), 2.0) > 0.5


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.7, 0.9, 2.0)])
@pytest.mark.parametrize("radius_mm", [1.0, 2.5, 4.0, 7.0])
def test_erosion_and_dilation_are_balls_in_millimetres(spacing, radius_mm):
    mask = _blobs()
    inside = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    np.testing.assert_array_equal(morph.erode_mm(mask, radius_mm, spacing), inside > radius_mm)
    np.testing.assert_array_equal(morph.dilate_mm(mask, radius_mm, spacing), outside <= radius_mm)


def test_ball_holds_the_offsets_within_the_radius():
    element = morph.ball(2.0, (1.0, 1.0, 2.0))
    assert element.shape == (5, 5, 3)
    assert element[2, 2, 1] and element[0, 2, 1] and element[2, 2, 0] and not element[0, 0, 1]


def test_outside_the_array_can_count_as_object_for_cut_objects():
    slab = np.ones((30, 30, 3), bool)  # three slices of a body cut by the field of view
    assert not morph.erode_mm(slab, 4.0, (1.0, 1.0, 1.0)).any()
    assert morph.erode_mm(slab, 4.0, (1.0, 1.0, 1.0), outside=True).all()
    depth = morph.distance_inside_mm(slab, (1.0, 1.0, 1.0), outside=True)
    assert np.isinf(depth).all()
    depth = morph.distance_inside_mm(np.pad(slab, ((2, 2), (0, 0), (0, 0))), (1.0, 1.0, 1.0), outside=True)
    assert depth[2, 15, 1] == 1.0 and depth[17, 15, 1] == 15.0  # rows 0-1 and 32-33 are background
