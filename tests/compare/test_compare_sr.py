"""The comparison's DICOM SR (TID 1500): written only for a DICOM follow-up, read back with highdicom; the
lesions at both time points (one tracking UID per lesion track), the match changes and statuses, RECIST
sums and response with their codes, the follow-up series as evidence, identity as the study's own SR."""
from __future__ import annotations

import shutil
import subprocess

import pydicom
import pytest

from tests.compare.comparison_case import BASELINE, FOLLOW_UP, PHI_FOLDER, build_case, volume_ml
from volseg.compare.extras import write_comparison_extras
from volseg.compare.sr import COMPARISON_SR, write_comparison_sr
from volseg.io import read_image

hd = pytest.importorskip("highdicom")

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
TIME_POINT = "C2348792"  # UMLS "Time Point" (TID 1502)
TYPE = "126072"  # DCM "Time Point Type"
CONTEXT = {"126073", "128740"}  # DCM "Time Point Order", "Longitudinal Temporal Offset from Event"


@pytest.fixture(scope="module")
def series(shared_data):
    return shared_data / "dcmqi-ct3" / "ct-3slice"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return build_case(tmp_path_factory.mktemp("case"))


@pytest.fixture(scope="module")
def written(case, series, tmp_path_factory):
    out = tmp_path_factory.mktemp("sr")
    path = write_comparison_sr(case.comparison, out, source=read_image(series).source)
    assert path == out / COMPARISON_SR
    return path


def _time_point(group) -> str:
    return next(str(item.TextValue) for item in group[0].ContentSequence
                if item.ConceptNameCodeSequence[0].CodeValue == TIME_POINT)


def _groups(path):
    sr = hd.sr.srread(path)
    return sr, sr.content.get_image_measurement_groups()


def _measures(group) -> dict[str, tuple[float, str]]:
    """Measurements, less the time point's numeric context items (highdicom lists them too)."""
    return {m.name.value: (m.value, m.unit.value) for m in group.get_measurements() if m.name.value not in CONTEXT}


def _context(group) -> dict[str, tuple[float, str]]:
    return {m.name.value: (m.value, m.unit.value) for m in group.get_measurements() if m.name.value in CONTEXT}


def _evaluations(group) -> dict[str, str]:
    """Qualitative evaluations, less the Time Point Type (highdicom lists that coded context item too)."""
    return {e.name.value: e.value.value for e in group.get_qualitative_evaluations() if e.name.value != TYPE}


def _time_point_type(group) -> str:
    return next(e.value.value for e in group.get_qualitative_evaluations() if e.name.value == TYPE)


def test_lesions_at_both_time_points_share_their_track(written, case):
    _, groups = _groups(written)
    c = case.comparison
    assert len(groups) == len(c.lesions) + len(c.matches) + len(c.recist.timepoints) == 17
    grown = [g for g in groups if g.tracking_identifier == "liver_tumor-1"]
    assert sorted(_time_point(g) for g in grown) == ["T0", "T1"]
    assert grown[0].tracking_uid == grown[1].tracking_uid  # one lesion followed over time
    by_time = {_time_point(g): _measures(g) for g in grown}
    assert by_time["T0"]["118565006"] == (pytest.approx(volume_ml(BASELINE["liver_tumor-1"])), "ml")
    assert by_time["T1"]["118565006"][0] == pytest.approx(volume_ml(FOLLOW_UP["liver_tumor-1"]))
    assert by_time["T0"]["103339001"] == (pytest.approx(16.0), "mm") and by_time["T1"]["103339001"][0] == 20.0
    assert by_time["T1"]["103340004"] == (pytest.approx(20.0), "mm")
    baseline = next(g for g in grown if _time_point(g) == "T0")
    assert _evaluations(baseline) == {"112016": "112074"}  # Baseline Category: Target Lesion at Baseline
    assert {_time_point(g): _time_point_type(g) for g in grown} == {"T0": "C1442488", "T1": "126074"}
    assert {_time_point(g): _context(g) for g in grown} == {"T0": {"126073": (1.0, "1"), "128740": (0.0, "d")},
                                                            "T1": {"126073": (2.0, "1"), "128740": (91.0, "d")}}
    new = next(g for g in groups if g.tracking_identifier == "T1:liver_tumor-2")
    assert _time_point(new) == "T1" and new.finding_type.value == "52988006"  # SCT Lesion
    assert {g.method.value for g in groups} == {"126081"}  # RECIST 1.1
    uids = {g.tracking_uid for g in groups if g.tracking_identifier.startswith("liver_tumor-")}
    assert len(uids) == len(BASELINE)  # baseline tracks; the follow-up-only lesions are untracked or new


