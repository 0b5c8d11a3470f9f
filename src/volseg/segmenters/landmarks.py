"""The landmark step of the lymph-node workflow: one organ label map of the study for station mapping.

A catalogue entry names, in ``backend_options.landmark_sources``, the models that can give its
landmarks, best first (data, not code), e.g. ``["total", "total-fast", "classic-ct"]``. The first
one that can run is used: a pretrained organ model when it is installed, else the built-in
``classic-ct``, whose airway tree is split here into ``trachea`` (above the carina) and the
bronchi, with its two lungs. Classic-ct has no vessels, no sternum and no oesophagus: stations
that need those come out ``unknown`` with the missing landmark named
(:mod:`volseg.postprocess.stations`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy import ndimage

from volseg.labels import LabelTable
from volseg.volume import Volume, reorient, undo_reorient

log = logging.getLogger(__name__)

SOURCES_OPTION = "landmark_sources"
CLASSIC = "classic-ct"
CLASSIC_LANDMARKS = {1: "lung_left", 2: "lung_right", 3: "trachea", 4: "airway_bronchi"}


@runtime_checkable
class ReusesClassicMasks(Protocol):
    """A segmenter that ran classic-ct on the study already (the Raidionics mediastinal crop)."""

    @property
    def classic_masks(self) -> dict[str, np.ndarray] | None: ...


@dataclass(frozen=True, eq=False)
class LandmarkMap:
    """An organ label map on the study's grid, its names and the model it came from."""

    volume: Volume
    table: LabelTable
    source: str

    def provenance(self) -> dict[str, Any]:
        present = set(np.unique(self.volume.array).tolist()) - {0}
        names = self.table.names()
        return {"source": self.source, "structures": sorted(names[i] for i in present if i in names)}


def landmark_sources(model: str | None) -> tuple[str, ...]:
    """The landmark models the catalogue entry ``model`` declares (empty when none)."""
    from volseg.segmenters.backend_options import RaidionicsOptions
    from volseg.segmenters.catalogue import load_catalogue

    entry = load_catalogue().get(model or "")
    if entry is None or not isinstance(entry.backend_options, RaidionicsOptions):
        return ()
    return entry.backend_options.landmark_sources


def segmenter_landmarks(segmenter, volume: Volume, warnings: list[str]) -> LandmarkMap | None:
    """The station landmarks for a study segmented by ``segmenter``, from its catalogue entry's
    sources (reusing classic-ct's masks when the segmenter computed them); None when it declares
    none. A landmark model that cannot run adds a warning instead of failing the study."""
    from volseg.errors import InputError, ModelError

    try:
        sources = landmark_sources(segmenter.name)
        reuse = segmenter.classic_masks if isinstance(segmenter, ReusesClassicMasks) else None
        return study_landmarks(volume, sources, classic_masks=reuse) if sources else None
    except (InputError, ModelError) as exc:
        warnings.append(f"lymph-node stations left unknown: no landmarks ({exc.one_line()})")
        return None


def study_landmarks(volume: Volume, sources: tuple[str, ...] | list[str], *,
                    classic_masks: dict[str, np.ndarray] | None = None) -> LandmarkMap | None:
    """The landmark map of the first of ``sources`` that can run (None when none can).

    ``classic_masks``: classic-ct's masks already computed on ``reorient(volume, "RAS")`` (the
    Raidionics backend's mediastinal crop), reused instead of running classic-ct again.
    """
    from volseg.segmenters.registry import is_installed

    for name in sources:
        if name == CLASSIC:
            return classic_landmarks(volume, masks=classic_masks)
        if is_installed(name):
            return model_landmarks(name, volume)
        log.debug("landmarks: %s is not installed", name)
    return None


def model_landmarks(name: str, volume: Volume) -> LandmarkMap:
    """Landmarks from a catalogued organ model (e.g. TotalSegmentator ``total``)."""
    from volseg.segmenters.registry import load_segmenter

    segmenter = load_segmenter(name)
    labels = segmenter.predict(volume, modality=volume.meta.get("modality"))
    return LandmarkMap(labels, segmenter.labels, name)


def classic_landmarks(volume: Volume, *, masks: dict[str, np.ndarray] | None = None) -> LandmarkMap:
    """Lungs, trachea and bronchi from classic-ct (``masks``: its output on the RAS volume)."""
    ras = reorient(volume, "RAS")
    if masks is None or masks["airways"].shape != ras.shape:
        from volseg.segmenters.classic import check_ct, segment_masks

        check_ct(np.asarray(ras.array), ras.meta.get("modality"))
        masks = segment_masks(ras)
    codes = np.zeros(ras.shape, dtype=np.uint8)
    codes[masks["lung_left"]] = 1
    codes[masks["lung_right"]] = 2
    trachea, bronchi = split_airways(masks["airways"], ras.affine)
    codes[bronchi] = 4
    codes[trachea] = 3
    return LandmarkMap(undo_reorient(codes, volume), LabelTable.from_names(CLASSIC_LANDMARKS), CLASSIC)


def split_airways(airways: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(trachea, bronchi) of an airway-tree mask on a RAS-ordered grid (axis 2 superior).

    The trachea is the airway above the carina (the lower end of the tree's trachea branch)
    connected to the trachea's upper end; the rest is bronchi. Without a tree both are empty.
    """
    empty = np.zeros(airways.shape, dtype=bool)
    if not airways.any():
        return empty, empty
    from volseg.postprocess.airway_tree import airway_tree

    tree = airway_tree(airways, affine)
    if tree is None or tree.trachea is None:
        log.info("landmarks: no trachea found in the classic-ct airways")
        return empty, empty
    carina_z = min(tree.trachea.start_ras_mm[2], tree.trachea.end_ras_mm[2])
    k_carina = (carina_z - affine[2, 3]) / affine[2, 2]
    above = airways.copy()
    above[:, :, : int(np.ceil(k_carina - 1e-6))] = False
    comps, n = ndimage.label(above, structure=np.ones((3, 3, 3)))
    if n == 0:
        return empty, airways.astype(bool)
    top = max(tree.trachea.start_ras_mm, tree.trachea.end_ras_mm, key=lambda p: p[2])
    ijk = np.rint(np.linalg.solve(affine[:3, :3], np.asarray(top) - affine[:3, 3])).astype(int)
    ijk = np.clip(ijk, 0, np.asarray(airways.shape) - 1)
    label = comps[tuple(ijk)] or int(np.argmax(np.bincount(comps.ravel())[1:]) + 1)
    trachea = comps == label
    return trachea, airways & ~trachea
