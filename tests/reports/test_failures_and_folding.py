"""The cohort shows failed studies; warnings are folded by kind; the body is never 'truncated'."""
import csv
import re

import pytest

from tests.reports.factories import phantom_study
from volseg import api
from volseg.batch import records
from volseg.batch.discover import Study
from volseg.batch.records import RunKey
from volseg.postprocess.measure import StructureMeasurement
from volseg.postprocess.qc import FOV_EXEMPT_CLASSES, qc_structure
from volseg.reports.cohort import COHORT_FAILURES, FAILURE_COLUMNS, INDEX_HTML
from volseg.reports.html import qc_flags, render_html
from volseg.reports.pictures import Picture
from volseg.reports.warning_folds import fold_warnings, summary

EMPTY = "{}: empty (not found in this image)"
CUT = "{}: cut by the field of view; volume_ml is a lower bound"


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _fail(root, study_id, *, error="b.nii.gz: truncated or corrupt voxel data", exit_code=3):
    study = Study(study_id=study_id, path=str(root / "in" / f"{study_id}.nii.gz"), kind="nifti",
                  rel_path=f"{study_id}.nii.gz")
    key = RunKey(models=(("model.onnx", "files-0123456789abcdef"),))
    records.write_failed(root / study_id, study, key, fingerprint={}, stage="read", error_class="InputError",
                         exit_code=exit_code, error=error)


# ---- folding ------------------------------------------------------------------------------------
def test_warnings_fold_by_kind_known_answer():
    names = [f"rib_left_{i}" for i in range(1, 12)]
    warnings = ([EMPTY.format(n) for n in names] + [CUT.format("liver"), CUT.format("spleen"),
                "sform and qform disagree; using the sform (NIfTI rule: sform first)", EMPTY.format("sternum")]
                + ["rib_left_1: no voxel in this label map"])  # the QC wording of the same fact: counted once
    groups = fold_warnings(warnings, max_names=3)
    assert [g.kind for g in groups] == ["not_found", "cut_by_fov", "other"]
    assert groups[0].text == "12 structures not found (empty): rib_left_1, rib_left_2, rib_left_3, …"
    assert groups[0].names == (*names, "sternum")
    assert groups[1].text == "2 structures cut by the field of view (volumes are lower bounds): liver, spleen"
    assert groups[2].text.startswith("sform and qform disagree")
    assert summary(warnings) == "12 not found · 2 cut by the field of view · 1 other"


def test_a_kind_met_once_stays_as_written():
    warnings = [CUT.format("liver"), "kidney_left: 80.0 mL below the adult reference >= 99 mL (J Clin Med)"]
    groups = fold_warnings(warnings)
    assert [(g.text, g.folded) for g in groups] == [(warnings[0], False), (warnings[1], False)]


def test_report_html_folds_warnings_and_puts_pictures_first(phantom_report):
    names = [f"vertebrae_T{i}" for i in range(1, 9)]
    report = phantom_report.model_copy(update={"warnings": [EMPTY.format(n) for n in names] + ["other thing"]})
    picture = Picture(key="overview", title="Axial", caption="c", png=b"\x89PNG")
    page = render_html(report, pictures=[picture])
    assert page.index("<h2>Pictures</h2>") < page.index("<h2>Warnings")
    assert "<h2>Warnings (2, folded from 9)</h2>" in page
    assert "8 structures not found (empty): vertebrae_T1" in page
    section = page[page.index("<h2>Warnings"):]
    section = section[:section.index("</section>")]
    assert section.count("<li>") == 2  # one folded line and the other warning, not 9 lines
    assert "<li>other thing</li>" in page


# ---- truncated ----------------------------------------------------------------------------------
def _measurement(name, *, touches_fov=True):
    return StructureMeasurement(label=1, name=name, voxel_count=1000, volume_ml=100.0, intensity=None,
                                centroid_ras_mm=None, bbox_min_ras_mm=None, bbox_max_ras_mm=None,
                                n_components=1, largest_component_ml=100.0, touches_fov=touches_fov, empty=False)


