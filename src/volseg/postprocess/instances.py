"""Split lesion-type classes of a label map into instances (connected components).

Connectivity is explicit (6, 18 or 26 neighbours) and the minimum size is in mm³, never voxels.
Instances are numbered per class from 1, largest first (ties: the one whose first voxel comes
first in C order), so ``liver_tumor-1`` is always the largest liver tumour.

Which classes are lesion-type: a model's catalogue entry may declare them; otherwise
:func:`default_instance_classes` picks the classes whose names say tumour/tumor, lesion, nodule,
metastasis, cyst or lymph node.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

_LESION_WORDS = re.compile(
    r"(tumou?r|lesion|nodul|metasta|cyst|lymph[_\- ]?node|lymphnode|^ln$|^ln_|_ln$)", re.IGNORECASE
)
_NODE_WORDS = re.compile(r"(lymph[_\- ]?node|lymphnode|^ln$|^ln_|_ln$)", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class Instance:
    """One connected component of one class, cropped to its bounding box."""

    label: int
    class_name: str
    number: int  # 1 = largest of its class
    box: tuple[slice, slice, slice]  # where ``mask`` lies in the full grid
    mask: np.ndarray  # bool, shape of ``box``

    @property
    def instance_id(self) -> str:
        return f"{self.class_name}-{self.number}"

    @property
    def offset(self) -> tuple[int, int, int]:
        return tuple(int(s.start) for s in self.box)  # type: ignore[return-value]

    @property
    def voxel_count(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def kind(self) -> str:
        return instance_kind(self.class_name)


def is_lesion_class(name: str) -> bool:
    """True when a class name says tumour/tumor, lesion, nodule, metastasis, cyst or lymph node."""
    return bool(_LESION_WORDS.search(name))


def default_instance_classes(names: Iterable[str]) -> list[str]:
    """The lesion-type classes among ``names`` by the naming rule of :func:`is_lesion_class`."""
    return [n for n in names if is_lesion_class(n)]


def instance_kind(class_name: str) -> str:
    """'lymph_node' for lymph-node classes, else 'lesion'."""
    return "lymph_node" if _NODE_WORDS.search(class_name) else "lesion"


def split_instances(labels: np.ndarray, label: int, class_name: str, *, voxel_volume_mm3: float,
                    connectivity: int = 26, min_volume_mm3: float = 0.0) -> list[Instance]:
    """Connected components of ``labels == label`` with at least ``min_volume_mm3``, largest first."""
    return split_classes(labels, {label: class_name}, voxel_volume_mm3=voxel_volume_mm3,
                         connectivity=connectivity, min_volume_mm3=min_volume_mm3)


def split_classes(labels: np.ndarray, classes: Mapping[int, str], *, voxel_volume_mm3: float,
                  connectivity: int = 26, min_volume_mm3: float = 0.0) -> list[Instance]:
    """Instances of every class in ``classes`` (label → name), class by class in label order.

    One multilabel labelling of the classes' common bounding box finds every class's components at
    once (neighbours join only when they have the same label); the work runs in the array's memory
    order (a Fortran-ordered NIfTI array through its transpose). Ties are ordered by each
    component's first voxel in C order, which cropping does not change."""
    import cc3d

    from volseg.postprocess.cc_labels import label_components

    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    labels = np.asarray(labels)
    wanted = sorted(int(c) for c in classes)
    flip = labels.flags.f_contiguous and not labels.flags.c_contiguous
    work = labels.T if flip else labels  # C-contiguous: every pass below reads memory in order
    chosen = _member(work, wanted)
    outer = _tight_box(chosen)
    if outer is None:
        return []
    crop = np.where(chosen[outer], work[outer], 0)
    comps = label_components(crop, connectivity=connectivity)
    if flip:  # back to the array's own axes (views)
        crop, comps, outer = crop.T, comps.T, outer[::-1]
    stats = cc3d.statistics(comps)
    sizes, boxes = np.asarray(stats["voxel_counts"], dtype=np.int64), stats["bounding_boxes"]
    min_voxels = min_volume_mm3 / voxel_volume_mm3 if voxel_volume_mm3 > 0 else 0.0
    found: dict[int, list[tuple[int, int, int]]] = {label: [] for label in wanted}
    for comp in np.flatnonzero(sizes >= min_voxels).tolist():
        if comp == 0:
            continue
        first, owner = _first_voxel_of(comps, crop, comp, boxes[comp])
        if owner in found:
            found[owner].append((-int(sizes[comp]), first, comp))
    out: list[Instance] = []
    for label in wanted:
        for number, (_, _, c) in enumerate(sorted(found[label]), start=1):
            box = boxes[c]
            full = tuple(slice(o.start + b.start, o.start + b.stop) for o, b in zip(outer, box))
            out.append(Instance(label, classes[label], number, full, comps[box] == c))  # type: ignore[arg-type]
    return out


def _member(array: np.ndarray, values: list[int]) -> np.ndarray:
    """``np.isin(array, values)`` for small non-negative labels by a lookup table (several times faster)."""
    top = int(array.max()) if array.size else 0
    if not values or array.dtype.kind not in "ui" or top > 1 << 20 or (array.size and int(array.min()) < 0):
        return np.isin(array, values)
    table = np.zeros(top + 1, dtype=bool)
    table[[v for v in values if 0 <= v <= top]] = True
    return table[array]


def _first_voxel_of(comps: np.ndarray, crop: np.ndarray, c: int, box) -> tuple[int, int]:
    """(C-order index in ``comps`` of component ``c``'s first voxel, its label in ``crop``): the first
    voxel lies on the box's first plane along axis 0."""
    i = box[0].start
    plane = comps[i, box[1], box[2]] == c
    row, col = np.unravel_index(int(np.argmax(plane)), plane.shape)
    j, k = int(row) + box[1].start, int(col) + box[2].start
    return (i * comps.shape[1] + j) * comps.shape[2] + k, int(crop[i, j, k])


def _tight_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """The bounding box of ``mask`` (None when empty), from one projection per axis: what
    ``find_objects`` gives, without its slow walk over a transposed full-size array."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)