def test_match_groups_hold_the_changes_and_the_status(written, case):
    _, groups = _groups(written)
    matches = {g.tracking_identifier: g for g in groups if g.tracking_identifier.startswith("T0-T1 ")}
    assert set(matches) == {"T0-T1 liver_tumor-1 > liver_tumor-1", "T0-T1 liver_tumor-2 > none",
                            "T0-T1 none > liver_tumor-2", "T0-T1 liver_tumor-3 > liver_tumor-3;liver_tumor-4",
                            "T0-T1 liver_tumor-4;liver_tumor-5 > liver_tumor-5"}
    grown = matches["T0-T1 liver_tumor-1 > liver_tumor-1"]
    assert _evaluations(grown) == {"MatchStatus": "matched"}
    values = _measures(grown)
    assert values["VolumeChangePercent"] == (pytest.approx(95.3125), "%")
    assert values["DiameterChangePercent"] == (pytest.approx(25.0), "%")
    assert values["VolumeChange"][1] == "ml" and _time_point(grown) == "T1"
    gone = matches["T0-T1 liver_tumor-2 > none"]
    assert _evaluations(gone) == {"MatchStatus": "disappeared"} and _measures(gone) == {}
    assert _evaluations(matches["T0-T1 liver_tumor-4;liver_tumor-5 > liver_tumor-5"])["MatchStatus"] == "merged"


def test_recist_sums_and_response(written):
    _, groups = _groups(written)
    recist = {_time_point(g): g for g in groups if g.tracking_identifier == "RECIST 1.1 target lesions"}
    assert set(recist) == {"T0", "T1"} and recist["T0"].tracking_uid == recist["T1"].tracking_uid
    assert _measures(recist["T0"]) == {"SumOfDiameters": (pytest.approx(28.0), "mm")}
    assert _evaluations(recist["T0"]) == {}
    follow = _measures(recist["T1"])
    assert follow["SumOfDiameters"] == (pytest.approx(20.0), "mm")
    assert follow["ChangeFromBaseline"] == (pytest.approx(-28.571), "%")
    assert follow["NadirSum"][0] == pytest.approx(28.0)
    assert _evaluations(recist["T1"]) == {"112048": "112043"}  # Current Response: Progressive Disease


def test_references_the_follow_up_series_with_its_identity(written, series):
    sr, _ = _groups(written)
    source = [pydicom.dcmread(p, stop_before_pixels=True) for p in read_image(series).source.files]
    assert sr.SOPClassUID == COMPREHENSIVE_3D_SR and int(sr.SeriesNumber) == 9705
    evidence = {ref.ReferencedSOPInstanceUID for study in sr.CurrentRequestedProcedureEvidenceSequence
                for ser in study.ReferencedSeriesSequence for ref in ser.ReferencedSOPSequence}
    assert evidence == {str(ds.SOPInstanceUID) for ds in source}
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        assert str(sr.get(keyword, "")) == str(source[0].get(keyword, "")), keyword
    assert "PatientIdentityRemoved" not in sr and "InstitutionName" not in sr
    assert PHI_FOLDER.encode() not in written.read_bytes()
    if shutil.which("dciodvfy"):
        proc = subprocess.run(["dciodvfy", str(written)], capture_output=True, text=True, timeout=120, check=False)
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]
        assert errors == [], "\n".join(errors)


def test_anonymised_sr_carries_no_source_identity(case, series, tmp_path):
    source = read_image(series).source
    path = write_comparison_sr(case.comparison, tmp_path, source=source, anonymize=True)
    ds = pydicom.dcmread(path)
    original = pydicom.dcmread(source.files[0], stop_before_pixels=True)
    assert ds.PatientIdentityRemoved == "YES" and str(ds.PatientName) == "ANONYMOUS^"
    name = str(original.get("PatientName", ""))
    if name:
        assert name.encode() not in path.read_bytes()


def test_no_sr_unless_the_follow_up_is_dicom(case, tmp_path):
    nifti = read_image(case.comparison.studies[1].image_path).source
    assert write_comparison_sr(case.comparison, tmp_path, source=nifti) is None
    assert write_comparison_sr(case.comparison, tmp_path, source=None) is None
    assert write_comparison_extras(tmp_path, case.comparison) == {"comparison_html": tmp_path / "comparison.html"}
    assert not (tmp_path / COMPARISON_SR).exists()


def test_extras_write_the_page_and_the_sr_for_a_dicom_follow_up(series, tmp_path):
    """The follow-up given as a DICOM series (off the label map's grid here: the pictures fall back to the
    label map, the SR still references the series)."""
    case = build_case(tmp_path / "case", image_kind="dicom", followup_image=series)
    written = write_comparison_extras(tmp_path / "out", case.comparison)
    assert set(written) == {"comparison_html", "comparison_sr"}
    assert pydicom.dcmread(written["comparison_sr"]).SOPClassUID == COMPREHENSIVE_3D_SR
    text = written["comparison_html"].read_text()
    assert "T1: the image is not on the label map&#x27;s grid, the pictures show the label map" in text


def test_an_sr_that_cannot_be_written_leaves_the_page(series, tmp_path, monkeypatch, caplog):
    from volseg.errors import DependencyError
    from volseg.reports import dicom_outputs

    def missing():
        raise DependencyError("--dicom needs highdicom, which is not installed")

    monkeypatch.setattr(dicom_outputs, "require_highdicom", missing)
    case = build_case(tmp_path / "case", image_kind="dicom", followup_image=series)
    with caplog.at_level("WARNING", logger="volseg.compare.extras"):
        written = write_comparison_extras(tmp_path / "out", case.comparison)
    assert set(written) == {"comparison_html"} and not (tmp_path / "out" / COMPARISON_SR).exists()
    assert "no comparison DICOM SR: --dicom needs highdicom" in caplog.text
