"""measure_structures measures all structures in one pass: the numbers must be those of measuring
each class mask on its own (the per-class reference below), to the last bit."""
import numpy as np
import pytest
from scipy import ndimage

from volseg.phantom import phantom_grid
from volseg.postprocess.label_stats import c_order, component_sizes_by_label
from volseg.postprocess.measure import intensity_stats, measure_structures


def _reference(labels, affine, lab, image, connectivity):
    """One class on its own, the per-class way: mask, cc3d, erosion for the surface, argwhere."""
    import cc3d

    mask = labels == lab
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    crop = mask[box]
    offset = np.array([s.start for s in box])
    count = int(crop.sum())
    comps = cc3d.connected_components(crop.astype(np.uint8), connectivity=connectivity)
    sizes = np.bincount(comps.ravel())[1:]
    means = [float(np.arange(crop.shape[a]) @ crop.sum(axis=tuple(b for b in range(3) if b != a),
                                                       dtype=np.int64)) / count for a in range(3)]
    centroid = affine[:3, :3] @ (offset + np.array(means)) + affine[:3, 3]
    surface = crop & ~ndimage.binary_erosion(crop, border_value=0)
    world = (np.argwhere(surface) + offset) @ affine[:3, :3].T + affine[:3, 3]
    stats = intensity_stats(image[box][crop]) if image is not None else None
    return (count, len(sizes), int(sizes.max()), tuple(centroid), tuple(world.min(axis=0)),
            tuple(world.max(axis=0)), stats)


def _fragmented(rng, shape, n_labels):
    blocks = rng.integers(0, n_labels + 1, tuple(-(-s // 2) for s in shape))
    labels = np.kron(blocks, np.ones((2, 2, 2), dtype=np.int64))[: shape[0], : shape[1], : shape[2]]
    salt = rng.random(shape) < 0.05
    labels[salt] = rng.integers(0, n_labels + 1, int(salt.sum()))
    return labels


@pytest.mark.parametrize("orientation, rotation, fortran, scale", [
    ("RAS", 0.0, False, 1), ("LPS", 31.0, True, 1), ("PIR", 0.0, True, 20000), ("LPS", 0.0, False, 300)])
def test_one_pass_equals_measuring_each_class_on_its_own(orientation, rotation, fortran, scale):
    rng = np.random.default_rng(7)
    shape = (23, 17, 14)
    labels = (_fragmented(rng, shape, 6) * scale).astype(np.int32)
    image = rng.normal(0.0, 300.0, shape).astype(np.float32)
    image[rng.random(shape) < 0.02] = np.nan
    if fortran:
        labels, image = np.asfortranarray(labels), np.asfortranarray(image)
    labels.setflags(write=False)  # a frozen Volume's array
    affine = phantom_grid(shape, (0.7, 0.9, 1.3), orientation, rotation)
    names = {lab * scale: f"c{lab}" for lab in range(1, 8)}  # c7 is absent
    for connectivity in (6, 26):
        rows = {m.label: m for m in measure_structures(labels, affine, names, image=image,
                                                        connectivity=connectivity)}
        assert rows[7 * scale].empty
        for lab in range(1, 7):
            m = rows[lab * scale]
            got = (m.voxel_count, m.n_components, round(m.largest_component_ml * 1000 / abs(np.linalg.det(affine[:3, :3]))),
                   m.centroid_ras_mm, m.bbox_min_ras_mm, m.bbox_max_ras_mm, m.intensity)
            assert got == _reference(labels, affine, lab * scale, image, connectivity)


def test_components_of_every_label_at_once():
    labels = np.zeros((6, 6, 6), np.uint8)
    labels[0, 0, 0] = labels[2, 2, 2] = 1          # two pieces of 1 (not 26-adjacent)
    labels[1, 1, 1] = 2                            # touches both diagonally: joins nothing of 1
    labels[4:6, 4:6, 4:6] = 3
    labels[5, 5, 3] = 3
    n, largest = component_sizes_by_label(labels, 4, connectivity=26)
    assert n.tolist() == [0, 2, 1, 1] and largest.tolist() == [0, 1, 1, 9]
    n6, _ = component_sizes_by_label(labels, 4, connectivity=6)
    assert n6.tolist() == [0, 2, 1, 1]


def test_c_order_copies_a_fortran_array_exactly():
    array = np.asfortranarray(np.arange(70 * 80 * 33, dtype=np.int32).reshape(70, 80, 33))
    copy = c_order(array)
    assert copy.flags.c_contiguous and np.array_equal(copy, array)
