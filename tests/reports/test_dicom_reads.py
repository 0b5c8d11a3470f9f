"""The DICOM outputs never read the source series again: the reader's header summary is enough."""
from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

from tests.factories.dicom_series import ras_affine, rotation, write_series
from volseg import api
from volseg.cli.main import main
from volseg.io import read_image
from volseg.io.types import ImageSource
from volseg.labels import LabelInfo, LabelTable
from volseg.options import SegmentOptions
from volseg.reports.dicom_outputs import (
    NOT_DICOM,
    NOT_DICOM_RT,
    RTSTRUCT_FILE,
    SEG_FILE,
    SR_FILE,
    dicom_preflight,
)

TABLE = LabelTable([LabelInfo(1, "box", "Box", (240, 220, 150))])


class BoxSegmenter:
    name = "box-test"
    entry = None  # no catalogue entry
    labels = TABLE

    def predict(self, volume, *, modality=None, progress=None):
        return volume.with_array((np.asarray(volume.array) > 300).astype(np.uint8))

    def provenance(self):
        return {"model": self.name, "version": "1", "device": "cpu", "weights": []}


@pytest.fixture
def dcmread_calls(monkeypatch):
    calls: list[tuple[str, bool]] = []
    real = pydicom.dcmread

    def counting(path, *args, **kwargs):
        calls.append((str(path), bool(kwargs.get("stop_before_pixels"))))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    return calls


def _series(tmp_path):
    hu = np.full((12, 10, 5), -1000, dtype=np.int16)
    hu[3:8, 2:7, 1:4] = 500
    return write_series(tmp_path / "series", hu, ras_affine((0.8, 0.9, 2.5), rotation(15, 0, 25)))


def test_segment_with_dicom_and_rtstruct_reads_no_source_file(tmp_path, dcmread_calls):
    loaded = pickle.loads(pickle.dumps(read_image(_series(tmp_path).folder)))  # as batch hands it on
    dcmread_calls.clear()
    result = api.segment(loaded, tmp_path / "out", segmenter=BoxSegmenter(),
                         options=SegmentOptions(dicom=True, rtstruct=True, anonymize=True, html=False))
    assert {"dicom_seg", "dicom_sr", "dicom_rtstruct"} <= set(result.outputs)
    assert dcmread_calls == []


def test_a_source_without_type2_patient_attributes_gets_them_empty(tmp_path):
    """The synthetic series has no PatientSex: the SEG and SR (source identity, not anonymised) are
    written with that Type 2 attribute present and empty, not refused; the others are copied."""
    series = _series(tmp_path)
    source = pydicom.dcmread(series.files[0], stop_before_pixels=True)
    assert "PatientSex" not in source
    result = api.segment(series.folder, tmp_path / "out", segmenter=BoxSegmenter(),
                         options=SegmentOptions(dicom=True, html=False))
    for key in ("dicom_seg", "dicom_sr"):
        ds = pydicom.dcmread(result.outputs[key])
        assert ds.PatientSex == "" and ds.PatientBirthDate == source.PatientBirthDate


def test_cli_segment_dicom_rtstruct_reads_each_file_once_for_headers_once_for_pixels(shared_data, tmp_path,
                                                                                      dcmread_calls):
    series = shared_data / "dcmqi-ct3" / "ct-3slice"
    out = tmp_path / "out"
    assert main(["-q", "segment", str(series), "-o", str(out), "--dicom", "--rtstruct", "--no-html"]) == 0
    assert all((out / name).is_file() for name in (SEG_FILE, SR_FILE, RTSTRUCT_FILE))
    sources = {str(p) for p in series.iterdir()}
    reads = Counter((path, header) for path, header in dcmread_calls if path in sources)
    assert reads == Counter({**{(p, True): 1 for p in sources}, **{(p, False): 1 for p in sources}})


def test_a_dicom_source_without_headers_is_refused_as_not_dicom():
    source = ImageSource(kind="dicom", path="x", files=("x/1.dcm",))  # not read by volseg.io
    assert dicom_preflight(source, TABLE, seg_sr=True, rtstruct=True) == [NOT_DICOM, NOT_DICOM_RT]
