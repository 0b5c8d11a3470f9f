"""DICOM RTSTRUCT (``--rtstruct``): checked by reading it back and rasterising its contours.

Each structure's CLOSED_PLANAR contours (patient LPS mm) are mapped back onto the source grid,
filled with ``skimage.draw.polygon`` and combined by XOR (holes are separate contours); the result is
compared with the label map: exactly on a synthetic oblique, anisotropic series with a ring (a hole)
and a structure touching the border; within 2 % per structure on the real chest CT with classic-ct.
"""
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("volseg.io.dicom", reason="the DICOM series reader (volseg.io.dicom) is not on this branch")
pydicom = pytest.importorskip("pydicom")

from tests.factories.dicom_series import PATIENT_ID, PATIENT_NAME, ras_affine, rotation, write_series
from volseg import api
from volseg.cli.main import main
from volseg.io import read_image
from volseg.labels import LabelInfo, LabelTable
from volseg.options import SegmentOptions
from volseg.reports.dicom_outputs import RTSTRUCT_FILE, SEG_FILE
from volseg.reports.dicom_rtstruct import RTSTRUCT_SOP_CLASS, slice_contours


class RingSegmenter:
    """HU thresholds: > 300 → 2 (box), > -300 → 1 (ring)."""

    name = "ring-test"
    entry = None  # no catalogue entry
    labels = LabelTable([
        LabelInfo(1, "ring", "Ring", (200, 120, 100)),
        LabelInfo(2, "box", "Box", (240, 220, 150), snomed_category="SCT:91723000", snomed_type="SCT:272673000"),
    ])

    def predict(self, volume, *, modality=None, progress=None):
        hu = np.asarray(volume.array)
        return volume.with_array(np.where(hu > 300, 2, np.where(hu > -300, 1, 0)).astype(np.uint8))

    def provenance(self):
        return {"model": self.name, "version": "1", "device": "cpu", "weights": []}


def _phantom_hu(shape=(40, 36, 8)) -> np.ndarray:
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    r = np.hypot(i - 20.0, j - 17.0)
    hu = np.full(shape, -1000.0)
    for k in range(1, 7):
        ring = (r <= 11 - (k % 2)) & (r > 4)  # a hole in the middle, radius varying with k
        hu[:, :, k][ring] = 100.0
    hu[0:3, 2:9, 2:5] = 500.0  # a box touching the border i = 0
    hu[30, 30, 6] = 500.0  # a single voxel
    return hu


