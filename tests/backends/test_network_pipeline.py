"""The one preprocessing pipeline and the one intensity vocabulary: rules as data, with known answers."""
from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from volseg.errors import ModelError
from volseg.segmenters.intensity import (
    FROM_MODEL,
    ClipZScore,
    NoNormalisation,
    PresetKind,
    RescaleTo01,
    ZScore,
    from_nnunet_scheme,
)

torch = pytest.importorskip("torch")


def test_the_two_model_grid_rules_differ_and_both_are_kept_exact():
    from volseg.segmenters.backends.network_pipeline import model_grid

    # 1.2 / 0.8 · 5 = 7.499999999999999 (nnU-Net's compute_new_shape) but 5 · 1.2 / 0.8 = 7.5 → 8
    assert model_grid((5,), (1.2,), (0.8,), "nnunet") == (7,)
    assert model_grid((5,), (1.2,), (0.8,), "round") == (8,)
    assert model_grid((1,), (0.3,), (1.0,), "nnunet") == (0,)  # nnU-Net allows an empty axis ...
    assert model_grid((1,), (0.3,), (1.0,), "round") == (1,)  # ... the window backends keep one voxel
    assert model_grid((100, 40), (1.0, 2.5), (1.5, 1.5), "round") == (67, 67)


def test_nnunet_schemes_are_presets_of_the_one_vocabulary():
    props = {"percentile_00_5": -15, "percentile_99_5": 100, "mean": 42.5, "std": 57.5}
    ct = from_nnunet_scheme("CTNormalization", use_mask=False, properties=props)
    assert ct == ClipZScore(kind="clip_zscore", clip=(-15.0, 100.0), mean=42.5, std=57.5)
    x = torch.tensor([[[[-1000.0, -15.0, 42.5, 100.0, 500.0]]]])
    torch.testing.assert_close(ct.apply(x), torch.tensor([[[[-1.0, -1.0, 0.0, 1.0, 1.0]]]]))
    assert from_nnunet_scheme("NoNormalization", use_mask=False, properties={}) == NoNormalisation(kind="none")
    rescale = from_nnunet_scheme("RescaleTo01Normalization", use_mask=False, properties={})
    assert rescale == RescaleTo01(kind="rescale_01")
    torch.testing.assert_close(rescale.apply(torch.tensor([[[[2.0, 4.0, 6.0]]]])), torch.tensor([[[[0.0, 0.5, 1.0]]]]))
    with pytest.raises(ModelError, match="lack the CT intensity property 'std'"):
        from_nnunet_scheme("CTNormalization", use_mask=False, properties={k: v for k, v in props.items() if k != "std"})
    with pytest.raises(ModelError, match="scheme 'Foo' is not supported"):
        from_nnunet_scheme("Foo", use_mask=False, properties={})


def test_masked_zscore_fills_holes_only_for_nnunet():
    # a 3×3×3 cube of 2s (its middle slice 4s) around a zero hole, zeros outside: nnU-Net's mask (holes
    # filled) normalises the hole, a plain non-zero mask leaves it at 0
    x = torch.zeros((1, 5, 5, 5))
    x[0, 1:4, 1:4, 1:4] = 2.0
    x[0, 2, 1:4, 1:4] = 4.0
    x[0, 2, 2, 2] = 0.0
    nnunet = from_nnunet_scheme("ZScoreNormalization", use_mask=True, properties={})
    assert nnunet == ZScore(kind="zscore", nonzero=True, fill_holes=True)
    filled = nnunet.apply(x.clone())
    inside = np.array([2.0] * 18 + [4.0] * 8 + [0.0])
    assert float(filled[0, 2, 2, 2]) == pytest.approx((0.0 - inside.mean()) / inside.std(), rel=1e-6)
    assert float(filled[0, 0, 0, 0]) == 0.0  # outside the mask: unchanged
    plain = ZScore(kind="zscore", nonzero=True).apply(x.clone())  # MONAI's nonzero
    ring = inside[:-1]
    assert float(plain[0, 2, 2, 2]) == 0.0
    assert float(plain[0, 1, 1, 1]) == pytest.approx((2.0 - ring.mean()) / ring.std(), rel=1e-6)
    everything = ZScore(kind="zscore").apply(x.clone())
    assert float(everything.mean()) == pytest.approx(0.0, abs=1e-6)


def test_crop_rules():
    from volseg.segmenters.backends.network_pipeline import BodyCrop, crop_box

    x = torch.zeros((1, 10, 10, 10))
    x[0, 1:3, 2:5, 6:9] = 7.0
    assert crop_box(x, (1.0, 1.0, 1.0), "none") == (slice(0, 10),) * 3
    assert crop_box(x, (1.0, 1.0, 1.0), "nonzero") == (slice(1, 3), slice(2, 5), slice(6, 9))
    ct = torch.full((1, 10, 10, 10), -1000.0)
    ct[0, 4:6, 4:6, 4:6] = 40.0  # the body; the margin is 2 mm = (2, 2, 1) voxels
    body = crop_box(ct, (1.0, 1.0, 2.0), BodyCrop(threshold=-500.0, margin_mm=2.0))
    assert body == (slice(2, 8), slice(2, 8), slice(3, 7))
    ct[0, :, :, 3] = 0.0  # ... then the non-zero box inside it (zeros below the threshold)
    assert crop_box(ct, (1.0, 1.0, 2.0), BodyCrop(threshold=10.0, margin_mm=2.0)) == \
        (slice(2, 8), slice(2, 8), slice(4, 7))


