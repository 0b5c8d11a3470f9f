"""CLI: volseg report render/validate, and the segment flags --dicom/--keep-phi/--html."""
import json

import pytest

from volseg import api
from volseg.cli.main import main
from volseg.options import SegmentOptions


def test_render_csv_equals_written_csv(phantom_result, tmp_path):
    report = phantom_result.outputs["report"]
    assert main(["-q", "report", "render", str(report), "--format", "csv", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "volumetry.csv").read_text() == phantom_result.outputs["volumetry"].read_text()
    assert main(["-q", "report", "render", str(report), "-f", "csv", "-o", str(tmp_path / "v.csv")]) == 0
    assert (tmp_path / "v.csv").read_text() == phantom_result.outputs["volumetry"].read_text()


def test_render_html_with_and_without_image(phantom_result, tmp_path):
    report = phantom_result.outputs["report"]
    seg = report.parent.parent / "inputs" / "phantom_labels.nii.gz"
    ct = report.parent.parent / "inputs" / "phantom_ct.nii.gz"
    out = tmp_path / "page.html"
    assert main(["-q", "report", "render", str(report), "-o", str(out), "-s", str(seg), "-i", str(ct)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 4 and "label map only" not in page
    # without the image: pictures of the label map alone, and the page says so
    assert main(["-q", "report", "render", str(report), "-o", str(out), "-s", str(seg)]) == 0
    assert "pictures show the label map only" in out.read_text(encoding="utf-8")
    # without a label map: no pictures, and the page says so
    assert main(["-q", "report", "render", str(report), "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "data:image/png" not in page and "No pictures" in page


def test_render_refuses_image_off_the_label_grid(phantom_result, tmp_path):
    from tests.reports.factories import lesion_study
    from volseg.io.nifti import write_nifti

    other = write_nifti(lesion_study()[0], tmp_path / "other.nii.gz")
    report = phantom_result.outputs["report"]
    seg = report.parent.parent / "inputs" / "phantom_labels.nii.gz"
    code = main(["-q", "report", "render", str(report), "-o", str(tmp_path), "-s", str(seg), "-i", str(other)])
    assert code == 4  # GeometryError


def test_render_unknown_format_is_a_usage_error(phantom_result):
    assert main(["-q", "report", "render", str(phantom_result.outputs["report"]), "-f", "pdf"]) == 2


def test_validate(phantom_result, tmp_path):
    assert main(["-q", "report", "validate", str(phantom_result.outputs["report"])]) == 0
    bad = json.loads(phantom_result.outputs["report"].read_text())
    del bad["study_id"]
    (tmp_path / "report.json").write_text(json.dumps(bad))
    assert main(["-q", "report", "validate", str(tmp_path / "report.json")]) == 3


@pytest.mark.parametrize("flags, expected", [
    ([], dict(dicom=False, keep_phi=False, html=True)),
    (["--dicom", "--keep-phi", "--no-html"], dict(dicom=True, keep_phi=True, html=False)),
    (["--dicom", "--html"], dict(dicom=True, keep_phi=False, html=True)),
])
def test_segment_flags_reach_the_api(monkeypatch, tmp_path, flags, expected):
    seen = {}

    def fake_segment_many(inputs, out_dir, *, options, progress):
        seen["options"] = options
        return []

    monkeypatch.setattr(api, "segment_many", fake_segment_many)
    assert main(["-q", "segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), *flags]) == 0
    assert seen["options"] == SegmentOptions(**expected)


def test_collect_reaches_the_api(monkeypatch, tmp_path):
    seen = {}

    def fake_collect(out_dir, *, html):
        seen.update(out_dir=out_dir, html=html)
        from volseg.reports.cohort import CohortResult

        return CohortResult(studies=[object()])

    monkeypatch.setattr(api, "collect", fake_collect)
    assert main(["-q", "collect", str(tmp_path), "--no-html"]) == 0
    assert seen == {"out_dir": tmp_path, "html": False}