def rasterise(rt, volume, k_of: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Each ROI's contours filled back onto ``volume``'s grid (XOR per slice), by ROI name.

    ``k_of`` maps each source slice's SOP Instance UID to its index along the volume's third axis
    (default: the order the RTSTRUCT lists them in)."""
    from skimage.draw import polygon

    k_of = k_of or {uid: k for k, uid in enumerate(_slice_uids(rt))}
    inverse = np.linalg.inv(np.asarray(volume.affine, dtype=np.float64))
    names = {int(r.ROINumber): str(r.ROIName) for r in rt.StructureSetROISequence}
    out = {}
    for roi in rt.ROIContourSequence:
        mask = np.zeros(volume.shape, dtype=bool)
        for contour in roi.ContourSequence:
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            lps = np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3)
            assert len(lps) == int(contour.NumberOfContourPoints)
            ras = lps * [-1.0, -1.0, 1.0]
            ijk = (np.column_stack([ras, np.ones(len(ras))]) @ inverse.T)[:, :3]
            k = k_of[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
            assert np.allclose(ijk[:, 2], k, atol=0.01), "a contour lies on its referenced slice (0.01 mm digits)"
            rr, cc = polygon(ijk[:, 0], ijk[:, 1], shape=volume.shape[:2])
            filled = np.zeros(volume.shape[:2], dtype=bool)
            filled[rr, cc] = True
            mask[:, :, k] ^= filled
        out[names[int(roi.ReferencedROINumber)]] = mask
    return out


def _slice_uids(rt):
    series = rt.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    return [item.ReferencedSOPInstanceUID for item in series.ContourImageSequence]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rt-series")
    affine = ras_affine((0.8, 0.9, 2.5), rotation(15, 0, 25), origin_ras=(-10.0, 20.0, 5.0))
    written = write_series(folder / "series", _phantom_hu(), affine)
    out = folder / "out"
    result = api.segment(written.folder, out, segmenter=RingSegmenter(),
                         options=SegmentOptions(rtstruct=True, html=False))
    return written, out, result


def test_slice_contours_hole_is_a_separate_contour():
    mask = np.zeros((9, 9), dtype=bool)
    mask[1:8, 1:8] = True
    mask[3:6, 3:6] = False
    assert len(slice_contours(mask)) == 2
    assert slice_contours(np.zeros((4, 4), dtype=bool)) == []


def test_rtstruct_rasterises_back_to_the_label_map(synthetic):
    written, out, result = synthetic
    assert "dicom_rtstruct" in result.outputs and "dicom_seg" not in result.outputs
    rt = pydicom.dcmread(out / RTSTRUCT_FILE)
    assert rt.SOPClassUID == RTSTRUCT_SOP_CLASS and rt.Modality == "RTSTRUCT"
    labels = read_image(out / "segmentation.nii.gz").volume
    loaded = read_image(written.folder)
    assert labels.same_grid(loaded.volume, atol_mm=1e-4)
    filled = rasterise(rt, labels)
    assert set(filled) == {"Ring", "Box"}
    array = np.asarray(labels.array)
    assert np.array_equal(filled["Ring"], array == 1)
    assert np.array_equal(filled["Box"], array == 2)
    # every source slice is referenced, in the k order of the volume, with the source's UIDs
    source_uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in loaded.source.files]
    assert _slice_uids(rt) == source_uids
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == written.frame_of_reference_uid
    assert frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID == written.series_uid
    observations = {int(o.ReferencedROINumber): o.RTROIInterpretedType for o in rt.RTROIObservationsSequence}
    assert observations == {1: "ORGAN", 2: "ORGAN"}
    colours = {int(r.ReferencedROINumber): list(map(int, r.ROIDisplayColor)) for r in rt.ROIContourSequence}
    assert colours == {1: [200, 120, 100], 2: [240, 220, 150]}


def test_rtstruct_carries_the_source_identity_by_default(synthetic):
    written, out, _ = synthetic
    rt = pydicom.dcmread(out / RTSTRUCT_FILE)
    assert str(rt.PatientName) == PATIENT_NAME and rt.PatientID == PATIENT_ID
    assert rt.StudyInstanceUID == written.study_uid and rt.StudyDate == "20200102"
    assert rt.AccessionNumber == "ACC-ZEBEDEE-77"


def test_rtstruct_with_anonymize_is_consistent_and_free_of_source_uids(synthetic, tmp_path):
    written, _, _ = synthetic
    result = api.segment(written.folder, tmp_path, segmenter=RingSegmenter(),
                         options=SegmentOptions(rtstruct=True, dicom=True, anonymize=True, html=False))
    rt = pydicom.dcmread(tmp_path / RTSTRUCT_FILE)
    seg = pydicom.dcmread(tmp_path / SEG_FILE, stop_before_pixels=True)
    raw = (tmp_path / RTSTRUCT_FILE).read_bytes() + (tmp_path / SEG_FILE).read_bytes()
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in written.files]
    for uid in [written.study_uid, written.series_uid, written.frame_of_reference_uid,
                *(str(s.SOPInstanceUID) for s in sources)]:
        assert uid.encode() not in raw
    for text in (PATIENT_NAME, PATIENT_ID, "ACC-ZEBEDEE-77", "20200102"):
        assert text.encode() not in raw
    assert rt.StudyInstanceUID == seg.StudyInstanceUID and rt.PatientID == seg.PatientID
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == seg.FrameOfReferenceUID
    seg_refs = {ref.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for ref in s.ReferencedInstanceSequence}
    assert seg_refs <= set(_slice_uids(rt))
    filled = rasterise(rt, read_image(tmp_path / "segmentation.nii.gz").volume)
    assert filled["Ring"].sum() == result.report.structures[0].voxel_count


def test_rtstruct_flag_on_nifti_input_warns(tmp_path):
    from tests.reports.factories import small_phantom
    from volseg.io.nifti import write_nifti

    ct = write_nifti(small_phantom().image, tmp_path / "ct.nii.gz")
    result = api.segment(ct, tmp_path / "out", options=SegmentOptions(rtstruct=True, html=False),
                         segmenter=RingSegmenter())
    assert not list((tmp_path / "out").glob("*.dcm"))
    assert any(w.startswith("--rtstruct ignored") for w in result.report.warnings)


def test_rtstruct_dciodvfy(synthetic):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian dicom3tools) is not installed; tools/test_setup.sh installs it as root")
    _, out, _ = synthetic
    proc = subprocess.run(["dciodvfy", str(out / RTSTRUCT_FILE)], capture_output=True, text=True, timeout=120,
                          check=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert [ln for ln in lines if ln.startswith("Error")] == [], "\n".join(lines)
    assert any(ln.strip() == "RTStructureSet" for ln in lines), lines


def test_rtstruct_on_the_real_chest_ct_within_two_percent(shared_data, tmp_path):
    """The organs of classic-ct (its fragmented body and fat classes, thousands of contours per
    slice, are left out to keep the test short) come back from their contours within 2 %."""
    series = shared_data / "chest-ct-dicom"
    classes = "lung_left,lung_right,airways,bone"
    assert main(["-q", "segment", str(series), "-o", str(tmp_path), "--rtstruct", "--no-html",
                 "--roi-subset", classes]) == 0
    rt = pydicom.dcmread(tmp_path / RTSTRUCT_FILE)
    array = np.asarray(read_image(tmp_path / "segmentation.nii.gz").volume.array)
    source = read_image(series)  # the grid of the source slices the RTSTRUCT references, in k order
    k_of = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): k
            for k, f in enumerate(source.source.files)}
    filled = rasterise(rt, source.volume, k_of)
    present = [int(v) for v in np.unique(array) if v]
    label_of = {str(r.ROIName): present[int(r.ROINumber) - 1] for r in rt.StructureSetROISequence}
    assert len(filled) == len(present) == len(classes.split(","))
    for name, mask in filled.items():
        truth = array == label_of[name]
        assert abs(int(mask.sum()) - int(truth.sum())) <= 0.02 * truth.sum(), name
        assert (mask ^ truth).sum() <= 0.02 * truth.sum(), name


@pytest.mark.parametrize("flags, expected", [
    (["--rtstruct"], dict(rtstruct=True)),
    (["--dicom", "--rtstruct", "--anonymize"], dict(dicom=True, rtstruct=True, anonymize=True)),
    (["--keep-phi"], dict(keep_phi=True)),
])
def test_segment_output_flags_reach_the_api(monkeypatch, tmp_path, capfd, flags, expected):
    seen = {}

    def fake_segment_many(inputs, out_dir, *, options, progress):
        seen["options"] = options
        return []

    monkeypatch.setattr(api, "segment_many", fake_segment_many)
    assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), *flags]) == 0
    assert seen["options"] == SegmentOptions(**expected)
    assert ("--keep-phi is deprecated" in capfd.readouterr().err) == ("--keep-phi" in flags)


def test_anonymize_with_keep_phi_is_a_usage_error(tmp_path):
    assert main(["-q", "segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"),
                 "--anonymize", "--keep-phi"]) == 2


def test_a_long_contour_keeps_its_digits(tmp_path):
    """Over 64 KiB of ContourData (a body outline): written implicit VR, read back to 0.01 mm."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ImplicitVRLittleEndian

    from volseg.reports.dicom_rtstruct import contour_data_element

    points = np.random.default_rng(0).uniform(-300, 300, (6000, 3)).round(2)
    points[:, 2] = -164.5
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    element = contour_data_element(points)
    assert element.length > 0xFFFF
    ds[element.tag] = element
    ds.save_as(tmp_path / "rt.dcm", enforce_file_format=True)
    back = np.asarray(pydicom.dcmread(tmp_path / "rt.dcm").ContourData, dtype=float).reshape(-1, 3)
    assert np.allclose(back, points, atol=0.005)
