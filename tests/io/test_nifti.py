import gzip
import os

import nibabel as nib
import numpy as np
import pytest

from volseg.errors import GeometryError, InputError, OutputError
from volseg.io import read_image
from volseg.io.nifti import read_nifti, write_nifti
from volseg.phantom import phantom_grid
from volseg.volume import Volume


@pytest.fixture
def oblique_volume():
    affine = phantom_grid((12, 10, 8), (0.7, 0.7, 1.5), "LPS", rotation_deg=17.0)
    data = np.arange(12 * 10 * 8, dtype=np.int16).reshape(12, 10, 8)
    return Volume(data, affine)


def _save(tmp_path, data, affine, name="img.nii.gz", **header_changes):
    img = nib.Nifti1Image(data, affine)
    for key, value in header_changes.items():
        img.header[key] = value
    path = tmp_path / name
    nib.save(img, str(path))
    return path


def test_round_trip_keeps_grid_and_values(tmp_path, oblique_volume):
    path = write_nifti(oblique_volume, tmp_path / "out.nii.gz")
    back = read_nifti(path)
    np.testing.assert_array_equal(back.volume.array, oblique_volume.array)
    np.testing.assert_allclose(back.volume.affine, oblique_volume.affine, atol=1e-5)
    assert back.volume.orientation == oblique_volume.orientation
    assert back.source.kind == "nifti" and back.source.warnings == ()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_sform_wins_over_disagreeing_qform(tmp_path):
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header.set_qform(np.diag([3.0, 3.0, 3.0, 1.0]), code=1)
    img.header.set_sform(np.diag([2.0, 2.0, 2.0, 1.0]), code=2)
    nib.save(img, str(tmp_path / "a.nii"))
    loaded = read_nifti(tmp_path / "a.nii")
    assert loaded.volume.spacing == pytest.approx((2.0, 2.0, 2.0))
    assert any("sform and qform disagree" in w for w in loaded.source.warnings)


def test_qform_used_when_sform_unset(tmp_path):
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), None)
    img.header.set_qform(np.diag([-1.5, 1.5, 2.5, 1.0]), code=1)
    img.header.set_sform(None, code=0)
    nib.save(img, str(tmp_path / "q.nii.gz"))
    loaded = read_nifti(tmp_path / "q.nii.gz")
    assert loaded.volume.orientation == "LAS"
    assert loaded.volume.spacing == pytest.approx((1.5, 1.5, 2.5))


def test_no_transform_falls_back_to_pixdim_with_warning(tmp_path):
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), None)
    img.header.set_qform(None, code=0)
    img.header.set_sform(None, code=0)
    img.header.set_zooms((0.5, 0.6, 3.0))
    nib.save(img, str(tmp_path / "p.nii.gz"))
    loaded = read_nifti(tmp_path / "p.nii.gz")
    assert loaded.volume.spacing == pytest.approx((0.5, 0.6, 3.0))
    assert any("orientation unknown" in w for w in loaded.source.warnings)


def _write_raw(path, data, affine, **fields):
    """Write a .nii.gz byte by byte with the given header fields (nibabel's writer would
    recompute scl_slope/scl_inter and pixdim on save)."""
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_data_dtype(data.dtype)
    header.set_sform(affine, code=1)
    header.set_qform(affine, code=1)
    header["vox_offset"] = 352
    for key, value in fields.items():
        header[key] = value
    with gzip.open(path, "wb") as fh:
        fh.write(header.binaryblock + b"\x00" * 4 + data.tobytes(order="F"))
    return path


def test_pixdim_disagreeing_with_affine_warns_and_affine_wins(tmp_path):
    path = _write_raw(tmp_path / "p.nii.gz", np.zeros((4, 4, 4), np.int16), np.diag([2.0, 2.0, 2.0, 1.0]),
                      pixdim=[1.0, 1.0, 1.0, 1.0, 1.0, 0, 0, 0])
    loaded = read_nifti(path)
    assert loaded.volume.spacing == pytest.approx((2.0, 2.0, 2.0))
    assert any("pixdim" in w for w in loaded.source.warnings)


