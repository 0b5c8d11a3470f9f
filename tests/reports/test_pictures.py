"""QC pictures: display geometry (radiological convention, aspect, RAS mapping) and the drawings."""
import io

import numpy as np
import pytest

from tests.reports.factories import LESION_LABELS, airway_branches, lesion_study, small_phantom
from volseg.labels import LabelTable
from volseg.phantom import phantom_grid
from volseg.reports.pictures import (
    DisplayVolumes,
    airway_picture,
    busiest_slice,
    crop_box,
    display_point,
    lesion_picture,
    overview_pictures,
    ras_view,
    view_aspect,
    view_plane,
)
from volseg.volume import Volume, reorient


def _png_pixels(png: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")[..., :3]


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "PIL", "SAR"])
@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
def test_display_point_lands_on_its_voxel(orientation, view):
    shape, spacing = (17, 13, 11), (1.5, 0.7, 3.0)
    marked = np.zeros(shape, np.uint8)
    ijk = (4, 9, 7)
    marked[ijk] = 1
    vol = Volume(marked, phantom_grid(shape, spacing, orientation))
    ras = reorient(vol, "RAS")
    row, col, index = display_point(ras, vol.index_to_world(np.array(ijk)), view)
    plane = view_plane(ras.array, view, int(round(index)))
    assert plane[int(round(row)), int(round(col))] == 1
    assert plane.sum() == 1


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "PIL", "SAR", "ILA"])
def test_ras_view_equals_reorient_without_copying(orientation):
    shape = (7, 5, 3)
    vol = Volume(np.arange(np.prod(shape)).reshape(shape), phantom_grid(shape, (1.5, 0.7, 3.0), orientation, 20.0))
    view, copy = ras_view(vol), reorient(vol, "RAS")
    assert np.array_equal(view.array, copy.array)
    assert np.allclose(view.affine, copy.affine)
    assert np.shares_memory(view.array, vol.array)


def test_radiological_convention_and_aspect():
    shape, spacing = (40, 30, 20), (1.0, 2.0, 4.0)
    vol = reorient(Volume(np.zeros(shape, np.uint8), phantom_grid(shape, spacing, "LPS")), "RAS")
    centre = vol.index_to_world((np.array(shape) - 1) / 2)
    right, anterior, superior = centre + [15, 0, 0], centre + [0, 20, 0], centre + [0, 0, 30]
    # axial: patient's right on the image's left, anterior up
    assert display_point(vol, right, "axial")[1] < display_point(vol, centre, "axial")[1]
    assert display_point(vol, anterior, "axial")[0] < display_point(vol, centre, "axial")[0]
    # coronal: right on the left, superior up; sagittal: anterior on the left, superior up
    assert display_point(vol, right, "coronal")[1] < display_point(vol, centre, "coronal")[1]
    assert display_point(vol, superior, "coronal")[0] < display_point(vol, centre, "coronal")[0]
    assert display_point(vol, anterior, "sagittal")[1] < display_point(vol, centre, "sagittal")[1]
    assert display_point(vol, superior, "sagittal")[0] < display_point(vol, centre, "sagittal")[0]
    # aspect = row spacing / column spacing; planes have (rows, columns) of the right axes
    assert view_aspect(vol.spacing, "axial") == 2.0 and view_plane(vol.array, "axial", 0).shape == (30, 40)
    assert view_aspect(vol.spacing, "coronal") == 4.0 and view_plane(vol.array, "coronal", 0).shape == (20, 40)
    assert view_aspect(vol.spacing, "sagittal") == 2.0 and view_plane(vol.array, "sagittal", 0).shape == (20, 30)


def test_busiest_slice_has_most_distinct_labels():
    labels = np.zeros((10, 10, 6), np.uint8)
    labels[:, :, 1] = 1  # one label, large
    labels[0:2, 0:2, 4] = 2
    labels[5:7, 5:7, 4] = 3  # two labels, small
    assert busiest_slice(labels, 2) == 4
    assert busiest_slice(labels, 2, step=2) == 4
    assert busiest_slice(np.zeros((4, 4, 4), np.uint8), 2) == 2


