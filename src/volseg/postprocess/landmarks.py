"""Thoracic landmarks for lymph-node station mapping, read from an organ segmentation.

Names follow TotalSegmentator v2 (``trachea``, ``aorta``, ``brachiocephalic_vein_left``,
``superior_vena_cava``, ``common_carotid_artery_left``, ``esophagus``, ``sternum``, lung lobes,
``pulmonary_vein``) with common synonyms; structures TotalSegmentator's ``total`` task lacks
(``pulmonary_artery``, ``azygos``, bronchi as ``lung_airways``/``airways``) are used when present.

Every level is a patient S coordinate (RAS z, mm) and is ``None`` when its structure is missing or
cut by the field of view at the side that defines the level: nothing is extrapolated.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from volseg.postprocess.morphology import axial_axis

SYNONYMS: dict[str, tuple[str, ...]] = {
    "trachea": ("trachea",),
    "bronchi": ("lung_airways", "airways", "airway", "bronchi", "bronchus", "airway_bronchi", "lung_trachea_bronchia",
                "trachea_and_bronchi"),
    "aorta": ("aorta", "thoracic_aorta"),
    "pulmonary_artery": ("pulmonary_artery", "pulmonary_trunk"),
    "azygos": ("azygos", "azygos_vein", "vena_azygos"),
    "bcv_left": ("brachiocephalic_vein_left", "left_brachiocephalic_vein", "innominate_vein_left"),
    "sternum": ("manubrium", "sternum"),
    "svc": ("superior_vena_cava",),
    "carotid_left": ("common_carotid_artery_left",),
    "esophagus": ("esophagus", "oesophagus"),
    "pulmonary_vein": ("pulmonary_vein", "pulmonary_veins"),
}
LUNG_NAME = re.compile(r"^lung_(left|right|(upper|middle|lower)_lobe_(left|right))$|^lungs?$", re.IGNORECASE)
MIN_AIRWAY_AREA_MM2 = 20.0  # a cross-section smaller than this is noise, not a bronchus
MIN_AORTA_AREA_MM2 = 100.0


@dataclass(frozen=True)
class Section:
    """Extent in RAS mm of a structure's cross-section at one level."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @property
    def x_centre(self) -> float:
        return 0.5 * (self.x_min + self.x_max)


@dataclass(frozen=True, eq=False)
class Landmarks:
    dz_mm: float  # half the spacing between axial levels
    points: dict[str, np.ndarray] = field(default_factory=dict)  # key -> (N, 3) RAS mm
    levels: dict[str, float | None] = field(default_factory=dict)
    lung_mask: np.ndarray | None = None
    affine: np.ndarray | None = None
    airway_branches: list = field(default_factory=list)  # airway_tree.Branch, when bronchi exist

    def has(self, key: str) -> bool:
        return key in self.points and len(self.points[key]) > 0

    def level(self, key: str) -> float | None:
        return self.levels.get(key)

    def section(self, key: str, z: float, *, clamp: bool = False, y_near: tuple[float, float] | None = None
                ) -> Section | None:
        """Cross-section of ``key`` within half a slice of ``z`` (nearest level when ``clamp``)."""
        pts = self.points.get(key)
        if pts is None or len(pts) == 0:
            return None
        if clamp:
            z = float(np.clip(z, pts[:, 2].min(), pts[:, 2].max()))
        sel = pts[np.abs(pts[:, 2] - z) <= self.dz_mm]
        if y_near is not None:
            sel = sel[(sel[:, 1] >= y_near[0]) & (sel[:, 1] <= y_near[1])]
        if len(sel) == 0:
            return None
        return Section(float(sel[:, 0].min()), float(sel[:, 0].max()), float(sel[:, 1].min()), float(sel[:, 1].max()))

    def in_lung(self, xyz) -> bool:
        if self.lung_mask is None or self.affine is None:
            return False
        ijk = np.rint(np.linalg.solve(self.affine[:3, :3], np.asarray(xyz) - self.affine[:3, 3])).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= self.lung_mask.shape):
            return False
        return bool(self.lung_mask[tuple(ijk)])


