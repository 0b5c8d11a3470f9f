"""Models run only on what they were made for: modality, HU units, body region (known-answer phantoms)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from volseg import api
from volseg.errors import ModelError
from volseg.io import read_image
from volseg.io.nifti import write_nifti
from volseg.options import SegmentOptions
from volseg.segmenters.applicability import (
    REGION_RULES,
    ModelScope,
    check_applicable,
    classify_units,
    refusal,
    survey,
)
from volseg.segmenters.catalogue import load_catalogue
from volseg.volume import Volume

BLAST = ModelScope("blast-ct", "CT", "head")
ABDOMEN = ModelScope("liver-model", "CT", "abdomen")
THORAX = ModelScope("lung-model", "CT", "thorax")


def _grid(shape, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Physical coordinates (mm, centred) of every voxel of an RAS grid."""
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]
    return np.meshgrid(*axes, indexing="ij"), np.diag([*spacing, 1.0])


def head_phantom() -> Volume:
    """A 16 × 19 cm head: 6 mm skull ring (1000 HU) around brain (35 HU), air outside."""
    (x, y, z), affine = _grid((96, 96, 40), (2.5, 2.5, 4.0))
    r = np.sqrt((x / 80) ** 2 + (y / 95) ** 2 + (z / 90) ** 2)
    hu = np.full(x.shape, -1000, np.int16)
    hu[r < 1.0] = 1000
    hu[r < 0.93] = 35
    return Volume(hu, affine)


def trunk_phantom(*, lungs: bool) -> Volume:
    """A 36 × 24 cm trunk (40 HU), with two 2-L lungs (-850 HU) when ``lungs``."""
    (x, y, z), affine = _grid((128, 96, 40), (4.0, 4.0, 5.0))
    hu = np.full(x.shape, -1000, np.int16)
    hu[(x / 180) ** 2 + (y / 120) ** 2 < 1.0] = 40
    if lungs:
        for cx in (-80, 80):
            hu[((x - cx) / 60) ** 2 + (y / 70) ** 2 + (z / 95) ** 2 < 1.0] = -850
    return Volume(hu, affine)


def mr_like(volume: Volume) -> Volume:
    """Non-negative values without HU structure (air 0, tissue 520, lung 75)."""
    return volume.with_array(np.clip(volume.array.astype(np.float32) + 1000, 0, None) * 0.5)


def test_every_catalogue_entry_has_a_region_with_rules():
    for entry in load_catalogue().values():
        assert entry.region in REGION_RULES, entry.name
        assert entry.modality in ("CT", "MR", "PET")


def test_region_vocabulary_is_an_enum_in_the_schema():
    from volseg.segmenters.catalogue import entry_json_schema

    enum = entry_json_schema()["properties"]["region"]["enum"]
    assert set(enum) == set(REGION_RULES)


def test_units_hu_shifted_and_other():
    ct = trunk_phantom(lungs=True).array
    assert classify_units(ct)[0] == "hu"
    assert classify_units(ct.astype(np.int32) + 1024)[0] == "hu+1024"
    assert classify_units(mr_like(trunk_phantom(lungs=True)).array)[0] == "other"


def test_head_is_found_and_fits_a_head_model():
    found = survey(head_phantom())
    assert found.units == "hu" and found.skull
    assert found.body_mm[0] == pytest.approx(160, abs=10)  # R-L width of the head
    assert refusal(BLAST, found) is None
    assert "looks like a head" in refusal(ABDOMEN, found)
    assert "no lungs" in refusal(THORAX, found)


def test_trunk_is_refused_by_a_head_model_and_lungs_are_measured():
    found = survey(trunk_phantom(lungs=True))
    assert not found.skull
    assert found.lung_ml == pytest.approx(2 * 4 / 3 * np.pi * 60 * 70 * 95 / 1000, rel=0.15)
    reason = refusal(BLAST, found)
    assert "no skull" in reason and "blast-ct" in reason
    assert refusal(THORAX, found) is None and refusal(ABDOMEN, found) is None
    assert "no lungs" in refusal(THORAX, survey(trunk_phantom(lungs=False)))


def test_wide_body_refused_by_head_model_even_with_a_ring():
    found = survey(trunk_phantom(lungs=True))
    wide = type(found)(**{**found.__dict__, "skull_slices": 10})
    assert "cm wide" in refusal(BLAST, wide) and "not a head" in refusal(BLAST, wide)


def test_modality_tag_and_shifted_ct_messages():
    head = head_phantom()
    assert "this image is MR" in refusal(BLAST, survey(head, modality="MR"))
    shifted = Volume(head.array.astype(np.int32) + 1024, head.affine)
    assert "stored without RescaleIntercept (HU+1024)" in refusal(BLAST, survey(shifted))
    mr_model = ModelScope("brain-mr", "MR", "brain")
    assert "look like CT in HU" in refusal(mr_model, survey(head))


