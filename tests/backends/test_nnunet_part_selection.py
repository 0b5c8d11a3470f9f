"""--roi-subset on multi-part nnU-Net models: only the parts that predict the asked classes load and run."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.errors import ModelError, UsageError
from volseg.options import SegmentOptions, engine_overrides
from volseg.phantom import make_phantom
from volseg.segmenters import subset
from volseg.segmenters.backends import nnunet as backend
from volseg.segmenters.backends.nnunet import PartOptions, parts_for_classes, select_parts

pytest.importorskip("nnunetv2")
from tests.backends.entries import make_entry
from tests.factories.nnunet_model import CLASSES, FOLDER_NAME, SPACING_IJK


def test_parts_for_classes_keeps_the_parts_holding_a_wanted_label_in_order():
    produced = [{1, 2}, {3}, {4, 5}]
    assert parts_for_classes(produced, [3]) == [1]
    assert parts_for_classes(produced, [5, 1]) == [0, 2]
    assert parts_for_classes(produced, [9]) == []
    assert parts_for_classes([{1}, None], [1]) == [0, 1]  # labels unknown before loading: kept


def test_select_parts_refuses_when_no_part_predicts_the_classes():
    parts = (PartOptions(label_map={1: 1}), PartOptions(label_map={1: 2}))
    assert select_parts(parts, [2], model="m") == (parts[1],)
    with pytest.raises(ModelError, match="no part of model 'm' predicts labels"):
        select_parts(parts, [7], model="m")


def _three_part_entry(root):
    """The phantom model's folder used as three parts: organs (1, 2), bone (3), fat (4, 5)."""
    parts = ({"name": "organs", "labels": {1: "body", 2: "lungs"}, "model_folder": FOLDER_NAME},
             {"name": "bone", "labels": {3: "bone"}, "model_folder": FOLDER_NAME},
             {"name": "fat", "labels": {4: "subcutaneous_fat", 5: "torso_fat"}, "model_folder": FOLDER_NAME})
    return make_entry(name="phantom-parts", classes=CLASSES, parts=parts,
                      backend_options={"model_dir": str(root), "folds": [0], "checkpoint": "checkpoint_final.pth"})


def test_load_with_classes_loads_only_the_parts_that_predict_them(random_model):
    entry = _three_part_entry(random_model.parent.parent)
    assert len(backend.load(entry, device="cpu").parts) == 3
    bone = backend.load(entry, device="cpu", classes=["bone"])
    assert len(bone.parts) == 1 and bone.label_maps == [{3: 3}]
    two = backend.load(entry, device="cpu", classes=["torso_fat", "lungs"])
    assert two.label_maps == [{1: 1, 2: 2}, {4: 4, 5: 5}]
    with pytest.raises(UsageError, match="has no class 'bones'.*did you mean 'bone'"):
        backend.load(entry, device="cpu", classes=["bones"])


def test_segment_with_roi_subset_runs_one_part_and_keeps_the_original_index(random_model, tmp_path,
                                                                           monkeypatch):
    from volseg import api
    from volseg.io.nifti import write_nifti

    entry = _three_part_entry(random_model.parent.parent)
    monkeypatch.setattr(subset, "_catalogue_entry", lambda model: entry)
    options = SegmentOptions(model="phantom-parts", device="cpu", html=False, roi_subset=("bone",),
                             engine=engine_overrides(precision="fp32"))
    segmenter = subset.load_for(options)
    assert len(segmenter.parts) == 1
    ct = make_phantom((40, 48, 36), SPACING_IJK, orientation="LPS", seed=3).image
    result = api.segment(write_nifti(ct, tmp_path / "ct.nii.gz"), tmp_path / "out", options=options,
                         segmenter=segmenter)
    assert [s.name for s in result.report.structures] == ["bone"]
    assert result.report.structure("bone").label == 3
    assert len(segmenter.provenance().details["runs"]) == 1
    from volseg.io import read_image

    saved = read_image(result.outputs["segmentation"]).volume.array
    assert set(np.unique(saved)) <= {0, 3}
