"""QC pictures for report.html: PNG bytes drawn headless with matplotlib's Agg canvas (no X server).

Display conventions (one set, used by every picture):

* Volumes are reoriented to RAS like :func:`volseg.volume.reorient` (axis permutations and flips
  only, no interpolation; :func:`ras_view` does it without copying), then shown in the **radiological convention**: the patient's right on the
  image's left; axial with anterior up, coronal and sagittal with superior up, sagittal with anterior
  on the left. Orientation letters are drawn on the image edges.
* Pixels are shown with their true aspect ratio (row spacing / column spacing in mm).
* Structures are drawn as coloured outlines (contours) in their label colours; with no image, the
  label map is shown filled on black.
* A point in RAS mm is mapped to display coordinates through the reoriented volume's affine
  (:func:`display_point`), so calipers drawn from ``*_endpoints_ras_mm`` land on their voxels.
"""
from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from volseg.labels import LabelTable
from volseg.reports.picture_outlines import draw_outlines, label_mask
from volseg.volume import Volume, orientation_transform

VIEWS = ("axial", "coronal", "sagittal")
# view → (fixed RAS axis, row axis, column axis); rows and columns both run reversed (see module doc)
_VIEW_AXES = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}
_EDGE_LETTERS = {"axial": ("A", "P", "R", "L"), "coronal": ("S", "I", "R", "L"),
                 "sagittal": ("S", "I", "A", "P")}  # top, bottom, left, right
CT_SOFT_TISSUE = (-160.0, 240.0)  # window W400 / L40 in HU
AIRWAY_NAME = re.compile(r"airway|trachea|bronch", re.IGNORECASE)
PANEL_WIDTH_IN = 4.8
MAX_HEIGHT_IN = 5.0
DPI = 100
#: one object of the report's JSON (an instance, a branch): values are whatever the JSON holds
JsonObject = Mapping[str, Any]


@dataclass(frozen=True)
class Picture:
    key: str
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class DisplayVolumes:
    """Image (optional) and label map reoriented to RAS on one grid, with the display window."""

    labels: Volume
    image: Volume | None
    window: tuple[float, float] | None

    @classmethod
    def build(cls, labels: Volume, image: Volume | None, *, is_ct: bool) -> DisplayVolumes:
        labels_ras = ras_view(labels)
        image_ras = ras_view(image) if image is not None else None
        window = None
        if image_ras is not None:
            window = CT_SOFT_TISSUE if is_ct else _percentile_window(image_ras.array)
        return cls(labels_ras, image_ras, window)


# ---- geometry of the display ---------------------------------------------------------------------
def ras_view(volume: Volume) -> Volume:
    """:func:`volseg.volume.reorient` to RAS as a strided view (no copy of the voxels).

    Equal to ``reorient(volume, "RAS")`` in array and affine (tested); pictures only read slices of it.
    """
    perm, flips = orientation_transform(volume, "RAS")
    view = np.transpose(np.asarray(volume.array), perm)
    index_map = np.zeros((4, 4))  # old homogeneous index = index_map @ new index
    index_map[3, 3] = 1.0
    for new_axis, (old_axis, flip) in enumerate(zip(perm, flips)):
        if flip:
            view = np.flip(view, axis=new_axis)
            index_map[old_axis, new_axis] = -1.0
            index_map[old_axis, 3] = volume.shape[old_axis] - 1
        else:
            index_map[old_axis, new_axis] = 1.0
    return Volume(view, volume.affine @ index_map, volume.meta)


def view_plane(array: np.ndarray, view: str, index: int) -> np.ndarray:
    """The 2-D display array (rows, columns) of a RAS array at ``index`` along the view's axis."""
    fixed = _VIEW_AXES[view][0]
    chooser: list = [slice(None)] * 3
    chooser[fixed] = index
    return np.asarray(array)[tuple(chooser)].T[::-1, ::-1]  # a view: basic indexing copies nothing


def view_aspect(spacing: Sequence[float], view: str) -> float:
    """Height / width of one displayed pixel (row spacing / column spacing in mm)."""
    _, row_axis, col_axis = _VIEW_AXES[view]
    return float(spacing[row_axis]) / float(spacing[col_axis])


def display_point(volume_ras: Volume, point_ras_mm: Sequence[float], view: str) -> tuple[float, float, float]:
    """(row, column, slice index) of a RAS mm point in ``view`` of a RAS-oriented volume."""
    ijk = volume_ras.world_to_index(np.asarray(point_ras_mm, dtype=np.float64))
    fixed, row_axis, col_axis = _VIEW_AXES[view]
    shape = volume_ras.shape
    return (shape[row_axis] - 1 - ijk[row_axis], shape[col_axis] - 1 - ijk[col_axis], float(ijk[fixed]))


