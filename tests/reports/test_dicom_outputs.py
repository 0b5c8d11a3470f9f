"""DICOM SEG + SR of a real DICOM series: re-read, frames on the source slices, SR references, identity.

``volseg segment example_ct_dicom --dicom`` with the built-in classic-ct; the outputs are checked
against our own segmentation.nii.gz, re-read with pydicom and highdicom, and validated with
``dciodvfy`` (Debian dicom3tools; installed by tools/test_setup.sh, else that check skips).
"""
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("volseg.io.dicom", reason="the DICOM series reader (volseg.io.dicom) is not on this branch")
hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

from volseg import api
from volseg.cli.main import main
from volseg.io import read_image
from volseg.labels import LabelInfo, LabelTable
from volseg.options import SegmentOptions
from volseg.reports.dicom_outputs import SEG_FILE, SR_FILE
from volseg.reports.dicom_source import anonymized_uid, lps_position, placeholder_patient_id
from volseg.reports.schema import load_report

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"


@pytest.fixture(scope="module")
def dicom_study(shared_data, tmp_path_factory):
    series = shared_data / "totalseg-example" / "example_ct_dicom"
    out = tmp_path_factory.mktemp("dicom-study")
    assert main(["-q", "segment", str(series), "-o", str(out), "--dicom", "--no-html"]) == 0
    return series, out


def _source_uids(series):
    """SOP Instance UIDs of the source slices in our k order (file meta: these files lack the tag)."""
    files = read_image(series).source.files
    return [str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID) for f in files], files


def test_seg_frames_map_onto_source_slices(dicom_study):
    series, out = dicom_study
    nifti = read_image(out / "segmentation.nii.gz").volume
    seg = pydicom.dcmread(out / SEG_FILE)
    assert seg.SOPClassUID == SEG_SOP_CLASS and seg.SegmentationType == "BINARY"
    uids, files = _source_uids(series)
    k_of = {uid: k for k, uid in enumerate(uids)}
    label_of = {int(s.SegmentNumber): s.TrackingID for s in seg.SegmentSequence}
    names = {s.name: s.label for s in load_report(out / "report.json").structures}
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), int(seg.Rows), int(seg.Columns))
    rebuilt = np.zeros(nifti.shape, dtype=np.int32)
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        source_uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = k_of[source_uid]
        ipp = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        assert np.allclose(ipp, lps_position(nifti, k), atol=1e-3)
        source_ipp = pydicom.dcmread(files[k], stop_before_pixels=True).ImagePositionPatient
        assert np.allclose(ipp, np.asarray(source_ipp, dtype=float), atol=1e-3)
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        label = names[label_of[number]]
        plane = rebuilt[:, :, k]
        assert not np.any(plane.T[frame.astype(bool)]), "segments of a label map never overlap"
        plane.T[frame.astype(bool)] = label
    assert np.array_equal(rebuilt, np.asarray(nifti.array))
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID in uids


def test_seg_rereads_with_highdicom(dicom_study):
    series, out = dicom_study
    seg = hd.seg.segread(out / SEG_FILE)
    nifti = np.asarray(read_image(out / "segmentation.nii.gz").volume.array)
    present = [int(v) for v in np.unique(nifti) if v]
    assert list(seg.get_segment_numbers()) == list(range(1, len(present) + 1))
    # highdicom's own reconstruction by source instance (k order) gives our label map back
    uids, _ = _source_uids(series)
    numbers = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    lookup = np.array([0, *present])  # segment n holds the n-th present label
    assert np.array_equal(lookup[numbers].transpose(2, 1, 0), nifti)
    description = seg.get_segment_description(1)
    assert description.segment_label == "Body (other tissue)"
    # classic-ct's classes carry SNOMED CT codes from the catalogue: no generic fallback, no warning
    codes = {seg.get_segment_description(n).tracking_id: (seg.get_segment_description(n).segmented_property_category.value,
                                                          seg.get_segment_description(n).segmented_property_type.value)
             for n in seg.get_segment_numbers()}
    expected = {"body": ("123037004", "38266002"), "lung_left": ("123037004", "39607008"),
                "lung_right": ("123037004", "39607008"), "airways": ("123037004", "89187006"),
                "bone": ("123037004", "272673000"), "subcutaneous_fat": ("85756007", "55603005"),
                "torso_fat": ("85756007", "55603005")}
    assert codes == {name: expected[name] for name in codes} and len(codes) >= 4
    warnings = load_report(out / "report.json").warnings
    assert not any("coded as the generic 'Anatomical Structure'" in w for w in warnings)


