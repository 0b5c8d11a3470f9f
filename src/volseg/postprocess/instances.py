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
from scipy import ndimage

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
    from volseg.postprocess.cc_labels import label_components

    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    labels = np.asarray(labels)
    mask = labels == label
    outer = _tight_box(mask)
    if outer is None:
        return []
    crop = mask[outer]
    comps = label_components(crop.astype(np.uint8), connectivity=connectivity)
    flat = comps.ravel()  # C order (one copy of a Fortran-ordered crop, shared by both uses)
    sizes = np.bincount(flat)
    first = _first_voxel(flat, len(sizes))
    min_voxels = min_volume_mm3 / voxel_volume_mm3 if voxel_volume_mm3 > 0 else 0.0
    keep = [c for c in range(1, len(sizes)) if sizes[c] > 0 and sizes[c] >= min_voxels]
    keep.sort(key=lambda c: (-int(sizes[c]), int(first[c])))
    comp_boxes = ndimage.find_objects(comps)
    out = []
    for number, c in enumerate(keep, start=1):
        box = comp_boxes[c - 1]
        full = tuple(slice(o.start + b.start, o.start + b.stop) for o, b in zip(outer, box))
        out.append(Instance(label, class_name, number, full, comps[box] == c))  # type: ignore[arg-type]
    return out


def split_classes(labels: np.ndarray, classes: Mapping[int, str], *, voxel_volume_mm3: float,
                  connectivity: int = 26, min_volume_mm3: float = 0.0) -> list[Instance]:
    """Instances of every class in ``classes`` (label → name), class by class in label order."""
    out: list[Instance] = []
    for label in sorted(classes):
        out.extend(split_instances(labels, label, classes[label], voxel_volume_mm3=voxel_volume_mm3,
                                   connectivity=connectivity, min_volume_mm3=min_volume_mm3))
    return out


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


def _first_voxel(flat: np.ndarray, n: int) -> np.ndarray:
    """C-order index of each component's first voxel in ``flat`` (the components in C order), for
    a deterministic tie order: a first voxel starts a run of equal values, so only run starts
    are looked at (the first occurrence of each value among them, by a stable sort)."""
    first = np.full(n, flat.size, dtype=np.int64)
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate([np.zeros(1 if flat.size else 0, dtype=starts.dtype), starts])
    starts = starts[flat[starts] != 0]
    values, where = np.unique(flat[starts], return_index=True)
    first[values] = starts[where]
    return first