def busiest_slice(labels: np.ndarray, axis: int, *, step: int = 1) -> int:
    """Index along ``axis`` whose slice holds the most distinct labels (ties: most labelled voxels).

    ``step`` > 1 looks at every step-th voxel within each slice (every slice is still scored).
    """
    sampler = [slice(None, None, step)] * 3
    sampler[axis] = slice(None)
    moved = np.moveaxis(np.asarray(labels)[tuple(sampler)], axis, 0)
    n = moved.shape[0]
    flat = moved.reshape(n, -1).astype(np.int64)
    top = int(flat.max()) + 1 if flat.size else 1
    if top == 1:
        return n // 2
    flat += (np.arange(n, dtype=np.int64) * top)[:, None]
    counts = np.bincount(flat.ravel(), minlength=n * top).reshape(n, top)[:, 1:]
    distinct = (counts > 0).sum(axis=1)
    area = counts.sum(axis=1)
    return int(np.lexsort((-area, -distinct))[0])


# ---- pictures ------------------------------------------------------------------------------------------
def overview_pictures(display: DisplayVolumes, labels: LabelTable) -> list[Picture]:
    """Axial, coronal and sagittal slices through the busiest slices, every structure outlined."""
    return [overview_picture(display, labels, view) for view in VIEWS]


def overview_picture(display: DisplayVolumes, labels: LabelTable, view: str) -> Picture:
    """One view's slice through the busiest slice, every structure outlined."""
    lab = display.labels
    fixed = _VIEW_AXES[view][0]
    index = busiest_slice(lab.array, fixed, step=_sampling_step(lab.shape))
    plane = view_plane(lab.array, view, index)
    fig, ax = _cropped_figure(plane, lab.spacing, view)
    _draw_background(ax, display, view, index)
    draw_outlines(ax, plane, labels, filled=display.image is None)
    _crop(ax, plane, lab.spacing, view)
    _edge_letters(ax, view)
    position = lab.index_to_world(_index_on(fixed, index))[fixed]
    axis_name = "RAS"[fixed]
    caption = (f"{view.capitalize()} slice {index + 1} of {lab.shape[fixed]} "
               f"({axis_name} = {position:.1f} mm), radiological convention")
    return Picture(view, f"{view.capitalize()} view", caption, _png(fig))


def lesion_picture(display: DisplayVolumes, labels: LabelTable, instance: JsonObject,
                   *, margin_mm: float = 30.0) -> Picture | None:
    """The lesion at its long-axis slice (axial), zoomed, with long (yellow) and short (cyan) axes;
    the other pieces of a fragmented cross-section with their own long axes (orange)."""
    long_ends = instance.get("long_axis_endpoints_ras_mm")
    if not long_ends or len(long_ends) != 2:
        return None
    lab = display.labels
    (r0, c0, z0), (r1, c1, z1) = (display_point(lab, p, "axial") for p in long_ends)
    index = int(round((z0 + z1) / 2.0))
    if not 0 <= index < lab.shape[2]:
        return None
    long_mm = float(instance.get("long_axis_mm") or 0.0)
    others = _other_fragments(lab, instance, ((r0, c0), (r1, c1)))
    rc, cc = (r0 + r1) / 2.0, (c0 + c1) / 2.0
    sy, sx = lab.spacing[1], lab.spacing[0]
    reach_mm = max([0.0] + [max(abs(r - rc) * sy, abs(c - cc) * sx) for ends in others for r, c in ends])
    half_mm = max(margin_mm, 1.2 * long_mm, reach_mm + 10.0)
    rows, cols = lab.shape[1], lab.shape[0]
    r_lo, r_hi = _clamp(rc - half_mm / sy, rc + half_mm / sy, rows)
    c_lo, c_hi = _clamp(cc - half_mm / sx, cc + half_mm / sx, cols)
    fig, ax = _figure((c_hi - c_lo) * sx, (r_hi - r_lo) * sy, width_in=3.2)
    _draw_background(ax, display, "axial", index)
    plane = view_plane(lab.array, "axial", index)
    draw_outlines(ax, plane, labels, filled=display.image is None, emphasise=int(instance.get("label") or 0),
                  window=(r_lo, r_hi, c_lo, c_hi))
    for p0, p1 in others:  # the other pieces of a fragmented cross-section, each with its own caliper
        _caliper(ax, p0, p1, "#ff8c00")
    _caliper(ax, (r0, c0), (r1, c1), "#ffe000")
    short_ends = instance.get("short_axis_endpoints_ras_mm")
    if short_ends and len(short_ends) == 2:
        (s0r, s0c, _), (s1r, s1c, _) = (display_point(lab, p, "axial") for p in short_ends)
        _caliper(ax, (s0r, s0c), (s1r, s1c), "#00e5ff")
    ax.set_xlim(c_lo - 0.5, c_hi - 0.5)
    ax.set_ylim(r_hi - 0.5, r_lo - 0.5)
    _edge_letters(ax, "axial")
    short_mm = instance.get("short_axis_mm")
    sizes = f"long axis {long_mm:.1f} mm" + (f", short axis {float(short_mm):.1f} mm" if short_mm else "")
    key = str(instance.get("instance_id") or f"lesion-{index}")
    caption = f"{sizes}; axial slice {index + 1} (RAS); yellow: long axis, cyan: short axis"
    if others:
        total = instance.get("fragments_sum_mm")
        caption += (f"; {len(others) + 1} separate pieces on this slice, orange: the other pieces' long axes"
                    + (f" (pieces' sum {float(total):.1f} mm)" if total else ""))
    return Picture(f"lesion-{key}", key, caption, _png(fig))


