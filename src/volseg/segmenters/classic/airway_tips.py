"""Grow each end of the airway tree further on its own, with per-branch leak control.

The global threshold of :func:`.airways.grow_airways` is set by the first branch that leaks; the
other bronchi usually go further. Generation by generation, each tip of the tree (the far end of
a terminal branch: a voxel no farther from the trachea, along the tree, than any neighbour) gets
its own box of ``TIP_BOX_MM`` around it, where the threshold is raised again from the global one
until the new lumen grown from the tip explodes (more than ``EXPLOSION_FACTOR`` times the previous
step, or more than ``MAX_TIP_ML``: the bronchus has leaked into the parenchyma), or the new part is
a blob rather than a tube. The last safe step is kept. Tips of the new parts are grown next round.
"""
from __future__ import annotations

import logging

import cc3d
import numpy as np

log = logging.getLogger(__name__)

TIP_BOX_MM = 15.0
THRESHOLD_STEP_HU = 25.0
MAX_THRESHOLD_HU = -550.0
EXPLOSION_FACTOR = 1.8
ESTABLISHED_MM3 = 20.0
MAX_TIP_ML = 0.8
MAX_TUBE_RADIUS_MM = 5.0
MAX_ROUNDS = 4
MIN_TIP_DEPTH = 40          # tips closer to the trachea top than this many steps are not grown


def grow_tips(tree: np.ndarray, seed: np.ndarray, hu: np.ndarray, allowed: np.ndarray, start_hu: float,
              spacing, max_voxels: int) -> np.ndarray:
    """``tree`` with its terminal branches grown further (one connected tree; same array shape)."""
    tree = tree.copy()
    fresh = tree.copy()
    half = np.maximum(1, np.round(TIP_BOX_MM / np.asarray(spacing)).astype(int))
    for round_ in range(MAX_ROUNDS):
        distance = _geodesic_steps(tree, seed)
        tips = _tip_centres(tree & fresh, distance)
        added = np.zeros_like(tree)
        for centre in tips:
            box = tuple(slice(max(0, c - h), min(n, c + h + 1)) for c, h, n in zip(centre, half, tree.shape))
            grown = _grow_locally(hu[box], allowed[box], tree[box], start_hu, spacing)
            if grown is not None:
                added[box] |= grown
        added &= ~tree
        if not added.any() or np.count_nonzero(tree | added) > max_voxels:
            break
        tree |= added
        fresh = added
        log.debug("airways: round %d grew %d tip(s) by %d voxels", round_ + 1, len(tips), added.sum())
    return tree


def _grow_locally(hu, allowed, tree, start_hu: float, spacing) -> np.ndarray | None:
    """New lumen grown from the tree inside one box; None when nothing safe was found."""
    voxel_mm3 = float(np.prod(spacing))
    best = None
    previous = 0
    threshold = start_hu + THRESHOLD_STEP_HU
    while threshold <= MAX_THRESHOLD_HU:
        candidate = ((hu < threshold) & allowed) | tree
        labels = cc3d.connected_components(candidate, connectivity=6)
        keep = np.zeros(int(labels.max()) + 1, bool)
        keep[labels[tree]] = True
        keep[0] = False
        new = keep[labels] & ~tree
        n = int(np.count_nonzero(new))
        if n * voxel_mm3 > MAX_TIP_ML * 1000.0 or (
                previous * voxel_mm3 >= ESTABLISHED_MM3 and n > EXPLOSION_FACTOR * previous):
            break
        if n and not _tube_like(new, spacing):
            break
        best, previous = (new if n else best), n
        threshold += THRESHOLD_STEP_HU
    return best


def _tube_like(new: np.ndarray, spacing) -> bool:
    """A thin branch, not a blob: volume within a tube of ``MAX_TUBE_RADIUS_MM`` along its extent."""
    extent_mm = np.array([np.ptp(ax) + 1 for ax in np.nonzero(new)], dtype=float) * np.asarray(spacing)
    volume_mm3 = np.count_nonzero(new) * float(np.prod(spacing))
    return bool(volume_mm3 <= np.pi * MAX_TUBE_RADIUS_MM ** 2 * max(float(np.linalg.norm(extent_mm)), 1.0))


def _tip_centres(candidates: np.ndarray, distance: np.ndarray) -> list[tuple[int, int, int]]:
    """Centres of clusters of tree voxels whose geodesic distance no neighbour exceeds."""
    index = np.argwhere(candidates & (distance >= MIN_TIP_DEPTH))
    if index.size == 0:
        return []
    d = distance[tuple(index.T)]
    local_max = np.ones(len(index), bool)
    shape = np.array(distance.shape)
    for offset in np.argwhere(np.ones((3, 3, 3), bool)) - 1:
        if not offset.any():
            continue
        n = np.clip(index + offset, 0, shape - 1)
        local_max &= distance[tuple(n.T)] <= d
    tips = np.zeros(distance.shape, bool)
    tips[tuple(index[local_max].T)] = True
    labels = cc3d.connected_components(tips, connectivity=26)
    stats = cc3d.statistics(labels)
    return [tuple(round(c) for c in stats["centroids"][i]) for i in range(1, len(stats["voxel_counts"]))
            if stats["voxel_counts"][i] > 0]


def _geodesic_steps(tree: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Breadth-first distance (6-neighbour steps) inside ``tree`` from ``seed``; -1 unreachable."""
    box = _bounding_box(tree)
    out = np.full(tree.shape, -1, np.int32)
    out[box] = _geodesic_steps_in(tree[box], seed[box])
    return out


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _geodesic_steps_in(tree: np.ndarray, seed: np.ndarray) -> np.ndarray:
    padded = np.pad(tree, 1)
    flat = padded.ravel()
    strides = np.array(padded.strides) // padded.itemsize
    offsets = np.concatenate([strides, -strides])
    distance = np.full(flat.size, -1, np.int32)
    front = np.flatnonzero(np.pad(seed & tree, 1).ravel())
    distance[front] = 0
    step = 0
    while front.size:
        step += 1
        neighbours = np.unique((front[:, None] + offsets[None, :]).ravel())
        neighbours = neighbours[flat[neighbours] & (distance[neighbours] < 0)]
        distance[neighbours] = step
        front = neighbours
    return distance.reshape(padded.shape)[1:-1, 1:-1, 1:-1]
