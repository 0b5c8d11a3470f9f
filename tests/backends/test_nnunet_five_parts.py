"""``-m total``'s five networks merged as TotalSegmentator merges them, with tiny fabricated networks.

TotalSegmentator 2.18 (``nnunet.py``) runs the parts in task-id order (291..295), maps each part's
labels to the task's class indices with a look-up table and copies them over the combined map where
they are non-zero, so a later part wins where two predict a voxel. The expected map here is built that
way from each part run on its own; the catalogue's ``total`` entry must give the same.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nnunetv2")
pytest.importorskip("dynamic_network_architectures")

from volseg.segmenters.catalogue import get_entry  # noqa: E402


@pytest.fixture(scope="module")
def total_weights(tmp_path_factory):
    """Tiny random networks under the five folders the ``total`` entry names (parity fabricator)."""
    from benchmarks.parity import fabricate

    entry = get_entry("total")
    opts = entry.backend_options
    spec = {"resample": entry.input.spacing_mm[0], "trainer": opts.trainer, "plans": opts.plans,
            "configuration": opts.configuration,
            "parts": [{"foldername": p.options.model_folder.split("/")[0], "task_id": p.options.dataset_id,
                       "labels": {int(k): v for k, v in p.labels.items()}} for p in entry.parts]}
    root = tmp_path_factory.mktemp("total-tiny")
    fabricate.fabricate_task(spec, root)
    return root


@pytest.fixture(scope="module")
def ct():
    from volseg.phantom import make_phantom

    return make_phantom((36, 30, 28), (3.0, 3.0, 3.0), orientation="LPS", seed=5).image


def test_total_merges_its_five_parts_in_task_order_later_parts_winning(total_weights, ct):
    import torch

    from volseg.segmenters.backends import nnunet as backend
    from volseg.segmenters.engine.settings import EngineOverrides

    torch.set_num_threads(1)
    entry = get_entry("total")
    fp32 = EngineOverrides(precision="fp32")
    combined = backend.load(entry, device="cpu", model_dir=total_weights, engine=fp32)
    assert [p.options.dataset_id for p in entry.parts] == [291, 292, 293, 294, 295]
    got = combined.predict(ct).array
    index = {c.name: c.index for c in entry.classes}
    singles = []
    for part in entry.parts:  # each part alone, its labels through TotalSegmentator's look-up table
        alone = backend.load(entry, device="cpu", model_dir=total_weights, engine=fp32,
                             classes=[next(iter(part.labels.values()))])
        assert len(alone.parts) == 1
        singles.append(alone.predict(ct).array)
        lut = np.zeros(max(int(k) for k in part.labels) + 1, dtype=np.uint8)
        for k, name in part.labels.items():
            lut[int(k)] = index[name]
        assert set(np.unique(singles[-1])) <= set(lut.tolist())
    expected = np.zeros(ct.shape, dtype=np.uint8)
    for seg in singles:
        np.copyto(expected, seg, where=seg != 0)
    reverse = np.zeros(ct.shape, dtype=np.uint8)
    for seg in singles[::-1]:
        np.copyto(reverse, seg, where=seg != 0)
    assert not np.array_equal(expected, reverse), "the parts must overlap for the order to matter"
    assert np.array_equal(got, expected)
    assert len(np.unique(got)) > 5
