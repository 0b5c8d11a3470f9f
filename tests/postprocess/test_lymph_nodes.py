"""Synthetic lymph nodes of known short axis land in the right RECIST class."""
from __future__ import annotations

import numpy as np
import pytest

from tests.postprocess.synthetic import centred_affine, ellipsoid, rotation
from volseg.postprocess.lesions import measure_instances
from volseg.postprocess.lymph_nodes import nodal_summary, short_axis_class


@pytest.mark.parametrize("value, expected", [
    (None, None), (0.0, "<10 mm"), (9.99, "<10 mm"), (10.0, "10-<15 mm"), (14.99, "10-<15 mm"),
    (15.0, ">=15 mm"), (40.0, ">=15 mm"),
])
def test_thresholds(value, expected):
    assert short_axis_class(value) == expected


def test_nodes_of_known_short_axis_land_in_their_class():
    # three nodes, short axes 7, 12 and 19 mm (long axes 1.6× that), in-plane rotated, on an
    # anisotropic LPS grid
    spacing, shape = (0.7, 0.7, 1.5), (160, 90, 40)
    affine = centred_affine(spacing, np.diag([-1.0, -1.0, 1.0]), shape)
    labels = np.zeros(shape, dtype=np.uint8)
    short_axes = {(-35.0, 0.0, 0.0): 7.0, (0.0, 0.0, 0.0): 12.0, (35.0, 0.0, 0.0): 19.0}
    frame = rotation("z", 25)
    for centre, short in short_axes.items():
        labels[ellipsoid(shape, affine, centre, (0.8 * short, 0.5 * short, 0.5 * short), frame)] = 1
    found = measure_instances(labels, affine, {1: "lymph_nodes"})
    assert len(found) == 3
    by_x = sorted(found, key=lambda m: m.centroid_ras_mm[0])
    diagonal = float(np.linalg.norm(spacing))
    for node, (centre, short) in zip(by_x, sorted(short_axes.items())):
        assert node.kind == "lymph_node"
        assert node.short_axis_mm == pytest.approx(short, abs=diagonal)
        assert node.short_axis_class == short_axis_class(short)
    assert [n.short_axis_class for n in by_x] == ["<10 mm", "10-<15 mm", ">=15 mm"]
    summary = nodal_summary((n.short_axis_mm, n.volume_ml) for n in found)
    assert summary.counts_by_class == {"<10 mm": 1, "10-<15 mm": 1, ">=15 mm": 1}
    assert summary.total_volume_ml == pytest.approx(sum(n.volume_ml for n in found))
    expected_ml = sum(4 / 3 * np.pi * 0.8 * 0.25 * s ** 3 for s in short_axes.values()) / 1000
    assert summary.total_volume_ml == pytest.approx(expected_ml, rel=0.03)