def _other_fragments(lab: Volume, instance: JsonObject, main) -> list:
    """Display end points of the calipers of the other pieces on the long-axis slice."""
    out = []
    for fragment in instance.get("fragment_calipers") or []:
        ends = fragment.get("endpoints_ras_mm") if isinstance(fragment, Mapping) else None
        if not ends or len(ends) != 2:
            continue
        (a_r, a_c, _), (b_r, b_c, _) = (display_point(lab, p, "axial") for p in ends)
        pair = ((a_r, a_c), (b_r, b_c))
        if np.allclose(pair, main, atol=1e-6) or np.allclose(pair, main[::-1], atol=1e-6):
            continue  # the long axis itself
        out.append(pair)
    return out


def airway_picture(display: DisplayVolumes, labels: LabelTable,
                   branches: Sequence[JsonObject] = ()) -> Picture | None:
    """Coronal maximum-intensity projection of the airway labels (depth-shaded), centrelines on top."""
    airway = [i for i, info in labels.items() if AIRWAY_NAME.search(info.name)]
    lab = display.labels
    mask = label_mask(lab.array, airway) if airway else None
    if mask is None or not mask.any():
        return None
    # coronal: project along anterior (RAS axis 1); counts are exact integers in any integer type
    depth = mask.sum(axis=1, dtype=np.int32 if mask.shape[1] < 2**31 else np.int64).astype(np.float32)
    shade = view_plane(depth[:, None, :], "coronal", 0)
    shade = shade / max(float(shade.max()), 1.0)
    colour = np.asarray(labels[airway[0]].color, dtype=np.float32) / 255.0
    rgb = np.where(shade[..., None] > 0, (0.35 + 0.65 * shade[..., None]) * colour, 0.0)
    fig, ax = _cropped_figure(shade, lab.spacing, "coronal")
    ax.imshow(np.clip(rgb, 0, 1), aspect=view_aspect(lab.spacing, "coronal"), interpolation="nearest")
    _draw_centrelines(ax, lab, branches)
    _crop(ax, shade, lab.spacing, "coronal")
    _edge_letters(ax, "coronal")
    note = f"; {len(branches)} centreline branches coloured by generation" if branches else ""
    caption = "Coronal maximum-intensity projection of the airway segmentation (brighter: thicker)" + note
    return Picture("airway-mip", "Airway tree (coronal MIP)", caption, _png(fig))


# ---- drawing helpers ----------------------------------------------------------------------------------
def crop_box(plane: np.ndarray, spacing: Sequence[float], view: str,
             margin_mm: float = 15.0) -> tuple[int, int, int, int]:
    """(row_lo, row_hi, col_lo, col_hi), end exclusive: the non-zero part of ``plane`` plus a margin."""
    _, row_axis, col_axis = _VIEW_AXES[view]
    rows, cols = np.nonzero(plane)
    if rows.size == 0:
        return 0, plane.shape[0], 0, plane.shape[1]
    dr, dc = margin_mm / spacing[row_axis], margin_mm / spacing[col_axis]
    r_lo, r_hi = _clamp(rows.min() - dr, rows.max() + dr, plane.shape[0])
    c_lo, c_hi = _clamp(cols.min() - dc, cols.max() + dc, plane.shape[1])
    return r_lo, r_hi, c_lo, c_hi


