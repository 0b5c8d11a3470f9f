"""grouped_values' background-skipping path and component_sizes_by_label's run-based owners give
exactly what one mask per label gives."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.postprocess import label_stats
from volseg.postprocess.label_stats import _run_starts, component_sizes_by_label, grouped_values


def _map(background: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 7, size=(23, 19, 17), dtype=np.uint8)
    labels[rng.random(labels.shape) < background] = 0
    return np.asfortranarray(labels)


@pytest.mark.parametrize("background", [0.0, 0.3, 0.8, 1.0])
def test_grouped_values_exact_whatever_the_background(monkeypatch, background):
    monkeypatch.setattr(label_stats, "SLAB_VOXELS", 19 * 17 * 4)  # several slabs
    labels = _map(background)
    image = np.asfortranarray(np.random.default_rng(4).normal(size=labels.shape).astype(np.float32))
    chunks = grouped_values(labels, image, 7)
    for lab in range(1, 7):
        got = np.concatenate(chunks[lab]) if chunks[lab] else np.zeros(0, np.float32)
        np.testing.assert_array_equal(got, image[labels == lab])


def test_run_starts():
    np.testing.assert_array_equal(_run_starts(np.array([5, 5, 2, 2, 2, 5, 0])), [0, 2, 5, 6])
    assert _run_starts(np.zeros(0, np.int64)).size == 0


@pytest.mark.parametrize("background", [0.2, 0.9])
def test_component_sizes_match_one_mask_per_label(monkeypatch, background):
    import cc3d

    monkeypatch.setattr(label_stats, "SLAB_VOXELS", 101)  # slabs cut through runs
    labels = _map(background, seed=5)
    counts, largest = component_sizes_by_label(labels, 7, connectivity=6)
    for lab in range(1, 7):
        comps, n = cc3d.connected_components((labels == lab).astype(np.uint8), connectivity=6, return_N=True)
        sizes = np.bincount(comps.ravel())[1:]
        assert counts[lab] == n and largest[lab] == (sizes.max() if n else 0)
def test_first_voxel_of_a_component_is_its_first_in_c_order():
    import cc3d

    from volseg.postprocess.instances import _first_voxel_of

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, size=(9, 8, 7)).astype(np.uint8)
    comps = cc3d.connected_components(labels, connectivity=26)
    boxes = cc3d.statistics(comps)["bounding_boxes"]
    flat = comps.ravel()
    for c in range(1, int(comps.max()) + 1):
        first, owner = _first_voxel_of(comps, labels, c, boxes[c])
        assert first == np.flatnonzero(flat == c)[0] and owner == labels.ravel()[first]
