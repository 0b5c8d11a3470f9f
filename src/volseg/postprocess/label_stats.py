"""Statistics of every label of a label map from a few passes over it, never one mask per class.

* :func:`label_boxes`: voxel counts, bounding boxes and index sums (centroids) of every label.
* :func:`grouped_values`: each label's image values in C order, from one stable sort per slab:
  exactly ``image[labels == l]``, same values in the same order, so statistics are bit-identical.
* :func:`component_sizes_by_label`: connected components of all labels at once (cc3d's multilabel
  labelling connects neighbours of the same value only, i.e. the components of each class mask).
* :func:`surface_mask`: voxels with a 6-neighbour of another label or outside the array (what a
  per-class ``mask & ~binary_erosion(mask)`` gives, for all classes at once).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class LabelBoxes:
    """Per label value: voxel count, tight bounding box and the exact sum of its voxel indices."""

    counts: np.ndarray  # int64, one per value 0..max
    boxes: list  # tuple of slices (end exclusive) per value, as find_objects gives them
    index_sums: np.ndarray  # int64 (n, 3): sum of the voxels' indices along each axis

    def box(self, label: int) -> tuple[slice, slice, slice] | None:
        if not 0 <= label < self.counts.size or self.counts[label] == 0:
            return None
        return tuple(slice(int(s.start), int(s.stop)) for s in self.boxes[label])  # type: ignore[return-value]


def label_boxes(labels: np.ndarray) -> LabelBoxes:
    """Counts, boxes and index sums of every value in one pass (cc3d's statistics). cc3d gives
    centroids as sum / count in float64; the integer sums are recovered exactly (both below 2**53)."""
    import cc3d

    stats = cc3d.statistics(labels)
    counts = np.asarray(stats["voxel_counts"], dtype=np.int64)
    centroids = np.nan_to_num(np.asarray(stats["centroids"], dtype=np.float64))
    sums = np.rint(centroids * counts[:, None]).astype(np.int64)
    return LabelBoxes(counts, list(stats["bounding_boxes"]), sums)


#: voxels per slab of the passes over axis 0 (bounds their temporary arrays)
SLAB_VOXELS = 1 << 21


def c_order(array: np.ndarray) -> np.ndarray:
    """``array`` C-contiguous; a transposed (NIfTI, Fortran-ordered) one is copied in blocks,
    several times faster than numpy's element-wise transposing copy."""
    if array.flags.c_contiguous:
        return array
    if array.flags.f_contiguous and array.ndim == 3 and array.size <= SLAB_VOXELS // 4:
        return np.ascontiguousarray(array)
    out = np.empty(array.shape, dtype=array.dtype)
    if array.ndim != 3:
        out[...] = array
        return out
    step0, step1, step2 = 64, 64, 16
    for k in range(0, array.shape[2], step2):
        for j in range(0, array.shape[1], step1):
            for i in range(0, array.shape[0], step0):
                block = (slice(i, i + step0), slice(j, j + step1), slice(k, k + step2))
                out[block] = array[block]
    return out


def _slabs(n0: int, plane: int):
    step = max(1, SLAB_VOXELS // max(plane, 1))
    for i in range(0, n0, step):
        yield i, min(i + step, n0)


def grouped_values(labels: np.ndarray, image: np.ndarray, n_labels: int) -> list[list[np.ndarray]]:
    """Each label's ``image`` values in C order, as chunks: ``np.concatenate(chunks[l])`` is
    exactly ``image[labels == l]`` (same values, same order, so sums over it are bit-identical).
    One pass over slabs of axis 0; either array may be Fortran-ordered."""
    chunks: list[list[np.ndarray]] = [[] for _ in range(n_labels)]
    for i0, i1 in _slabs(labels.shape[0], int(np.prod(labels.shape[1:]))):
        slab = c_order(labels[i0:i1]).ravel()
        counts = np.bincount(slab, minlength=n_labels)
        _group_values(slab, c_order(image[i0:i1]).ravel(), counts, chunks)
    return chunks


def _group_values(labels: np.ndarray, values: np.ndarray, counts: np.ndarray,
                  chunks: list[list[np.ndarray]]) -> None:
    """Append each label's values of this slab (C order kept: a stable sort by label). A slab that
    is mostly background sorts only its labelled voxels (same values, same order per label)."""
    if 2 * int(counts[0]) > labels.size:
        keep = np.flatnonzero(labels)
        labels, values = labels[keep], values[keep]
        counts = counts.copy()
        counts[0] = 0
    grouped = values[np.argsort(labels, kind="stable")]
    stops = np.cumsum(counts)
    for lab in np.nonzero(counts)[0]:
        if lab:
            chunks[lab].append(grouped[stops[lab] - counts[lab]:stops[lab]])


def component_sizes_by_label(labels: np.ndarray, n_labels: int, *,
                             connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """(number of connected components, voxels of the largest) per label value, all at once:
    cc3d's multilabel labelling joins neighbours of the same value only, i.e. it finds the
    components of every class mask in one pass."""
    from volseg.postprocess.cc_labels import label_components_n

    if labels.flags.f_contiguous and not labels.flags.c_contiguous:
        labels = labels.T  # the same components, read in memory order
    comps, n = label_components_n(labels, connectivity=connectivity)
    sizes = np.zeros(n + 1, dtype=np.int64)
    owner = np.zeros(n + 1, dtype=np.int64)
    flat_comps, flat_labels = comps.reshape(-1), labels.reshape(-1)
    for start in range(0, flat_comps.size, SLAB_VOXELS):
        part = flat_comps[start:start + SLAB_VOXELS]
        sizes += np.bincount(part, minlength=n + 1)
        runs = _run_starts(part)  # a component's label is that of any of its voxels: one per run
        owner[part[runs]] = flat_labels[start:start + SLAB_VOXELS][runs]
    owner, sizes = owner[1:], sizes[1:]
    n_components = np.bincount(owner, minlength=n_labels)
    largest = np.zeros(n_labels, dtype=np.int64)
    np.maximum.at(largest, owner, sizes)
    return n_components, largest


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Indices where a run of equal consecutive values starts (0 first)."""
    starts = np.flatnonzero(values[1:] != values[:-1])
    starts += 1
    return np.concatenate([np.zeros(1 if values.size else 0, dtype=starts.dtype), starts])


def surface_extremes(labels: np.ndarray, n_labels: int, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per label, the min and max patient coordinates of its surface voxels' centres (on an
    oblique grid the extremes of a linear map over a voxel set lie on its surface).

    Each label's surface voxels go through the affine as one array in C order, as a per-class
    ``np.argwhere(surface) @ A.T + t`` does, so the coordinates are the same to the last bit."""
    lo = np.full((n_labels, 3), np.nan)
    hi = np.full((n_labels, 3), np.nan)
    surface = surface_mask(labels)
    chunks: list[list[np.ndarray]] = [[] for _ in range(n_labels)]
    plane = labels.shape[1] * labels.shape[2]
    for i0, i1 in _slabs(labels.shape[0], plane):
        flat = np.flatnonzero(surface[i0:i1])
        labs = labels[i0:i1].ravel()[flat]
        flat = (flat + i0 * plane)[np.argsort(labs, kind="stable")]
        counts = np.bincount(labs, minlength=n_labels)
        stops = np.cumsum(counts)
        for value in np.nonzero(counts)[0]:
            chunks[value].append(flat[stops[value] - counts[value]:stops[value]])
    del surface
    for lab in range(1, n_labels):
        if not chunks[lab]:
            continue
        flat = np.concatenate(chunks[lab])
        chunks[lab] = []
        world = np.stack(np.unravel_index(flat, labels.shape), axis=1) @ affine[:3, :3].T + affine[:3, 3]
        lo[lab], hi[lab] = world.min(axis=0), world.max(axis=0)
    return lo, hi


def surface_mask(labels: np.ndarray) -> np.ndarray:
    """Foreground voxels with a 6-neighbour of another label or beyond the array's edge."""
    interior = labels != 0
    for axis in range(labels.ndim):
        n = labels.shape[axis]
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        same = labels[tuple(lo)] == labels[tuple(hi)]
        interior[tuple(lo)] &= same
        interior[tuple(hi)] &= same
        edge = [slice(None)] * labels.ndim
        for index in (0, n - 1):
            edge[axis] = slice(index, index + 1)
            interior[tuple(edge)] = False
    return (labels != 0) & ~interior
