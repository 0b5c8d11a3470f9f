"""The DICOM header summary the series reader keeps on the loaded image (ImageSource.headers)."""
from __future__ import annotations

import pickle

import numpy as np
import pydicom

from tests.factories.dicom_series import PATIENT_NAME, ras_affine, rotation, write_enhanced, write_series
from volseg.io import read_image
from volseg.io.dicom_headers import KEPT, header_summary


def _series(tmp_path):
    values = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4)
    return write_series(tmp_path / "s", values, ras_affine((0.7, 0.8, 2.0), rotation(10, 0, 20)))


def test_one_slim_header_per_file_in_slice_order(tmp_path):
    written = _series(tmp_path)
    source = read_image(written.folder).source
    assert len(source.headers) == len(source.files) == 4
    for path, header in zip(source.files, source.headers):
        full = pydicom.dcmread(path, stop_before_pixels=True)
        assert header.SOPInstanceUID == full.SOPInstanceUID
        assert header.ImagePositionPatient == full.ImagePositionPatient
        assert header.file_meta.MediaStorageSOPInstanceUID == full.file_meta.MediaStorageSOPInstanceUID
        assert "PixelData" not in header
        assert {e.keyword for e in header} <= set(KEPT)  # nothing else: no private tags, no pixels
        assert str(header.PatientName) == PATIENT_NAME  # the outputs copy it unless anonymised


def test_the_loaded_image_pickles_with_its_headers_and_never_shows_them(tmp_path):
    loaded = read_image(_series(tmp_path).folder)
    again = pickle.loads(pickle.dumps(loaded))
    assert [h.SOPInstanceUID for h in again.source.headers] == [h.SOPInstanceUID for h in loaded.source.headers]
    assert again.source == loaded.source
    assert "ZEBEDEE" not in repr(loaded.source)
    assert len(pickle.dumps(loaded.source)) < 4000 * len(loaded.source.files)  # a few kB a slice


def test_enhanced_multiframe_keeps_one_header_for_its_one_file(tmp_path):
    values = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4)
    write_enhanced(tmp_path / "e", values, ras_affine((0.7, 0.8, 2.0)))
    source = read_image(tmp_path / "e").source
    assert len(source.files) == len(source.headers) == 1
    assert int(source.headers[0].NumberOfFrames) == 4


def test_non_dicom_images_have_no_headers(tmp_path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.int16), np.eye(4)), tmp_path / "a.nii.gz")
    assert read_image(tmp_path / "a.nii.gz").source.headers == ()


def test_header_summary_leaves_out_what_cannot_be_decoded_and_everything_else():
    from pydicom.dataset import Dataset

    class Undecodable(Dataset):
        def __getitem__(self, key):
            if key == "PatientName":
                raise ValueError("cannot decode")
            return super().__getitem__(key)

    ds = Undecodable()
    ds.SOPInstanceUID = "1.2.3"
    ds.PatientName = "X^Y"
    ds.Rows = 4
    ds.add_new(0x00091001, "LO", "private")
    ds.ImageComments = "not kept"
    slim = header_summary(ds)
    assert (slim.SOPInstanceUID, slim.Rows) == ("1.2.3", 4)
    assert "PatientName" not in slim and "ImageComments" not in slim and (0x0009, 0x1001) not in slim
