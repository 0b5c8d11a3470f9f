"""A poor registration is flagged (JSON and stderr); the CLI in-process; bad inputs; cohort mode."""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace

import pytest

from tests.factories.follow_up import ORGANS, Scene, sphere, write_study


def _scrambled() -> Scene:
    """Organs moved each its own way: no rigid or affine transform brings them back."""
    liver, spleen, kl, kr = ORGANS[1:]
    moved = (ORGANS[0], replace(liver, centre_mm=(10.0, -15.0, -20.0)), replace(spleen, centre_mm=(-30.0, 10.0, -25.0)),
             replace(kl, centre_mm=(-20.0, -18.0, 30.0)), replace(kr, centre_mm=(26.0, 20.0, 20.0)))
    return Scene(organs=moved, lesions=(sphere(6, (0.0, 0.0, 0.0), 6.0),))


@pytest.fixture(scope="module")
def scrambled(tmp_path_factory):
    root = tmp_path_factory.mktemp("scrambled")
    t0, i0 = write_study(root / "t0", Scene(lesions=(sphere(6, (-22.0, 5.0, 12.0), 8.0),)))
    t1, i1 = write_study(root / "t1", _scrambled())
    return t0, t1, i0, i1


def test_a_poor_registration_is_a_flagged_warning(scrambled, tmp_path, cli):
    t0, t1, _, _ = scrambled
    run = cli("compare", str(t0), str(t1), "-o", str(tmp_path / "out"), "--no-html")
    assert run.returncode == 0, run.stderr
    payload = json.loads((tmp_path / "out" / "comparison.json").read_text())
    reg = payload["registrations"][0]
    assert reg["registered_on"] == "label_map"  # no image known: the label maps
    assert reg["quality"] == "poor" and reg["warning"].startswith("poor registration")
    assert reg["centroid_residual_mm"] > 10.0
    assert any("poor registration" in w for w in payload["warnings"])
    assert "warning: T0→T1: poor registration" in run.stderr


def test_cli_compare_prints_the_response_on_stdout(must_show_pair, tmp_path, cli):
    p = must_show_pair
    run = cli("compare", str(p.baseline), str(p.followup), "-o", str(tmp_path / "out"), "--image",
              str(p.baseline_image), "--image", str(p.followup_image), "--interval-days", "90", "--no-html")
    assert run.returncode == 0, run.stderr
    assert "RECIST 1.1: PD (new lesion(s) since the baseline: T1:liver_tumor-2)" in run.stdout.replace("\n", " ")
    assert "poor registration" not in run.stderr
    assert {"comparison.json", "lesion_changes.csv", "organ_changes.csv"} <= {
        f.name for f in (tmp_path / "out").iterdir()}


def test_missing_report_is_one_line_naming_the_file(must_show_pair, tmp_path, cli):
    broken = tmp_path / "t1"
    shutil.copytree(must_show_pair.followup, broken)
    (broken / "segmentation.nii.gz").unlink()
    run = cli("compare", str(must_show_pair.baseline), str(broken), "-o", str(tmp_path / "out"))
    assert run.returncode == 3
    assert run.stderr.strip().splitlines() == [
        f"volseg: error: {broken / 'segmentation.nii.gz'}: no label map in the study output folder "
        "(segment the study with volseg segment, or give the image to compare)"]
    (broken / "report.json").unlink()
    run = cli("compare", str(must_show_pair.baseline), str(broken), "-o", str(tmp_path / "out"))
    assert run.returncode == 2 and f"{broken}: not a study output folder" in run.stderr


def test_different_models_are_refused(must_show_pair, tmp_path, cli):
    other = tmp_path / "t1"
    shutil.copytree(must_show_pair.followup, other)
    report = json.loads((other / "report.json").read_text())
    report["provenance"]["model"] = {"name": "total", "version": "2"}
    (other / "report.json").write_text(json.dumps(report))
    run = cli("compare", str(must_show_pair.baseline), str(other), "-o", str(tmp_path / "out"))
    assert run.returncode == 7
    assert "segmented with model 'total', the baseline with None" in run.stderr


