"""The skeleton of a tubular mask as a graph of branches, with clean-up rules in mm.

Used by :mod:`volseg.postprocess.airway_tree`; see there for the method.
"""
from __future__ import annotations

import numpy as np

from volseg.errors import DependencyError

SMOOTH_HALF_WINDOW = 2  # centreline points averaged on each side before measuring length


class SkeletonGraph:
    """Undirected multigraph of skeleton branches; each edge keeps its centreline (voxel indices)
    and its length in mm."""

    def __init__(self, length_mm) -> None:
        self.length_mm = length_mm  # centreline (voxel indices) -> mm
        self.pos: dict[int, np.ndarray] = {}
        self.edges: dict[int, tuple[int, int, np.ndarray, float]] = {}
        self.adj: dict[int, set[int]] = {}
        self._next = 0

    def add(self, u: int, v: int, path: np.ndarray) -> None:
        self.edges[self._next] = (u, v, path, self.length_mm(path))
        self.adj.setdefault(u, set()).add(self._next)
        self.adj.setdefault(v, set()).add(self._next)
        self._next += 1

    def remove(self, e: int) -> None:
        u, v, _, _ = self.edges.pop(e)
        for n in (u, v):
            self.adj[n].discard(e)
            if not self.adj[n]:
                del self.adj[n]

    def degree(self, n: int) -> int:
        return len(self.adj.get(n, ()))

    def clean(self, radius: np.ndarray, min_len: float) -> None:
        self._merge_degree_two()
        while True:
            changed = self._prune_pass(radius, min_len)
            self._merge_degree_two()
            changed = self._contract_pass(radius) or changed
            self._merge_degree_two()
            if not changed:
                return

    def trachea(self, to_world, radius: np.ndarray) -> tuple[int, int, int]:
        """(edge, upper node, lower node) of the trachea: the widest branch at least twice as long as
        its radius (ties: the higher one). Branches beyond its upper end (larynx, noise above the
        trachea) are not part of the bronchial tree."""
        best = None
        for e, (u, v, path, length) in self.edges.items():
            if u == v:
                continue
            r = median_radius(path, radius)
            if length < 2.0 * r and len(self.edges) > 1:
                continue
            top = max(float(to_world(self.pos[u])[2]), float(to_world(self.pos[v])[2]))
            if best is None or (r, top) > best[0]:
                best = ((r, top), e)
        if best is None:  # only short, fat pieces: take the widest
            e = max(self.edges, key=lambda e: median_radius(self.edges[e][2], radius))
        else:
            e = best[1]
        u, v = self.edges[e][:2]
        upper, lower = (u, v) if to_world(self.pos[u])[2] >= to_world(self.pos[v])[2] else (v, u)
        return e, upper, lower

    def _prune_pass(self, radius, min_len) -> bool:
        """Remove short terminal branches; every junction keeps at least two branches."""
        spurs: dict[int, list[tuple[float, int]]] = {}
        for e, (u, v, _, length) in self.edges.items():
            if u == v:
                continue
            leaf, junction = (u, v) if self.degree(u) == 1 else (v, u)
            if self.degree(leaf) != 1 or self.degree(junction) < 3:
                continue
            if length < max(min_len, _radius_at(radius, self.pos[junction])):
                spurs.setdefault(junction, []).append((length, e))
        for junction, items in spurs.items():
            for _, e in sorted(items)[: self.degree(junction) - 2]:
                self.remove(e)
        return bool(spurs)

    def _contract_pass(self, radius) -> bool:
        """Join two junctions linked by a branch shorter than the lumen radius at its ends."""
        touched: set[int] = set()
        changed = False
        for e, (u, v, _, length) in sorted(self.edges.items(), key=lambda item: item[1][3]):
            if e not in self.edges or u == v or u in touched or v in touched:
                continue
            if self.degree(u) < 3 or self.degree(v) < 3:
                continue
            if length >= min(_radius_at(radius, self.pos[u]), _radius_at(radius, self.pos[v])):
                break  # sorted by length: no shorter candidate follows
            self.remove(e)
            for other in list(self.adj.get(v, ())):  # re-attach v's branches to u
                a, b, p, _ = self.edges[other]
                self.remove(other)
                a2, b2 = (u if a == v else a), (u if b == v else b)
                if a2 != b2:  # a parallel branch u-v would become a loop: dropped
                    self.add(a2, b2, np.vstack([self.pos[u], p]) if a == v else np.vstack([p, self.pos[u]]))
            touched.update((u, v))
            changed = True
        return changed

    def _merge_degree_two(self) -> None:
        for n in [n for n in list(self.adj) if self.degree(n) == 2]:
            if self.degree(n) != 2:
                continue
            e1, e2 = sorted(self.adj[n])
            (a, b, p, _), (c, d, q, _) = self.edges[e1], self.edges[e2]
            p = p if b == n else p[::-1]  # ... -> n
            q = q if c == n else q[::-1]  # n -> ...
            start, end = (a if b == n else b), (d if c == n else c)
            self.remove(e1)
            self.remove(e2)
            if start != end:  # two parallel branches between the same nodes form a loop: dropped
                self.add(start, end, np.vstack([p, q[1:]]))


def skeleton_graph(mask: np.ndarray, length_mm) -> SkeletonGraph:
    try:
        from skan import Skeleton
        from skimage.morphology import skeletonize
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DependencyError("airway tree metrics need skan and scikit-image",
                              hint="reinstall volseg: pip install skan scikit-image") from exc
    skel = skeletonize(mask)
    graph = SkeletonGraph(length_mm)
    if np.count_nonzero(skel) < 2:
        return graph
    sk = Skeleton(skel.astype(bool))
    coords = np.asarray(sk.coordinates, dtype=np.float64)
    for path in sk.paths_list():
        path = np.asarray(path)
        u, v = int(path[0]), int(path[-1])
        if u == v:
            continue  # a closed loop is no branch
        graph.pos[u], graph.pos[v] = coords[u], coords[v]
        graph.add(u, v, coords[path])
    return graph


def median_radius(path: np.ndarray, radius: np.ndarray) -> float:
    n = len(path)
    middle = path[n // 4: max(n - n // 4, n // 4 + 1)]
    idx = np.rint(middle).astype(int)
    return float(np.median(radius[idx[:, 0], idx[:, 1], idx[:, 2]]))


def _radius_at(radius: np.ndarray, index: np.ndarray) -> float:
    i, j, k = (round(float(c)) for c in index)
    return float(radius[i, j, k])


def centreline_length(world: np.ndarray) -> float:
    """Length of a centreline (RAS mm points), smoothed first so the voxel staircase does not add length."""
    if len(world) < 2:
        return 0.0
    smooth = _smooth(world)
    return float(np.linalg.norm(np.diff(smooth, axis=0), axis=1).sum())


def _smooth(points: np.ndarray, half_window: int = SMOOTH_HALF_WINDOW) -> np.ndarray:
    """Moving average along the path (window shrinking near the ends); the end points stay put."""
    n = len(points)
    if n < 3:
        return points
    csum = np.vstack([np.zeros((1, 3)), np.cumsum(points, axis=0)])
    i = np.arange(n)
    h = np.minimum(np.minimum(i, n - 1 - i), half_window)
    return (csum[i + h + 1] - csum[i - h]) / (2 * h + 1)[:, None]
