"""The MONAI-bundle backend: the trained phantom nnU-Net network as a DynUNet bundle gives nnU-Net's
labels; an untrusted bundle's config is never run; catalogued bundles run only after verification."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from volseg.errors import ModelError
from volseg.postprocess.compare import dice_per_label
from volseg.segmenters.engine.settings import EngineOverrides, EngineSettings

pytest.importorskip("monai")
pytest.importorskip("nnunetv2")

FP32 = EngineSettings(precision="fp32")


@pytest.fixture(scope="session")
def bundle(phantom_model, tmp_path_factory) -> Path:
    from tests.factories.exported_models import export_monai_bundle

    return export_monai_bundle(phantom_model, tmp_path_factory.mktemp("bundle"))


def test_bundle_gives_nnunet_labels(bundle, nnunet_labels):
    from volseg.segmenters.backends.monai_bundle import load_bundle

    segmenter = load_bundle(bundle, device="cpu", trust=True, settings=FP32)
    volume, reference = nnunet_labels["model_grid"]
    labels = segmenter.predict(volume)
    assert labels.shape == volume.shape and np.array_equal(labels.affine, volume.affine)
    assert float((labels.array == reference).mean()) >= 0.9999
    # off the model grid the bundle resamples as MONAI's Spacingd(bilinear) does, nnU-Net by cubic spline
    volume, reference = nnunet_labels["finer"]
    present = {int(v): str(v) for v in np.unique(reference) if v != 0}
    dice = dice_per_label(segmenter.predict(volume).array, reference, present)
    assert len(dice) >= 2 and min(dice.values()) >= 0.98, dice
    prov = segmenter.provenance().as_dict()
    assert prov["backend"] == "monai_bundle" and prov["input"]["axes"] == [0, 2, 1]


def _canary_bundle(bundle: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy whose network_def is an expression that writes a file when evaluated."""
    copy = tmp_path / "canary_bundle"
    shutil.copytree(bundle, copy)
    canary = tmp_path / "evaluated.txt"
    config = json.loads((copy / "configs" / "inference.json").read_text())
    config["network_def"] = f"$open({str(canary)!r}, 'w').write('ran')"
    (copy / "configs" / "inference.json").write_text(json.dumps(config))
    return copy, canary


def test_untrusted_bundle_is_refused_before_its_config_runs(bundle, tmp_path, capsys):
    from volseg.cli.main import main
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom
    from volseg.segmenters.backends.monai_bundle import load_bundle
    from volseg.segmenters.registry import load_segmenter

    copy, canary = _canary_bundle(bundle, tmp_path)
    with pytest.raises(ModelError, match="untrusted MONAI bundle") as info:
        load_segmenter(str(copy), device="cpu")
    assert "--trust-bundle" in info.value.hint
    path = write_nifti(make_phantom((24, 24, 16), (4.0, 3.0, 3.0), seed=1).image, tmp_path / "ct.nii.gz")
    assert main(["segment", str(path), "--model", str(copy), "-o", str(tmp_path / "o")]) != 0
    assert "untrusted MONAI bundle" in capsys.readouterr().err
    assert not canary.exists()
    with pytest.raises(ModelError):  # trusted, the expression runs (and is not a network)
        load_bundle(copy, device="cpu", trust=True)
    assert canary.read_text() == "ran"


def test_trusted_bundle_through_the_cli(bundle, tmp_path, capsys):
    from volseg.cli.main import main
    from volseg.io import read_image
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom

    volume = make_phantom((48, 52, 40), (4.0, 3.0, 3.0), orientation="LPS", seed=5).image
    path = write_nifti(volume, tmp_path / "ct.nii.gz")
    assert main(["segment", str(path), "--model", str(bundle), "--trust-bundle", "--device", "cpu",
                 "-o", str(tmp_path / "o")]) == 0
    out = read_image(tmp_path / "o" / "segmentation.nii.gz").volume
    assert out.shape == volume.shape and np.allclose(out.affine, volume.affine)
    assert len(np.unique(out.array)) >= 3
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["provenance"]["model"]["details"]["settings"]["step"] == 0.5  # the bundle's overlap
    assert main(["segment", str(path), "--model", str(bundle), "--trust-bundle", "--device", "cpu",
                 "--step", "1.0", "--no-html", "-o", str(tmp_path / "o2")]) == 0
    report = json.loads((tmp_path / "o2" / "report.json").read_text())
    assert report["provenance"]["model"]["details"]["settings"]["step"] == 1.0


