"""TotalSegmentator's three-slab split of large images (``backends/nnunet_split.py``), known answers."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.segmenters.backend_options import TripleSplit
from volseg.segmenters.backends.nnunet_split import predict_in_slabs, slab_bounds, split_applies
from volseg.segmenters.catalogue import load_catalogue


@pytest.fixture(scope="module")
def small_ct():
    from tests.factories.nnunet_model import SPACING_IJK
    from volseg.phantom import make_phantom

    return make_phantom((40, 48, 36), SPACING_IJK, orientation="LPS", seed=3).image


TS = TripleSplit()  # TotalSegmentator 2.18's values: 512*512*900 voxels, 200 slices, margin 20


def test_the_defaults_are_totalsegmentators_and_the_multi_part_tasks_declare_them():
    assert (TS.min_voxels, TS.min_slices, TS.margin) == (512 * 512 * 900, 200, 20)
    catalogue = load_catalogue()
    for name in ("total", "total_v3", "total_mr"):  # TotalSegmentator's multi-model tasks
        assert catalogue[name].backend_options.triple_split == TS, name
    for name in ("total-fast", "total_v3-fast", "total_v3-fastest"):  # one network: never split
        assert catalogue[name].backend_options.triple_split is None, name


@pytest.mark.parametrize(("shape", "split"), [
    ((512, 512, 900), False),  # exactly the threshold: not more than it
    ((512, 512, 901), True),
    ((1200, 1200, 200), False),  # enough voxels but not more than 200 slices
    ((1200, 1200, 201), True),
    ((300, 300, 2000), False),  # many slices, too few voxels
])
def test_split_condition_is_totalsegmentators(shape, split):
    assert split_applies(shape, TS) is split
    assert split_applies(shape, None) is False


def test_slabs_overlap_by_the_margin():
    assert slab_bounds(300, 20) == [(0, 120), (81, 220), (181, 300)]
    assert slab_bounds(302, 20) == [(0, 120), (81, 220), (181, 302)]  # the last slab takes the remainder


@pytest.mark.parametrize("n", [201, 300, 302, 457])
def test_stitching_puts_every_slice_back_where_it_came_from(n):
    image = np.broadcast_to(np.arange(n, dtype=np.int32), (3, 2, n)).copy()
    seen = []

    def identity(slab):
        seen.append(slab.shape[2])
        return slab.copy()

    assert np.array_equal(predict_in_slabs(identity, image, 20), image)
    third = n // 3
    assert seen == [third + 20, third + 2 * 20 - 1, n - 2 * third - 1 + 20]


def test_each_slice_comes_from_its_own_slab():
    calls = []

    def slab_number(slab):
        calls.append(1)
        return np.full(slab.shape, len(calls), dtype=np.uint8)

    out = predict_in_slabs(slab_number, np.zeros((2, 2, 301)), 20)
    assert out.dtype == np.uint8
    assert (out[:, :, :100] == 1).all() and (out[:, :, 100:200] == 2).all() and (out[:, :, 200:] == 3).all()


def test_a_multi_part_segmenter_predicts_each_part_in_slabs(random_model, small_ct):
    pytest.importorskip("nnunetv2")
    from tests.backends.entries import make_entry
    from tests.factories.nnunet_model import FOLDER_NAME
    from volseg.segmenters.backends import nnunet as backend

    parts = [{"name": "a", "labels": {1: "body"}, "model_folder": FOLDER_NAME},
             {"name": "b", "labels": {2: "lungs"}, "model_folder": FOLDER_NAME}]
    options = {"folds": [0], "checkpoint": "checkpoint_final.pth", "engine": {"precision": "fp32"}}
    whole = backend.load(make_entry(classes={1: "body", 2: "lungs"}, parts=parts, backend_options=options),
                         device="cpu", model_dir=random_model.parent.parent)
    split = backend.load(make_entry(classes={1: "body", 2: "lungs"}, parts=parts, backend_options={
        **options, "triple_split": {"min_voxels": 0, "min_slices": 0, "margin": 4}}),
        device="cpu", model_dir=random_model.parent.parent)
    n = small_ct.shape[2]
    assert n >= 3 * 4 + 3, "the phantom needs enough slices for three slabs"
    a = whole.predict(small_ct)
    b = split.predict(small_ct)
    assert len(split.provenance().details["runs"]) == 6  # two parts, three slabs each
    assert split.provenance().details["triple_split"] is True
    assert "triple_split" not in whole.provenance().details
    assert a.shape == b.shape and np.array_equal(a.affine, b.affine)
    assert set(np.unique(b.array)) <= {0, 1, 2}