def test_sr_references_the_seg_and_holds_the_volumes(dicom_study):
    series, out = dicom_study
    seg = pydicom.dcmread(out / SEG_FILE, stop_before_pixels=True)
    sr = hd.sr.srread(out / SR_FILE)
    assert sr.SOPClassUID == SR_SOP_CLASS
    evidence = {ref.ReferencedSOPInstanceUID for study in sr.CurrentRequestedProcedureEvidenceSequence
                for s in study.ReferencedSeriesSequence for ref in s.ReferencedSOPSequence}
    uids, _ = _source_uids(series)
    assert seg.SOPInstanceUID in evidence and set(uids) <= evidence
    report = load_report(out / "report.json")
    volumes = {s.name: s.volume_ml for s in report.structures}
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(seg.SegmentSequence)
    for group in groups:
        ref = group.referenced_segment
        assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
        number = ref.referenced_segment_numbers[0]
        name = seg.SegmentSequence[number - 1].TrackingID
        (measurement,) = group.get_measurements()
        assert measurement.name.value == "118565006" and measurement.unit.value == "ml"
        assert measurement.value == pytest.approx(volumes[name], rel=1e-9)


_IDENTITY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
             "StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName")


def test_outputs_carry_the_source_identity_and_nothing_more(dicom_study):
    series, out = dicom_study
    source = pydicom.dcmread(read_image(series).source.files[0], stop_before_pixels=True)
    for name in (SEG_FILE, SR_FILE):
        ds = pydicom.dcmread(out / name, stop_before_pixels=True)
        for keyword in (k for k in _IDENTITY if source.get(k)):  # this source's StudyInstanceUID is empty
            assert str(ds.get(keyword, "")) == str(source.get(keyword, "")), keyword
        assert "PatientIdentityRemoved" not in ds
        assert "InstitutionAddress" not in ds and "PatientWeight" not in ds  # nothing beyond the allowlist


