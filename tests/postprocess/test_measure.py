import numpy as np
import pytest

from volseg.phantom import phantom_grid
from volseg.postprocess.measure import measure_structures, outside_fov_mask, voxel_volume_mm3


def _world(shape, affine):
    idx = np.indices(shape).reshape(3, -1).astype(np.float64)
    return (affine[:3, :3] @ idx + affine[:3, 3:4]).reshape(3, *shape)


@pytest.mark.parametrize("orientation, rotation", [("LPS", 0.0), ("PIR", 0.0), ("LPS", 31.0)])
def test_sphere_volume_within_one_percent_on_anisotropic_non_ras_grid(orientation, rotation):
    spacing = (0.7, 0.7, 1.5)
    shape = (90, 90, 44)
    if orientation == "PIR":
        shape, spacing = (90, 44, 90), (0.7, 1.5, 0.7)
    affine = phantom_grid(shape, spacing, orientation, rotation)
    x, y, z = _world(shape, affine)
    centre = np.array([3.3, -2.1, 1.7])
    r = 20.0
    labels = (((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) <= r * r).astype(np.uint8)
    (m,) = measure_structures(labels, affine, {1: "sphere"})
    true_ml = 4.0 / 3.0 * np.pi * r**3 / 1000.0
    assert m.volume_ml == pytest.approx(true_ml, rel=0.01)
    assert m.voxel_count * voxel_volume_mm3(affine) / 1000.0 == pytest.approx(m.volume_ml)
    np.testing.assert_allclose(m.centroid_ras_mm, centre, atol=0.2)
    # the world bounding box of voxel centres lies within one voxel of the analytic one
    tol = max(spacing) + 1e-6
    np.testing.assert_allclose(m.bbox_min_ras_mm, centre - r, atol=tol)
    np.testing.assert_allclose(m.bbox_max_ras_mm, centre + r, atol=tol)
    assert m.n_components == 1 and not m.touches_fov and not m.empty


def test_components_fov_intensity_and_empty_labels():
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    labels = np.zeros((20, 20, 10), np.uint8)
    labels[2:5, 2:5, 2:4] = 1          # 18 voxels
    labels[10:12, 10:12, 2:4] = 1      # 8 voxels, second component
    labels[0:3, 8:12, 4:6] = 2         # touches the i = 0 face
    labels[15, 15, 5] = 7              # a label missing from the names
    image = np.zeros(labels.shape, np.int16)
    image[labels == 1] = 40
    image[10:12, 10:12, 2:4] = 60
    rows = {m.name: m for m in measure_structures(labels, affine, {1: "a", 2: "b", 3: "c"}, image=image)}
    a = rows["a"]
    assert a.voxel_count == 26 and a.volume_ml == pytest.approx(26 * 2 / 1000)
    assert a.n_components == 2 and a.largest_component_ml == pytest.approx(18 * 2 / 1000)
    assert a.intensity.min_hu == 40 and a.intensity.max_hu == 60
    assert a.intensity.mean_hu == pytest.approx((18 * 40 + 8 * 60) / 26)
    assert not a.touches_fov
    assert rows["b"].touches_fov
    assert rows["c"].empty and rows["c"].volume_ml == 0 and rows["c"].centroid_ras_mm is None
    assert rows["label_7"].voxel_count == 1


def test_structure_touching_the_padded_reconstruction_circle_is_cut_by_fov():
    image = np.full((30, 30, 6), -1000, np.int16)
    yy, xx = np.mgrid[:30, :30]
    outside = (xx - 14.5) ** 2 + (yy - 14.5) ** 2 > 13**2
    image[outside] = -2048
    labels = np.zeros(image.shape, np.uint8)
    labels[1:4, 12:16, 2:4] = 1          # reaches the padded corner region
    labels[12:16, 12:16, 2:4] = 2        # well inside the circle
    fov = outside_fov_mask(image)
    rows = measure_structures(labels, np.eye(4), {1: "edge", 2: "centre"}, outside_fov=fov)
    assert [m.touches_fov for m in rows] == [True, False]
    assert outside_fov_mask(np.zeros((3, 3, 3), np.int16)) is None


def test_connectivity_is_explicit():
    labels = np.zeros((5, 5, 5), np.uint8)
    labels[1, 1, 1] = labels[2, 2, 2] = 1  # touch at a corner only
    (m26,) = measure_structures(labels, np.eye(4), {1: "x"}, connectivity=26)
    (m6,) = measure_structures(labels, np.eye(4), {1: "x"}, connectivity=6)
    assert (m26.n_components, m6.n_components) == (1, 2)
