"""``skip_air``: windows wholly in air are not run; they add the network's answer for pure air."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from volseg.errors import UsageError
from volseg.segmenters.backends.network_pipeline import Network, PipelineSpec, run_on_array
from volseg.segmenters.engine.air import AirMask
from volseg.segmenters.engine.export import LabelDecoder
from volseg.segmenters.engine.settings import AIR_WINDOW_HU, EngineSettings
from volseg.segmenters.intensity import ClipZScore, ZScore

CT = ClipZScore(kind="clip_zscore", clip=(-1000.0, 1500.0), mean=0.0, std=500.0)


def test_window_box_on_the_input_grid_is_scaled_and_grown_by_the_margin():
    air = np.ones((20, 10, 10), dtype=bool)
    mask = AirMask(air, (10, 5, 5), -2.0)
    window = (slice(2, 6), slice(0, 5), slice(1, 3))
    # model rows 0..4 (offset 2) -> input 0..8, grown by 2 -> 0..10; axis 2: 1..3 -> 2..6 -> 0..8
    assert mask.covers(window, (2, 0, 0)) == (slice(0, 10), slice(0, 10), slice(0, 8))
    assert mask.is_air(window, (2, 0, 0))
    air[9, 5, 7] = False  # inside the box: the window is not air
    assert not mask.is_air(window, (2, 0, 0))
    air[9, 5, 7], air[15, 5, 5] = True, False  # outside it: still air
    assert mask.is_air(window, (2, 0, 0))
    with pytest.raises(ValueError):
        AirMask(air.astype(np.uint8), (10, 5, 5), 0.0)


def _scan() -> np.ndarray:
    """Rows 0..27 pure air (exactly the stand-in air window's HU), rows 28.. a body."""
    rng = np.random.default_rng(0)
    array = np.full((48, 20, 20), AIR_WINDOW_HU, dtype=np.int16)
    array[28:] = rng.integers(-400, 600, size=(20, 20, 20))
    return array


def _run(skip_air: bool, calls: list[int]):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 3, 1).eval()  # pointwise: a real air window gives the stand-in's answer

    def predictor(x):
        calls.append(x.shape[0])
        return torch.tanh(conv(x)) * 3

    net = Network(predictor, 3, LabelDecoder((0, 1, 2)))
    spec = PipelineSpec(axes=(0, 1, 2), intensity=CT, patch=(8, 8, 8))
    settings = EngineSettings(precision="fp32", skip_air=skip_air)
    return run_on_array(_scan(), (1.0, 1.0, 1.0), spec, net, settings, device=torch.device("cpu"))


def test_skipped_air_windows_give_the_same_labels_with_fewer_network_calls():
    full_calls: list[int] = []
    skip_calls: list[int] = []
    full, skipped = _run(False, full_calls), _run(True, skip_calls)
    assert len(np.unique(full.labels)) >= 2
    np.testing.assert_array_equal(skipped.labels, full.labels)
    # step 0.5 on 48 rows, patch 8: starts 0,4,...,40 (11 rows) x 4 x 4 windows; rows starting at
    # 0..20 end by row 28, and with the 2-voxel margin those ending at or before row 26 are air: 0..16
    assert full.windows == skipped.windows == 11 * 16
    assert skipped.stats["air_windows_skipped"] == 5 * 16
    assert len(skip_calls) == len(full_calls) - 5 * 16 + 1  # + the one stand-in air window
    assert "air_windows_skipped" not in full.stats


def test_skip_air_refuses_a_model_without_hu_intensities():
    net = Network(lambda x: torch.cat([x, -x], 1), 2, LabelDecoder((0, 1)))
    spec = PipelineSpec(axes=(0, 1, 2), intensity=ZScore(kind="zscore"), patch=(8, 8, 8))
    with pytest.raises(UsageError, match="--skip-air needs a CT model"):
        run_on_array(_scan(), (1.0, 1.0, 1.0), spec, net, EngineSettings(precision="fp32", skip_air=True),
                     device=torch.device("cpu"))


def test_skip_air_flag_reaches_the_engine_and_is_recorded_only_when_on():
    from volseg.cli.flags import segment_options
    from volseg.segmenters.engine_settings import engine_settings

    options = segment_options(skip_air=True)
    assert options.engine.skip_air is True and options.engine_flags() == {"skip-air": True}
    assert segment_options(skip_air=False).engine.skip_air is None  # --no-skip-air: the default (off)
    assert engine_settings(None, options.engine).skip_air is True
    assert "skip_air" not in EngineSettings().as_dict()
    assert EngineSettings(skip_air=True).as_dict()["skip_air"] is True
