"""The API takes images: paths, nibabel and SimpleITK images, Volumes; numpy arrays are refused."""
from __future__ import annotations

import inspect

import nibabel as nib
import numpy as np
import pytest

from volseg import api
from volseg.errors import ModelError
from volseg.io import read_image
from volseg.io.convert import as_loaded_image, as_volume
from volseg.io.nifti import write_nifti
from volseg.options import SegmentOptions
from volseg.phantom import make_phantom
from volseg.volume import Volume

NO_HTML = SegmentOptions(model="classic-ct", html=False)


@pytest.fixture(scope="module")
def phantom() -> Volume:
    return make_phantom().image


def test_nibabel_in_memory_image_keeps_its_affine():
    affine = np.array([[-2.0, 0, 0, 10], [0, 0, 3.0, -5], [0, 1.5, 0, 7], [0, 0, 0, 1]])
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    image = as_loaded_image(nib.Nifti1Image(data, affine))
    np.testing.assert_array_equal(image.volume.array, data)
    np.testing.assert_allclose(image.volume.affine, affine)
    assert image.source.kind == "nibabel" and image.source.path == "study"


def test_nibabel_loaded_image_follows_the_nifti_rules(tmp_path):
    """A file-backed image with scl_slope/inter and differing qform: same as read_image."""
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header.set_qform(np.diag([3.0, 3.0, 3.0, 1.0]), code=1)
    img.header.set_slope_inter(2.0, -1024.0)
    nib.save(img, str(tmp_path / "s.nii.gz"))
    loaded = nib.load(str(tmp_path / "s.nii.gz"))
    got, want = as_loaded_image(loaded).volume, read_image(tmp_path / "s.nii.gz").volume
    np.testing.assert_array_equal(got.array, want.array)
    np.testing.assert_allclose(got.affine, want.affine)
    assert got.array.min() == -1024 and got.spacing == (2.0, 2.0, 2.0)  # sform wins, scaling applied


def test_simpleitk_image_is_converted_from_lps():
    sitk = pytest.importorskip("SimpleITK")
    zyx = np.arange(2 * 3 * 4, dtype=np.int16).reshape(4, 3, 2)  # SimpleITK arrays are z, y, x
    image = sitk.GetImageFromArray(zyx)
    image.SetSpacing((1.0, 2.0, 3.0))
    image.SetOrigin((10.0, 20.0, 30.0))
    volume = as_volume(image)
    assert volume.shape == (2, 3, 4)
    assert volume.array[1, 2, 3] == zyx[3, 2, 1]
    np.testing.assert_allclose(volume.affine, [[-1, 0, 0, -10], [0, -2, 0, -20], [0, 0, 3, 30], [0, 0, 0, 1]])


def test_numpy_arrays_and_other_types_raise_type_errors():
    with pytest.raises(TypeError, match=r"numpy array has no affine.*Volume\(array, affine\).*nibabel"):
        as_loaded_image(np.zeros((4, 4, 4)))
    with pytest.raises(TypeError, match=r"cannot take a list.*accepted: a path .*SimpleITK"):
        as_loaded_image([1, 2, 3])


def test_segment_a_nibabel_image_like_its_file(tmp_path, phantom):
    path = write_nifti(phantom, tmp_path / "ct.nii.gz")
    from_file = api.segment(path, tmp_path / "a", options=NO_HTML)
    in_memory = api.segment(nib.Nifti1Image(np.asarray(phantom.array), phantom.affine), tmp_path / "b",
                            options=NO_HTML)
    assert (from_file.study_id, in_memory.study_id) == ("ct", "study")
    assert set(in_memory.outputs) == set(from_file.outputs)
    labels = in_memory.labels_nifti()
    assert isinstance(labels, nib.Nifti1Image)
    np.testing.assert_allclose(labels.affine, phantom.affine)
    np.testing.assert_array_equal(np.asarray(labels.dataobj), np.asarray(from_file.labels_nifti().dataobj))
    assert np.asarray(labels.dataobj).any()


def test_segment_a_volume_with_a_study_id(tmp_path, phantom):
    result = api.segment(phantom, tmp_path / "v", options=NO_HTML, study_id="case7")
    assert result.study_id == "case7" and result.report.study_id == "case7"


def test_segment_refuses_arrays(tmp_path):
    with pytest.raises(TypeError, match="affine"):
        api.segment(np.zeros((8, 8, 8)), tmp_path / "x", options=NO_HTML)


def test_predict_takes_images_and_refuses_arrays(phantom, tmp_path):
    seg = api.load_model("classic-ct")
    want = seg.predict(phantom).array
    in_memory = nib.Nifti1Image(np.asarray(phantom.array), phantom.affine)
    np.testing.assert_array_equal(seg.predict(in_memory).array, want)
    np.testing.assert_array_equal(seg.predict(write_nifti(phantom, tmp_path / "p.nii.gz")).array, want)
    with pytest.raises(TypeError, match="affine"):
        seg.predict(np.asarray(phantom.array))


def test_errors_name_an_in_memory_input(tmp_path, phantom):
    """classic-ct's own refusal (no body in an all-air CT) names the study, with --force."""
    air = phantom.with_array(np.full(phantom.shape, -1000, np.int16))
    with pytest.raises(ModelError, match=r"^air-case: .*") as info:
        api.segment(air, tmp_path / "x", options=SegmentOptions(model="classic-ct", html=False, force=True),
                    study_id="air-case")
    assert info.value.path == "air-case"


def test_api_declares_all_and_documents_every_public_function():
    assert "segment" in api.__all__ and "load_model" in api.__all__
    for name in api.__all__:
        obj = getattr(api, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"api.{name} has no docstring"
