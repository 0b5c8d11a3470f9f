"""The streaming engine (a band of rows about one patch deep) against the whole-volume engine: equal labels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from volseg.segmenters.backends.nnunet_resampling import Resampling, export_axis_maps
from volseg.segmenters.engine import export
from volseg.segmenters.engine.band import Band
from volseg.segmenters.engine.export import (
    AffineHead,
    LabelDecoder,
    exact_labels,
    model_grid_codes,
    nearest_labels,
)
from volseg.segmenters.engine.infer import run_windows
from volseg.segmenters.engine.settings import EngineSettings
from volseg.segmenters.engine.stream import segment_windows


def _conv_predictor(channels: int, seed: int = 0):
    """A small convolution with zero padding: outputs depend on where a window sits (edges)."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.Tanh(),
                              torch.nn.Conv3d(4, channels, 3, padding=1)).eval()
    return lambda x: net(x) * 4


def _image(shape, seed=1):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return torch.from_numpy(ndimage.gaussian_filter(rng.normal(size=shape), 2.0).astype(np.float32) * 8)[None]


def _whole(image, predictor, channels, patch, settings, decoder, maps, head=None):
    run = run_windows(image, predictor, channels=channels, patch=patch, settings=settings, mirror_axes=(0, 1, 2))
    codes = model_grid_codes(run.blend, run.keep, decoder, head)
    if settings.export == "exact":
        return exact_labels(codes, run.blend, run.keep, maps, decoder, head)
    return nearest_labels(decoder.labels(codes), maps)


CASES = [  # image shape, patch, step, model spacing → output spacing
    ((70, 30, 26), (16, 16, 16), 0.5, (3.0, 3.0, 3.0), (2.0, 2.3, 1.7)),  # 8 window rows along axis 0
    ((45, 20, 33), (12, 16, 16), 0.7, (4.0, 3.0, 3.0), (1.5, 1.2, 1.2)),  # separate z (nearest out of plane)
    ((10, 40, 12), (16, 16, 16), 0.5, (3.0, 3.0, 3.0), (3.0, 3.0, 3.0)),  # padded, one window row, same grid
    ((50, 18, 18), (16, 16, 16), 0.5, (2.0, 2.0, 2.0), (3.1, 2.5, 2.5)),  # output coarser than the model
]


@pytest.mark.parametrize("shape, patch, step, model_spacing, out_spacing", CASES)
@pytest.mark.parametrize("dense", [False, True])
def test_streamed_exact_labels_equal_the_whole_volume_engine(shape, patch, step, model_spacing, out_spacing,
                                                             dense, monkeypatch):
    monkeypatch.setattr(export, "_DENSE_ABOVE", -1.0 if dense else 2.0)
    from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

    image, predictor = _image(shape), _conv_predictor(5)
    out_shape = compute_new_shape(shape, model_spacing, out_spacing)
    maps = export_axis_maps(Resampling("spline", 1, 0, None), shape, out_shape, model_spacing, out_spacing)
    decoder = LabelDecoder((0, 3, 1, 7, 2))
    settings = EngineSettings(precision="fp32", step=step)
    expected = _whole(image, predictor, 5, patch, settings, decoder, maps)
    run = segment_windows(image, predictor, channels=5, patch=patch, settings=settings, decoder=decoder, maps=maps)
    assert run.labels.shape == tuple(out_shape)
    assert len(torch.unique(expected)) >= 3  # a real label map, not one class
    assert torch.equal(run.labels, expected)
    assert run.band_rows <= patch[0] + 2 < shape[0] or shape[0] <= patch[0]
    assert 0.0 < run.scored_fraction <= 1.0 or model_spacing == out_spacing


@pytest.mark.parametrize("batch, mirror", [(2, False), (1, True)])
def test_streamed_labels_with_a_head_regions_batches_and_mirroring(batch, mirror):
    image, predictor = _image((40, 24, 20), seed=2), _conv_predictor(4, seed=3)
    rng = np.random.default_rng(4)
    head = AffineHead(torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32)),
                      torch.from_numpy(rng.normal(size=3).astype(np.float32)))
    out_shape = (52, 30, 17)
    maps = export_axis_maps(Resampling("spline", 1, 0, None), (40, 24, 20), out_shape, (2.6, 2.5, 2.0),
                            (2.0, 2.0, 2.35))
    regions = LabelDecoder((1, 2, 3), regions=True)
    settings = EngineSettings(precision="fp32", window_batch=batch, mirror=mirror)
    expected = _whole(image, predictor, 4, (16, 16, 16), settings, regions, maps, head)
    run = segment_windows(image, predictor, channels=4, patch=(16, 16, 16), settings=settings, decoder=regions,
                          maps=maps, head=head, mirror_axes=(0, 1, 2))
    assert torch.equal(run.labels, expected)
    assert run.passes_per_window == (8 if mirror else 1) and run.windows == 4 * 2 * 2


def test_streamed_nearest_export_and_report_fields():
    image, predictor = _image((60, 20, 20)), _conv_predictor(3)
    maps = export_axis_maps(Resampling("spline", 1, 0, None), (60, 20, 20), (90, 25, 25), (3.0,) * 3,
                            (2.0, 2.4, 2.4))
    settings = EngineSettings(precision="fp32", export="nearest")
    decoder = LabelDecoder((0, 1, 2))
    expected = _whole(image, predictor, 3, (16, 16, 16), settings, decoder, maps)
    seen = []
    run = segment_windows(image, predictor, channels=3, patch=(16, 16, 16), settings=settings, decoder=decoder,
                          maps=maps, progress=lambda *a: seen.append(a))
    assert torch.equal(run.labels, expected)
    assert (run.precision, run.window_batch, run.accumulator, run.fallbacks) == ("fp32", 1, "cpu", [])
    assert run.model_shape == (60, 20, 20) and run.scored_fraction == 0.0
    assert seen[0] == ("sliding window", 0, run.windows) and ("sliding window", run.windows, run.windows) in seen


def test_the_band_drops_rows_and_zeroes_new_ones():
    band = Band(2, 5, (3, 3), torch.device("cpu"))
    for row in range(5):
        band.sums[:, row] = row + 1
        band.weight_sum[row] = row + 1
    band.cover(3, 8)
    assert band.start == 3 and band.capacity == 5
    assert band.rows(3, 5)[0][0, :, 0, 0].tolist() == [4.0, 5.0]
    assert band.rows(5, 8)[1].abs().sum() == 0
    band.cover(4, 12)  # deeper than the band: it grows and keeps its rows
    assert band.capacity == 8 and band.rows(4, 5)[0][1, 0, 0, 0] == 5.0
    with pytest.raises(ValueError, match="outside the band"):
        band.rows(2, 4)


def test_streamed_out_of_memory_once_retries_with_a_smaller_window_batch(one_oom):
    image, predictor = _image((40, 20, 20)), _conv_predictor(3)
    maps = export_axis_maps(Resampling("spline", 1, 0, None), (40, 20, 20), (40, 20, 20), (2.0,) * 3, (2.0,) * 3)
    settings = EngineSettings(precision="fp32", window_batch=4)
    run = segment_windows(image, predictor, channels=3, patch=(16, 16, 16), settings=settings,
                          decoder=LabelDecoder((0, 1, 2)), maps=maps)
    assert one_oom[0] == 4 and set(one_oom[1:]) == {2}
    assert run.window_batch == 2 and run.fallbacks == ["CUDA out of memory: window batch reduced from 4 to 2"]
    assert torch.equal(run.labels, _whole(image, predictor, 3, (16, 16, 16), settings, LabelDecoder((0, 1, 2)), maps))