def find_landmarks(organs: np.ndarray, affine: np.ndarray, names: Mapping[int, str]) -> Landmarks:
    """Landmark points and levels from an organ label map ``organs`` (label -> name ``names``)."""
    organs = np.asarray(organs)
    affine = np.asarray(affine, dtype=np.float64)
    axis = axial_axis(affine)
    by_name = {n.lower(): i for i, n in names.items()}
    masks = {key: _union(organs, [by_name[s] for s in syn if s in by_name]) for key, syn in SYNONYMS.items()}
    lung_labels = [i for i, n in names.items() if LUNG_NAME.match(n)]
    lungs = _union(organs, lung_labels)
    points = {key: _world(m, affine) for key, m in masks.items() if m is not None}
    dz = 0.5 * max(float(np.abs(affine[2, :3]).max()), 1.0)
    levels: dict[str, float | None] = {}
    edge = _EdgeCheck(organs.shape, axis, affine)
    trachea, bronchi, aorta = masks["trachea"], masks["bronchi"], masks["aorta"]
    airway = _combine(trachea, bronchi)
    branches, bi_low, llb_top, tree_carina = [], None, None, None
    if bronchi is not None and airway is not None:  # airway includes bronchi: not None with it
        branches, bi_low, llb_top, tree_carina = _bronchial_levels(airway, affine)
    # the tree's own junction when it has one (an upper-lobe bronchus rising beside the trachea
    # would cut the airway in two above the real carina); else where the airway splits
    levels["carina"] = tree_carina if tree_carina is not None else _carina(airway, trachea, affine, axis, edge)
    levels["manubrium_top"] = _top(masks["sternum"], affine, edge)
    levels["arch_top"] = _top(aorta, affine, edge)
    levels["arch_bottom"] = (_split_level(aorta, affine, axis, MIN_AORTA_AREA_MM2)
                             if levels["arch_top"] is not None else None)
    levels["bcv_caudal"] = _bcv_caudal(points.get("bcv_left"), points.get("trachea"), dz)
    levels["azygos_arch_bottom"] = _azygos_arch_bottom(points.get("azygos"), points.get("trachea"), dz)
    levels["lpa_top"] = _lpa_top(points.get("pulmonary_artery"), points.get("trachea"))
    levels["lung_base"] = _bottom(lungs, affine, edge)
    if levels["carina"] is None:
        branches = []
    elif bronchi is not None:
        levels["bronchus_intermedius_bottom"], levels["lower_lobe_bronchus_top"] = bi_low, llb_top
    return Landmarks(dz, points, levels, lungs, affine, branches)


# ---- helpers -----------------------------------------------------------------------------------
def _union(organs: np.ndarray, labels: list[int]) -> np.ndarray | None:
    if not labels:
        return None
    mask = np.isin(organs, labels)
    return mask if mask.any() else None


def _combine(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    return a if b is None else (a | b)


def _world(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return np.argwhere(mask) @ affine[:3, :3].T + affine[:3, 3]


class _EdgeCheck:
    """Does a mask reach the superior or inferior end of the field of view?"""

    def __init__(self, shape, axis: int, affine: np.ndarray):
        self.shape, self.axis = shape, axis
        self.up_is_high = affine[2, axis] > 0  # index grows towards the patient's head

    def touches(self, mask: np.ndarray, end: str) -> bool:
        present = np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != self.axis)))[0]
        high = present.max() == self.shape[self.axis] - 1
        low = present.min() == 0
        return (high if self.up_is_high else low) if end == "superior" else (low if self.up_is_high else high)


def _top(mask, affine, edge: _EdgeCheck) -> float | None:
    if mask is None or edge.touches(mask, "superior"):
        return None
    return _extreme_z(mask, affine, edge.axis, highest=True)


def _bottom(mask, affine, edge: _EdgeCheck) -> float | None:
    if mask is None or edge.touches(mask, "inferior"):
        return None
    return _extreme_z(mask, affine, edge.axis, highest=False)


def _extreme_z(mask: np.ndarray, affine: np.ndarray, axis: int, *, highest: bool) -> float:
    """Highest (lowest) RAS z of a mask's voxel centres, looking only at the slices that can hold it."""
    present = np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))[0]
    plane = [a for a in range(3) if a != axis]
    box = [np.nonzero(mask.any(axis=tuple(b for b in range(3) if b != a)))[0] for a in plane]
    tilt = sum(abs(affine[2, a]) * (float(ix.max() - ix.min())) for a, ix in zip(plane, box))
    n = int(np.ceil(tilt / abs(affine[2, axis]))) + 1 if affine[2, axis] != 0 else len(present)
    up = (affine[2, axis] > 0) == highest
    chosen = present[-n:] if up else present[:n]
    sub = np.take(mask, chosen, axis=axis)
    idx = np.argwhere(sub).astype(np.float64)
    idx[:, axis] = chosen[idx[:, axis].astype(int)]
    z = idx @ affine[2, :3] + affine[2, 3]
    return float(z.max() if highest else z.min())


def _slices_top_down(mask: np.ndarray, affine: np.ndarray, axis: int):
    """(slice index, mean RAS z of the slice's voxels, 2-D mask) from the head downwards."""
    present = np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))[0]
    order = present[::-1] if affine[2, axis] > 0 else present
    for k in order:
        plane = np.take(mask, k, axis=axis)
        ij = np.argwhere(plane)
        idx = np.insert(ij.astype(np.float64), axis, float(k), axis=1)
        yield k, float((idx @ affine[2, :3]).mean() + affine[2, 3]), plane


