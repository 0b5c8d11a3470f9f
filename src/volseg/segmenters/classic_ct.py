"""``classic-ct``: a rule-based CT segmenter from HU thresholds, components and mm-sized morphology.

No weights, no GPU. Classes: body (remaining body tissue), lung_left, lung_right, airways, bone,
subcutaneous_fat, torso_fat. Left and right come from the affine (patient RAS), never array axes.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from volseg.errors import ModelError
from volseg.postprocess import morphology as morph
from volseg.postprocess.intensity import hu_summary, looks_like_ct
from volseg.segmenters.base import ProgressCallback, check_on_grid, no_progress
from volseg.volume import Volume

log = logging.getLogger(__name__)

BODY_MIN_HU = -300.0
LUNG_MAX_HU = -400.0
AIRWAY_START_HU = -950.0
FAT_HU = (-190.0, -30.0)
BONE_MIN_HU = 180.0


def load(entry, *, device: str = "auto") -> "ClassicCT":
    return ClassicCT(entry)


def check_ct(image: np.ndarray, modality: str | None) -> None:
    """Refuse input that is not CT in Hounsfield units, with the reason."""
    if modality and modality.upper() not in ("CT", "OT"):
        raise ModelError(f"classic-ct segments CT only; this image is {modality}")
    if not looks_like_ct(image):
        s = hu_summary(image)
        raise ModelError(
            "values do not look like CT in HU (1st/99th percentile "
            f"{s.p1:.0f}/{s.p99:.0f}, {s.air_fraction:.1%} of voxels below -800)",
            hint="classic-ct needs CT in Hounsfield units; MR and PET are refused",
        )


class ClassicCT:
    def __init__(self, entry) -> None:
        self.entry = entry
        self.name = entry.name
        self.labels = entry.label_table()
        self._index = {name: i for i, name in self.labels.names().items()}

    def provenance(self) -> dict[str, Any]:
        return {"model": self.name, "version": self.entry.version, "device": "cpu", "weights": []}

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        t0 = time.perf_counter()
        hu = np.asarray(volume.array)
        check_ct(hu, modality or volume.meta.get("modality"))
        spacing = volume.spacing
        axial = morph.axial_axis(volume.affine)
        steps = 5
        progress("classic-ct", 0, steps)
        body = self._body(hu, spacing, axial)
        progress("classic-ct", 1, steps)
        airways = self._airways(hu, body, spacing, axial, superior_last=volume.affine[2, axial] > 0)
        lungs = morph.remove_small((hu < LUNG_MAX_HU) & body & ~morph.dilate_mm(airways, 1.0, spacing),
                                   50.0, spacing)
        progress("classic-ct", 2, steps)
        left, right = self._split_lungs(lungs, volume)
        bone = morph.remove_small((hu >= BONE_MIN_HU) & body, 0.5, spacing)
        bone = morph.fill_holes_per_slice(bone, axial) & body
        progress("classic-ct", 3, steps)
        fat = (hu >= FAT_HU[0]) & (hu <= FAT_HU[1]) & body & ~lungs
        subcut, torso = self._split_fat(fat, body, lungs, spacing, axial)
        progress("classic-ct", 4, steps)
        out = np.zeros(volume.shape, dtype=np.uint8)
        for name, mask in (("body", body), ("subcutaneous_fat", subcut), ("torso_fat", torso),
                           ("bone", bone), ("lung_left", left), ("lung_right", right), ("airways", airways)):
            out[mask] = self._index[name]
        progress("classic-ct", steps, steps)
        log.info("classic-ct: %.1f s for %s", time.perf_counter() - t0, volume.shape)
        return check_on_grid(volume.with_array(out), volume, self.name)

    # ---- steps -------------------------------------------------------------------------
    @staticmethod
    def _body(hu, spacing, axial):
        candidate = morph.open_mm(hu > BODY_MIN_HU, 3.0, spacing)
        body = morph.largest_component(candidate)
        return morph.fill_holes_per_slice(body, axial)

    @staticmethod
    def _airways(hu, body, spacing, axial, *, superior_last: bool):
        """Grow the tree from a trachea seed in the top slices; stop before it leaks into lung."""
        air = (hu < AIRWAY_START_HU) & body
        top = [slice(None)] * 3
        n = hu.shape[axial]
        k = max(3, n // 20)
        seed_region = np.zeros_like(air)
        top[axial] = slice(n - k, n) if superior_last else slice(0, k)
        seed_region[tuple(top)] = air[tuple(top)]
        if not seed_region.any():
            return np.zeros_like(air)
        labels, counts = morph.components(air)
        seed_ids = np.unique(labels[seed_region])
        seed_ids = seed_ids[seed_ids > 0]
        if seed_ids.size == 0:
            return np.zeros_like(air)
        best = seed_ids[np.argmax(counts[seed_ids])]
        tree = labels == best
        max_ml = 0.05 * np.count_nonzero(hu < LUNG_MAX_HU) * float(np.prod(spacing)) / 1000.0
        if np.count_nonzero(tree) * float(np.prod(spacing)) / 1000.0 > max(max_ml, 5.0):
            log.warning("classic-ct: airway candidate leaks into the lungs; airways left empty")
            return np.zeros_like(air)
        return tree

    @staticmethod
    def _split_lungs(lungs, volume: Volume):
        """Left/right by patient RAS x of each lung component (x < midline is the patient's left)."""
        left = np.zeros_like(lungs)
        right = np.zeros_like(lungs)
        if not lungs.any():
            return left, right
        labels, counts = morph.components(lungs)
        idx = np.indices(lungs.shape).reshape(3, -1)
        x = (volume.affine[0, :3] @ idx + volume.affine[0, 3]).reshape(lungs.shape)
        midline = float(np.median(x[lungs]))
        for comp in np.nonzero(counts)[0][1:]:
            mask = labels == comp
            if float(x[mask].mean()) < midline:
                left |= mask
            else:
                right |= mask
        if not left.any() or not right.any():  # one merged component: split at the midline
            both = left | right
            left, right = both & (x < midline), both & (x >= midline)
        return left, right

    @staticmethod
    def _split_fat(fat, body, lungs, spacing, axial):
        """Subcutaneous fat lies outside the muscle wall; torso fat inside it."""
        core = morph.erode_mm(body, 4.0, spacing)
        wall = morph.close_mm(core & ~fat, 12.0, spacing)
        inside = morph.fill_holes_per_slice(wall, axial) | lungs
        return fat & ~inside, fat & inside

