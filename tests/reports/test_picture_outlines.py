"""Outlines traced per structure box, all in one collection, draw the same PNG bytes as one
``ax.contour`` call per label over the whole slice."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.labels import LabelTable
from volseg.reports import picture_outlines
from volseg.reports.picture_outlines import _outlines_whole, draw_outlines, label_boxes_2d, label_mask
from volseg.reports.pictures import _figure, _png


def _plane(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    plane = np.zeros((90, 70), dtype=np.uint8)
    for value in range(1, 9):
        r, c = rng.integers(0, 80), rng.integers(0, 60)
        h, w = rng.integers(2, 25, size=2)
        plane[r:r + h, c:c + w] = value
    plane[rng.random(plane.shape) < 0.02] = 5  # scattered pixels, some on the edges
    plane[0, :10] = 3
    return plane


class _NoAxes:
    """Axes that draw nothing (the tests look at what was traced)."""

    def add_collection(self, *a, **k):
        pass


def _draw(fn, plane, table, filled, **kw) -> bytes:
    fig, ax = _figure(plane.shape[1], plane.shape[0])
    ax.imshow(np.zeros(plane.shape), cmap="gray", vmin=0, vmax=1, aspect=1.0, interpolation="nearest")
    fn(ax, plane, table, filled=filled, emphasise=5, **kw)
    ax.set_xlim(-0.5, plane.shape[1] - 0.5)
    ax.set_ylim(plane.shape[0] - 0.5, -0.5)
    return _png(fig)


def _contour_per_label(ax, plane, table, *, filled, emphasise):
    """The reference: matplotlib's own ``ax.contour`` once per label, over the whole plane."""
    from volseg.reports.picture_outlines import label_rgb

    present = [int(v) for v in np.unique(plane) if v != 0]
    if filled and present:
        rgba = np.zeros(plane.shape + (4,), dtype=np.float32)
        for value in present:
            rgba[plane == value] = (*label_rgb(table, value), 0.55)
        ax.imshow(rgba, aspect=ax.get_aspect(), interpolation="nearest")
    for value in present:
        ax.contour((plane == value).astype(np.float32), levels=[0.5], colors=[label_rgb(table, value)],
                   linewidths=2.2 if value == emphasise else 1.1)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("filled", [False, True])
def test_boxed_outlines_are_byte_identical(seed, filled):
    plane = _plane(seed)
    table = LabelTable.from_names({i: f"class_{i}" for i in range(1, 9)})
    whole = _draw(_contour_per_label, plane, table, filled)
    assert _draw(_outlines_whole, plane, table, filled) == whole
    assert _draw(draw_outlines, plane, table, filled) == whole
    window = (0, plane.shape[0], 0, plane.shape[1])  # everything shown: nothing may be skipped
    assert _draw(draw_outlines, plane, table, filled, window=window) == whole


def test_boxes_grown_by_one_and_off_view_skip(monkeypatch):
    plane = np.zeros((10, 12), dtype=np.uint16)
    plane[3:5, 0:2] = 7
    plane[9, 11] = 300
    assert label_boxes_2d(plane) == {7: ((2, 6), (0, 3)), 300: ((8, 10), (10, 12))}
    calls = []
    monkeypatch.setattr(picture_outlines, "OFF_VIEW_PIXELS", 1)
    monkeypatch.setattr(picture_outlines._Outlines, "add", lambda self, mask, *a: calls.append(mask.shape))
    draw_outlines(_NoAxes(), plane, LabelTable.from_names({7: "a"}), filled=False, window=(0, 5, 0, 5))
    assert calls == [(4, 3)]  # label 300's box lies wholly outside the window


def test_label_mask_equals_isin():
    array = np.asfortranarray(np.random.default_rng(2).integers(0, 20, (9, 8, 7)).astype(np.uint8))[::-1]
    for values in ([3], [3, 5, 400], list(range(12))):
        np.testing.assert_array_equal(label_mask(array, values), np.isin(array, values))


def test_outlines_traced_only_near_the_window(monkeypatch):
    plane = np.zeros((60, 50), dtype=np.uint8)
    plane[5:55, 4:46] = 2  # one structure far larger than the view
    calls = []
    monkeypatch.setattr(picture_outlines, "OFF_VIEW_PIXELS", 2)

    def add(self, mask, origin, *a):
        (r0, c0), (h, w) = origin, mask.shape
        calls.append((r0, r0 + h, c0, c0 + w, mask.shape))

    monkeypatch.setattr(picture_outlines._Outlines, "add", add)
    draw_outlines(_NoAxes(), plane, LabelTable.from_names({2: "a"}), filled=False, window=(20, 30, 10, 15))
    # the window grown by OFF_VIEW_PIXELS + 1 = 3 on each side, not the structure's box (4..56, 3..47)
    assert calls == [(17, 33, 7, 18, (16, 11))]
    calls.clear()
    draw_outlines(_NoAxes(), plane, LabelTable.from_names({2: "a"}), filled=False, window=(0, 60, 0, 50))
    assert calls == [(4, 56, 3, 47, (52, 44))]  # all shown: the whole box, as before