def _split_level(mask, affine, axis, min_area_mm2) -> float | None:
    """Level of the last single cross-section above the first level cut in two (a bifurcation)."""
    if mask is None:
        return None
    plane_axes = [a for a in range(3) if a != axis]
    pixel_mm2 = float(np.linalg.norm(np.cross(affine[:3, plane_axes[0]], affine[:3, plane_axes[1]])))
    last_single = None
    for _, z, plane in _slices_top_down(mask, affine, axis):
        comps, _ = ndimage.label(plane, structure=np.ones((3, 3)))
        areas = np.bincount(comps.ravel())[1:] * pixel_mm2
        big = int(np.count_nonzero(areas >= min_area_mm2))
        if big == 1:
            last_single = z
        elif big >= 2 and last_single is not None:
            return last_single
    return None


def _carina(airway, trachea, affine, axis, edge: _EdgeCheck) -> float | None:
    """The tracheal bifurcation: where the airway splits; else the trachea's lower end."""
    split = _split_level(airway, affine, axis, MIN_AIRWAY_AREA_MM2)
    if split is not None:
        return split
    return _bottom(trachea, affine, edge) if trachea is not None else None


def _bcv_caudal(bcv: np.ndarray | None, trachea: np.ndarray | None, dz: float) -> float | None:
    """Caudal margin of the left brachiocephalic vein where it crosses the trachea (in x)."""
    if bcv is None or trachea is None or len(bcv) == 0 or len(trachea) == 0:
        return None
    x_lo, x_hi = _trachea_x_range(trachea, float(bcv[:, 2].min()), float(bcv[:, 2].max()), dz)
    crossing = bcv[(bcv[:, 0] >= x_lo) & (bcv[:, 0] <= x_hi)]
    return float(crossing[:, 2].min()) if len(crossing) else None


def _azygos_arch_bottom(azygos, trachea, dz) -> float | None:
    """Lower border of the azygos arch: the azygos part anterior to the posterior tracheal wall
    (the ascending azygos runs beside the spine, behind the trachea; its arch comes forward)."""
    if azygos is None or trachea is None or len(azygos) == 0 or len(trachea) == 0:
        return None
    width = 2.0 * dz
    t_bin = np.floor(trachea[:, 2] / width).astype(np.int64)
    base = int(t_bin.min())
    posterior_wall = np.full(int(t_bin.max()) - base + 1, np.inf)
    np.minimum.at(posterior_wall, t_bin - base, trachea[:, 1])
    a_bin = np.floor(azygos[:, 2] / width).astype(np.int64) - base
    inside = (a_bin >= 0) & (a_bin < len(posterior_wall))
    arch = azygos[inside][azygos[inside, 1] >= posterior_wall[a_bin[inside]]]
    return float(arch[:, 2].min()) if len(arch) else None


def _lpa_top(pa, trachea) -> float | None:
    """Upper rim of the left pulmonary artery: highest PA voxel left of the trachea's centre."""
    if pa is None or trachea is None or len(pa) == 0 or len(trachea) == 0:
        return None
    left = pa[pa[:, 0] < float(np.median(trachea[:, 0]))]
    return float(left[:, 2].max()) if len(left) else None


def _trachea_x_range(trachea, z_lo, z_hi, dz) -> tuple[float, float]:
    band = trachea[(trachea[:, 2] >= z_lo - dz) & (trachea[:, 2] <= z_hi + dz)]
    if len(band) == 0:
        band = trachea
    return float(band[:, 0].min()), float(band[:, 0].max())


def _bronchial_levels(airway: np.ndarray, affine: np.ndarray):
    """Airway branches, the lower end of the bronchus intermedius / top of the left lower lobe
    bronchus, and the carina (the trachea branch's lower end), from the airway tree (trachea ->
    main bronchi -> lobar bronchi)."""
    from volseg.postprocess.airway_tree import airway_tree

    tree = airway_tree(airway, affine)
    if tree is None or tree.trachea is None:
        return [], None, None, None
    mains = [b for b in tree.branches if b.generation == 1]
    carina = min(tree.trachea.start_ras_mm[2], tree.trachea.end_ras_mm[2]) if mains else None
    if len(mains) != 2:
        return tree.branches, None, None, carina
    right, left = sorted(mains, key=lambda b: -b.end_ras_mm[0])  # RAS: larger x = patient's right
    children = {b.branch_id: [c for c in tree.branches if c.parent_id == b.branch_id] for b in tree.branches}
    bi_low = None
    if len(children[right.branch_id]) == 2:  # right upper lobe bronchus and bronchus intermedius
        bi = min(children[right.branch_id], key=lambda b: b.end_ras_mm[2])
        bi_low = bi.end_ras_mm[2] if len(children[bi.branch_id]) >= 2 else None  # ends where it divides
    llb_top = left.end_ras_mm[2] if len(children[left.branch_id]) >= 2 else None  # LUL/LLL division
    return tree.branches, bi_low, llb_top, carina
