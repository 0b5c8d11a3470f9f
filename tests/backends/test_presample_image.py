"""TotalSegmentator-style pre-resampling: the image zoomed in float64 from its stored values."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from volseg.segmenters.backends.nnunet_presample import PreResample


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("layout", ["C", "F", "flipped"])
def test_image_equals_zoom_of_a_float64_copy(order, layout):
    rng = np.random.default_rng(order)
    array = rng.integers(-1024, 3000, size=(23, 19, 11)).astype(np.int16)
    if layout == "F":
        array = np.asfortranarray(array)
    elif layout == "flipped":
        array = array[::-1, :, ::-1]
    spacing = (0.8, 0.9, 2.5)
    pre = PreResample((1.5, 1.5, 1.5), order=order)
    got, got_spacing = pre.image(array, spacing)
    zoom = np.asarray(spacing, dtype=np.float32) / np.array([1.5, 1.5, 1.5])
    want = ndimage.zoom(array.astype(np.float64), zoom, order=order, mode="nearest").astype(np.int32)
    assert got.dtype == np.int32 and got_spacing == (1.5, 1.5, 1.5)
    np.testing.assert_array_equal(got, want)
    assert got.shape == (12, 11, 18)


def test_image_on_the_target_grid_is_returned_as_is():
    array = np.zeros((4, 4, 4), dtype=np.int16)
    got, spacing = PreResample((3.0, 3.0, 3.0)).image(array, (3.0, 3.0, 3.0))
    assert got is array and spacing == (3.0, 3.0, 3.0)


def test_labels_back_equals_the_order_0_zoom():
    """The three 1-D gathers give ndimage.zoom's order-0 map voxel for voxel, shrinking or growing."""
    rng = np.random.default_rng(5)
    pre = PreResample((3.0, 3.0, 3.0))
    cases = [((137, 137, 150), (512, 512, 300)), ((41, 40, 75), (122, 101, 112)), ((7, 1, 9), (3, 4, 28))]
    cases += [(tuple(int(n) for n in rng.integers(1, 30, 3)), tuple(int(n) for n in rng.integers(1, 70, 3)))
              for _ in range(60)]
    checked = 0
    for shape_in, shape_out in cases:
        labels = rng.integers(0, 118, size=shape_in).astype(np.uint8)
        want = ndimage.zoom(labels, np.asarray(shape_out, float) / np.asarray(shape_in, float), order=0,
                            mode="nearest")
        if want.shape != shape_out:  # float rounding of n·zoom (labels_back refuses it, as TS would fail)
            continue
        got = pre.labels_back(labels, shape_out)
        assert got.flags.c_contiguous and got.dtype == labels.dtype
        np.testing.assert_array_equal(got, want)
        checked += 1
    assert checked >= 50
