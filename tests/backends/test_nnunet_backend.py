"""The nnU-Net backend's folder handling, options, labels, fallbacks and API wiring (untrained model)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from volseg.errors import ModelError, UsageError
from volseg.phantom import make_phantom
from volseg.segmenters.backends import nnunet as backend
from volseg.segmenters.backends.nnunet_folder import read_model_folder
from volseg.segmenters.engine.export import LabelDecoder
from volseg.segmenters.engine.settings import EngineOverrides, EngineSettings
from volseg.segmenters.registry import load_segmenter

pytest.importorskip("nnunetv2")
from tests.backends.entries import make_entry
from tests.factories.nnunet_model import CLASSES, FOLDER_NAME, SPACING_IJK, write_random_model

FAST = EngineSettings(precision="fp32")


@pytest.fixture(scope="module")
def small_ct():
    return make_phantom((40, 48, 36), SPACING_IJK, orientation="LPS", seed=3).image


def test_a_model_folder_path_loads_through_the_registry(random_model, small_ct):
    seg = load_segmenter(str(random_model), device="cpu")
    assert isinstance(seg, backend.NnUNetSegmenter)
    assert seg.labels.names() == CLASSES
    labels = seg.predict(small_ct)
    assert labels.shape == small_ct.shape and np.array_equal(labels.affine, small_ct.affine)
    assert set(np.unique(labels.array)) <= set(range(len(CLASSES) + 1))
    prov = seg.provenance().as_dict()
    assert prov["backend"] == "nnunet" and prov["fallbacks"] == []
    assert prov["weights"][0]["file"] == "nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0/checkpoint_final.pth"
    assert len(prov["weights"][0]["sha256"]) == 64
    assert prov["runs"][0]["windows"] >= 1


def test_missing_pieces_are_model_errors(tmp_path, random_model):
    with pytest.raises(ModelError, match="not an nnU-Net trained-model folder"):
        backend.load_folder(tmp_path, device="cpu")
    with pytest.raises(ModelError, match="fold 3 has no"):
        read_model_folder(random_model, folds=(3,))
    empty = write_random_model(tmp_path / "empty", folds=())
    with pytest.raises(ModelError, match="no fold_"):
        read_model_folder(empty)


def test_checkpoints_load_weights_only(tmp_path):
    # the model factory stores numpy floats in the training log, like nnU-Net: allowed
    folder = write_random_model(tmp_path / "ok")
    assert read_model_folder(folder).folds[0].state_dict
    evil = write_random_model(tmp_path / "evil", extra={"init_args": {"plans": argparse.Namespace(x=1)}})
    with pytest.raises(ModelError, match="objects that are not weights"):
        read_model_folder(evil)


def test_cuda_requested_without_cuda_is_a_usage_error(random_model):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UsageError, match="no CUDA device"):
        backend.load_folder(random_model, device="cuda")
    with pytest.raises(UsageError, match="invalid device"):
        backend.load_folder(random_model, device="gpu0")


def test_multi_input_models_are_refused(tmp_path):
    folder = write_random_model(tmp_path / FOLDER_NAME, channels=2)
    with pytest.raises(ModelError, match="needs 2 input images"):
        backend.load_folder(folder, device="cpu")


def test_region_based_models_decode_like_nnunet(tmp_path, small_ct):
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    folder = write_random_model(tmp_path / FOLDER_NAME, regions=True)
    seg = backend.load_folder(folder, device="cpu", settings=FAST)
    assert seg.labels.names() == {1: "whole", 2: "core", 3: "enhancing"}
    assert set(np.unique(seg.predict(small_ct).array)) <= {0, 1, 2, 3}
    manager = LabelManager({"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": [3]}, [1, 2, 3])
    logits = torch.randn(3, 2000)
    decoder = LabelDecoder((1, 2, 3), regions=True)
    expected = manager.convert_logits_to_segmentation(logits.numpy())
    assert np.array_equal(decoder.labels(decoder.codes(logits.T)).numpy(), expected)


def test_out_of_memory_is_recorded_in_provenance(random_model, small_ct, request):
    reference = backend.load_folder(random_model, device="cpu", settings=FAST).predict(small_ct).array
    request.getfixturevalue("one_oom")  # from here on, the first network call runs out of memory
    seg = backend.load_folder(random_model, device="cpu", settings=FAST.with_options(window_batch=2))
    labels = seg.predict(small_ct)
    assert seg.provenance().as_dict()["fallbacks"] == ["CUDA out of memory: window batch reduced from 2 to 1"]
    assert seg.provenance().as_dict()["runs"][0]["window_batch"] == 1
    assert np.array_equal(labels.array, reference)


def test_progress_reports_windows_and_export(random_model, small_ct):
    seen = []
    backend.load_folder(random_model, device="cpu", settings=FAST).predict(
        small_ct, progress=lambda stage, done, total: seen.append((stage, done, total)))
    windows = [s for s in seen if s[0] == "sliding window"]
    assert windows[0][1] == 0 and windows[-1][1] == windows[-1][2] > 0
    assert ("export", 1, 1) in seen


def test_catalogue_factory_reads_parts_window_and_orientation(random_model):
    root = random_model.parent.parent
    part = {"name": "Dataset901", "labels": {1: "body", 2: "lungs"}, "model_folder": FOLDER_NAME}
    entry = make_entry(classes={1: "body", 2: "lungs"}, parts=(part,), orientation="RAS",
                       backend_options={"folds": [0], "checkpoint": "checkpoint_final.pth"},
                       sliding_window={"overlap": 0.25, "mirroring": False})
    seg = backend.load(entry, device="cpu", model_dir=root)
    assert seg.reorient_to == "RAS" and seg.entry is entry
    assert seg.settings.step == 0.75 and seg.settings.mirror is False
    assert seg.label_maps == [{1: 1, 2: 2}]
    single = backend.load(make_entry(classes=CLASSES, backend_options={"model_folder": FOLDER_NAME,
                                                                       "engine": {"step": 0.5}}),
                          device="cpu", model_dir=root)
    assert single.label_maps == [None] and single.reorient_to is None
    user = backend.load(entry, device="cpu", model_dir=root, engine=EngineOverrides(step=1.0, mirror=True))
    assert (user.settings.step, user.settings.mirror) == (1.0, True)  # the user's flags win


def test_engine_flags_reach_the_backend_and_the_report(random_model, small_ct, tmp_path, capsys):
    import json

    from volseg.cli.main import main
    from volseg.io.nifti import write_nifti

    image = write_nifti(small_ct, tmp_path / "ct.nii.gz")
    args = ["segment", str(image), "-o", str(tmp_path / "out"), "-m", str(random_model), "-d", "cpu",
            "--tta", "--step", "0.75", "--export", "nearest", "--precision", "fp32", "--no-html"]
    assert main(args) == 0
    details = json.loads((tmp_path / "out" / "report.json").read_text())["provenance"]["model"]["details"]
    settings = details["settings"]
    assert (settings["mirror"], settings["step"], settings["export"], settings["precision"]) == \
        (True, 0.75, "nearest", "fp32")
    assert main([*args[:8], "--export", "cubic"]) == 2
    assert "invalid export 'cubic'" in capsys.readouterr().err


def test_catalogue_options_are_validated_when_the_entry_is():
    with pytest.raises(ModelError, match=r"invalid catalogue entry .*fold\s+Extra inputs are not permitted"):
        make_entry(classes=CLASSES, backend_options={"fold": 0})
    with pytest.raises(ModelError, match=r"part 'p' maps to unknown classes \['liver'\]"):
        make_entry(classes=CLASSES, parts=({"name": "p", "labels": {1: "liver"}},))
    with pytest.raises(ModelError, match="backend 'tensorflow' is not registered"):
        make_entry(classes=CLASSES, backend="tensorflow")


def test_segment_api_with_a_model_folder(random_model, small_ct, tmp_path):
    import json

    from volseg import api
    from volseg.io.nifti import write_nifti
    from volseg.options import SegmentOptions

    image = write_nifti(small_ct, tmp_path / "ct.nii.gz")
    result = api.segment(image, tmp_path / "out", options=SegmentOptions(model=str(random_model), device="cpu"))
    report = json.loads(result.outputs["report"].read_text())
    assert report["provenance"]["model"]["name"] == "Dataset901_Phantom/nnUNetTrainer__nnUNetPlans__3d_fullres"
    assert report["provenance"]["device"].startswith("cpu")
    assert report["provenance"]["model"]["weights"][0]["sha256"] == seg_sha(random_model)


def seg_sha(folder):
    from volseg.segmenters.weights.cache import sha256_file

    return sha256_file(folder / "fold_0" / "checkpoint_final.pth")


def test_ct_models_refuse_mr_and_unreadable_checkpoints(random_model, small_ct, tmp_path):
    seg = backend.load_folder(random_model, device="cpu", settings=FAST)
    with pytest.raises(ModelError, match="expects CT"):
        seg.predict(small_ct, modality="MR")
    broken = write_random_model(tmp_path / "broken")
    (broken / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="unreadable checkpoint"):
        read_model_folder(broken)


def test_plans_are_read_like_nnunet(random_model):
    import json

    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from volseg.segmenters.backends.nnunet_plans import build_network, resolve_configuration

    plans = json.loads((random_model / "plans.json").read_text())
    plans["configurations"]["child"] = {"inherits_from": "3d_fullres", "patch_size": [16, 16, 16]}
    plans["configurations"]["grandchild"] = {"inherits_from": "child", "spacing": [1.0, 1.0, 1.0]}
    theirs = PlansManager(plans).get_configuration("grandchild")
    ours = resolve_configuration(plans, "grandchild")
    assert ours.patch_size == tuple(theirs.patch_size) == (16, 16, 16)
    assert ours.spacing == tuple(theirs.spacing) == (1.0, 1.0, 1.0)
    assert ours.normalization_schemes == theirs.normalization_schemes
    plans["configurations"]["3d_fullres"]["inherits_from"] = "grandchild"
    with pytest.raises(ModelError, match="circle"):
        resolve_configuration(plans, "child")

    arch = ours.architecture()
    net = build_network(arch, 1, 6)
    ref = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                 1, 6, allow_init=True, deep_supervision=False)
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


@pytest.mark.parametrize("labels, order", [
    ({"background": 0, "a": 1, "b": 2}, None),
    ({"background": 0, "a": 1, "b": 2, "ignore": 3}, None),
    ({"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3}, [1, 2, 3]),
])
def test_label_spec_matches_nnunet_label_manager(labels, order):
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    from volseg.segmenters.backends.nnunet_plans import label_spec

    manager = LabelManager(labels, order)
    spec = label_spec({"labels": labels, **({"regions_class_order": order} if order else {})})
    assert spec.regions == manager.has_regions
    assert spec.heads == manager.num_segmentation_heads
    assert spec.ignore_label == manager.ignore_label
    if not spec.regions:
        assert list(spec.values) == manager.all_labels