def _cropped_figure(plane: np.ndarray, spacing: Sequence[float], view: str):
    _, row_axis, col_axis = _VIEW_AXES[view]
    r_lo, r_hi, c_lo, c_hi = crop_box(plane, spacing, view)
    return _figure((c_hi - c_lo) * spacing[col_axis], (r_hi - r_lo) * spacing[row_axis])


def _crop(ax, plane: np.ndarray, spacing: Sequence[float], view: str) -> None:
    r_lo, r_hi, c_lo, c_hi = crop_box(plane, spacing, view)
    ax.set_xlim(c_lo - 0.5, c_hi - 0.5)
    ax.set_ylim(r_hi - 0.5, r_lo - 0.5)


def _figure(width_mm: float, height_mm: float, *, width_in: float = PANEL_WIDTH_IN):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ratio = height_mm / max(width_mm, 1e-6)
    if ratio < 0.3:  # a flat picture (few slices): wider, with room above and below for the letters
        width_in = max(width_in, 7.0)
    if width_in * ratio > MAX_HEIGHT_IN:  # a tall, narrow picture: no taller than the others
        width_in = MAX_HEIGHT_IN / ratio
    fig = Figure(figsize=(width_in, max(width_in * ratio, 1.5)), dpi=DPI, facecolor="black")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_facecolor("black")
    return fig, ax


def _draw_background(ax, display: DisplayVolumes, view: str, index: int) -> None:
    aspect = view_aspect(display.labels.spacing, view)
    if display.image is None:
        shape = view_plane(display.labels.array, view, index).shape
        ax.imshow(np.zeros(shape), cmap="gray", vmin=0, vmax=1, aspect=aspect, interpolation="nearest")
        return
    lo, hi = display.window or (0.0, 1.0)
    ax.imshow(view_plane(display.image.array, view, index), cmap="gray", vmin=lo, vmax=hi, aspect=aspect,
              interpolation="nearest")


def _draw_centrelines(ax, lab: Volume, branches: Sequence[JsonObject]) -> None:
    if not branches:
        return
    from matplotlib import colormaps

    top = max(int(b.get("generation") or 0) for b in branches) or 1
    cmap = colormaps["plasma"]
    for b in branches:
        start, end = b.get("start_ras_mm"), b.get("end_ras_mm")
        if not start or not end:
            continue
        (r0, c0, _), (r1, c1, _) = display_point(lab, start, "coronal"), display_point(lab, end, "coronal")
        ax.plot([c0, c1], [r0, r1], color=cmap(int(b.get("generation") or 0) / top), linewidth=1.2)


def _caliper(ax, p0: tuple[float, float], p1: tuple[float, float], colour: str) -> None:
    (r0, c0), (r1, c1) = p0, p1
    ax.plot([c0, c1], [r0, r1], color=colour, linewidth=1.8, solid_capstyle="butt")
    ax.plot([c0, c1], [r0, r1], linestyle="none", marker="+", markersize=9, markeredgewidth=1.8, color=colour)


def _edge_letters(ax, view: str) -> None:
    top, bottom, left, right = _EDGE_LETTERS[view]
    style = dict(color="#ffb000", fontsize=11, fontweight="bold", transform=ax.figure.transFigure)
    ax.text(0.5, 0.985, top, ha="center", va="top", **style)
    ax.text(0.5, 0.015, bottom, ha="center", va="bottom", **style)
    ax.text(0.012, 0.5, left, ha="left", va="center", **style)
    ax.text(0.988, 0.5, right, ha="right", va="center", **style)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor=fig.get_facecolor())
    return buf.getvalue()


def _clamp(lo: float, hi: float, n: int) -> tuple[int, int]:
    lo_i, hi_i = max(int(math.floor(lo)), 0), min(int(math.ceil(hi)) + 1, n)
    return lo_i, max(hi_i, lo_i + 1)


def _index_on(axis: int, index: int) -> np.ndarray:
    ijk = np.zeros(3)
    ijk[axis] = index
    return ijk


def _sampling_step(shape: Sequence[int], target_voxels: float = 4e6) -> int:
    """In-slice sampling step that keeps the slice scoring near ``target_voxels`` voxels."""
    return max(1, int(math.sqrt(float(np.prod(shape)) / target_voxels)))


def _percentile_window(array: np.ndarray) -> tuple[float, float]:
    sample = np.asarray(array)[::2, ::2, ::2].astype(np.float32)
    lo, hi = np.percentile(sample, [1.0, 99.5])
    return float(lo), float(max(hi, lo + 1e-3))
