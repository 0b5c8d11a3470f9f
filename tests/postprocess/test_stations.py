"""IASLC stations and zones of nodes placed in a schematic thorax with known landmark levels."""
from __future__ import annotations

import numpy as np
import pytest

from tests.postprocess.synthetic import THORAX_NODES, thorax
from volseg.postprocess.landmarks import find_landmarks
from volseg.postprocess.stations import StationMapper


def _node_points(nodes, affine, n):
    return np.argwhere(nodes == n) @ affine[:3, :3].T + affine[:3, 3]


@pytest.fixture(scope="module")
def full():
    organs, nodes, affine, names = thorax()
    return organs, nodes, affine, names, find_landmarks(organs, affine, names)


def test_landmark_levels_follow_the_drawn_anatomy(full):
    *_, lm = full
    levels = lm.levels
    assert levels["carina"] == pytest.approx(0.0, abs=2.0)  # trachea tube ends at z = 0
    assert levels["manubrium_top"] == pytest.approx(80.0, abs=2.0)
    assert levels["arch_top"] == pytest.approx(50.0, abs=2.0)  # arch centre line z = 40, radius 10
    assert 25.0 <= levels["arch_bottom"] <= 35.0
    assert levels["bcv_caudal"] == pytest.approx(60.0, abs=3.0)
    assert levels["azygos_arch_bottom"] == pytest.approx(14.0, abs=3.0)
    assert levels["lpa_top"] == pytest.approx(6.0, abs=3.0)
    assert levels["bronchus_intermedius_bottom"] == pytest.approx(-45.0, abs=6.0)
    assert levels["lower_lobe_bronchus_top"] == pytest.approx(-25.0, abs=6.0)


def test_every_node_lands_in_its_station_and_zone(full):
    _, nodes, affine, _, lm = full
    mapper = StationMapper(lm)
    for n, (key, (_, _, station, zone)) in enumerate(THORAX_NODES.items(), start=1):
        result = mapper.assign(_node_points(nodes, affine, n))
        assert (result.station, result.zone) == (station, zone), (key, result)


@pytest.mark.parametrize("omit, unknown", [
    (("azygos",), {"4R", "10R"}),
    (("aorta",), {"2L", "6", "4L", "5", "10L"}),
    (("pulmonary_artery",), {"5", "10L"}),
    (("lung_airways",), {"7", "8"}),
    (("sternum",), {"1R", "2R", "2L"}),
])
def test_missing_landmarks_give_unknown_never_a_guess(omit, unknown):
    organs, nodes, affine, names = thorax(omit=omit)
    mapper = StationMapper(find_landmarks(organs, affine, names))
    for n, (key, (_, _, station, zone)) in enumerate(THORAX_NODES.items(), start=1):
        result = mapper.assign(_node_points(nodes, affine, n))
        if key in unknown:
            assert result.station == "unknown" and result.zone == "unknown", (key, result)
            assert result.note
        else:
            assert (result.station, result.zone) == (station, zone), (key, result)


def test_without_a_trachea_nothing_is_placed():
    organs, nodes, affine, names = thorax(omit=("trachea", "lung_airways"))
    result = StationMapper(find_landmarks(organs, affine, names)).assign(_node_points(nodes, affine, 1))
    assert (result.station, result.zone) == ("unknown", "unknown")
    assert "trachea" in result.note


def test_node_below_the_lung_bases_is_extrathoracic(full):
    *_, lm = full
    below = np.array([[0.0, 0.0, -155.0], [1.0, 0.0, -155.0]])
    assert StationMapper(lm).assign(below).zone == "extrathoracic"
