"""volseg collect: the wide CSV equals the per-study CSVs; shards merge; index.html links every study."""
import csv
import json
import shutil

import numpy as np
import pytest

from tests.reports.factories import phantom_study
from volseg import api
from volseg.cli.main import main
from volseg.reports.cohort import COHORT_LESIONS, COHORT_VOLUMETRY, INDEX_HTML, find_reports
from volseg.reports.cohort_html import iqr_outliers


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Three studies (different anatomy sizes and noise) in two shard folders."""
    root = tmp_path_factory.mktemp("cohort")
    for shard, name, seed, scale in (("shard-1", "case-a", 1, 1.0), ("shard-1", "case-b", 2, 0.9),
                                     ("shard-2", "case-c", 3, 1.1)):
        phantom_study(root / shard, seed=seed, scale=scale, name=name)
    return root


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_wide_csv_equals_per_study_csvs(cohort):
    assert main(["-q", "collect", str(cohort)]) == 0
    wide = {row["study_id"]: row for row in _read_csv(cohort / COHORT_VOLUMETRY)}
    assert sorted(wide) == ["case-a_ct", "case-b_ct", "case-c_ct"]
    for report in find_reports(cohort):
        per_study = _read_csv(report.parent / "volumetry.csv")
        row = wide[per_study[0]["study_id"]]
        assert row["report"] == report.relative_to(cohort).as_posix()
        for structure in per_study:
            assert row[f"{structure['name']}_volume_ml"] == structure["volume_ml"]
            assert row[f"{structure['name']}_touches_fov"] == structure["touches_fov"]
        assert int(row["n_warnings"]) == len(json.loads(report.read_text())["warnings"])
    volumes = [float(wide[s]["lung_left_volume_ml"]) for s in sorted(wide)]
    assert len(set(volumes)) == 3  # three different studies, not one repeated


def test_wide_csv_columns(cohort):
    api.collect(cohort, html=False)
    header = (cohort / COHORT_VOLUMETRY).read_text().splitlines()[0].split(",")
    assert header[:4] == ["study_id", "report", "schema_version", "model"]
    structures = ["body", "lung_left", "lung_right", "airways", "bone", "subcutaneous_fat", "torso_fat"]
    assert [c for c in header if c.endswith("_volume_ml")] == [f"{s}_volume_ml" for s in structures]
    assert "lung_left_qc_flags" in header and "n_warnings" in header
    wide = _read_csv(cohort / COHORT_VOLUMETRY)
    assert all(r["body_touches_fov"] == "1" for r in wide)  # the phantom is cut by the FOV ...
    assert all("truncated" not in r["body_qc_flags"].split(";") for r in wide)  # ... but the body always is
    assert all("truncated" in r["bone_qc_flags"].split(";") for r in wide)  # other classes still are
    assert (cohort / COHORT_LESIONS).read_text().splitlines()[0].startswith("study_id")


def test_index_links_every_study_page(cohort):
    result = api.collect(cohort)
    page = (cohort / INDEX_HTML).read_text(encoding="utf-8")
    for study in result.studies:
        link = (study.path.parent / "report.html").relative_to(cohort).as_posix()
        assert f'<a href="{link}">{study.study_id}</a>' in page
    assert page.count("data:image/png;base64,") == 1  # 7 structures: one picture of panels
    assert "Outliers and QC-flagged volumes" in page and "QC-flagged" in page


def test_reruns_merge_and_bad_reports_are_skipped(cohort, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(cohort / "shard-1", root / "run-1")
    rerun = phantom_study(root / "run-2", seed=1, scale=1.0, name="case-a")  # same study, newer
    bad = root / "run-3" / "broken"
    bad.mkdir(parents=True)
    (bad / "report.json").write_text("{not json")
    result = api.collect(root)
    ids = [s.study_id for s in result.studies]
    assert ids == ["case-a_ct", "case-b_ct"]
    newest = next(s for s in result.studies if s.study_id == "case-a_ct")
    assert newest.path == rerun.outputs["report"]
    assert result.skipped[0][0] == "run-3/broken/report.json" and "cannot read report" in result.skipped[0][1]
    assert any("replaced by the newer" in n for n in result.notes)


def test_same_name_different_studies_are_both_kept(cohort, tmp_path):
    root = tmp_path / "runs"
    phantom_study(root / "site-1", seed=1, scale=1.0, name="case")
    phantom_study(root / "site-2", seed=2, scale=0.8, name="case")  # other grid: another study
    ids = [s.study_id for s in api.collect(root, html=False).studies]
    assert ids[0] == "case_ct" and ids[1].startswith("case_ct@site-")


def test_empty_folder_exits_with_input_error(tmp_path):
    assert main(["-q", "collect", str(tmp_path)]) == 3
    assert (tmp_path / COHORT_VOLUMETRY).read_text().startswith("study_id,")


def test_iqr_outliers_known_answer():
    assert iqr_outliers([10, 11, 12, 13, 100]).tolist() == [False, False, False, False, True]
    assert iqr_outliers([1.0, 2.0, 50.0]).tolist() == [False, False, False]  # too few to call
    assert not iqr_outliers(np.linspace(0, 1, 20)).any()
