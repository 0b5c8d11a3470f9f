"""Fixtures of the backend tests: the trained phantom nnU-Net model, shared by the whole session."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The test networks are tiny: on a busy shared host one thread is ~10× faster than two
    (each small op's OpenMP fork/join waits for a descheduled thread)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def phantom_model(request, tmp_path_factory) -> Path:
    """The small trained nnU-Net model folder (trained once; reused across runs via .pytest_cache)."""
    pytest.importorskip("nnunetv2")
    from tests.factories.nnunet_model import cached_model

    cache = getattr(request.config, "cache", None)
    base = Path(cache.mkdir("volseg-nnunet-phantom-model")) if cache is not None \
        else tmp_path_factory.mktemp("nnunet-phantom-model")
    return cached_model(base)


@pytest.fixture()
def random_model(tmp_path) -> Path:
    """An untrained model folder with the phantom model's plans (fast)."""
    pytest.importorskip("nnunetv2")
    from tests.factories.nnunet_model import FOLDER_NAME, write_random_model

    return write_random_model(tmp_path / FOLDER_NAME)


@pytest.fixture(scope="session")
def nnunet_labels(phantom_model):
    """nnUNetPredictor's labels for the exported-model cases (the reference the backends must match)."""
    from tests.factories.exported_models import nnunet_reference

    return nnunet_reference(str(phantom_model))


@pytest.fixture()
def one_oom(monkeypatch) -> list[int]:
    """The first window batch the engine predicts raises CUDA out-of-memory; returns the batch sizes seen."""
    import torch

    from volseg.segmenters.engine import sliding_window

    calls: list[int] = []
    real = sliding_window.predict_windows

    def flaky(predictor, x, **kwargs):
        calls.append(x.shape[0])
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(predictor, x, **kwargs)

    monkeypatch.setattr(sliding_window, "predict_windows", flaky)
    return calls