def test_cohort_mode_goes_on_after_a_bad_pair(must_show_pair, tmp_path, cli):
    runs = must_show_pair.baseline.parent
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("pair,baseline,followup,days\nbad,t0,missing,30\ngood,t0,t1,90\n")
    run = cli("compare", "--cohort", str(runs), "--pairs", str(pairs), "-o", str(tmp_path / "out"), "--no-html")
    assert run.returncode == 3  # the bad pair's exit code (InputError)
    assert "pair bad failed" in run.stderr and run.stdout.split() == ["good", "PD"]
    with (tmp_path / "out" / "cohort_comparison.csv").open() as fh:
        rows = {r["pair"]: r for r in csv.DictReader(fh)}
    assert rows["bad"]["status"] == "failed" and rows["bad"]["exit_code"] == "3"
    assert "missing" in rows["bad"]["error"]
    assert rows["good"]["status"] == "done" and rows["good"]["category"] == "PD"
    good = json.loads((tmp_path / "out" / "good" / "comparison.json").read_text())
    assert good["studies"][1]["days_from_baseline"] == 90.0 and good["studies"][1]["days_source"] == "pairs_csv"
    assert good["matches"][0]["doubling_time_days"] is not None  # the image is unknown here: label maps


def test_bad_options_are_usage_errors(must_show_pair, tmp_path, cli):
    p = must_show_pair
    run = cli("compare", str(p.baseline), str(p.followup), "-o", str(tmp_path / "o"), "--registration", "elastic")
    assert run.returncode == 2 and "--registration 'elastic'" in run.stderr
    run = cli("compare", str(p.baseline), "-o", str(tmp_path / "o"))
    assert run.returncode == 2 and "baseline and at least one follow-up" in run.stderr
    run = cli("compare", str(p.baseline), str(p.followup), "-o", str(tmp_path / "o"), "--interval-days", "30,40")
    assert run.returncode == 2 and "--interval-days gives 2 interval(s) for 2 studies" in run.stderr


def test_images_are_segmented_first_with_one_model(tmp_path, cli):
    from tests.factories.follow_up import must_show_scenes, render, rigid
    from volseg.io.nifti import write_nifti

    before, after = must_show_scenes()
    ct0 = write_nifti(render(before)[1], tmp_path / "ct0.nii.gz")
    ct1 = write_nifti(render(after, moved=rigid(10.0, (20.0, 0.0, 0.0)))[1], tmp_path / "ct1.nii.gz")
    run = cli("compare", str(ct0), str(ct1), "-o", str(tmp_path / "out"))
    assert run.returncode == 2 and "with --model" in run.stderr  # images need a model
    run = cli("compare", str(ct0), str(ct1), "-m", "classic-ct", "-o", str(tmp_path / "out"), "--no-html")
    assert run.returncode == 0, run.stderr
    payload = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [s["name"] for s in payload["studies"]] == ["T0-ct0", "T1-ct1"]
    assert {s["model_name"] for s in payload["studies"]} == {"classic-ct"}
    assert payload["registrations"][0]["registered_on"] == "image"
    assert payload["registrations"][0]["quality"] == "good"
    assert (tmp_path / "out" / "studies" / "T1-ct1" / "report.json").is_file()


def test_cli_passes_its_options_to_the_api(tmp_path, monkeypatch):
    from volseg import api
    from volseg.cli.main import main
    from volseg.compare.results import CompareSettings, Comparison, Registration, StudyRef
    from volseg.compare.run import CompareResult

    seen = {}
    identity = ((1.0, 0, 0, 0), (0, 1.0, 0, 0), (0, 0, 1.0, 0), (0, 0, 0, 1.0))

    def fake_compare(studies, out_dir, **kwargs):
        seen.update(kwargs, studies=studies, out_dir=out_dir)
        refs = [StudyRef(timepoint=t, name=f"t{t}", label_map_path="x") for t in range(3)]
        regs = [Registration(from_timepoint=t, to_timepoint=t + 1, matrix_ras_mm=identity, method="none",
                             registered_on="none", initialisation="identity", rotation_deg=0.0,
                             translation_mm=(0.0, 0.0, 0.0), quality="good") for t in range(2)]
        settings = CompareSettings(match_tolerance_mm=7.0, min_match_dice=0.05, poor_residual_mm=10.0, poor_dice=0.5,
                                   registration="label_map")
        return CompareResult(Comparison(volseg_version="x", created_utc="x", studies=refs, registrations=regs,
                                        settings=settings), {})

    monkeypatch.setattr(api, "compare", fake_compare)
    code = main(["compare", "a", "b", "c", "-o", str(tmp_path / "o"), "--match-tolerance-mm", "7",
                 "--interval-days", "30,60", "--registration", "label_map", "--image", "i0", "--image", "i1",
                 "--image", "i2", "--no-html"])
    assert code == 0
    options = seen["options"]
    assert (options.match_tolerance_mm, options.interval_days, options.registration) == (7.0, (30.0, 60.0),
                                                                                           "label_map")
    assert [str(p) for p in seen["studies"]] == ["a", "b", "c"] and [str(p) for p in seen["images"]] == [
        "i0", "i1", "i2"]
    assert seen["html"] is False and seen["model"] is None
