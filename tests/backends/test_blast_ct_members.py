"""``--members N``: BLAST-CT runs its first N networks; other models refuse the override."""
import json

import numpy as np
import pytest

from volseg.errors import UsageError
from volseg.segmenters.engine.settings import EngineOverrides, EngineSettings
from volseg.segmenters.engine_settings import ALL_SETTINGS, ENSEMBLE, first_members, refuse_unsupported


def test_members_is_an_override_and_a_setting_recorded_only_when_set():
    assert EngineOverrides(members=2).changes() == {"members": 2}
    assert EngineSettings().overridden_by(EngineOverrides(members=2)).members == 2
    assert "members" not in EngineSettings().as_dict()  # default reports are unchanged
    assert EngineSettings(members=3).as_dict()["members"] == 3
    with pytest.raises(UsageError, match="--members must be at least 1, got 0"):
        EngineOverrides(members=0)


def test_first_members_and_too_many():
    assert first_members(["a", "b", "c"], 2, model="m") == ["a", "b"]
    assert first_members(["a", "b"], None, model="m") == ["a", "b"]
    with pytest.raises(UsageError, match="--members 13: model 'blast-ct' has 12 ensemble networks"):
        first_members(list(range(12)), 13, model="blast-ct", kind="ensemble networks")


def test_a_model_that_cannot_honour_members_refuses_it():
    with pytest.raises(UsageError, match=r"model 'm' cannot honour the engine setting members \(--members\)"):
        refuse_unsupported(EngineOverrides(members=1), supported=ALL_SETTINGS, model="m")
    refuse_unsupported(EngineOverrides(members=1), supported=ALL_SETTINGS | ENSEMBLE, model="m")


@pytest.mark.parametrize("command", [["segment", "x.nii.gz", "-o", "out"], ["batch", "in", "-o", "out"]])
@pytest.mark.parametrize("given", ["0", "-1"])
def test_members_below_one_is_a_one_line_usage_error(command, given, capsys, tmp_path, monkeypatch):
    from volseg.cli.main import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    assert main([*command, "--members", given]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--members must be at least 1, got {given}" in err and len(err.splitlines()) <= 2, err


def test_classic_model_refuses_members(capsys, tmp_path):
    from volseg.cli.main import main
    from volseg.io.nifti import write_nifti
    from volseg.volume import Volume

    path = write_nifti(Volume(np.zeros((8, 8, 8), np.int16), np.eye(4)), tmp_path / "ct.nii.gz")
    code = main(["segment", str(path), "-m", "classic-ct", "--members", "2", "-o", str(tmp_path / "o"), "--force"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot honour the engine setting members (--members)" in err, err


@pytest.fixture
def head_crop(shared_data, tmp_path, monkeypatch):
    from volseg.cli.main import main
    from volseg.io import read_image
    from volseg.io.nifti import write_nifti
    from volseg.volume import Volume

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "volseg-home"))
    monkeypatch.delenv("VOLSEG_OFFLINE", raising=False)
    monkeypatch.delenv("VOLSEG_MIRROR", raising=False)
    assert main(["models", "install", str(shared_data / "blast-ct-v1")]) == 0
    head = read_image(shared_data / "head-ct" / "cranium_ct_0051.nii.gz").volume
    start = np.array([100, 100, 44])
    affine = head.affine.copy()
    affine[:3, 3] = head.index_to_world(start[None])[0]
    crop = Volume(np.ascontiguousarray(head.array[100:164, 100:164, 44:64]), affine)
    return crop, write_nifti(crop, tmp_path / "head_crop.nii.gz")


def test_members_2_runs_exactly_two_networks_and_matches_their_direct_ensemble(head_crop, tmp_path, monkeypatch,
                                                                                capsys):
    from volseg.cli.main import main
    from volseg.io import read_image
    from volseg.segmenters.backends import blast_ct
    from volseg.segmenters.catalogue import load_catalogue
    from volseg.segmenters.engine.valid_windows import run_valid_windows
    from volseg.segmenters.nets.deepmedic import DeepMedic

    crop, path = head_crop
    called: set[int] = set()
    forward = DeepMedic.forward
    monkeypatch.setattr(DeepMedic, "forward", lambda self, *a, **k: (called.add(id(self)), forward(self, *a, **k))[1])
    assert main(["segment", str(path), "-m", "blast-ct", "--members", "2", "--device", "cpu", "--force",
                 "--no-html", "-o", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    assert len(called) == 2
    labels = read_image(tmp_path / "out" / "segmentation.nii.gz").volume.array
    model = json.loads((tmp_path / "out" / "report.json").read_text())["provenance"]["model"]
    assert [w["file"] for w in model["weights"]] == ["model_1.pt", "model_2.pt"]
    assert model["details"]["members"] == ["model_1.pt", "model_2.pt"]
    assert model["details"]["settings"]["members"] == 2

    # the reference: the first two networks loaded by name, summed window by window
    seg = blast_ct.load(load_catalogue()["blast-ct"], device="cpu", models=("model_1.pt", "model_2.pt"))
    work, x, spacing = seg.model_input(crop)
    run = run_valid_windows(x, blast_ct.EnsemblePredictor(seg.nets), channels=seg.options.num_classes,
                            tile=seg.tile, margin=seg.margin, settings=seg.settings, constant=-1.0)
    _, direct = seg.labels_on_input(run.blend, run.keep, work, crop, spacing)
    np.testing.assert_array_equal(labels, direct.array)
    member_by_member, _, _ = seg.run_members(x)  # the same sums, bit for bit
    assert bool((member_by_member.sums == run.blend.sums).all())


def test_members_13_is_a_one_line_usage_error_before_any_network_loads(head_crop, tmp_path, capsys):
    from volseg.cli.main import main

    _, path = head_crop
    capsys.readouterr()
    assert main(["segment", str(path), "-m", "blast-ct", "--members", "13", "--device", "cpu", "--force",
                 "-o", str(tmp_path / "out")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--members 13: model 'blast-ct' has 12 ensemble networks" in errors[0], errors


def test_only_the_ensemble_backends_let_members_through():
    from volseg.segmenters.backends import blast_ct, nnunet, onnx

    assert "members" in blast_ct.SUPPORTED and "members" in nnunet.FOLDS
    assert "members" not in onnx.SUPPORTED and "members" not in ALL_SETTINGS  # MONAI bundles: ALL_SETTINGS
