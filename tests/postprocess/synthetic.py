"""Synthetic shapes with known geometry for the clinical-measurement tests (no real data)."""
from __future__ import annotations

import numpy as np


def rotation(axis: str, degrees: float) -> np.ndarray:
    """3×3 rotation about a patient axis ('x', 'y' or 'z') by ``degrees``."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i = "xyz".index(axis)
    j, k = [a for a in range(3) if a != i]
    r = np.eye(3)
    r[j, j], r[j, k], r[k, j], r[k, k] = c, -s, s, c
    return r


def grid_affine(spacing, columns, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Affine whose array axis n points along ``columns[:, n]`` (unit RAS vectors) with ``spacing``."""
    columns = np.asarray(columns, dtype=np.float64)
    columns = columns / np.linalg.norm(columns, axis=0)
    affine = np.eye(4)
    affine[:3, :3] = columns * np.asarray(spacing, dtype=np.float64)
    affine[:3, 3] = origin
    return affine


def centred_affine(spacing, columns, shape, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Like :func:`grid_affine`, placed so that the grid's centre lies at ``centre`` (RAS mm)."""
    affine = grid_affine(spacing, columns)
    mid = (np.asarray(shape, dtype=np.float64) - 1) / 2
    affine[:3, 3] = np.asarray(centre) - affine[:3, :3] @ mid
    return affine


def world_coordinates(shape, affine) -> np.ndarray:
    """RAS mm of every voxel centre, shape ``shape + (3,)``."""
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    return (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*shape, 3)


def ellipsoid(shape, affine, centre, semi_axes_mm, frame=None) -> np.ndarray:
    """Voxels whose centre lies inside an ellipsoid; ``frame`` columns are its axis directions."""
    xyz = world_coordinates(shape, affine) - np.asarray(centre, dtype=np.float64)
    local = xyz @ (np.eye(3) if frame is None else np.asarray(frame, dtype=np.float64))
    return (((local / np.asarray(semi_axes_mm, dtype=np.float64)) ** 2).sum(axis=-1)) <= 1.0


def capsule(points_mm: np.ndarray, start, end, radius_mm: float) -> np.ndarray:
    """Points (…, 3) within ``radius_mm`` of the segment start→end (a tube with round caps)."""
    a, b = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    ab = b - a
    t = np.clip(((points_mm - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    closest = a + t[..., None] * ab
    return np.linalg.norm(points_mm - closest, axis=-1) <= radius_mm


def branching_tree(top, direction, *, generations: int, lengths, radii, angle_deg: float = 35.0):
    """Segments of a symmetric binary tree: a list of (start, end, radius, generation).

    Generation g has ``2**g`` branches of length ``lengths[g]`` and radius ``radii[g]``; children
    leave their parent's end at ±``angle_deg``, in planes alternating between two perpendicular
    planes through the parent's direction.
    """
    segments = []

    def grow(start, d, g, plane_normal):
        end = start + lengths[g] * d
        segments.append((start, end, radii[g], g))
        if g + 1 == generations:
            return
        other = np.cross(d, plane_normal)
        for sign in (1.0, -1.0):
            turned = _rotate(d, plane_normal, sign * angle_deg)
            grow(end, turned, g + 1, other / np.linalg.norm(other))

    direction = np.asarray(direction, dtype=np.float64)
    grow(np.asarray(top, dtype=np.float64), direction / np.linalg.norm(direction), 0, np.array([0.0, 1.0, 0.0]))
    return segments


def _rotate(v, axis, degrees):
    """Rodrigues rotation of ``v`` about the unit ``axis``."""
    axis = axis / np.linalg.norm(axis)
    t = np.radians(degrees)
    return v * np.cos(t) + np.cross(axis, v) * np.sin(t) + axis * (axis @ v) * (1 - np.cos(t))


def draw_tubes(shape, affine, segments) -> np.ndarray:
    """Mask of the union of capsules (start, end, radius, ...) on the grid."""
    mask = np.zeros(shape, dtype=bool)
    for start, end, radius, *_ in segments:
        add_capsule(mask, affine, start, end, radius)
    return mask


def add_capsule(mask: np.ndarray, affine, start, end, radius: float) -> None:
    """Set the voxels of ``mask`` within ``radius`` of the segment start→end (only its box is visited)."""
    ends = np.array([start, end], dtype=np.float64)
    lo, hi = ends.min(axis=0) - radius, ends.max(axis=0) + radius
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    inv = np.linalg.inv(affine)
    idx = corners @ inv[:3, :3].T + inv[:3, 3]
    first = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, mask.shape)
    last = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, 0, mask.shape)
    if np.any(last <= first):
        return
    box = tuple(slice(a, b) for a, b in zip(first, last))
    ijk = np.indices(last - first, dtype=np.float64).reshape(3, -1).T + first
    xyz = (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*(last - first), 3)
    mask[box] |= capsule(xyz, start, end, radius)


# A schematic thorax in RAS mm (+x patient's right, +y anterior, +z superior); the carina at z = 0.
# Tubes are (start, end, radius); landmark levels follow from them (see the station tests).
THORAX_TUBES = {
    "trachea": [((0, 0, 110), (0, 0, 0), 8.0)],
    "lung_airways": [((0, 0, 0), (20, 0, -12), 6.0), ((20, 0, -12), (45, 0, -5), 4.0),
                     ((20, 0, -12), (30, 0, -45), 5.0), ((30, 0, -45), (42, 0, -62), 3.5),
                     ((30, 0, -45), (26, 4, -75), 3.5), ((0, 0, 0), (-35, 0, -25), 5.5),
                     ((-35, 0, -25), (-55, 0, -12), 4.0), ((-35, 0, -25), (-45, 0, -62), 4.0)],
    "aorta": [((15, 35, -40), (15, 35, 40), 10.0), ((15, 35, 40), (-25, 25, 40), 10.0),
              ((-25, 25, 40), (-30, -15, 40), 10.0), ((-30, -15, 40), (-30, -15, -140), 10.0)],
    "brachiocephalic_vein_left": [((-45, 22, 72), (25, 22, 62), 5.0)],
    "superior_vena_cava": [((32, 22, 62), (32, 22, -10), 8.0)],
    "azygos": [((14, -22, -140), (14, -22, 18), 4.0), ((14, -22, 18), (32, 14, 18), 4.0)],
    "pulmonary_artery": [((5, 35, -25), (-30, 15, -2), 10.0)],
    "esophagus": [((-3, -18, 120), (-3, -18, -150), 7.0)],
}
THORAX_BOXES = {  # (x range, y range, z range)
    "sternum": ((-15, 15), (55, 65), (-90, 80)),
    "lung_upper_lobe_right": ((60, 140), (-60, 60), (-150, 120)),
    "lung_upper_lobe_left": ((-140, -60), (-60, 60), (-150, 120)),
}
# node centre, radius (mm), expected station and zone
THORAX_NODES = {
    "1R": ((22, 5, 92), 5.0, "1R", "supraclavicular"),
    "2R": ((16, -4, 72), 4.0, "2R", "upper"),
    "4R": ((15, -2, 32), 4.0, "4R", "upper"),
    "10R": ((16, -6, 6), 3.0, "10R", "hilar_interlobar"),
    "2L": ((-18, -2, 76), 4.0, "2L", "upper"),
    "6": ((-46, 10, 40), 4.0, "6", "aortopulmonary"),
    "4L": ((-13, -5, 36), 3.5, "4L", "upper"),
    "5": ((-46, -5, 20), 4.0, "5", "aortopulmonary"),
    "10L": ((-14, -4, 3), 2.5, "10L", "hilar_interlobar"),
    "7": ((0, -6, -16), 4.0, "7", "subcarinal"),
    "8": ((-3, -32, -85), 4.0, "8L", "lower"),
}


def thorax(spacing=(1.5, 1.5, 2.0), *, omit=()):
    """(organ labels, node labels, affine, organ names): the schematic thorax and its nodes.

    ``omit`` leaves landmark structures out (to test 'unknown'). Node label n is the n-th entry
    of THORAX_NODES.
    """
    lo, hi = np.array([-150.0, -70.0, -160.0]), np.array([150.0, 70.0, 130.0])
    shape = tuple(int(np.ceil((h - low) / s)) + 1 for low, h, s in zip(lo, hi, spacing))
    affine = grid_affine(spacing, np.eye(3), lo)
    organs = np.zeros(shape, dtype=np.uint8)
    names = {}
    for name, boxes in THORAX_BOXES.items():
        if name in omit:
            continue
        index = len(names) + 1
        first = [int(np.ceil((b[0] - low) / s)) for b, low, s in zip(boxes, lo, spacing)]
        last = [int(np.floor((b[1] - low) / s)) + 1 for b, low, s in zip(boxes, lo, spacing)]
        organs[tuple(slice(a, b) for a, b in zip(first, last))] = index
        names[index] = name
    for name, tubes in THORAX_TUBES.items():
        if name in omit:
            continue
        index = len(names) + 1
        mask = draw_tubes(shape, affine, tubes)
        organs[mask & (organs == 0)] = index
        names[index] = name
    nodes = np.zeros(shape, dtype=np.uint8)
    for n, (centre, radius, _, _) in enumerate(THORAX_NODES.values(), start=1):
        nodes[draw_tubes(shape, affine, [(centre, centre, radius)])] = n
    return organs, nodes, affine, names
