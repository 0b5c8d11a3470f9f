"""The typed cc3d front door: same labelling as cc3d, connectivity checked once."""
import numpy as np
import pytest

from volseg.postprocess.cc_labels import label_components, label_components_n


def _two_diagonal_voxels() -> np.ndarray:
    mask = np.zeros((3, 3, 3), dtype=np.uint8)
    mask[0, 0, 0] = mask[1, 1, 1] = 1  # corner neighbours: one piece at 26, two at 6 and 18
    return mask


@pytest.mark.parametrize(("connectivity", "expected"), [(6, 2), (18, 2), (26, 1)])
def test_label_components_n_counts_pieces_per_connectivity(connectivity, expected):
    labels, n = label_components_n(_two_diagonal_voxels(), connectivity=connectivity)
    assert n == expected and isinstance(n, int)
    assert int(labels.max()) == expected and labels[1, 0, 0] == 0


def test_label_components_labels_each_piece():
    labels = label_components(_two_diagonal_voxels(), connectivity=6)
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]


def test_unsupported_connectivity_is_refused():
    with pytest.raises(ValueError, match="connectivity must be one of 4, 6, 8, 18, 26, got 10"):
        label_components(_two_diagonal_voxels(), connectivity=10)