@pytest.mark.parametrize("name", [SEG_FILE, SR_FILE])
def test_dciodvfy_finds_no_errors(dicom_study, name):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian dicom3tools) is not installed; tools/test_setup.sh installs it as root")
    _, out = dicom_study
    proc = subprocess.run(["dciodvfy", str(out / name)], capture_output=True, text=True, timeout=120, check=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    errors = [ln for ln in lines if ln.startswith("Error")]
    assert errors == [], "\n".join(errors)
    assert any(ln.strip() in ("Segmentation", "Comprehensive3DSR") for ln in lines), lines  # the IOD was recognised


class ThresholdSegmenter:
    """A two-class HU-threshold segmenter with SNOMED CT codes on one class (a stand-in model)."""

    name = "threshold-test"
    entry = None  # no catalogue entry
    labels = LabelTable([
        LabelInfo(1, "soft_tissue", "Soft tissue", (200, 120, 100)),  # no codes: generic fallback
        LabelInfo(2, "bone", "Bone", (240, 220, 150), snomed_category="SCT:91723000", snomed_type="SCT:272673000"),
    ])

    def predict(self, volume, *, modality=None, progress=None):
        hu = np.asarray(volume.array)
        return volume.with_array(np.where(hu > 180, 2, np.where(hu > -300, 1, 0)).astype(np.uint8))

    def provenance(self):
        return {"model": self.name, "version": "1", "device": "cpu", "weights": []}


@pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning")  # the source's name
@pytest.mark.parametrize("anonymize", [False, True])
def test_identity_by_default_and_a_coherent_anonymised_set(shared_data, tmp_path, anonymize):
    series = shared_data / "dcmqi-ct3" / "ct-3slice"
    files = read_image(series).source.files
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    source = sources[0]
    assert str(source.PatientName) == "JANCT000"
    options = SegmentOptions(dicom=True, anonymize=anonymize, html=False)
    result = api.segment(series, tmp_path, options=options, segmenter=ThresholdSegmenter())
    assert {"dicom_seg", "dicom_sr"} <= set(result.outputs)
    seg, sr = (pydicom.dcmread(tmp_path / n, stop_before_pixels=True) for n in (SEG_FILE, SR_FILE))
    study_uids = [str(source.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")]
    instance_uids = [str(s.get("SOPInstanceUID") or s.file_meta.MediaStorageSOPInstanceUID) for s in sources]
    source_uids = [u for u in study_uids if u] + instance_uids
    for ds, name in ((seg, SEG_FILE), (sr, SR_FILE)):
        raw = (tmp_path / name).read_bytes()
        if anonymize:
            assert str(ds.PatientName) == "ANONYMOUS^" and ds.PatientIdentityRemoved == "YES"
            assert ds.StudyInstanceUID == anonymized_uid(source.StudyInstanceUID)
            assert ds.PatientID == placeholder_patient_id(ds.StudyInstanceUID)
            assert b"JANCT000" not in raw and source.PatientID.encode() not in raw
            assert source.StudyDate.encode() not in raw
            assert not [uid for uid in source_uids if uid.encode() in raw]  # no source UID at all
        else:
            assert str(ds.PatientName) == "JANCT000" and ds.PatientID == source.PatientID
            assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.StudyDate == source.StudyDate
            if name == SEG_FILE:
                assert ds.FrameOfReferenceUID == source.FrameOfReferenceUID
    # one coherent set: the SEG's references are what the SR's evidence lists, in one study
    assert seg.PatientID == sr.PatientID and seg.StudyInstanceUID == sr.StudyInstanceUID
    seg_refs = {r.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for r in s.ReferencedInstanceSequence}
    evidence = {r.ReferencedSOPInstanceUID for st in sr.CurrentRequestedProcedureEvidenceSequence
                for s in st.ReferencedSeriesSequence for r in s.ReferencedSOPSequence}
    assert seg_refs and seg_refs | {seg.SOPInstanceUID} <= evidence
    expected = {anonymized_uid(u) for u in instance_uids} if anonymize else set(instance_uids)
    assert seg_refs == expected
    assert "input_path" not in result.report.provenance.options
    assert result.report.provenance.options["anonymize"] is anonymize


def test_keep_phi_is_a_deprecated_alias_that_records_the_input_path(shared_data, tmp_path, monkeypatch):
    from volseg.errors import UsageError

    series = shared_data / "dcmqi-ct3" / "ct-3slice"
    result = api.segment(series, tmp_path, options=SegmentOptions(dicom=True, keep_phi=True, html=False),
                         segmenter=ThresholdSegmenter())
    assert "input_path" in result.report.provenance.options
    assert str(pydicom.dcmread(tmp_path / SEG_FILE, stop_before_pixels=True).PatientName) == "JANCT000"
    with pytest.raises(UsageError, match="--anonymize and --keep-phi"):
        SegmentOptions(anonymize=True, keep_phi=True)


def test_catalogue_codes_and_fallback(shared_data, tmp_path):
    series = shared_data / "dcmqi-ct3" / "ct-3slice"
    api.segment(series, tmp_path, options=SegmentOptions(dicom=True, html=False), segmenter=ThresholdSegmenter())
    seg = hd.seg.segread(tmp_path / SEG_FILE)
    soft, bone = seg.get_segment_description(1), seg.get_segment_description(2)
    assert (soft.segmented_property_type.value, soft.segmented_property_category.value) == ("91723000", "91723000")
    assert bone.segmented_property_type.value == "272673000"
    assert bone.segmented_property_type.scheme_designator == "SCT"
    assert bone.segmented_property_type.meaning.lower().startswith("bone")
    assert bone.segmented_property_category.meaning == "Anatomical Structure"
    lab = hd.color.CIELabColor.from_dicom_value(bone.RecommendedDisplayCIELabValue)
    assert np.allclose(lab.to_rgb(), (240, 220, 150), atol=1)
    warnings = load_report(tmp_path / "report.json").warnings
    assert any("1 class(es) have no SNOMED CT codes" in w and "soft_tissue" in w for w in warnings)


def test_dicom_flag_on_nifti_input_warns_and_writes_no_dicom(tmp_path):
    from tests.reports.factories import small_phantom
    from volseg.io.nifti import write_nifti

    ct = write_nifti(small_phantom().image, tmp_path / "ct.nii.gz")
    result = api.segment(ct, tmp_path / "out", options=SegmentOptions(dicom=True, html=False),
                         segmenter=ThresholdSegmenter())
    assert "dicom_seg" not in result.outputs and not list((tmp_path / "out").glob("*.dcm"))
    assert any(w.startswith("--dicom ignored: the input is not a DICOM series") for w in result.report.warnings)


def test_missing_highdicom_fails_before_segmenting(shared_data, tmp_path, monkeypatch):
    import sys

    from volseg.errors import DependencyError

    class MustNotRun(ThresholdSegmenter):
        def predict(self, volume, **kwargs):
            raise AssertionError("segmented although the DICOM outputs cannot be written")

    monkeypatch.setitem(sys.modules, "highdicom", None)
    with pytest.raises(DependencyError, match="--dicom needs highdicom") as info:
        api.segment(shared_data / "dcmqi-ct3" / "ct-3slice", tmp_path, options=SegmentOptions(dicom=True),
                    segmenter=MustNotRun())
    assert "volseg[dicom]" in info.value.one_line()


def test_sr_holds_lesion_diameters_with_their_endpoints(tmp_path):
    """A lesion instance (report contract fields) → a TID 1501 group: volume, long and short axes in mm,
    each axis with its endpoints as a 3-D polyline in the source frame of reference (LPS). A SEG of
    one segment (the lesion alone) is referenced correctly too, and a source's negative
    SpacingBetweenSlices (Philips) does not reach the SEG."""
    from tests.reports.factories import FAKE_PATIENT_NAME, lesion_study, write_ct_series
    from volseg.io.nifti import write_nifti
    from volseg.labels import LabelTable
    from volseg.reports.dicom_outputs import write_dicom_outputs

    image, labels, instance = lesion_study(shape=(96, 90, 24))
    lesion_only = labels.with_array(np.where(np.asarray(labels.array) == 2, 1, 0).astype(np.uint8))
    instance = {**instance, "label": 1}
    table = LabelTable.from_names({1: "liver_tumor"})
    write_ct_series(image, tmp_path / "series", SpacingBetweenSlices=-2.5)  # signed, as some scanners write
    loaded = read_image(tmp_path / "series")
    assert loaded.volume.same_grid(image, atol_mm=1e-4)
    seg_path = write_nifti(lesion_only, tmp_path / "labels.nii.gz")
    report = api.measure(seg_path, tmp_path / "m", image=write_nifti(image, tmp_path / "ct.nii.gz")).report
    written = write_dicom_outputs(tmp_path / "out", report, table, loaded.volume.with_array(lesion_only.array),
                                  loaded.source, anonymize=True, instances=[instance])
    seg = pydicom.dcmread(written["dicom_seg"])
    assert len(seg.SegmentSequence) == 1
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SpacingBetweenSlices) == 2.5 and list(map(float, measures.PixelSpacing)) == [0.8, 0.8]
    sr = hd.sr.srread(written["dicom_sr"])
    (volumetric,) = sr.content.get_volumetric_roi_measurement_groups()
    assert volumetric.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID
    (group,) = sr.content.get_image_measurement_groups()
    assert group.tracking_identifier == "liver_tumor-1"
    by_name = {m.name.value: m for m in group.get_measurements()}
    assert by_name["103339001"].value == pytest.approx(30.0) and by_name["103339001"].unit.value == "mm"
    assert by_name["103340004"].value == pytest.approx(16.0)
    assert by_name["118565006"].value == pytest.approx(instance["volume_ml"])
    assert by_name["118565006"].unit.value == "ml"
    coords = by_name["103339001"].referenced_coordinates[0]
    lps = np.asarray(instance["long_axis_endpoints_ras_mm"]) * [-1, -1, 1]
    assert np.allclose(np.asarray(coords.value).reshape(2, 3), lps, atol=1e-3)
    assert coords.frame_of_reference_uid == seg.FrameOfReferenceUID
    raw = written["dicom_sr"].read_bytes() + written["dicom_seg"].read_bytes()
    assert FAKE_PATIENT_NAME.encode() not in raw
    if shutil.which("dciodvfy"):
        for path in written.values():
            out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
            assert not [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]
