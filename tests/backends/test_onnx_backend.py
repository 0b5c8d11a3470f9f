"""The ONNX backend: the trained phantom nnU-Net network exported to ONNX gives nnU-Net's labels;
the sidecar is validated strictly; paths dispatch through the registry and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from volseg.errors import ModelError
from volseg.phantom import make_phantom
from volseg.segmenters.engine.settings import EngineSettings

pytest.importorskip("onnxruntime")
pytest.importorskip("nnunetv2")

FP32 = EngineSettings(precision="fp32")


@pytest.fixture(scope="session")
def onnx_model(phantom_model, tmp_path_factory) -> Path:
    from tests.factories.exported_models import export_onnx

    return export_onnx(phantom_model, tmp_path_factory.mktemp("onnx"))


@pytest.mark.parametrize("case", ["model_grid", "finer"])
def test_onnx_export_gives_nnunet_labels(onnx_model, nnunet_labels, case):
    from volseg.segmenters.backends.onnx import load_file

    volume, reference = nnunet_labels[case]
    labels = load_file(onnx_model, device="cpu", settings=FP32).predict(volume)
    assert labels.shape == volume.shape and np.array_equal(labels.affine, volume.affine)
    assert len(np.unique(reference)) >= 3  # a real comparison: several classes present
    agreement = float((labels.array == reference).mean())
    if case == "model_grid":  # same windows, same arithmetic apart from the runtime's kernels
        assert agreement >= 0.9999, agreement
    else:  # resampling: the same cubic B-spline and exact export as nnU-Net's
        assert agreement >= 0.999, agreement


def test_registry_and_cli_run_an_onnx_path(onnx_model, tmp_path, capsys):
    from volseg.cli.main import main
    from volseg.errors import UsageError
    from volseg.io import read_image
    from volseg.io.nifti import write_nifti
    from volseg.segmenters.engine.settings import EngineOverrides
    from volseg.segmenters.registry import load_segmenter

    segmenter = load_segmenter(str(onnx_model), device="cpu")
    assert segmenter.name == "phantom-onnx" and segmenter.labels[1].name
    tuned = load_segmenter(str(onnx_model), device="cpu", engine=EngineOverrides(export="nearest", precision="fp32"))
    assert tuned.settings.export == "nearest"  # the user's flags win
    assert tuned.settings.precision == "fp32" and tuned.entry is None  # a file given by path
    with pytest.raises(UsageError, match=r"model 'phantom-onnx' cannot honour the engine setting precision "
                                         r"\(--precision\)"):  # onnxruntime runs the graph's own precision
        load_segmenter(str(onnx_model), device="cpu", engine=EngineOverrides(precision="bf16"))
    volume = make_phantom((40, 44, 36), (4.0, 3.0, 3.0), orientation="RAS", seed=3).image
    path = write_nifti(volume, tmp_path / "ct.nii.gz")
    assert main(["segment", str(path), "--model", str(onnx_model), "--device", "cpu", "-o", str(tmp_path / "o")]) == 0
    out = read_image(tmp_path / "o" / "segmentation.nii.gz").volume
    assert out.shape == volume.shape and np.allclose(out.affine, volume.affine)
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["provenance"]["model"]["weights"][0]["file"] == "phantom.onnx"


def _sidecar(onnx_model: Path) -> dict:
    return json.loads(onnx_model.with_name(onnx_model.name + ".json").read_text())


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(colour="red"), "Extra inputs are not permitted at colour"),
    (lambda s: s["classes"].pop("2"), "class values must be 1..N"),
    (lambda s: s["input"].update(axes=[0, 0, 1]), "permutation"),
    (lambda s: s["input"]["intensity"].update(kind="percentile"), "input.intensity"),
    (lambda s: s["input"].update(patch_size=[48, 64]), "input.patch_size"),
])
def test_invalid_sidecars_are_one_line_errors(onnx_model, tmp_path, change, message):
    from volseg.segmenters.backends.onnx import load_file

    model = tmp_path / "m.onnx"
    model.write_bytes(onnx_model.read_bytes())
    sidecar = _sidecar(onnx_model)
    change(sidecar)
    (tmp_path / "m.onnx.json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelError, match="invalid sidecar") as info:
        load_file(model, device="cpu")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_sidecar_and_missing_file(tmp_path):
    from volseg.segmenters.backends.onnx import load_file

    (tmp_path / "m.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="no sidecar") as info:
        load_file(tmp_path / "m.onnx")
    assert "m.onnx.json" in (info.value.hint or "")
    with pytest.raises(ModelError, match="not found"):
        load_file(tmp_path / "absent.onnx")


def test_volseg_json_sidecar_name_and_broken_model(onnx_model, tmp_path):
    from volseg.segmenters.backends.onnx import load_file

    (tmp_path / "m.onnx").write_bytes(b"not onnx")
    (tmp_path / "m.volseg.json").write_text(json.dumps(_sidecar(onnx_model)))
    with pytest.raises(ModelError, match="onnxruntime cannot load the model"):
        load_file(tmp_path / "m.onnx", device="cpu")


def test_raidionics_entries_say_what_is_missing(tmp_path, monkeypatch):
    """Raidionics entries go to their own pipeline (tests/backends/test_raidionics.py); without
    their archives installed the load names the install command."""
    from volseg.segmenters.catalogue import get_entry
    from volseg.segmenters.registry import load_segmenter

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    assert get_entry("raidionics-ct-airways").backend == "raidionics"  # its own backend, no longer through onnx.py
    with pytest.raises(ModelError, match="is not installed") as info:
        load_segmenter("raidionics-ct-airways", device="cpu")
    assert "volseg models download raidionics-ct-airways" in (info.value.hint or "")
