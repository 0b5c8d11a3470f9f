"""TotalSegmentator's three-slab split of a large image along its last (RAS: S) axis.

TotalSegmentator 2.18 (``nnunet.py``: ``nnUNet_predict_image``) splits the image, already reoriented
to RAS and resampled to the task spacing, into three overlapping slabs along axis 2 when it runs a
multi-part task (``multimodel``: total, total_v3, total_mr, ...), the image has more than
``512·512·900`` voxels and more than 200 slices. With ``third = n // 3`` and ``margin = 20`` the slabs
are ``[0, third+margin)``, ``[third+1−margin, 2·third+margin)`` and ``[2·third+1−margin, n)``; each is
predicted on its own (nnU-Net crops, normalises and slides its windows per slab) and the labels are
stitched back from ``[0, third)`` of the first, ``[third, 2·third)`` of the second and
``[2·third, n)`` of the third. The catalogue declares the split (``backend_options.triple_split``)
for the tasks TotalSegmentator splits; this module does exactly that on volseg's (i, j, k) arrays.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from volseg.segmenters.backend_options import TripleSplit

log = logging.getLogger(__name__)


def split_applies(shape: tuple[int, ...], split: TripleSplit | None) -> bool:
    """TotalSegmentator's condition: more than ``min_voxels`` voxels and more than ``min_slices`` slices."""
    if split is None or len(shape) < 3:
        return False
    return int(np.prod(shape, dtype=np.int64)) > split.min_voxels and int(shape[2]) > split.min_slices


def slab_bounds(n: int, margin: int) -> list[tuple[int, int]]:
    """The three slabs ``[start, stop)`` along axis 2 of an image with ``n`` slices."""
    third = n // 3
    return [(0, third + margin), (third + 1 - margin, 2 * third + margin), (2 * third + 1 - margin, n)]


def stitch_bounds(n: int, margin: int) -> list[tuple[slice, slice]]:
    """For each slab: (where its rows go in the image, which of its rows are kept)."""
    third = n // 3
    return [(slice(0, third), slice(0, -margin)),
            (slice(third, 2 * third), slice(margin - 1, -margin)),
            (slice(2 * third, n), slice(margin - 1, None))]


def predict_in_slabs(predict: Callable[[np.ndarray], np.ndarray], array: np.ndarray, margin: int) -> np.ndarray:
    """Labels of ``array`` predicted slab by slab (``predict``: an array to its labels, same shape)
    and stitched as TotalSegmentator stitches them."""
    n = array.shape[2]
    pieces = [(predict(array[:, :, start:stop]), dest, keep)
              for (start, stop), (dest, keep) in zip(slab_bounds(n, margin), stitch_bounds(n, margin))]
    out = np.zeros(array.shape[:3], dtype=pieces[0][0].dtype)
    for labels, dest, keep in pieces:
        out[:, :, dest] = labels[:, :, keep]
    return out