def test_crop_box_keeps_margin_in_mm():
    plane = np.zeros((100, 100), np.uint8)
    plane[40:60, 30:50] = 1
    # axial of RAS spacing (2, 1, 5): rows = A axis (1 mm), columns = R axis (2 mm); margin 10 mm
    assert crop_box(plane, (2.0, 1.0, 5.0), "axial", margin_mm=10.0) == (30, 70, 25, 55)


def test_overview_pictures_have_true_aspect():
    phantom = small_phantom()
    display = DisplayVolumes.build(phantom.truth, phantom.image, is_ct=True)
    pictures = overview_pictures(display, phantom.labels)
    assert [p.key for p in pictures] == ["axial", "coronal", "sagittal"]
    ras = display.labels
    for p in pictures:
        pixels = _png_pixels(p.png)
        assert p.png[:8] == b"\x89PNG\r\n\x1a\n" and pixels.std() > 0.05
        fixed = {"axial": 2, "coronal": 1, "sagittal": 0}[p.key]
        plane = view_plane(ras.array, p.key, busiest_slice(np.asarray(ras.array), fixed))
        r0, r1, c0, c1 = crop_box(plane, ras.spacing, p.key)
        rows, cols = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}[p.key]
        expected = ((r1 - r0) * ras.spacing[rows]) / ((c1 - c0) * ras.spacing[cols])
        height, width = pixels.shape[:2]
        if expected >= 0.3:  # flat pictures get room above and below for the orientation letters
            assert height / width == pytest.approx(expected, rel=0.03)


def test_lesion_picture_draws_both_calipers():
    image, labels, instance = lesion_study()
    display = DisplayVolumes.build(labels, image, is_ct=True)
    picture = lesion_picture(display, LESION_LABELS, instance)
    pixels = _png_pixels(picture.png)
    yellow = (pixels[..., 0] > 0.9) & (pixels[..., 1] > 0.8) & (pixels[..., 2] < 0.2)
    cyan = (pixels[..., 0] < 0.2) & (pixels[..., 1] > 0.8) & (pixels[..., 2] > 0.9)
    assert yellow.sum() > 50 and cyan.sum() > 30
    assert "long axis 30.0 mm, short axis 16.0 mm" in picture.caption
    # the long axis is drawn longer than the short one, in proportion (30 vs 16 mm, isotropic in-plane)
    def extent(m):
        return np.hypot(*np.ptp(np.argwhere(m), axis=0))

    assert extent(yellow) / extent(cyan) == pytest.approx(30 / 16, rel=0.2)


def test_lesion_picture_slice_is_the_long_axis_slice():
    image, labels, instance = lesion_study(orientation="PIL", spacing=(0.9, 2.5, 0.9), shape=(140, 20, 150))
    display = DisplayVolumes.build(labels, image, is_ct=True)
    _, _, index = display_point(display.labels, instance["long_axis_endpoints_ras_mm"][0], "axial")
    plane = view_plane(display.labels.array, "axial", int(round(index)))
    area_mm2 = (plane == 2).sum() * display.labels.spacing[0] * display.labels.spacing[1]
    assert area_mm2 == pytest.approx(np.pi * 15 * 8, rel=0.1)  # the ellipse's largest section
    assert lesion_picture(display, LESION_LABELS, instance) is not None


def test_airway_picture_only_with_airways():
    phantom = small_phantom()
    display = DisplayVolumes.build(phantom.truth, phantom.image, is_ct=True)
    picture = airway_picture(display, phantom.labels, airway_branches())
    assert picture is not None and "3 centreline branches" in picture.caption
    no_airway = LabelTable.from_names({1: "body", 2: "lung_left"})
    assert airway_picture(display, no_airway) is None


def test_label_only_pictures_without_image():
    phantom = small_phantom()
    display = DisplayVolumes.build(phantom.truth, None, is_ct=True)
    pictures = overview_pictures(display, phantom.labels)
    assert len(pictures) == 3 and all(_png_pixels(p.png).std() > 0.05 for p in pictures)


def test_empty_label_map_still_gives_three_pictures():
    phantom = small_phantom()
    empty = phantom.truth.with_array(np.zeros(phantom.truth.shape, np.uint8))
    pictures = overview_pictures(DisplayVolumes.build(empty, phantom.image, is_ct=True), phantom.labels)
    assert [p.key for p in pictures] == ["axial", "coronal", "sagittal"]
    assert airway_picture(DisplayVolumes.build(empty, None, is_ct=True), phantom.labels) is None