def test_bundle_config_values_must_be_plain(bundle, tmp_path):
    from volseg.segmenters.backends.monai_bundle import load_bundle

    copy = tmp_path / "expr_bundle"
    shutil.copytree(bundle, copy)
    config = json.loads((copy / "configs" / "inference.json").read_text())
    config["inferer"]["roi_size"] = "@patch"
    (copy / "configs" / "inference.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="inferer.roi_size is an expression"):
        load_bundle(copy, device="cpu", trust=True)


def test_catalogued_bundle_runs_only_when_its_files_verify(bundle, tmp_path, monkeypatch):
    """A catalogue entry pinning the bundle's files: loads after install; a changed config is refused."""
    from volseg.segmenters import catalogue
    from volseg.segmenters.backends import monai_bundle
    from volseg.segmenters.weights import bundle as weights_bundle
    from volseg.segmenters.weights import install_from_source, sha256_file

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    source = tmp_path / "source"
    source.mkdir()
    archive = shutil.make_archive(str(source / "phantom_bundle"), "zip", bundle.parent, bundle.name)
    shutil.copy(bundle / "models" / "model.pt", source / "model.pt")
    raw = json.loads(catalogue.get_entry("wholebody_ct_segmentation").model_dump_json())
    classes = json.loads((bundle / "configs" / "metadata.json").read_text())
    names = classes["network_data_format"]["outputs"]["pred"]["channel_def"]
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    raw.update(name="phantom-bundle", version="0.1.0", classes=[
        {"index": int(k), "name": v} for k, v in names.items() if k != "0"])
    raw["input"] = {"spacing_mm": [4.0, 3.0, 3.0], "orientation": None, "resampling": "bilinear",
                    "intensity": {"kind": "window", "window": [config["preprocessing"]["transforms"][3][k]
                                                               for k in ("a_min", "a_max")],
                                  "output_range": [config["preprocessing"]["transforms"][3][k]
                                                   for k in ("b_min", "b_max")]}}
    raw["backend_options"] = {"bundle_folder": "bundle", "checkpoint": "model.pt", "out_channels": len(names)}
    raw["weights"] = [
        {"name": "phantom_bundle.zip", "url": "https://example.org/phantom_bundle.zip", "archive": "zip",
         "extract_to": "bundle", "sha256": sha256_file(Path(archive))},
        {"name": "model.pt", "url": "https://example.org/model.pt", "sha256": sha256_file(source / "model.pt")}]
    raw["sliding_window"] = {"patch_size": config["inferer"]["roi_size"], "overlap": 0.5, "batch_size": 1}
    entry = catalogue.ModelEntry.model_validate(raw)
    entries = {**catalogue.load_catalogue(), entry.name: entry}
    monkeypatch.setattr(catalogue, "load_catalogue", lambda: entries)
    monkeypatch.setattr(weights_bundle, "load_catalogue", lambda: entries)
    install_from_source(source, model=entry.name)
    segmenter = monai_bundle.load(entry, device="cpu")  # axes as stored: a smoke test of the catalogue path
    assert segmenter.network is not None and segmenter.channels == len(names)

    installed = next((tmp_path / "home").rglob("configs/inference.json"))
    tampered = json.loads(installed.read_text())
    tampered["network_def"] = f"$open({str(tmp_path / 'ran.txt')!r}, 'w').write('x')"
    installed.write_text(json.dumps(tampered))
    with pytest.raises(ModelError, match="fail verification"):
        monai_bundle.load(entry, device="cpu")
    assert not (tmp_path / "ran.txt").exists()


def test_config_values_map_to_the_engine_spec(tmp_path):
    """The wholeBody_ct_segmentation preprocessing (pixdim written out) read as plain values."""
    from volseg.segmenters.backends.monai_bundle import _settings, spec_from_config

    config = {"preprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "LoadImaged", "keys": "@image_key"},
        {"_target_": "monai.transforms.Orientationd", "keys": "@image_key", "axcodes": "RAS"},
        {"_target_": "Spacingd", "keys": "@image_key", "pixdim": [1.5, 1.5, 1.5], "mode": "bilinear"},
        {"_target_": "NormalizeIntensityd", "keys": "@image_key", "nonzero": True},
        {"_target_": "ScaleIntensityd", "keys": "@image_key", "minv": -1.0, "maxv": 1.0}]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [96, 96, 96], "sw_batch_size": 2,
                    "overlap": 0.25, "mode": "gaussian"}}
    spec, batch = spec_from_config(config, tmp_path)
    assert (spec.orientation, spec.spacing_mm, spec.patch_size, spec.step, batch) == \
        ("RAS", (1.5, 1.5, 1.5), (96, 96, 96), 0.75, 2)
    assert spec.intensity.kind == "zscore_then_scale" and spec.intensity.nonzero
    assert spec.intensity.output_range == (-1.0, 1.0) and spec.resampling == "linear"
    settings = _settings(spec, batch, None)  # what the engine runs: the bundle's overlap and batch ...
    assert (settings.step, settings.window_batch) == (0.75, 2)
    assert _settings(spec, batch, EngineOverrides(step=0.5)).step == 0.5  # ... unless the user says otherwise


def test_intensity_presets_with_known_answers():
    import torch

    from volseg.segmenters.backends.window_pipeline import (
        ClipZScore,
        WindowPreset,
        ZScore,
        ZScoreThenScale,
        normalise,
    )

    x = torch.tensor([[[[-1000.0, -15.0, 42.5, 100.0, 500.0]]]])
    out = normalise(x.clone(), WindowPreset(kind="window", window=(-15, 100), output_range=(-1, 1)))
    torch.testing.assert_close(out, torch.tensor([[[[-1.0, -1.0, 0.0, 1.0, 1.0]]]]))
    out = normalise(x.clone(), ClipZScore(kind="clip_zscore", clip=(-15, 100), mean=42.5, std=57.5))
    torch.testing.assert_close(out, torch.tensor([[[[-1.0, -1.0, 0.0, 1.0, 1.0]]]]))
    y = torch.tensor([[[[0.0, 2.0, 4.0, 0.0, 6.0]]]])
    out = normalise(y.clone(), ZScore(kind="zscore", nonzero=True))
    torch.testing.assert_close(out, torch.tensor([[[[0.0, -1.224745, 0.0, 0.0, 1.224745]]]]))
    out = normalise(y.clone(), ZScoreThenScale(kind="zscore_then_scale", nonzero=True, output_range=(-1, 1)))
    assert float(out.min()) == -1.0 and float(out.max()) == 1.0 and float(out[0, 0, 0, 2]) == pytest.approx(0.0, abs=1e-6)
