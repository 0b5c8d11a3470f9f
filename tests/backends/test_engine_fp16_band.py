"""The streaming engine's float16 band (class sums past FP32_BAND_LIMIT): when it is used, and the gate.

The gate: with every band forced to float16, labels still agree with ``nnUNetPredictor`` (which
accumulates in float16 itself) at least as well as ``tests/backends/test_nnunet_fidelity.py``
establishes for float32 sums (≥ 0.999 of voxels), on the model grid and with the exact export.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from volseg.segmenters.backends.nnunet_resampling import Resampling, export_axis_maps
from volseg.segmenters.engine import stream
from volseg.segmenters.engine.export import LabelDecoder
from volseg.segmenters.engine.settings import EngineSettings
from volseg.segmenters.engine.stream import band_dtype, segment_windows
from tests.backends.test_engine_stream import _conv_predictor, _image, _whole


def test_float16_sums_only_past_the_limit():
    assert stream.FP32_BAND_LIMIT == 2 << 30
    assert band_dtype(118, 128, (333, 333)) == torch.float16  # 118 logits: 6.9 GB in float32
    assert band_dtype(33, 128, (333, 333)) == torch.float32  # 32 blended features + weights: 1.9 GB
    assert band_dtype(26, 128, (273, 273)) == torch.float32  # a 25-class `total` part, full-size CT


def test_float16_band_labels_agree_with_float32_and_say_so(monkeypatch):
    image, predictor = _image((70, 30, 26)), _conv_predictor(5)
    maps = export_axis_maps(Resampling("spline", 1, 0, None), (70, 30, 26), (105, 39, 46), (3.0,) * 3,
                            (2.0, 2.3, 1.7))
    decoder, settings = LabelDecoder((0, 3, 1, 7, 2)), EngineSettings(precision="fp32")
    expected = _whole(image, predictor, 5, (16, 16, 16), settings, decoder, maps)
    monkeypatch.setattr(stream, "FP32_BAND_LIMIT", 0)
    run = segment_windows(image, predictor, channels=5, patch=(16, 16, 16), settings=settings, decoder=decoder,
                          maps=maps)
    assert run.accumulator == "cpu, fp16 sums"
    # a random convolution: every voxel is near a tie of 5 noisy scores (worst case); 0.998 measured
    assert float((run.labels == expected).float().mean()) >= 0.99
    assert len(torch.unique(expected)) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("case, blend", [("model_grid", "logits"), ("finer", "auto"), ("anisotropic", "logits")])
def test_float16_band_agrees_with_nnunet_as_the_fidelity_tests_require(phantom_model, fidelity_cases, case,
                                                                       blend, monkeypatch):
    cases = fidelity_cases
    pytest.importorskip("nnunetv2")
    from tests.backends.test_nnunet_fidelity import FP32, agreement, reference
    from volseg.io import read_image
    from volseg.segmenters.backends.nnunet import load_folder

    expected = reference(str(phantom_model), str(cases[case]))
    monkeypatch.setattr(stream, "FP32_BAND_LIMIT", 0)
    volume = read_image(cases[case]).volume
    segmenter = load_folder(str(phantom_model), device="cpu", folds=(0,), settings=FP32.with_options(blend=blend))
    got = segmenter.predict(volume).array
    assert agreement(got, expected) >= 0.999
    assert np.array_equal(np.unique(got), np.unique(expected))



@pytest.fixture(scope="module")
def fidelity_cases(tmp_path_factory):
    """The fidelity tests' inputs (the same phantoms, written again for this module)."""
    from tests.backends.test_nnunet_fidelity import CASES
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom

    folder = tmp_path_factory.mktemp("fp16-band-inputs")
    paths = {}
    for i, (name, (spacing, shape)) in enumerate(CASES.items()):
        phantom = make_phantom(shape, spacing, orientation="LPS", rotation_deg=4.0, seed=20 + i)
        paths[name] = write_nifti(phantom.image, folder / f"{name}.nii.gz")
    return paths
