"""Resampling matrices against skimage / nnU-Net, and exact export against dense score resampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from volseg.segmenters.backends.nnunet_resampling import (
    Resampling,
    export_axis_maps,
    plan_resampling,
    resample_volume,
    separate_z,
)
from volseg.segmenters.engine import export
from volseg.segmenters.engine.export import (
    AffineHead,
    LabelDecoder,
    exact_labels,
    model_grid_codes,
    nearest_labels,
)
from volseg.segmenters.engine.resample import AxisMap, apply_separable, nearest_indices, zoom_matrix
from volseg.segmenters.engine.sliding_window import Blend

default_resampling = pytest.importorskip("nnunetv2.preprocessing.resampling.default_resampling")
resample_torch = pytest.importorskip("nnunetv2.preprocessing.resampling.resample_torch")


def _smooth(shape, seed=0, channels=1):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    data = rng.normal(size=(channels, *shape))
    return np.stack([ndimage.gaussian_filter(c, 1.5) * 40 for c in data]).astype(np.float32)


@pytest.mark.parametrize("order", [0, 1, 3])
def test_separable_zoom_equals_skimage_resize(order):
    from skimage.transform import resize

    x = _smooth((23, 31, 17))[0].astype(np.float64)
    new = (40, 19, 17)
    expected = resize(x, new, order, mode="edge", anti_aliasing=False)
    matrices = {d: zoom_matrix(n, m, order) for d, (n, m) in enumerate(zip(x.shape, new)) if n != m}
    ours = apply_separable(torch.from_numpy(x).float(), matrices).double().numpy()
    if order == 3:
        ours = np.clip(ours, x.min(), x.max())
    np.testing.assert_allclose(ours, expected, atol=1e-4)


@pytest.mark.parametrize("current, new", [
    ((2.5, 2.0, 2.2), (4.0, 3.0, 3.0)),   # ordinary: cubic everywhere, clipped
    ((1.2, 1.2, 3.9), (3.0, 3.0, 3.0)),   # anisotropic input: separate axis 2
    ((3.0, 3.0, 3.0), (0.9, 0.9, 4.0)),   # anisotropic target: separate axis 2
])
def test_image_resampling_equals_nnunet(current, new):
    data = _smooth((30, 26, 12), seed=1)
    shape = default_resampling.compute_new_shape(data.shape[1:], current, new)
    kwargs = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    expected = default_resampling.resample_data_or_seg_to_shape(data, shape, current, new, **kwargs)
    plan = plan_resampling(Resampling.from_plans("resample_data_or_seg_to_shape", kwargs), data.shape[1:],
                           shape, current, new)
    ours = resample_volume(torch.from_numpy(data), plan).numpy()
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=2e-4)


def test_torch_resampling_equals_nnunet_torch_fn():
    data = _smooth((20, 22, 9), seed=2)
    current, new = (1.0, 1.0, 3.5), (2.0, 2.0, 2.0)
    shape = [int(s) for s in default_resampling.compute_new_shape(data.shape[1:], current, new)]
    expected = resample_torch.resample_torch_fornnunet(torch.from_numpy(data), shape, current, new, is_seg=False,
                                                       force_separate_z=None)
    plan = plan_resampling(Resampling.from_plans("resample_torch_fornnunet", {"is_seg": False}),
                           data.shape[1:], shape, current, new)
    torch.testing.assert_close(resample_volume(torch.from_numpy(data), plan), expected.float(), atol=1e-4,
                               rtol=1e-5)


def test_separate_z_decision_equals_nnunet():
    cases = [((1, 1, 4), (3, 3, 3)), ((3, 3, 3), (1, 1, 4)), ((2, 2, 2), (3, 3, 3)), ((0.5, 2, 2), (3, 3, 3)),
             ((5, 1, 1), (2, 2, 2)), ((1, 1, 1), (1, 1, 1))]
    for force in (None, True, False):
        for current, new in cases:
            do, axis = default_resampling.determine_do_sep_z_and_axis(force, current, new)
            assert separate_z(force, current, new) == (axis if do else None), (force, current, new)


def test_axis_map_refuses_cubic_and_reads_linear():
    with pytest.raises(ValueError, match="convex"):
        AxisMap.from_matrix(zoom_matrix(10, 17, 3))
    m = AxisMap.from_matrix(zoom_matrix(10, 17, 1))
    assert m.two_tap and np.all(m.hi - m.lo <= 1)
    np.testing.assert_allclose(m.w_lo + m.w_hi, 1.0)
    assert np.array_equal(m.nearest, nearest_indices(10, 17))


def _blend_from_logits(logits: torch.Tensor, pad: int = 2) -> tuple[Blend, tuple[slice, ...]]:
    """A Blend whose normalised sums are ``logits`` inside a padded grid with uneven weights."""
    c, *shape = logits.shape
    padded = [s + 2 * pad for s in shape]
    weights = torch.rand(padded, generator=torch.Generator().manual_seed(0)) + 0.5
    sums = torch.zeros((c, *padded))
    keep = tuple(slice(pad, pad + s) for s in shape)
    sums[(slice(None), *keep)] = logits * weights[keep]
    return Blend(sums, weights, 1, 1), keep


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("current, new", [((4.0, 3.0, 3.0), (2.5, 2.0, 2.2)), ((4.0, 3.0, 3.0), (4.0, 1.2, 1.2)),
                                          ((3.0, 3.0, 3.0), (3.0, 3.0, 3.0))])
def test_exact_export_equals_dense_score_resampling(current, new, dense, monkeypatch):
    monkeypatch.setattr(export, "_DENSE_ABOVE", -1.0 if dense else 2.0)
    logits = torch.from_numpy(_smooth((14, 17, 15), seed=3, channels=5))
    model_shape = tuple(logits.shape[1:])
    out_shape = default_resampling.compute_new_shape(model_shape, current, new)
    spec = Resampling.from_plans("resample_data_or_seg_to_shape", {"order": 1, "order_z": 0,
                                                                    "force_separate_z": None})
    resampled = default_resampling.resample_data_or_seg_to_shape(logits.numpy(), out_shape, current, new,
                                                                is_seg=False, order=1, order_z=0,
                                                                force_separate_z=None)
    expected = resampled.argmax(0)
    blend, keep = _blend_from_logits(logits)
    decoder = LabelDecoder(tuple(range(5)))
    codes = model_grid_codes(blend, keep, decoder)
    assert torch.equal(codes.long(), logits.argmax(0))
    maps = export_axis_maps(spec, model_shape, out_shape, current, new)
    exact = exact_labels(codes, blend, keep, maps, decoder).numpy()
    assert exact.shape == tuple(out_shape)
    assert (exact == expected).mean() > 0.9999
    nearest = nearest_labels(decoder.labels(codes), maps).numpy()
    if current != new:
        assert (nearest == expected).mean() < (exact == expected).mean()


@pytest.mark.parametrize("dense", [False, True])
def test_exact_export_through_a_head_and_regions(dense, monkeypatch):
    monkeypatch.setattr(export, "_DENSE_ABOVE", -1.0 if dense else 2.0)
    rng = np.random.default_rng(4)
    features = torch.from_numpy(_smooth((12, 13, 11), seed=5, channels=4)) / 40
    head = AffineHead(torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32)),
                      torch.from_numpy(rng.normal(size=3).astype(np.float32)))
    logits = head(features.reshape(4, -1).T).T.reshape(3, *features.shape[1:])
    current, new = (3.0, 3.0, 3.0), (2.0, 2.3, 1.7)
    out_shape = default_resampling.compute_new_shape(features.shape[1:], current, new)
    resampled = default_resampling.resample_data_or_seg_to_shape(logits.numpy(), out_shape, current, new,
                                                                is_seg=False, order=1, order_z=0)
    spec = Resampling("spline", 1, 0, None)
    maps = export_axis_maps(spec, features.shape[1:], out_shape, current, new)
    blend, keep = _blend_from_logits(features)
    regions = LabelDecoder((1, 2, 3), regions=True)
    codes = model_grid_codes(blend, keep, regions, head)
    labels = exact_labels(codes, blend, keep, maps, regions, head).numpy()
    expected = np.zeros(out_shape, np.int32)
    for i, value in enumerate((1, 2, 3)):
        expected[resampled[i] > 0] = value
    assert (labels == expected).mean() > 0.9999


def test_relabelled_decoder_drops_and_renames():
    decoder = LabelDecoder((0, 1, 2, 3)).relabelled({1: 7, 3: 300})
    codes = torch.tensor([0, 1, 2, 3])
    assert decoder.labels(codes).tolist() == [0, 7, 0, 300]
    assert decoder.labels(codes).dtype == torch.int32


@pytest.mark.parametrize("n_in, n_out", [(7, 13), (40, 17), (224, 112), (9, 9)])
@pytest.mark.parametrize("order", [0, 1, 3])
def test_axis_matrices_are_the_reference_operation_on_unit_vectors(n_in, n_out, order):
    from scipy import ndimage

    from volseg.segmenters.engine.resample import coordinate_matrix

    coords = (n_in / n_out * (np.arange(n_out) + 0.5) - 0.5)[None]
    for j in range(0, n_in, max(1, n_in // 7)):
        unit = np.zeros(n_in)
        unit[j] = 1.0
        np.testing.assert_allclose(zoom_matrix(n_in, n_out, order)[:, j],
                                   ndimage.zoom(unit, n_out / n_in, order=order, mode="nearest", grid_mode=True),
                                   atol=1e-12)
        np.testing.assert_allclose(coordinate_matrix(n_in, n_out, order)[:, j],
                                   ndimage.map_coordinates(unit, coords, order=order, mode="nearest"), atol=1e-12)
