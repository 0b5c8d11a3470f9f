"""The :class:`Volume`: a 3-D voxel array and the affine that places it in the patient.

Conventions (one set, used everywhere in volseg):

* ``array[i, j, k]`` is indexed like NIfTI: ``i`` is the fastest-varying axis on disk. For DICOM,
  ``i`` runs along a row (columns), ``j`` down the rows, ``k`` through the sorted slices.
* ``affine`` maps homogeneous voxel indices ``(i, j, k, 1)`` to **RAS+ millimetres**: +x points to
  the patient's Right, +y Anterior, +z Superior (the NIfTI / nibabel convention). LPS (DICOM / ITK)
  is converted in ``io/`` and nowhere else.
* Voxel centres lie at integer indices.

A Volume is valid once built and immutable: the array is made read-only and the affine is checked
(finite, invertible, last row ``0 0 0 1``). Derived geometry (spacing, direction, orientation code,
voxel volume) is computed from the affine, never stored separately, so it cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volseg.errors import GeometryError

_AXIS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))  # (negative, positive) end of each RAS axis


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image or label map on a grid placed in patient RAS millimetres by ``affine``."""

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise GeometryError(
                f"expected a 3-D volume, got {array.ndim}-D data of shape {tuple(array.shape)}"
            )
        if min(array.shape) < 1:
            raise GeometryError(f"volume has an empty axis: shape {tuple(array.shape)}")
        affine = np.array(self.affine, dtype=np.float64)
        _check_affine(affine)
        if array.flags.writeable:
            array = array.view()
            array.flags.writeable = False
        affine.flags.writeable = False
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "meta", dict(self.meta))

    # ---- geometry ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Distance in mm between neighbouring voxel centres along i, j, k."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore

    @property
    def direction(self) -> np.ndarray:
        """3×3 matrix whose columns are the unit RAS directions of the i, j, k axes."""
        return self.affine[:3, :3] / np.asarray(self.spacing)

    @property
    def origin(self) -> tuple[float, float, float]:
        """RAS position in mm of the centre of voxel (0, 0, 0)."""
        return tuple(float(v) for v in self.affine[:3, 3])  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        """Three-letter code of the patient direction each array axis points to, e.g. 'LPS'."""
        return orientation_code(self.affine)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel, |det(affine[:3, :3])|, correct for oblique and sheared grids."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def shear_deg(self) -> float:
        """Largest deviation from 90° between the grid axes (non-zero for gantry-tilted CT)."""
        d = self.direction
        worst = 0.0
        for a, b in ((0, 1), (0, 2), (1, 2)):
            cos = float(np.clip(abs(d[:, a] @ d[:, b]), 0.0, 1.0))
            worst = max(worst, 90.0 - float(np.degrees(np.arccos(cos))))
        return worst

    def index_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """RAS mm of voxel indices given as an (N, 3) array (or one (3,) index)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Continuous voxel indices of RAS mm points given as (N, 3) (or one (3,) point)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        inv = np.linalg.inv(self.affine)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    # ---- derived volumes -----------------------------------------------------------------
    def with_array(self, array: np.ndarray, **meta: Any) -> "Volume":
        """A volume with a new array on exactly this grid (same shape, same affine)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise GeometryError(
                f"array of shape {array.shape} does not fit a grid of shape {self.shape}"
            )
        return Volume(array, self.affine, {**self.meta, **meta})

    def same_grid(self, other: "Volume", *, atol_mm: float = 1e-3) -> bool:
        """True when ``other`` has the same shape and (within ``atol_mm``) the same affine."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, rtol=0.0, atol=atol_mm)
        )

    def __repr__(self) -> str:
        sp = "×".join(f"{s:.3g}" for s in self.spacing)
        return f"Volume(shape={self.shape}, spacing_mm={sp}, orientation={self.orientation}, dtype={self.dtype})"


def _check_affine(affine: np.ndarray) -> None:
    if affine.shape != (4, 4):
        raise GeometryError(f"affine must be 4×4, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)):
        raise GeometryError("affine contains NaN or infinite values")
    if not np.allclose(affine[3], [0.0, 0.0, 0.0, 1.0]):
        raise GeometryError(f"affine's last row must be 0 0 0 1, got {affine[3].tolist()}")
    if np.any(np.linalg.norm(affine[:3, :3], axis=0) <= 0):
        raise GeometryError("affine has a zero-length axis (voxel spacing 0)")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise GeometryError("affine is singular: the grid axes are not independent")


def orientation_code(affine: np.ndarray) -> str:
    """'RAS'-style code: for each array axis, the patient direction it mostly points to."""
    m = np.asarray(affine, dtype=np.float64)[:3, :3]
    m = m / np.linalg.norm(m, axis=0)
    used: set[int] = set()
    letters = []
    # greedy assignment, strongest axis first, so each world axis is used once
    order = np.argsort(-np.abs(m).max(axis=0))
    chosen: dict[int, str] = {}
    for col in order:
        for row in np.argsort(-np.abs(m[:, col])):
            if row not in used:
                used.add(int(row))
                chosen[int(col)] = _AXIS_LABELS[row][1 if m[row, col] > 0 else 0]
                break
    for col in range(3):
        letters.append(chosen[col])
    return "".join(letters)


# ---- exact reorientation (permutations and flips only, no interpolation) -----------------
def orientation_transform(volume: Volume, target: str = "RAS") -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Axis permutation and flips that take ``volume``'s array to the ``target`` orientation.

    Returns ``(perm, flips)`` such that ``np.transpose(a, perm)`` followed by flipping the axes
    where ``flips`` is True gives an array whose axes point along ``target``.
    """
    target = target.upper()
    pos = {"R": (0, True), "L": (0, False), "A": (1, True), "P": (1, False), "S": (2, True), "I": (2, False)}
    if len(target) != 3 or any(c not in pos for c in target) or {pos[c][0] for c in target} != {0, 1, 2}:
        raise ValueError(f"not an orientation code: {target!r}")
    current = volume.orientation
    perm, flips = [], []
    for c in target:
        world_axis, positive = pos[c]
        src = next(i for i, cc in enumerate(current) if pos[cc][0] == world_axis)
        perm.append(src)
        flips.append(pos[current[src]][1] != positive)
    return tuple(perm), tuple(flips)  # type: ignore[return-value]