def test_one_intensity_vocabulary_in_the_catalogue():
    from volseg.segmenters.catalogue import Intensity as CatalogueIntensity
    from volseg.segmenters.catalogue import get_entry

    kinds = get_args(CatalogueIntensity.model_fields["kind"].annotation)
    assert set(kinds) == set(get_args(PresetKind)) | {FROM_MODEL}
    assert get_entry("total").input.intensity.kind == FROM_MODEL
    assert get_entry("total").input.intensity.preset() is None
    blast = get_entry("blast-ct").input.intensity.preset()
    assert (blast.kind, blast.window, blast.output_range) == ("window", (-15.0, 100.0), (-1.0, 1.0))
    with pytest.raises(ValueError, match="window preset: Extra inputs are not permitted at nonzero"):
        CatalogueIntensity(kind="window", window=(0, 1), nonzero=True)
    with pytest.raises(ValueError, match="clip_zscore preset: Input should be greater than 0 at std"):
        CatalogueIntensity(kind="clip_zscore", clip=(0, 1), mean=0.0, std=0.0)


def test_one_strict_base():
    from volseg.segmenters.backends import window_pipeline
    from volseg.segmenters.intensity import WindowPreset
    from volseg.strict import StrictModel

    assert not hasattr(window_pipeline, "_Strict")
    assert issubclass(window_pipeline.NetworkInput, StrictModel) and issubclass(WindowPreset, StrictModel)


def test_pipeline_spec_is_valid_once_built():
    from volseg.segmenters.backends.network_pipeline import PipelineSpec

    none = NoNormalisation(kind="none")
    spec = PipelineSpec(axes=(2, 0, 1), intensity=none, patch=(8, 8, 8), crop="nonzero", model_grid="nnunet")
    assert spec.image_resampling == "linear" and spec.score_resampling == "linear"
    with pytest.raises(ValueError, match="axes must be a permutation of 0..2; patch needs 3 positive sizes"):
        PipelineSpec(axes=(0, 0, 1), intensity=none, patch=(8, 0, 8))
    with pytest.raises(ValueError, match="crop 'body'; model_grid 'ceil'"):
        PipelineSpec(axes=(0, 1, 2), intensity=none, patch=(8, 8, 8), crop="body", model_grid="ceil")


def _whole_pipeline(array, spacing, spec, net, settings):
    """The pipeline as wired before the streaming engine: whole-grid sums, codes, then the export."""
    from volseg.segmenters.backends.network_pipeline import preprocess, score_maps
    from volseg.segmenters.engine.export import exact_labels, model_grid_codes, nearest_labels
    from volseg.segmenters.engine.infer import run_windows

    x, prep = preprocess(array, spacing, spec, torch.device("cpu"))
    run = run_windows(x, net.predictor, channels=net.channels, patch=spec.patch, settings=settings)
    codes = model_grid_codes(run.blend, run.keep, net.decoder, net.head)
    maps = score_maps(spec.score_resampling, prep.model_shape, prep.in_shape, prep.target, prep.spacing)
    if settings.export == "exact":
        labels = exact_labels(codes, run.blend, run.keep, maps, net.decoder, net.head)
    else:
        labels = nearest_labels(net.decoder.labels(codes), maps)
    full = torch.zeros(tuple(array.shape[p] for p in spec.axes), dtype=labels.dtype)
    full[prep.box] = labels
    return full.permute(tuple(int(i) for i in np.argsort(spec.axes))).numpy()


@pytest.mark.parametrize("export, head", [("exact", False), ("exact", True), ("nearest", False)])
def test_run_on_array_streams_the_windows_with_the_labels_and_report_fields_of_the_whole_engine(export, head):
    from scipy import ndimage

    from volseg.segmenters.backends.network_pipeline import BodyCrop, Network, PipelineSpec, run_on_array
    from volseg.segmenters.engine.export import AffineHead, LabelDecoder
    from volseg.segmenters.engine.settings import EngineSettings

    rng = np.random.default_rng(3)
    array = (ndimage.gaussian_filter(rng.normal(size=(30, 52, 24)), 2.0) * 4000 - 300).astype(np.int16)
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 4, 3, padding=1).eval()
    h = AffineHead(torch.randn(5, 4), torch.randn(5) * 0.1) if head else None
    net = Network(lambda x: torch.tanh(conv(x)) * 3, 4 if head else 5, LabelDecoder((0, 2, 1, 6, 3)), h)
    if not head:
        net = Network(lambda x: torch.cat([torch.tanh(conv(x)) * 3, -conv(x)[:, :1]], 1), 5, net.decoder)
    ct = ClipZScore(kind="clip_zscore", clip=(-1000.0, 1500.0), mean=0.0, std=500.0)
    spec = PipelineSpec(axes=(2, 1, 0), intensity=ct, patch=(16, 16, 16), spacing_mm=(3.0, 2.5, 2.0),
                        crop=BodyCrop(threshold=-900.0, margin_mm=2.0))
    settings = EngineSettings(precision="fp32", export=export)
    seen = []
    run = run_on_array(array, (1.5, 2.0, 2.6), spec, net, settings, device=torch.device("cpu"),
                       progress=lambda *a: seen.append(a))
    expected = _whole_pipeline(array, (1.5, 2.0, 2.6), spec, net, settings)
    assert run.labels.shape == array.shape and len(np.unique(expected)) >= 3
    assert np.array_equal(run.labels, expected)
    assert set(run.timings) == {"preprocess", "sliding_window", "network_forward", "export"}
    assert all(v >= 0 for v in run.timings.values()) and run.timings["network_forward"] <= run.timings["sliding_window"]
    assert (run.accumulator, run.precision, run.fallbacks) == ("cpu", "fp32", [])
    assert ("scored_fraction" in run.stats) == (export == "exact")
    assert ("sliding window", run.windows, run.windows) in seen and seen[-1] == ("export", 1, 1)
