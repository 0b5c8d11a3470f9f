import numpy as np
import pytest

from volseg.errors import GeometryError
from volseg.phantom import phantom_grid
from volseg.volume import Volume, orientation_code, reorient, undo_reorient


def _lps_affine(spacing=(0.7, 0.8, 1.5)):
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [100.0, 50.0, -20.0]
    return affine


def test_geometry_from_affine():
    vol = Volume(np.zeros((4, 5, 6), np.int16), _lps_affine())
    assert vol.shape == (4, 5, 6)
    assert vol.spacing == pytest.approx((0.7, 0.8, 1.5))
    assert vol.orientation == "LPS"
    assert vol.voxel_volume_mm3 == pytest.approx(0.7 * 0.8 * 1.5)
    assert vol.origin == (100.0, 50.0, -20.0)
    np.testing.assert_allclose(vol.direction, np.diag([-1.0, -1.0, 1.0]))


def test_volume_is_frozen_and_read_only():
    vol = Volume(np.zeros((3, 3, 3)), np.eye(4))
    with pytest.raises(ValueError):
        vol.array[0, 0, 0] = 1
    with pytest.raises(ValueError):
        vol.affine[0, 0] = 2
    with pytest.raises(AttributeError):
        vol.array = np.ones((3, 3, 3))  # type: ignore[misc]


@pytest.mark.parametrize(
    "array, affine, match",
    [
        (np.zeros((3, 3)), np.eye(4), "3-D"),
        (np.zeros((3, 3, 3, 2)), np.eye(4), "3-D"),
        (np.zeros((3, 3, 3)), np.eye(3), "4×4"),
        (np.zeros((3, 3, 3)), np.diag([1.0, 1.0, 0.0, 1.0]), "zero-length"),
        (np.zeros((3, 3, 3)), np.full((4, 4), np.nan), "NaN"),
        (np.zeros((3, 3, 3)), np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1.0]]), "last row"),
        (np.zeros((3, 3, 3)), np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "singular"),
    ],
)
def test_invalid_volumes_are_refused(array, affine, match):
    with pytest.raises(GeometryError, match=match):
        Volume(array, affine)


def test_index_world_round_trip_on_oblique_grid():
    affine = phantom_grid((10, 12, 14), (0.7, 0.9, 2.0), "LPS", rotation_deg=23.0)
    vol = Volume(np.zeros((10, 12, 14)), affine)
    ijk = np.array([[0, 0, 0], [9, 11, 13], [3.5, 2.0, 7.25]])
    np.testing.assert_allclose(vol.world_to_index(vol.index_to_world(ijk)), ijk, atol=1e-9)
    assert vol.spacing == pytest.approx((0.7, 0.9, 2.0))


@pytest.mark.parametrize("code", ["RAS", "LPS", "PSL", "ILA"])
def test_reorient_is_exact_and_reversible(code):
    rng = np.random.default_rng(0)
    affine = phantom_grid((5, 6, 7), (0.7, 0.9, 2.0), "LPS")
    vol = Volume(rng.integers(0, 100, (5, 6, 7)), affine)
    turned = reorient(vol, code)
    assert turned.orientation == code
    # every voxel keeps its world position
    for ijk in ([0, 0, 0], [4, 5, 6], [1, 3, 2]):
        world = vol.index_to_world(np.array(ijk))
        new_ijk = np.round(turned.world_to_index(world)).astype(int)
        assert turned.array[tuple(new_ijk)] == vol.array[tuple(ijk)]
    back = undo_reorient(turned.array, vol, code)
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.affine is vol.affine or np.array_equal(back.affine, vol.affine)


@pytest.mark.parametrize("code", ["RAS", "LPS", "PSL"])
def test_reorient_keeping_the_memory_order(code):
    """keep_layout: the same voxels and affine, a Fortran-order input copied without transposing."""
    affine = phantom_grid((5, 6, 7), (0.7, 0.9, 2.0), "LPS")
    vol = Volume(np.asfortranarray(np.random.default_rng(1).integers(0, 100, (5, 6, 7))), affine)
    plain, kept = reorient(vol, code), reorient(vol, code, keep_layout=True)
    np.testing.assert_array_equal(kept.array, plain.array)
    np.testing.assert_array_equal(kept.affine, plain.affine)
    assert plain.array.flags.c_contiguous and not kept.array.flags.c_contiguous
    assert not np.shares_memory(kept.array, vol.array)
    if code in ("RAS", "LPS"):  # axes not permuted: the copy keeps Fortran order
        assert kept.array.flags.f_contiguous


def test_orientation_code_of_nearly_aligned_grid():
    affine = phantom_grid((4, 4, 4), (1, 1, 1), "RAS", rotation_deg=30.0)
    assert orientation_code(affine) == "RAS"


def test_shear_of_tilted_grid():
    affine = np.eye(4)
    affine[1, 2] = np.tan(np.radians(15.0))  # k axis tilted 15° towards anterior
    vol = Volume(np.zeros((3, 3, 3)), affine)
    assert vol.shear_deg == pytest.approx(15.0, abs=1e-6)
    assert vol.voxel_volume_mm3 == pytest.approx(1.0)


def test_with_array_keeps_grid_and_refuses_other_shapes():
    vol = Volume(np.zeros((3, 4, 5)), _lps_affine())
    other = vol.with_array(np.ones((3, 4, 5), np.uint8))
    assert other.same_grid(vol) and np.array_equal(other.affine, vol.affine)
    with pytest.raises(GeometryError, match="does not fit"):
        vol.with_array(np.ones((4, 4, 5)))