@pytest.mark.parametrize("name", ["body", "body_trunc", "body_extremities", "subcutaneous_fat", "torso_fat",
                                  "skeletal_muscle", "skin"])
def test_body_and_tissue_classes_touching_the_edge_are_not_truncated(name):
    assert name in FOV_EXEMPT_CLASSES
    assert "truncated" not in qc_structure(_measurement(name), None).flags
    assert "truncated" in qc_structure(_measurement("liver"), None).flags  # organs still are


def test_phantom_report_flags_no_body_class_truncated(phantom_report):
    """The phantom's body and fat reach the edge of its grid: touches_fov stays a fact, not a flag."""
    rows = {s.name: s for s in phantom_report.structures}
    assert rows["body"].touches_fov  # the measurement is unchanged
    for name in ("body", "subcutaneous_fat", "torso_fat"):
        assert "truncated" not in qc_flags(rows[name]) and "truncated" not in rows[name].qc_flags
    assert not any(w.startswith(("body:", "subcutaneous_fat:", "torso_fat:")) and "field of view" in w
                   for w in phantom_report.warnings)
    liver_like = rows["lung_left"].model_copy(update={"touches_fov": True, "qc_flags": []})
    assert "truncated" in qc_flags(liver_like)


# ---- the cohort shows failures ------------------------------------------------------------------
@pytest.fixture(scope="module")
def cohort_with_failure(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort-failures")
    phantom_study(root, seed=1, name="case-a")
    phantom_study(root, seed=2, name="case-b")
    _fail(root, "broken")
    return root


def test_collect_writes_failures_csv_and_lists_them_in_index(cohort_with_failure):
    root = cohort_with_failure
    result = api.collect(root)
    assert [s.study_id for s in result.studies] == ["case-a_ct", "case-b_ct"]
    assert [f.study_id for f in result.failures] == ["broken"]
    rows = _rows(root / COHORT_FAILURES)
    assert list(rows[0]) == list(FAILURE_COLUMNS) and len(rows) == 1
    row = rows[0]
    assert (row["study_id"], row["model"], row["stage"], row["error_class"], row["exit_code"]) == (
        "broken", "model.onnx", "read", "InputError", "3")
    assert row["error"] == "b.nii.gz: truncated or corrupt voxel data" and re.match(r"\d{4}-\d\d-\d\dT", row["time"])
    page = (root / INDEX_HTML).read_text()
    assert "volseg cohort: 2 studies, 1 failed</h1>" in page
    assert "Failed studies (1)" in page and "b.nii.gz: truncated or corrupt voxel data" in page
    assert page.index("Failed studies") < page.index("<h2>Studies</h2>")


def test_collect_cli_writes_the_failures_too(cohort_with_failure, tmp_path):
    from volseg.cli.main import main

    assert main(["-q", "collect", str(cohort_with_failure), "--no-html"]) == 0
    assert [r["study_id"] for r in _rows(cohort_with_failure / COHORT_FAILURES)] == ["broken"]


def test_no_failures_gives_a_header_only_csv_and_no_section(tmp_path):
    phantom_study(tmp_path, seed=3, name="case-c")
    result = api.collect(tmp_path)
    assert result.failures == []
    assert (tmp_path / COHORT_FAILURES).read_text().splitlines() == [",".join(FAILURE_COLUMNS)]
    page = (tmp_path / INDEX_HTML).read_text()
    assert "Failed studies" not in page and "volseg cohort: 1 studies</h1>" in page


def test_cohort_page_folds_each_studys_warnings(cohort_with_failure):
    result = api.collect(cohort_with_failure)
    page = (cohort_with_failure / INDEX_HTML).read_text()
    body = page[page.index("<h2>Studies</h2>"):page.index("</section>", page.index("<h2>Studies</h2>"))]
    for study in result.studies:
        warnings = study.report.warnings
        cut = [w for w in warnings if "cut by the field of view" in w]
        assert len(cut) >= 2  # the phantom's organs reach its grid's edge
        assert f"<td>{summary(warnings)}</td>" in body  # e.g. "3 cut by the field of view"
        assert not any(w in body for w in cut)  # no per-structure lines
