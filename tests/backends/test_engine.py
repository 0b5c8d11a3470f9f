"""The engine's pieces against nnU-Net's own functions and against analytic known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from volseg.errors import ModelError, UsageError
from volseg.segmenters.engine import infer as infer_module
from volseg.segmenters.engine import sliding_window
from volseg.segmenters.engine.gaussian import gaussian_weights
from volseg.segmenters.engine.infer import run_windows
from volseg.segmenters.engine.oom import Attempt, next_attempt, with_oom_fallback
from volseg.segmenters.engine.settings import EngineSettings
from volseg.segmenters.engine.tiling import pad_to_patch, window_grid, window_starts

nnunet_swp = pytest.importorskip("nnunetv2.inference.sliding_window_prediction")


@pytest.mark.parametrize("patch", [(128, 112, 112), (48, 64, 64), (5, 7, 9), (33, 20, 17)])
@pytest.mark.parametrize("dtype, scale", [(torch.float32, 1.0), (torch.float16, 10.0), (torch.float64, 1.0)])
def test_gaussian_weights_equal_nnunet_exactly(patch, dtype, scale):
    ours = gaussian_weights(patch, value_scale=scale, dtype=dtype)
    theirs = nnunet_swp.compute_gaussian(patch, sigma_scale=1.0 / 8, value_scaling_factor=scale, dtype=dtype,
                                         device=torch.device("cpu"))
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    assert torch.equal(ours, theirs)
    assert float(ours.min()) > 0


def test_window_starts_equal_nnunet():
    for size in (64, 65, 80, 93, 110, 150, 160, 321):
        for patch in (48, 64, 112, 128):
            if size < patch:
                continue
            for step in (0.25, 0.5, 0.7, 1.0):
                ours = window_starts(size, patch, step)
                theirs = nnunet_swp.compute_steps_for_sliding_window((size,), (patch,), step)[0]
                assert ours == theirs, (size, patch, step)


def test_window_grid_covers_every_voxel_in_nnunet_order():
    grid = window_grid((88, 80, 93), (48, 64, 64), 0.5)
    assert len(grid) == 3 * 2 * 2
    assert [sl[2].start for sl in grid[:2]] == [0, 29]  # last axis varies fastest
    covered = np.zeros((88, 80, 93), bool)
    for sl in grid:
        covered[sl] = True
    assert covered.all()


def test_padding_is_centred_like_nnunet():
    from acvl_utils.cropping_and_padding.padding import pad_nd_image

    x = torch.arange(1 * 30 * 64 * 41, dtype=torch.float32).reshape(1, 30, 64, 41)
    ours, keep = pad_to_patch(x, (48, 64, 64))
    theirs, slicer = pad_nd_image(x, (48, 64, 64), "constant", {"value": 0}, True, None)
    assert torch.equal(ours, theirs)
    assert torch.equal(ours[(slice(None), *keep)], x)
    assert tuple(keep) == tuple(slicer[1:])


def _affine_predictor(channels: int):
    """A pointwise, translation- and flip-invariant 'network': channel c = (c+1)·x − c."""
    scale = torch.arange(1, channels + 1, dtype=torch.float32).view(1, channels, 1, 1, 1)

    def predict(x: torch.Tensor) -> torch.Tensor:
        return x * scale - (scale - 1)

    return predict, scale


@pytest.mark.parametrize("batch, mirror", [(1, False), (3, False), (2, True)])
def test_blending_a_pointwise_predictor_returns_it_exactly(batch, mirror):
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.normal(size=(1, 40, 50, 37)).astype(np.float32))
    predictor, _ = _affine_predictor(3)
    settings = EngineSettings(precision="fp32", window_batch=batch, mirror=mirror)
    run = run_windows(image, predictor, channels=3, patch=(32, 32, 32), settings=settings, mirror_axes=(0, 1, 2))
    blended = run.blend.sums / run.blend.weight_sum
    expected = predictor(image[None])[0]
    assert run.blend.windows == 2 * 3 * 2
    assert run.blend.passes_per_window == (8 if mirror else 1)
    torch.testing.assert_close(blended, expected, rtol=1e-5, atol=1e-5)


def test_small_images_are_padded_and_cut_back():
    image = torch.ones((1, 20, 30, 10))
    predictor, _ = _affine_predictor(2)
    run = run_windows(image, predictor, channels=2, patch=(32, 32, 32), settings=EngineSettings(precision="fp32"))
    assert tuple(run.blend.sums[(slice(None), *run.keep)].shape) == (2, 20, 30, 10)
    assert run.blend.windows == 1


def test_progress_reports_windows_done_of_total():
    seen = []
    predictor, _ = _affine_predictor(1)
    run_windows(torch.zeros((1, 40, 40, 40)), predictor, channels=1, patch=(32, 32, 32),
                settings=EngineSettings(precision="fp32", window_batch=3),
                progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen == [("sliding window", 0, 8), ("sliding window", 3, 8), ("sliding window", 6, 8),
                    ("sliding window", 8, 8)]


def test_out_of_memory_once_retries_with_a_smaller_window_batch(one_oom):
    calls = one_oom
    predictor, _ = _affine_predictor(2)
    image = torch.linspace(-1, 1, 40 * 40 * 40).reshape(1, 40, 40, 40)
    run = run_windows(image, predictor, channels=2, patch=(32, 32, 32),
                      settings=EngineSettings(precision="fp32", window_batch=4))
    assert calls[0] == 4 and set(calls[1:]) == {2}
    assert run.window_batch == 2
    assert run.fallbacks == ["CUDA out of memory: window batch reduced from 4 to 2"]
    torch.testing.assert_close(run.blend.sums / run.blend.weight_sum, predictor(image[None])[0])


def test_other_errors_are_not_swallowed(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("not a memory problem")

    monkeypatch.setattr(sliding_window, "predict_windows", broken)
    predictor, _ = _affine_predictor(1)
    with pytest.raises(RuntimeError, match="not a memory problem"):
        run_windows(torch.zeros((1, 32, 32, 32)), predictor, channels=1, patch=(32, 32, 32),
                    settings=EngineSettings(precision="fp32", window_batch=2))


def test_out_of_memory_moves_scores_to_cpu_then_gives_up():
    gpu = torch.device("cuda")  # a device object only; nothing is allocated on it
    step = next_attempt(Attempt(1, gpu), allow_cpu_accumulator=True)
    assert step is not None and step[0].accumulator_device.type == "cpu"
    assert "CPU memory" in step[1]
    assert next_attempt(step[0], allow_cpu_accumulator=True) is None
    assert next_attempt(Attempt(1, gpu), allow_cpu_accumulator=False) is None

    seen = []

    def always_oom(attempt):
        seen.append((attempt.window_batch, attempt.accumulator_device.type))
        raise torch.cuda.OutOfMemoryError("injected")

    with pytest.raises(ModelError, match="out of GPU memory"):
        with_oom_fallback(always_oom, Attempt(2, gpu), compute_device=torch.device("cpu"))
    assert seen == [(2, "cuda"), (1, "cuda"), (1, "cpu")]


def test_run_windows_uses_the_oom_wrapper(monkeypatch):
    used = []
    real = infer_module.with_oom_fallback

    def spy(run, first, **kwargs):
        used.append(first)
        return real(run, first, **kwargs)

    monkeypatch.setattr(infer_module, "with_oom_fallback", spy)
    predictor, _ = _affine_predictor(1)
    run_windows(torch.zeros((1, 32, 32, 32)), predictor, channels=1, patch=(32, 32, 32),
                settings=EngineSettings(precision="fp32", accumulator="cpu"))
    assert used[0].accumulator_device.type == "cpu"


def test_settings_are_validated():
    with pytest.raises(UsageError, match="window step"):
        EngineSettings(step=0)
    with pytest.raises(UsageError, match="invalid export"):
        EngineSettings(export="cubic")
    with pytest.raises(UsageError, match="unknown engine setting"):
        EngineSettings().with_options(overlap=0.5)
    assert EngineSettings().with_options(step=0.25, mirror=None).step == 0.25


def test_engine_blends_with_nnunet_predictors_own_weights():
    """nnUNetPredictor makes its map in float16 with value scale 10: tails below float16's range take
    the smallest weight. The engine blends with those values (in float32), not the float32 map."""
    from volseg.segmenters.engine.gaussian import blending_weights

    patch = (128, 112, 112)
    theirs = nnunet_swp.compute_gaussian(patch, sigma_scale=1.0 / 8, value_scaling_factor=10, dtype=torch.float16,
                                         device=torch.device("cpu"))
    ours = blending_weights(patch)
    assert ours.dtype == torch.float32 and torch.equal(ours, theirs.float())
    corner = float(ours[0, 0, 0])
    assert corner == float(ours.min()) and float(ours[0, 0, 1]) == corner  # flattened tails, as nnU-Net's
    assert float(gaussian_weights(patch)[0, 0, 1]) > float(gaussian_weights(patch)[0, 0, 0])  # float32 map
