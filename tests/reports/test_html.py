"""report.html: one self-contained page with the study summary, tables, QC flags and pictures."""
import re

from pydantic import Field

from tests.reports.factories import LESION_LABELS, airway_branches, lesion_study, small_phantom
from volseg import api
from volseg.io.nifti import write_nifti
from volseg.postprocess.qc import is_fov_exempt
from volseg.reports.html import REPORT_HTML, render_html, study_pictures
from volseg.reports.model import Report

IMG = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{200,}">')


class ReportWithContract(Report):
    """The fields the measurements work adds (schema 1.1.0), as the report contract names them."""

    instances: list[dict] = Field(default_factory=list)
    burden: list[dict] = Field(default_factory=list)
    airway: dict | None = None


def _lesion_report(tmp_path):
    image, labels, instance = lesion_study()
    ct, seg = write_nifti(image, tmp_path / "ct.nii.gz"), write_nifti(labels, tmp_path / "seg.nii.gz")
    (tmp_path / "labels.json").write_text(LESION_LABELS.to_json())
    result = api.measure(seg, tmp_path / "out", image=ct, labels=tmp_path / "labels.json")
    burden = [{"class_name": "liver_tumor", "lesion_count": 1, "total_volume_ml": instance["volume_ml"],
               "recist_target_sum_mm": 30.0, "n_recist_targets": 1}]
    report = ReportWithContract.model_validate({**result.report.model_dump(), "instances": [instance],
                                                "burden": burden})
    return report, image, labels


def test_study_page_written_by_measure(phantom_result):
    page = (phantom_result.outputs["html"]).read_text(encoding="utf-8")
    assert phantom_result.outputs["html"].name == REPORT_HTML
    assert len(IMG.findall(page)) >= 4  # axial, coronal, sagittal, airway MIP
    assert "<table" in page and "Volume (mL)" in page and "Spacing (mm)" in page
    for s in phantom_result.report.structures:
        assert f"{s.volume_ml:.2f}" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "<script" not in page  # self-contained


def test_qc_flags_are_highlighted(phantom_result):
    page = phantom_result.outputs["html"].read_text(encoding="utf-8")
    truncated = [s for s in phantom_result.report.structures if s.touches_fov and not is_fov_exempt(s.name)]
    assert truncated, "the phantom's lungs reach the top of the field of view"
    assert any(s.touches_fov and is_fov_exempt(s.name) for s in phantom_result.report.structures)  # body: no flag
    assert page.count('<span class="flag">truncated</span>') == len(truncated)
    assert page.count("<tr class=qc>") >= len(truncated)


def test_lesions_burden_and_calipers(tmp_path):
    report, image, labels = _lesion_report(tmp_path)
    main, lesions, notes = study_pictures(report, LESION_LABELS, labels, image)
    assert [p.key for p in lesions] == ["lesion-liver_tumor-1"] and notes == []
    page = render_html(report, labels=LESION_LABELS, pictures=main, lesion_pictures=lesions)
    assert "Lesions and lymph nodes (1)" in page and "<h2>Burden</h2>" in page
    assert '<a href="#lesion-liver_tumor-1">liver_tumor-1</a>' in page
    assert "30.0" in page and "16.0" in page and ">=15 mm" not in page  # escaped below
    assert "&gt;=15 mm" in page
    assert len(IMG.findall(page)) == 4


def test_airway_section_and_leak_highlight(phantom_report):
    airway = {"branch_count": 3, "max_generation": 1, "branches_per_generation": {"0": 1, "1": 2},
              "total_centreline_length_mm": 153.0, "trachea_length_mm": 43.0, "trachea_diameter_mm": 18.0,
              "lumen_volume_ml": 12.9, "leak_suspected": True, "branches": airway_branches()}
    report = ReportWithContract.model_validate({**phantom_report.model_dump(), "airway": airway})
    phantom = small_phantom()
    main, _, _ = study_pictures(report, phantom.labels, phantom.truth, phantom.image)
    assert "3 centreline branches" in main[-1].caption
    page = render_html(report, pictures=main)
    assert "gen 0: 1, gen 1: 2" in page and "<tr class=qc><th>Leak suspected</th><td>YES</td>" in page


def test_values_are_escaped(phantom_report):
    evil = phantom_report.model_copy(update={"study_id": "<script>alert(1)</script>",
                                             "warnings": ["a & b < c"]})
    page = render_html(evil)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b &lt; c" in page


def test_report_without_later_fields_renders(phantom_report):
    core = ("schema_version", "study_id", "input", "provenance", "structures", "warnings")
    plain = Report.model_validate({k: v for k, v in phantom_report.model_dump().items() if k in core})
    page = render_html(plain)
    assert "Lesions and lymph nodes" not in page and "Airway tree" not in page and "<table" in page


def test_pictures_drawn_on_several_cores_are_those_of_one(tmp_path, monkeypatch):
    report, image, labels = _lesion_report(tmp_path)
    drawn = {}
    for workers in ("1", "4"):  # 4: the 3 views, the airway and the lesion shared by forked workers
        monkeypatch.setenv("VOLSEG_WORKERS", workers)
        main, lesions, notes = study_pictures(report, LESION_LABELS, labels, image)
        drawn[workers] = [(p.key, p.caption, p.png) for p in [*main, *lesions]], notes
    assert drawn["1"] == drawn["4"] and len(drawn["1"][0]) == 4