def test_zero_slope_means_no_scaling(tmp_path):
    path = _write_raw(tmp_path / "z.nii.gz", np.full((2, 2, 2), 7, np.int16), np.eye(4),
                      scl_slope=0.0, scl_inter=5.0)
    data = read_nifti(path).volume.array
    assert data.dtype == np.int16 and np.all(data == 7)


def test_integer_scaling_stays_integer(tmp_path):
    _write_raw(tmp_path / "ct.nii.gz", np.array([[[0, 1024], [2048, 4095]]] * 2, np.uint16),
                      np.eye(4), scl_slope=1.0, scl_inter=-1024.0)
    data = read_nifti(tmp_path / "ct.nii.gz").volume.array
    assert data.dtype == np.int16
    assert data.min() == -1024 and data.max() == 3071


def test_fractional_scaling_gives_float(tmp_path):
    _write_raw(tmp_path / "f.nii.gz", np.full((2, 2, 2), 10, np.int16), np.eye(4),
                      scl_slope=0.5, scl_inter=1.0)
    data = read_nifti(tmp_path / "f.nii.gz").volume.array
    assert data.dtype == np.float32 and np.all(data == 6.0)


def test_truncated_gzip_is_an_error_not_zeros(tmp_path, oblique_volume):
    path = write_nifti(oblique_volume, tmp_path / "t.nii.gz")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(InputError, match="truncated or corrupt|not a readable"):
        read_image(path)


def test_truncated_uncompressed_is_an_error(tmp_path, oblique_volume):
    path = write_nifti(oblique_volume, tmp_path / "t.nii")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(InputError):
        read_image(path)


def test_text_file_named_nifti_is_an_error(tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_text("this is not an image\n")
    with pytest.raises(InputError, match="notes.nii.gz: not a readable NIfTI"):
        read_image(path)


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 1), (1, 16, 16)])
def test_two_dimensional_images_are_refused(tmp_path, shape):
    path = _save(tmp_path, np.zeros(shape, np.int16), np.eye(4))
    with pytest.raises(GeometryError, match="2-D image"):
        read_image(path)


def test_4d_single_volume_is_squeezed_and_multi_volume_refused(tmp_path):
    one = _save(tmp_path, np.zeros((4, 4, 4, 1), np.int16), np.eye(4), name="one.nii.gz")
    assert read_image(one).volume.shape == (4, 4, 4)
    many = _save(tmp_path, np.zeros((4, 4, 4, 3), np.int16), np.eye(4), name="many.nii.gz")
    with pytest.raises(GeometryError, match="4-D"):
        read_image(many)


def test_failed_write_leaves_nothing_behind(tmp_path, oblique_volume, monkeypatch):
    def broken_save(img, filename):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nib, "save", broken_save)
    target = tmp_path / "seg.nii.gz"
    with pytest.raises(OutputError, match="No space left"):
        write_nifti(oblique_volume, target)
    assert list(tmp_path.iterdir()) == []


def test_sheared_affine_written_in_sform_only(tmp_path):
    affine = np.eye(4)
    affine[1, 2] = 0.3
    path = write_nifti(Volume(np.zeros((3, 3, 3), np.uint8), affine), tmp_path / "s.nii.gz")
    header = nib.load(str(path)).header
    assert int(header["qform_code"]) == 0 and int(header["sform_code"]) == 1
    np.testing.assert_allclose(read_nifti(path).volume.affine, affine, atol=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "absent.nii.gz")


def test_unknown_format(tmp_path):
    path = tmp_path / "scan.xyz"
    path.write_bytes(os.urandom(64))
    with pytest.raises(InputError, match="unrecognised image format"):
        read_image(path)
