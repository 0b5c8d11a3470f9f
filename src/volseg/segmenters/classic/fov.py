"""Partial fields of view: air that the edge of the image cuts open is not always outside air.

On a CTA-style crop the lungs touch the lateral or anterior edge of the field of view, so slice-by-
slice hole filling leaves them open to the border and they look like the air around the body. On
each axial slice where the body touches the in-plane border, the convex hull of the body (the
ribcage and mediastinum lie on both sides of the cut) encloses that air; the pieces of the hull
outside the body that reach the border are given back to the body. Whether such air is lung or
outside air is then decided by its intensity (``lungs.find_lungs``: outside air is pure, about
-1000 HU; parenchyma is lifted by vessels and septa). A full field of view, where the body does
not touch the border, is left exactly as it was.
"""
from __future__ import annotations

import logging

import cc3d
import numpy as np

log = logging.getLogger(__name__)


def touches_border_2d(mask: np.ndarray) -> np.ndarray:
    """Per axial slice (axis 2): whether ``mask`` reaches the in-plane edge of the image."""
    return (mask[0].any(axis=0) | mask[-1].any(axis=0) | mask[:, 0].any(axis=0) | mask[:, -1].any(axis=0))


def enclosed_by_cut(body_c: np.ndarray) -> np.ndarray:
    """Coarse-grid voxels outside ``body_c`` but inside the per-slice convex hull of a body that the
    field of view cuts, connected to the in-plane border (empty when the body is not cut)."""
    from skimage.morphology import convex_hull_image

    cut = touches_border_2d(body_c)
    extra = np.zeros_like(body_c)
    if not cut.any():
        return extra
    for k in np.flatnonzero(cut):
        piece = body_c[:, :, k]
        if np.count_nonzero(piece) >= 3:
            extra[:, :, k] = convex_hull_image(piece) & ~piece
    labels = cc3d.connected_components(extra, connectivity=6)
    edge = np.unique(np.concatenate([labels[0].ravel(), labels[-1].ravel(),
                                     labels[:, 0].ravel(), labels[:, -1].ravel()]))
    edge = edge[edge != 0]
    out = np.isin(labels, edge)
    log.debug("fov: the body is cut on %d slice(s); %d coarse voxels of cut-open air enclosed",
              int(cut.sum()), int(out.sum()))
    return out


UNDECIDED_AIR_ML = 100.0  # unlabelled air inside a cut body at least this large leaves a missing lung in doubt


def undecided_note(masks: dict[str, np.ndarray], hu: np.ndarray, spacing) -> str | None:
    """A report warning when the field of view cuts the body, a lung is missing and a large volume of
    air inside the body was not taken for lung (it may be lung that looked like outside air)."""
    missing = [side for side in ("left", "right") if not masks[f"lung_{side}"].any()]
    if not missing or not touches_border_2d(masks["body"]).any():
        return None
    labelled = masks["lung_left"] | masks["lung_right"] | masks["airways"]
    air_ml = np.count_nonzero((hu < -400) & masks["body"] & ~labelled) * float(np.prod(spacing)) / 1000.0
    if air_ml < UNDECIDED_AIR_ML:
        return None
    which = "/".join(missing)
    return (f"lungs touch the field of view; {which} lung could not be separated from outside air "
            f"({air_ml:.0f} mL of air inside the body left unlabelled)")
