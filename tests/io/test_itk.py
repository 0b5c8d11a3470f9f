import numpy as np
import pytest
import SimpleITK as sitk

from volseg.io import read_image
from volseg.io.itk import itk_geometry
from volseg.io.nifti import write_nifti
from volseg.phantom import phantom_grid
from volseg.volume import Volume


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_itk_formats_agree_with_nifti_geometry(tmp_path, suffix):
    affine = phantom_grid((9, 7, 5), (0.8, 0.6, 2.0), "LPS", rotation_deg=12.0)
    data = np.arange(9 * 7 * 5, dtype=np.int16).reshape(9, 7, 5)
    original = Volume(data, affine)
    nifti = write_nifti(original, tmp_path / "a.nii.gz")
    # SimpleITK converts NIfTI to its own LPS geometry; our ITK reader must convert it back
    other = tmp_path / f"a{suffix}"
    sitk.WriteImage(sitk.ReadImage(str(nifti)), str(other))
    loaded = read_image(other)
    assert loaded.source.kind == "itk"
    np.testing.assert_array_equal(loaded.volume.array, data)
    np.testing.assert_allclose(loaded.volume.affine, affine, atol=1e-4)


def test_itk_geometry_round_trip():
    affine = phantom_grid((4, 4, 4), (0.5, 0.7, 1.2), "RAS", rotation_deg=40.0)
    direction, spacing, origin = itk_geometry(affine)
    from volseg.io.itk import affine_from_itk

    np.testing.assert_allclose(affine_from_itk(direction, spacing, origin), affine, atol=1e-12)