def test_check_names_file_model_and_reason():
    match = r"^scan\.nii\.gz: model 'blast-ct' not run: no skull.*--force"
    with pytest.raises(ModelError, match=match) as info:
        check_applicable(trunk_phantom(lungs=True), BLAST, path="scan.nii.gz")
    assert info.value.exit_code == 7


def test_path_models_without_declared_modality_are_not_checked():
    assert check_applicable(trunk_phantom(lungs=False), ModelScope("my-model")).units == "hu"


def test_scope_of_path_models_is_the_modality_they_declare():
    from types import SimpleNamespace

    from volseg.segmenters.applicability import scope_of_segmenter

    onnx_like = SimpleNamespace(name="mine", meta=SimpleNamespace(modality="MR"))
    nnunet_like = SimpleNamespace(name="Dataset1_x", parts=[SimpleNamespace(scheme="CTNormalization")])
    silent = SimpleNamespace(name="Dataset2_y", parts=[SimpleNamespace(scheme="ZScoreNormalization")])
    assert scope_of_segmenter(onnx_like) == ModelScope("mine", "MR")
    assert scope_of_segmenter(nnunet_like) == ModelScope("Dataset1_x", "CT")
    assert scope_of_segmenter(silent) == ModelScope("Dataset2_y")
    classic = ModelScope("classic-ct", "CT", "whole body")
    assert scope_of_segmenter(SimpleNamespace(name="classic-ct")) == classic


def test_api_refuses_before_loading_weights_and_force_runs(tmp_path, monkeypatch):
    """A phantom MR-like image with classic-ct: refused naming the file; --force lets it run."""
    path = write_nifti(mr_like(trunk_phantom(lungs=True)), tmp_path / "mr_like.nii.gz")
    loads = []
    from volseg.segmenters import registry

    real = registry.load_segmenter
    monkeypatch.setattr(registry, "load_segmenter", lambda *a, **k: loads.append(a) or real(*a, **k))
    with pytest.raises(ModelError, match=r"mr_like\.nii\.gz: model 'classic-ct' not run: values do not look"):
        api.segment(path, tmp_path / "out", options=SegmentOptions(model="classic-ct", html=False))
    assert loads == []  # refused before the model was loaded
    forced = SegmentOptions(model="classic-ct", html=False, force=True)
    with pytest.raises(ModelError, match=r"mr_like\.nii\.gz: .*values do not look like CT"):  # classic's own
        api.segment(path, tmp_path / "out", options=forced)
    assert len(loads) == 1


def test_loaded_model_is_checked_before_predicting(tmp_path):
    seg = api.load_model("classic-ct")
    shifted = trunk_phantom(lungs=True)
    shifted = shifted.with_array(shifted.array.astype(np.int32) + 1024)
    match = r"^shifted: model 'classic-ct' not run: .*RescaleIntercept \(HU\+1024\)"
    with pytest.raises(ModelError, match=match):
        api.segment(shifted, tmp_path / "out", segmenter=seg, study_id="shifted")


def test_cli_force_flag_reaches_the_options(tmp_path, monkeypatch):
    from volseg.cli.main import main

    seen = {}

    def fake(inputs, out, *, options, progress):
        seen["force"] = options.force
        return []

    monkeypatch.setattr(api, "segment_many", fake)
    assert main(["segment", str(tmp_path / "x.nii.gz"), "-o", str(tmp_path / "o"), "--force"]) == 0
    assert seen == {"force": True}
    main(["segment", str(tmp_path / "x.nii.gz"), "-o", str(tmp_path / "o")])
    assert seen == {"force": False}


# ---- real data --------------------------------------------------------------------------------
CTS = ["chest-ct-dicom", "totalseg-example/example_ct.nii.gz", "head-ct/cranium_ct_0051.nii.gz",
       "lits117-crop/lits117_128cube_ct.nii.gz", "dcmqi-ct3/ct-3slice"]


@pytest.mark.parametrize("name", CTS)
def test_classic_ct_accepts_every_real_ct(shared_data, name):
    image = read_image(shared_data / name)
    scope = ModelScope.of_entry(load_catalogue()["classic-ct"])
    check_applicable(image.volume, scope, modality=image.source.modality, path=name)


def test_blast_ct_takes_the_head_and_refuses_mr_and_abdomen(shared_data):
    scope = ModelScope.of_entry(load_catalogue()["blast-ct"])
    head = read_image(shared_data / "head-ct/cranium_ct_0051.nii.gz")
    check_applicable(head.volume, scope)
    refused = [("example_mr_sm.nii.gz", "do not look like CT in HU"), ("example_ct.nii.gz", "no skull")]
    for name, why in refused:
        image = read_image(shared_data / "totalseg-example" / name)
        with pytest.raises(ModelError, match=why):
            check_applicable(image.volume, scope, path=name)


def test_checks_are_cheap_on_the_chest_ct(shared_data):
    image = read_image(shared_data / "chest-ct-dicom")
    t = time.process_time()  # CPU time: the machine may be shared
    found = survey(image.volume, modality=image.source.modality)
    assert time.process_time() - t < 2.0
    assert found.lung_ml > 2000 and not found.skull
