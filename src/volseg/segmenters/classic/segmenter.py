"""``classic-ct``: a rule-based CT segmenter from HU thresholds, components and mm-sized morphology.

No weights, no GPU. Classes: body (remaining body tissue), lung_left, lung_right, airways,
bone, subcutaneous_fat, torso_fat. The image is put in RAS axis order (an exact permutation and
flip, no interpolation), segmented, and the labels are put back on exactly the input grid. Left and
right come from the affine (patient RAS x), never from array axes.

Steps (each in its own module): check the input is CT in HU, body, lung air, trachea and airway
tree, lungs without the airways split into left and right, bone, fat and its two compartments.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import cc3d
import numpy as np

from volseg.errors import ModelError
from volseg.postprocess.intensity import hu_summary, looks_like_ct
from volseg.segmenters.base import ProgressCallback, check_on_grid, no_progress
from volseg.segmenters.classic import airways as airway_steps
from volseg.segmenters.classic.body import segment_body
from volseg.segmenters.classic.bone import segment_bone
from volseg.segmenters.classic.fat import fat_mask, split_fat
from volseg.segmenters.classic.fov import undecided_note
from volseg.segmenters.classic.grid import BlockGrid, bounding_box, fill_holes_2d
from volseg.segmenters.classic.lungs import find_lungs
from volseg.segmenters.classic.split import split_lungs
from volseg.segmenters.provenance import ModelProvenance
from volseg.segmenters.units import classify_units
from volseg.volume import Volume, reorient, undo_reorient

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry
    from volseg.segmenters.engine.settings import EngineOverrides

log = logging.getLogger(__name__)

STAGE = "classic-ct"
MIN_LUNG_PIECE_ML = 0.5
#: paint order: later classes win where masks overlap
PAINT_ORDER = ("body", "subcutaneous_fat", "torso_fat", "bone", "lung_left", "lung_right", "airways")


def load(entry: ModelEntry, *, device: str = "auto", engine: EngineOverrides | None = None) -> ClassicCT:
    """Backend factory (registry name ``classic``); runs on the CPU whatever ``device`` says.

    It has no sliding window, so any engine override is refused.
    """
    from volseg.segmenters.engine_settings import NO_SETTINGS, refuse_unsupported

    refuse_unsupported(engine, supported=NO_SETTINGS, model=entry.name)
    return ClassicCT(entry)


def check_ct(image: np.ndarray, modality: str | None) -> None:
    """Refuse input that is not CT in Hounsfield units, with the reason (``volseg.api`` adds the
    input's name to these errors; ``segmenters/applicability.py`` checks the same before loading)."""
    if modality and modality.upper() not in ("CT", "OT"):
        raise ModelError(f"classic-ct segments CT only; this image is {modality}",
                         hint="use a model made for this modality (volseg models list)")
    if not looks_like_ct(image):
        if classify_units(np.asarray(image)[::4, ::4, ::4])[0] == "hu+1024":
            raise ModelError("values do not look like CT in HU: they look like CT stored without "
                             "RescaleIntercept (HU+1024)",
                             hint="classic-ct needs CT in Hounsfield units: restore the rescale tags")
        s = hu_summary(image)
        raise ModelError(
            "values do not look like CT in HU (1st/99th percentile "
            f"{s.p1:.0f}/{s.p99:.0f}, {s.air_fraction:.1%} of voxels below -800)",
            hint="classic-ct needs CT in Hounsfield units; MR and PET are refused",
        )


class ClassicCT:
    """The built-in CT segmenter; satisfies :class:`volseg.segmenters.base.Segmenter`."""

    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry
        self.name = entry.name
        self.labels = entry.label_table()
        self._index = {name: i for i, name in self.labels.names().items()}

    def provenance(self) -> ModelProvenance:
        # its report mapping has never had a "backend" key; the object still knows its backend
        return ModelProvenance(name=self.name, version=self.entry.version, backend=self.entry.backend,
                               device="cpu", layout=("model", "version", "device", "weights"))

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        t0 = time.perf_counter()
        check_ct(np.asarray(volume.array), modality or volume.meta.get("modality"))
        ras = reorient(volume, "RAS")
        masks = segment_masks(ras, progress=progress)
        out = np.zeros(ras.shape, dtype=np.uint8)
        for name in PAINT_ORDER:
            out[masks[name]] = self._index[name]
        labels = undo_reorient(out, volume)
        note = undecided_note(masks, as_hu16(ras.array), ras.spacing)
        if note:  # volseg.api adds meta["segmenter_warnings"] to the report's warnings
            log.warning("classic-ct: %s", note)
            labels = labels.with_array(labels.array, segmenter_warnings=(note,))
        log.info("classic-ct: %.1f s for %s", time.perf_counter() - t0, "×".join(map(str, volume.shape)))
        return check_on_grid(labels, volume, self.name)


def segment_masks(ras: Volume, *, progress: ProgressCallback = no_progress) -> dict[str, np.ndarray]:
    """Boolean masks of every class on the grid of ``ras`` (a volume in RAS axis order)."""
    steps = 6
    progress(STAGE, 0, steps)
    hu = as_hu16(ras.array)
    spacing = ras.spacing
    grid = BlockGrid.for_spacing(hu.shape, spacing)
    coarse_hu = grid.down_mean(hu)
    body, body_c = segment_body(hu, coarse_hu, grid)
    if not body.any():
        raise ModelError("no body found: no tissue denser than -300 HU thicker than a few cm",
                         hint="classic-ct needs a CT of the chest or abdomen")
    progress(STAGE, 1, steps)
    lung_air = find_lungs(hu, body, spacing)
    trachea = airway_steps.find_trachea(hu, lung_air, body, ras.affine, spacing)
    if trachea is not None:
        airways = airway_steps.grow_airways(hu, lung_air, body, trachea, spacing)
    else:
        airways = np.zeros_like(body)
        if lung_air.any():
            log.info("classic-ct: no trachea in the field of view; airways left empty")
    progress(STAGE, 2, steps)
    left, right = split_lungs(lung_air & ~airways, grid, ras.affine, body_c)
    left, right = (_drop_crumbs(_fill_vessels(m) & ~airways & body, spacing) for m in (left, right))
    right &= ~left
    progress(STAGE, 3, steps)
    bone = segment_bone(hu, body, coarse_hu, grid)
    progress(STAGE, 4, steps)
    lungs = left | right | airways
    fat = fat_mask(hu, body) & ~bone & ~lungs
    subcutaneous, torso = split_fat(hu, body, fat, body_c, grid)
    progress(STAGE, 5, steps)
    masks = {
        "body": body, "lung_left": left, "lung_right": right, "airways": airways, "bone": bone & ~lungs,
        "subcutaneous_fat": subcutaneous, "torso_fat": torso,
    }
    progress(STAGE, steps, steps)
    return masks


def as_hu16(array: np.ndarray) -> np.ndarray:
    """The image as int16 HU (rounded, clipped to -2048..4095; NaN as air), shared when int16."""
    if array.dtype == np.int16:
        return np.asarray(array)
    if array.dtype.kind == "f":
        array = np.nan_to_num(np.rint(array), nan=-1024.0)
    return np.clip(array, -2048, 4095).astype(np.int16)


def _drop_crumbs(lung: np.ndarray, spacing) -> np.ndarray:
    """One lung without pieces smaller than ``MIN_LUNG_PIECE_ML`` (slivers left by the airways)."""
    box = bounding_box(lung)
    if box is None:
        return lung
    out = np.zeros_like(lung)
    min_voxels = int(np.ceil(MIN_LUNG_PIECE_ML * 1000.0 / float(np.prod(spacing))))
    out[box] = cc3d.dust(lung[box], threshold=min_voxels, connectivity=26)
    return out


def _fill_vessels(lung: np.ndarray) -> np.ndarray:
    """Fill the vessels inside one lung: holes of its axial slices."""
    box = bounding_box(lung)
    if box is None:
        return lung
    out = lung.copy()
    out[box] = fill_holes_2d(lung[box])
    return out