def reorient(volume: Volume, target: str = "RAS", *, keep_layout: bool = False) -> Volume:
    """The same image with its array axes permuted/flipped to ``target``; geometry unchanged.

    The array is a new C-contiguous one; with ``keep_layout``, a new one in the input's own memory
    order (a Fortran-order NIfTI array stays Fortran-order: a plain copy instead of a transposing one,
    for a caller that only reads it, such as a resampling)."""
    perm, flips = orientation_transform(volume, target)
    array = np.transpose(volume.array, perm)
    affine = volume.affine.copy()
    new = np.eye(4)
    new[:3, :3] = affine[:3, :3][:, list(perm)]
    new[:3, 3] = affine[:3, 3]
    shape = array.shape
    for ax, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis=ax)
            new[:3, 3] = new[:3, 3] + new[:3, ax] * (shape[ax] - 1)
            new[:3, ax] = -new[:3, ax]
    return Volume(array.copy(order="K") if keep_layout else np.ascontiguousarray(array), new, volume.meta)


def undo_reorient(array: np.ndarray, original: Volume, target: str = "RAS") -> Volume:
    """Map an array computed on ``reorient(original, target)`` back onto ``original``'s grid exactly."""
    perm, flips = orientation_transform(original, target)
    for ax, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis=ax)
    inverse = np.argsort(perm)
    return original.with_array(np.ascontiguousarray(np.transpose(array, inverse)))
