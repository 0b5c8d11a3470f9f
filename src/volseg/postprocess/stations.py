"""IASLC lymph-node stations and zones from landmarks of an organ segmentation.

Definitions: Rusch VW, Asamura H, Watanabe H et al., "The IASLC lung cancer staging project: a
proposal for a new international lymph node map in the forthcoming seventh edition of the TNM
classification for lung cancer", J Thorac Oncol 2009;4(5):568-577 (quoted in each rule below).

A node is placed by its centroid (RAS mm: +x patient's right, +y anterior, +z superior) against
the landmark levels of :mod:`volseg.postprocess.landmarks`. When a rule needs a landmark that the
organ map lacks, the answer is ``unknown`` with a note saying which one: never a guess. Zones:
supraclavicular (1), upper (2-4), aortopulmonary (5-6), subcarinal (7), lower (8-9),
hilar_interlobar (10-11), peripheral (12-14); ``extrathoracic`` below the lung bases.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from volseg.postprocess.landmarks import Landmarks, Section

UNKNOWN = "unknown"
ADJACENT_MM = 5.0  # "adjacent to" a structure: node surface within this distance of it
ZONES = {"1": "supraclavicular", "2": "upper", "3": "upper", "4": "upper", "5": "aortopulmonary",
         "6": "aortopulmonary", "7": "subcarinal", "8": "lower", "9": "lower", "10": "hilar_interlobar",
         "11": "hilar_interlobar"}


@dataclass(frozen=True)
class StationResult:
    station: str  # e.g. "4R", or "unknown"
    zone: str  # e.g. "upper", or "unknown"
    note: str = ""


def _known(station: str, why: str) -> StationResult:
    return StationResult(station, ZONES[station.rstrip("RLAP")], why)


def _unknown(why: str, zone: str = UNKNOWN) -> StationResult:
    return StationResult(UNKNOWN, zone, why)


class StationMapper:
    """Assigns IASLC stations to nodes given as (N, 3) RAS mm voxel centres."""

    def __init__(self, landmarks: Landmarks):
        self.lm = landmarks
        self._trees: dict[str, cKDTree] = {}

    def _trachea_at(self, z: float | None) -> Section:
        """The trachea's section nearest ``z``; only called once the trachea (and the level) is known."""
        tr = None if z is None else self.lm.section("trachea", z, clamp=True)
        if tr is None:
            raise RuntimeError("station mapping: no trachea section at a level checked before")
        return tr

    def assign(self, node_points: np.ndarray) -> StationResult:
        lm = self.lm
        c = node_points.mean(axis=0)
        x, y, z = (float(v) for v in c)
        if not lm.has("trachea"):
            return _unknown("no trachea in the organ map: no reference for any station")
        base = lm.level("lung_base")
        if base is not None and z < base:
            return StationResult(UNKNOWN, "extrathoracic", "below the lung bases (under the diaphragm)")
        if lm.in_lung(c):
            # 12-14: lobar, segmental, subsegmental nodes, within the lung
            return _unknown("inside the lung: station 12, 13 or 14 (needs segmental bronchi)", "peripheral")
        carina = lm.level("carina")
        if carina is None:
            return _unknown("no carina (trachea cut by the field of view, or missing)")
        if z < carina:
            return self._below_carina(node_points, x, y, z)
        top = lm.level("manubrium_top")
        tr = self._trachea_at(z)
        if top is None:
            # the manubrium's upper border lies above the left brachiocephalic vein and the aortic
            # arch, so a node below those levels is not in station 1 even without a sternum
            below = lm.level("bcv_caudal") if x >= tr.x_min else lm.level("arch_top")
            if below is None or z >= below:
                return _unknown("no sternum/manubrium top: station 1 and 2 cannot be told apart")
            return self._upper_mediastinum(node_points, x, y, z, tr)
        if z > top:
            # 1: "Upper border: lower margin of cricoid cartilage. Lower border: clavicles bilaterally
            # and, in the midline, the upper border of the manubrium; 1R/1L limited by the midline of
            # the trachea." (The cricoid is not segmented: nodes above it are also called 1.)
            return _known("1R" if x >= tr.x_centre else "1L", "above the manubrium")
        return self._upper_mediastinum(node_points, x, y, z, tr)

    # ---- superior mediastinum (manubrium to carina) ----------------------------------------
    def _upper_mediastinum(self, pts, x, y, z, tr) -> StationResult:
        lm = self.lm
        if y < tr.y_min and tr.x_min <= x <= tr.x_max:
            # 3p: retrotracheal; "upper border: apex of chest; lower border: carina"
            return _known("3P", "behind the trachea")
        prevascular = self._prevascular(x, y, z, tr)
        if prevascular is not None:
            return prevascular
        if x >= tr.x_min:  # 2R/4R "extend to the left lateral border of the trachea"
            bcv = lm.level("bcv_caudal")
            if bcv is None:
                return _unknown("no left brachiocephalic vein: 2R and 4R cannot be told apart")
            if z >= bcv:
                # 2R: "Upper border: apex of the right lung and pleural space and, in the midline, the
                # upper border of the manubrium. Lower border: intersection of caudal margin of
                # innominate vein with the trachea."
                return _known("2R", "right paratracheal, above the brachiocephalic vein's caudal margin")
            azygos = lm.level("azygos_arch_bottom")
            if azygos is None:
                return _unknown("no azygos vein: 4R (upper zone) and 10R (hilar) cannot be told apart")
            if z >= azygos:
                # 4R: "Upper border: intersection of caudal margin of innominate vein with the
                # trachea. Lower border: lower border of azygos vein."
                return _known("4R", "right lower paratracheal")
            # 10R: "Upper border: the lower rim of the azygos vein on the right"
            return _known("10R", "right, below the azygos arch and above the carina")
        return self._left_upper(pts, x, y, z)

    def _prevascular(self, x, y, z, tr) -> StationResult | None:
        # 3a: prevascular; "On the right: posterior border: anterior border of superior vena cava.
        # On the left: posterior border: left carotid artery. Upper border: apex of chest; lower
        # border: level of carina."
        key = "svc" if x >= tr.x_centre else "carotid_left"
        vessel = self.lm.section(key, z)
        if vessel is not None and y > vessel.y_max:
            return _known("3A", f"anterior to the {'superior vena cava' if key == 'svc' else 'left carotid artery'}")
        return None

    def _left_upper(self, pts, x, y, z) -> StationResult:
        lm = self.lm
        arch_top, arch_bottom = lm.level("arch_top"), lm.level("arch_bottom")
        if arch_top is None:
            return _unknown("no complete aortic arch: 2L, 4L, 5 and 6 cannot be told apart")
        if z > arch_top:
            # 2L: "Lower border: superior border of the aortic arch."
            return _known("2L", "left paratracheal, above the aortic arch")
        if arch_bottom is None:
            return _unknown("aortic arch lower border not found (the aorta never divides in two)")
        r = _radius(pts)
        side = self._side_of_aorta(x, y, z, r, z_range=(arch_bottom, arch_top) if z < arch_bottom else None)
        if z >= arch_bottom:
            if side in ("lateral", "anterior"):
                # 6: para-aortic; "nodes anterior and lateral to the ascending aorta and aortic
                # arch. Upper border: tangential to the upper border of the aortic arch; lower
                # border: the lower border of the aortic arch."
                return _known("6", f"{side} to the aortic arch")
            if side == "medial":
                # 4L: "nodes to the left of the left lateral border of the trachea, medial to the
                # ligamentum arteriosum; upper border: upper margin of the aortic arch."
                return _known("4L", "between the trachea and the aortic arch")
            return _unknown("at the aortic arch but neither medial nor lateral to it", "unknown")
        lpa = lm.level("lpa_top")
        if lpa is None:
            return _unknown("no pulmonary artery: 4L/5 (above its upper rim) and 10L cannot be told apart")
        if z < lpa:
            # 10L: hilar; "Upper border: ... upper rim of the pulmonary artery on the left"
            return _known("10L", "left, below the upper rim of the left pulmonary artery")
        if side == "lateral":
            # 5: subaortic; "lateral to the ligamentum arteriosum. Upper border: the lower border of
            # the aortic arch; lower border: upper rim of the left main pulmonary artery". The
            # ligamentum (not segmented) joins the arch's underside to the pulmonary artery, within
            # the arch's left-right extent: a node left of the whole arch is lateral to it.
            return _known("5", "lateral to the aortic arch, above the left pulmonary artery")
        if side == "medial":
            # 4L: "Lower border: upper rim of the left main pulmonary artery" (medial to the arch,
            # hence medial to the ligamentum arteriosum).
            return _known("4L", "medial to the aortic arch, above the left pulmonary artery")
        return _unknown("below the arch within its left-right extent: 4L or 5 (ligamentum not visible)")

    def _side_of_aorta(self, x, y, z, r, *, z_range=None) -> str | None:
        """'lateral' / 'medial' (left of / right of the aorta at the node's y), 'anterior', or None."""
        pts = self.lm.points.get("aorta")
        if pts is None:
            return None
        if z_range is None:
            band = pts[np.abs(pts[:, 2] - z) <= self.lm.dz_mm + r]
        else:
            band = pts[(pts[:, 2] >= z_range[0]) & (pts[:, 2] <= z_range[1])]
        if len(band) == 0:
            return None
        same_y = band[np.abs(band[:, 1] - y) <= r]
        if len(same_y):
            if x < same_y[:, 0].min():
                return "lateral"
            if x > same_y[:, 0].max():
                return "medial"
            return None
        return "anterior" if y > band[:, 1].max() else None

    # ---- below the carina ---------------------------------------------------------------------
    def _below_carina(self, pts, x, y, z) -> StationResult:
        lm = self.lm
        tr = self._trachea_at(lm.level("carina"))
        right = x >= tr.x_centre
        limit = lm.level("bronchus_intermedius_bottom" if right else "lower_lobe_bronchus_top")
        central = tr.x_min <= x <= tr.x_max
        if central:
            # a midline node is bounded by either side's border: the one the airways show
            limit = limit if limit is not None else lm.level(
                "lower_lobe_bronchus_top" if right else "bronchus_intermedius_bottom")
            if limit is None:
                missing = "lobar bronchi" if lm.airway_branches else "bronchi in the organ map"
                return _unknown(f"no {missing} (lower border of station 7): 7 and 8 cannot be told apart")
            if z >= limit:
                # 7: subcarinal; "Upper border: the carina of the trachea. Lower border: the upper
                # border of the lower lobe bronchus on the left; the lower border of the bronchus
                # intermedius on the right."
                return _known("7", "below the carina, between the main bronchi")
        if limit is not None and z < limit and self._adjacent(pts, "esophagus"):
            # 8: paraesophageal; "nodes lying adjacent to the wall of the esophagus and to the right
            # or left of the midline, excluding subcarinal nodes. Lower border: the diaphragm."
            return _known("8R" if right else "8L", "adjacent to the oesophagus below the subcarinal space")
        hilar = self._hilar(pts, right)
        if hilar is not None:
            return hilar
        if self._ligament(pts, z, right):
            # 9: pulmonary ligament; "Upper border: the inferior pulmonary vein. Lower border: the
            # diaphragm."
            return _known("9R" if right else "9L", "below the inferior pulmonary vein, against the lung")
        return _unknown("below the carina with no landmark that places it")

    def _hilar(self, pts, right) -> StationResult | None:
        """10: nodes adjacent to a main bronchus; 11: between the origins of the lobar bronchi."""
        branches = self.lm.airway_branches
        if not branches or not self._adjacent(pts, "bronchi"):
            return None
        c = pts.mean(axis=0)
        nearest = min(branches, key=lambda b: _segment_distance(c, b.start_ras_mm, b.end_ras_mm))
        side = "R" if right else "L"
        if nearest.generation <= 1:
            # 10: hilar; "immediately adjacent to the mainstem bronchus and hilar vessels ... Lower
            # border: interlobar region bilaterally."
            return _known("10" + side, "adjacent to a main bronchus")
        if nearest.generation == 2:
            # 11: interlobar; "between the origin of the lobar bronchi"
            return _known("11" + side, "adjacent to a lobar bronchus near its origin")
        return _unknown("beside segmental bronchi: station 12-14", "peripheral")

    def _ligament(self, pts, z, right) -> bool:
        lm = self.lm
        veins = lm.points.get("pulmonary_vein")
        if veins is None or len(veins) == 0 or lm.lung_mask is None:
            return False
        tr_x = self._trachea_at(z).x_centre
        same_side = veins[(veins[:, 0] >= tr_x) if right else (veins[:, 0] < tr_x)]
        return len(same_side) > 0 and z < same_side[:, 2].min() and self._touches_lung(pts)

    def _touches_lung(self, pts) -> bool:
        return any(self.lm.in_lung(p + d) for p in pts[:: max(1, len(pts) // 200)]
                   for d in ADJACENT_MM * np.vstack([np.eye(3), -np.eye(3)]))

    def _adjacent(self, pts, key) -> bool:
        target = self.lm.points.get(key)
        if target is None or len(target) == 0:
            return False
        if key not in self._trees:
            self._trees[key] = cKDTree(target)
        dist, _ = self._trees[key].query(pts, k=1, distance_upper_bound=ADJACENT_MM + 2.0)
        return bool(np.isfinite(dist).any() and dist.min() <= ADJACENT_MM + 1.0)


def _radius(pts: np.ndarray) -> float:
    return float(np.sqrt(((pts - pts.mean(axis=0)) ** 2).sum(axis=1).max()))


def _segment_distance(p, a, b) -> float:
    p, a, b = (np.asarray(v, dtype=np.float64) for v in (p, a, b))
    ab = b - a
    t = float(np.clip((p - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))
