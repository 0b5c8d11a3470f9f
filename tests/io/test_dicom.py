"""DICOM series reader: known-answer tests on synthetic series, and real series from ../shared/data."""
from __future__ import annotations

import json
import logging

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLossless, generate_uid

from tests.factories.dicom_series import (
    BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    add_localizer,
    add_non_images,
    base_dataset,
    ras_affine,
    rotation,
    write_enhanced,
    write_series,
)
from volseg.errors import AmbiguousInputError, GeometryError, InputError
from volseg.io import read_image
from volseg.io.dicom import SeriesInfo, is_dicom_file, list_series, read_dicom_series
from volseg.volume import orientation_code, reorient

IDENTIFIERS = (PATIENT_NAME, "ZEBEDEE", PATIENT_ID, BIRTH_DATE, "ACC-ZEBEDEE-77", "20200102")


def phantom(shape=(9, 7, 6), seed=1) -> np.ndarray:
    """Integer HU values, every slice distinct (slice k holds the marker value 1000 + 10·k)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(-1000, 1500, size=shape).astype(np.int16)
    for k in range(shape[2]):
        data[k % shape[0], 0, k] = 1000 + 10 * k
    return data


def oblique_affine(spacing=(0.7, 0.9, 2.5)) -> np.ndarray:
    return ras_affine(spacing, rotation(20.0, 20.0, 0.0), origin_ras=(-31.5, 12.25, 48.0))


def ras(lps_points) -> np.ndarray:
    return np.asarray(lps_points) * np.array([-1.0, -1.0, 1.0])


def assert_no_identifiers(text: str) -> None:
    for ident in IDENTIFIERS:
        assert ident not in text


# ---- round trips ---------------------------------------------------------------------------------
def test_oblique_anisotropic_round_trip_with_shuffled_files(tmp_path):
    data, affine = phantom(), oblique_affine()
    written = write_series(tmp_path / "s", data, affine, series_number=7)
    names = sorted(p.name for p in written.files)
    assert [p.name for p in written.files] != names  # file order differs from slice order
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in written.files]
    instance_numbers = [int(ds.InstanceNumber) for ds in headers]
    assert instance_numbers != sorted(instance_numbers)

    loaded = read_dicom_series(tmp_path / "s")
    vol = loaded.volume
    assert vol.shape == data.shape
    assert vol.dtype == np.int16
    np.testing.assert_array_equal(vol.array, data)
    np.testing.assert_allclose(vol.affine, affine, atol=1e-4)
    np.testing.assert_allclose(vol.spacing, (0.7, 0.9, 2.5), atol=1e-5)
    assert vol.orientation == orientation_code(affine) == "RAS"
    assert vol.shear_deg < 1e-3
    src = loaded.source
    assert (src.kind, src.modality, src.series_number) == ("dicom", "CT", 7)
    assert src.series_uid == written.series_uid
    assert src.files == tuple(str(p) for p in written.files)
    assert src.warnings == ()


def test_every_slice_origin_maps_to_its_image_position(tmp_path):
    written = write_series(tmp_path, phantom(), oblique_affine())
    vol = read_dicom_series(tmp_path).volume
    k = np.arange(vol.shape[2])
    corners = vol.index_to_world(np.stack([0 * k, 0 * k, k], axis=1))
    np.testing.assert_allclose(corners, ras(written.positions), atol=1e-4)


def test_axis_conventions_on_an_axial_lps_series(tmp_path):
    # i runs along a row (PixelSpacing[1]), j down the rows (PixelSpacing[0]); LPS → RAS flips x, y
    data = phantom((5, 4, 3))
    write_series(tmp_path, data, spacing=(0.5, 0.8, 3.0), origin_lps=(10.0, 20.0, 30.0))
    vol = read_dicom_series(tmp_path).volume
    expected = np.array([[-0.5, 0, 0, -10.0], [0, -0.8, 0, -20.0], [0, 0, 3.0, 30.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(vol.affine, expected, atol=1e-6)
    assert vol.orientation == "LPS"
    np.testing.assert_array_equal(vol.array, data)


def test_a_file_path_reads_the_series_that_holds_it(tmp_path):
    a = write_series(tmp_path, phantom(seed=1), oblique_affine(), series_number=1, prefix="A")
    b = write_series(tmp_path, phantom(seed=2), oblique_affine(), series_number=2, prefix="B")
    loaded = read_dicom_series(b.files[2])
    assert loaded.source.series_uid == b.series_uid
    np.testing.assert_array_equal(loaded.volume.array, b.array)
    assert read_image(a.files[0]).source.series_uid == a.series_uid


def test_enhanced_multiframe_via_functional_groups(tmp_path):
    data, affine = phantom((6, 5, 4)), oblique_affine((0.8, 0.8, 1.25))
    path = write_enhanced(tmp_path, data, affine)  # frames stored in reverse slice order
    loaded = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(loaded.volume.array, data)
    np.testing.assert_allclose(loaded.volume.affine, affine, atol=1e-4)
    assert loaded.source.files == (str(path),)


def test_non_ct_modality_loads(tmp_path):
    data = phantom((6, 5, 4)) + 1024
    write_series(tmp_path, data, spacing=(1.0, 1.0, 4.0), modality="MR", intercept=0)
    loaded = read_dicom_series(tmp_path)
    assert loaded.source.modality == "MR"
    np.testing.assert_array_equal(loaded.volume.array, data)


# ---- finding files and series ------------------------------------------------------------------
def test_is_dicom_file(tmp_path):
    written = write_series(tmp_path / "s", phantom((4, 4, 2)), spacing=(1, 1, 1))
    assert is_dicom_file(written.files[0])
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "blob.bin").write_bytes(b"\x08\x00" + bytes(300))
    assert not is_dicom_file(tmp_path / "notes.txt")
    assert not is_dicom_file(tmp_path / "blob.bin")
    assert not is_dicom_file(tmp_path / "missing.dcm")
    # a preamble-less (ACR-NEMA style) implicit-VR file still counts
    ds = pydicom.dcmread(written.files[0])
    del ds.file_meta
    ds.preamble = None
    bare = tmp_path / "bare"
    pydicom.dcmwrite(bare, ds, implicit_vr=True, little_endian=True)
    assert bare.read_bytes()[:2] == b"\x08\x00" and bare.read_bytes()[128:132] != b"DICM"
    assert is_dicom_file(bare)


def test_non_images_localisers_and_other_files_are_ignored(tmp_path, caplog):
    data = phantom()
    written = write_series(tmp_path / "study" / "ct", data, oblique_affine())
    add_localizer(tmp_path / "study" / "ct", series_uid=written.series_uid, study_uid=written.study_uid)
    add_localizer(tmp_path / "study" / "scout", series_number=3, name="SCOUT.dcm")
    add_non_images(tmp_path / "study" / "other", study_uid=written.study_uid)
    (tmp_path / "study" / "README.txt").write_text("hello")
    (tmp_path / "study" / "ct" / "DICOMDIR.bak").write_bytes(b"\x00" * 10)
    with caplog.at_level(logging.DEBUG, logger="volseg.io.dicom"):
        loaded = read_dicom_series(tmp_path / "study")
    np.testing.assert_array_equal(loaded.volume.array, data)
    assert loaded.source.warnings == ()
    assert [i.uid for i in list_series(tmp_path / "study")] == [written.series_uid]
    assert any("2 not DICOM" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


def test_single_image_with_different_orientation_is_dropped_with_warning(tmp_path):
    data = phantom()
    written = write_series(tmp_path, data, oblique_affine())
    add_localizer(tmp_path, series_uid=written.series_uid, flagged=False, shape=(7, 9), name="ODD.dcm")
    loaded = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(loaded.volume.array, data)
    assert len(loaded.source.warnings) == 1
    assert "dropped 1 image (ODD.dcm) whose orientation differs" in loaded.source.warnings[0]


def test_several_series_are_ambiguous_until_chosen(tmp_path):
    a = write_series(tmp_path, phantom(seed=1), oblique_affine(), series_number=1, prefix="A",
                     description="soft tissue")
    b = write_series(tmp_path, phantom((9, 7, 4), seed=2), oblique_affine(), series_number=2, prefix="B",
                     modality="MR", intercept=-1024, description="bone")
    with pytest.raises(AmbiguousInputError) as info:
        read_dicom_series(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "2 image series found" in message
    assert f"#1 CT, 6 images, 'soft tissue', uid {a.series_uid}" in message
    assert f"#2 MR, 4 images, 'bone', uid {b.series_uid}" in message
    assert info.value.hint == "use --series UID-or-number"
    assert_no_identifiers(message)

    assert read_dicom_series(tmp_path, series="2").source.series_uid == b.series_uid
    by_uid = read_dicom_series(tmp_path, series=a.series_uid)
    assert by_uid.source.series_uid == a.series_uid
    np.testing.assert_array_equal(by_uid.volume.array, a.array)
    with pytest.raises(AmbiguousInputError, match=r"no image series matches '3'.*#1 CT.*#2 MR"):
        read_dicom_series(tmp_path, series="3")
    infos = list_series(tmp_path)
    assert infos == [
        SeriesInfo(1, a.series_uid, "CT", "soft tissue", 6, 7, 9),
        SeriesInfo(2, b.series_uid, "MR", "bone", 4, 7, 9),
    ]


def test_series_number_shared_by_two_series_needs_the_uid(tmp_path):
    write_series(tmp_path, phantom(), oblique_affine(), series_number=4, prefix="A")
    write_series(tmp_path, phantom(), oblique_affine(), series_number=4, prefix="B")
    with pytest.raises(AmbiguousInputError, match="series number 4 matches 2 series"):
        read_dicom_series(tmp_path, series="4")


def test_empty_or_non_dicom_folder(tmp_path):
    with pytest.raises(InputError, match="no files found"):
        read_dicom_series(tmp_path)
    (tmp_path / "a.txt").write_text("x")
    add_non_images(tmp_path)
    expected = r"no DICOM image series found \(skipped: 2 non-image objects, 1 not DICOM\)"
    with pytest.raises(InputError, match=expected):
        read_dicom_series(tmp_path)


# ---- geometry checks -----------------------------------------------------------------------------
def test_mixed_orientations_are_refused(tmp_path):
    other = ["0", "1", "0", "0", "0", "-1"]
    overrides = {1: {"ImageOrientationPatient": other}, 4: {"ImageOrientationPatient": other}}
    write_series(tmp_path, phantom(), spacing=(1, 1, 2), slice_overrides=overrides)
    expected = r"mixed slice orientations: 2 of 6 slices differ from the other 4 .*by up to 1\.000"
    with pytest.raises(GeometryError, match=expected) as info:
        read_dicom_series(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_duplicate_positions_are_refused(tmp_path):
    write_series(tmp_path, phantom(), oblique_affine(), duplicate_slice=2)
    with pytest.raises(GeometryError, match=r"duplicate slice positions: 1 position\(s\) hold more than one "
                                            r"slice \(1 extra slice\(s\) of 7\)"):
        read_dicom_series(tmp_path)


@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        ((3,), r"missing slice\(s\): 1 missing in 1 gap\(s\) of the 2\.5 mm step: 1 between slices 2 and 3 "
               r"\(positions"),
        ((2, 3), r"missing slice\(s\): 2 missing in 1 gap\(s\).*2 between slices 1 and 2"),
        ((1, 4), r"missing slice\(s\): 2 missing in 2 gap\(s\).*1 between slices 0 and 1.*"
                 r"1 between slices 2 and 3"),
    ],
)
def test_missing_slices_are_refused(tmp_path, drop, expected):
    write_series(tmp_path, phantom((9, 7, 8)), oblique_affine(), drop_slices=drop)
    with pytest.raises(GeometryError, match=expected):
        read_dicom_series(tmp_path)


def test_non_uniform_spacing_is_refused(tmp_path):
    # slice 3 moved 0.6 mm up the normal: steps 2.5, 2.5, 3.1, 1.9, 2.5
    moved = {3: {"ImagePositionPatient": [0, 0, 8.1]}}
    write_series(tmp_path, phantom(), spacing=(1, 1, 2.5), slice_overrides=moved)
    expected = r"non-uniform slice spacing: steps from 1\.9 to 3\.1 mm \(typical 2\.5 mm"
    with pytest.raises(GeometryError, match=expected):
        read_dicom_series(tmp_path)


def test_small_position_jitter_is_accepted(tmp_path):
    data = phantom()
    jitter = {3: {"ImagePositionPatient": [0.004, -0.003, 7.505]}}
    write_series(tmp_path, data, spacing=(1, 1, 2.5), slice_overrides=jitter)
    loaded = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(loaded.volume.array, data)
    assert loaded.volume.shear_deg == 0.0 and loaded.source.warnings == ()


def test_in_plane_shift_of_one_slice_is_refused(tmp_path):
    shifted = {3: {"ImagePositionPatient": [0, 1.5, 7.5]}}
    write_series(tmp_path, phantom(), spacing=(1, 1, 2.5), slice_overrides=shifted)
    with pytest.raises(GeometryError, match=r"do not lie on a straight line: slice 3 is 1\.\d+ mm off"):
        read_dicom_series(tmp_path)


def test_slices_of_different_size_are_refused(tmp_path):
    uid = generate_uid()
    write_series(tmp_path, phantom((9, 7, 3)), spacing=(1, 1, 2), series_uid=uid, prefix="A")
    write_series(tmp_path, phantom((9, 8, 3)), spacing=(1, 1, 2), series_uid=uid, prefix="B",
                 origin_lps=(0, 0, 6))
    expected = r"slices differ in size \(Rows×Columns\): 7×9 \(3 slices\), 8×9 \(3"
    with pytest.raises(GeometryError, match=expected):
        read_dicom_series(tmp_path)


def test_slices_of_different_pixel_spacing_are_refused(tmp_path):
    other = {2: {"PixelSpacing": ["0.8", "0.7"]}}
    write_series(tmp_path, phantom(), spacing=(0.7, 0.7, 2), slice_overrides=other)
    with pytest.raises(GeometryError, match=r"slices differ in PixelSpacing: row spacing 0\.7\.\.0\.8 mm"):
        read_dicom_series(tmp_path)


def test_a_single_slice_is_refused(tmp_path):
    write_series(tmp_path, phantom((9, 7, 1)), spacing=(1, 1, 2))
    with pytest.raises(GeometryError, match="a single slice is a 2-D image"):
        read_dicom_series(tmp_path)


def test_gantry_tilt_gives_an_exact_sheared_affine_and_a_warning(tmp_path):
    data = phantom((9, 7, 6))
    written = write_series(tmp_path, data, spacing=(0.6, 0.6, 2.0), origin_lps=(-3, 4, 50), tilt_deg=15.0)
    loaded = read_dicom_series(tmp_path)
    vol = loaded.volume
    np.testing.assert_array_equal(vol.array, data)
    step_lps = np.array([0.0, 2.0 * np.tan(np.radians(15.0)), 2.0])
    np.testing.assert_allclose(vol.affine[:3, 2], step_lps * [-1, -1, 1], atol=1e-5)
    np.testing.assert_allclose(vol.affine, written.affine_ras, atol=1e-5)
    k = np.arange(vol.shape[2])
    corners = vol.index_to_world(np.stack([0 * k, 0 * k, k], axis=1))
    np.testing.assert_allclose(corners, ras(written.positions), atol=1e-4)
    assert vol.shear_deg == pytest.approx(15.0, abs=1e-3)
    assert len(loaded.source.warnings) == 1
    assert "gantry tilt: slices are stepped 15.00° off the slice normal (GantryDetectorTilt 15°)" in (
        loaded.source.warnings[0])


# ---- intensities and pixel data ------------------------------------------------------------------
def test_rescale_differs_per_slice_integer_result(tmp_path):
    data = phantom()
    write_series(tmp_path, data, oblique_affine(), intercept=[-1024, -1000, -2048, 0, -1024, -1])
    vol = read_dicom_series(tmp_path).volume
    assert vol.dtype == np.int16
    np.testing.assert_array_equal(vol.array, data)


def test_rescale_with_non_unit_slope_gives_float32(tmp_path):
    data = phantom().astype(np.float64)
    data[:, :, 2] = np.round(data[:, :, 2]) / 2  # representable with slope 0.5
    write_series(tmp_path, data, oblique_affine(), slope=[1, 1, 0.5, 1, 1, 1],
                 intercept=[-1024, -1024, -1000.5, 7, 0, -3])
    vol = read_dicom_series(tmp_path).volume
    assert vol.dtype == np.float32
    np.testing.assert_array_equal(vol.array, data.astype(np.float32))


def test_values_beyond_int16_give_float32(tmp_path):
    data = phantom().astype(np.int32) + 30000  # up to 31500 stored; + 8000 intercept exceeds int16
    write_series(tmp_path, data + 8000, oblique_affine(), intercept=8000)
    vol = read_dicom_series(tmp_path).volume
    assert vol.dtype == np.float32
    np.testing.assert_array_equal(vol.array, (data + 8000).astype(np.float32))


def test_truncated_pixel_data_names_the_file(tmp_path):
    written = write_series(tmp_path, phantom(), oblique_affine())
    victim = written.files[3]
    victim.write_bytes(victim.read_bytes()[:-40])
    with pytest.raises(InputError, match=rf"file {victim.name}: pixel data is truncated or corrupt") as info:
        read_dicom_series(tmp_path)
    assert str(victim.parent) + "/" not in info.value.message  # basename only in the message


@pytest.mark.parametrize("keep", [400, 132, 1000])
def test_truncated_header_names_the_file(tmp_path, keep):
    written = write_series(tmp_path, phantom(), oblique_affine())
    victim = written.files[2]
    victim.write_bytes(victim.read_bytes()[:keep])
    with pytest.raises(InputError, match=rf"file {victim.name}: "):
        read_dicom_series(tmp_path)


def test_missing_decoder_names_transfer_syntax_and_package(tmp_path, monkeypatch):
    import pydicom.pixels

    class _NoPlugins:
        is_available = False

    # volseg installs python-gdcm, so pretend this machine lacks every JPEG Lossless plugin
    real = pydicom.pixels.get_decoder
    monkeypatch.setattr(pydicom.pixels, "get_decoder",
                        lambda ts: _NoPlugins() if ts == JPEGLossless else real(ts))
    written = write_series(tmp_path, phantom((4, 4, 3)), spacing=(1, 1, 1))
    victim = written.files[1]
    ds = pydicom.dcmread(victim)
    ds.file_meta.TransferSyntaxUID = JPEGLossless
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3" + bytes(20) + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(victim, enforce_file_format=True)
    with pytest.raises(InputError, match=rf"file {victim.name}: no decoder installed for 'JPEG Lossless.*"
                                         r"\(pip install pylibjpeg pylibjpeg-libjpeg \(or python-gdcm\)\)"):
        read_dicom_series(tmp_path)


def test_error_messages_hold_no_patient_identifiers(tmp_path):
    write_series(tmp_path / "a", phantom(), oblique_affine(), drop_slices=(2,))
    write_series(tmp_path / "b", phantom(), oblique_affine(), series_number=2)
    messages = []
    for folder in (tmp_path / "a", tmp_path):
        with pytest.raises(InputError) as info:
            read_dicom_series(folder)
        messages.append(str(info.value))
    for m in messages:
        assert_no_identifiers(m)


def test_seg_file_path_is_not_an_image_series(tmp_path):
    ds = base_dataset("1.2.840.10008.5.1.4.1.1.66.4", series_uid=generate_uid(), study_uid=generate_uid(),
                      modality="SEG")
    ds.save_as(tmp_path / "seg.dcm", enforce_file_format=True)
    write_series(tmp_path, phantom(), oblique_affine())
    with pytest.raises(InputError, match="not part of a DICOM image series"):
        read_dicom_series(tmp_path / "seg.dcm")


# ---- real data -----------------------------------------------------------------------------------
def test_real_chest_ct(shared_data):
    folder = shared_data / "chest-ct-dicom"
    loaded = read_dicom_series(folder)
    vol = loaded.volume
    assert vol.shape == (512, 512, 141)
    np.testing.assert_allclose(vol.spacing, (0.9765625, 0.9765625, 2.0), atol=1e-4)
    assert vol.orientation == "LPS"
    assert (int(vol.array.min()), int(vol.array.max())) == (-1024, 2976)
    assert vol.dtype == np.int16
    assert loaded.source.modality == "CT" and loaded.source.warnings == ()
    assert len(loaded.source.files) == 141
    # lowest slice at z = -164.5 mm (the top file, 00-slice000, is at +115.5)
    np.testing.assert_allclose(vol.affine[:3, 3], (250.0, 164.0, -164.5), atol=1e-3)
    # anterior-superior lung (both sides) is air-like; the same box mirrored front-to-back is not
    for i0 in (170, 310):
        box = vol.array[i0:i0 + 30, 150:180, 90:100]
        assert np.median(box) < -750 and box.mean() < -600
    assert np.median(vol.array[170:200, 331:361, 90:100]) > -200


def test_real_totalseg_dicom_matches_reference_labels(shared_data):
    import nibabel as nib

    base = shared_data / "totalseg-example"
    loaded = read_dicom_series(base / "example_ct_dicom")
    assert any("no SeriesInstanceUID" in w for w in loaded.source.warnings)  # anonymised series
    ct = reorient(loaded.volume, "RAS")
    img = nib.load(str(base / "example_seg_dicom.nii.gz"))
    from volseg.volume import Volume

    ref = reorient(Volume(np.asarray(img.dataobj), img.affine), "RAS")
    assert ct.shape == ref.shape == (512, 512, 20)
    np.testing.assert_allclose(ct.affine, ref.affine, atol=1e-3)
    names = {int(k): v for k, v in json.loads((base / "label_map_total_v2.json").read_text()).items()}
    labels = ref.array
    vertebrae = np.isin(labels, [k for k, v in names.items() if v.startswith("vertebrae_")])
    liver = labels == next(k for k, v in names.items() if v == "liver")
    assert vertebrae.sum() > 1000 and liver.sum() > 10000
    assert ct.array[vertebrae].mean() > 150
    assert 20 < ct.array[liver].mean() < 120


def test_real_dcmqi_folder_picks_the_ct_not_the_seg(shared_data):
    folder = shared_data / "dcmqi-ct3"
    infos = list_series(folder)
    assert len(infos) == 1 and infos[0].modality == "CT" and infos[0].n_images == 3
    loaded = read_dicom_series(folder)
    vol = loaded.volume
    assert vol.shape == (512, 512, 3)
    np.testing.assert_allclose(vol.spacing, (0.8105, 0.8105, 1.0), atol=1e-3)
    assert (int(vol.array.min()), int(vol.array.max())) == (-3024, 1381)
    assert loaded.source.series_uid == infos[0].uid
    with pytest.raises(InputError, match="not part of a DICOM image series"):
        read_dicom_series(folder / "liver.dcm")


# ---- geometry rules on numbers, and reading cost -------------------------------------------------
def test_position_rules_on_numbers():
    from volseg.io import dicom_geometry as g

    assert g.check_positions(np.array([0.0, 2.0, 4.004, 6.0, 8.0])) == pytest.approx(2.0)
    expected = (r"3 missing in 2 gap\(s\).*1 between slices 1 and 2 \(positions 2\.00 and 6\.00 mm\); "
                r"2 between slices 3 and 4")
    with pytest.raises(g.SliceGeometryError, match=expected):
        g.check_positions(np.array([0.0, 2.0, 6.0, 8.0, 14.0, 16.0]))
    with pytest.raises(g.SliceGeometryError, match=r"duplicate slice positions: 2 position\(s\) .*\(3 extra"):
        g.check_positions(np.array([0.0, 0.0, 2.0, 2.0, 2.0, 4.0]))
    with pytest.raises(g.SliceGeometryError, match=r"non-uniform slice spacing: steps from 2 to 3 mm"):
        g.check_positions(np.array([0.0, 2.0, 4.0, 7.0, 9.0]))
    axial = (1, 0, 0, 0, 1, 0)
    assert g.orientation_outlier([axial, axial, (0, 1, 0, 0, 0, -1), axial]) == 2
    assert g.orientation_outlier([axial, (1, 0, 0, 0, 0.9998, 0.02)]) is None


def test_pixel_data_is_read_once_per_file(tmp_path, monkeypatch):
    written = write_series(tmp_path, phantom(), oblique_affine())
    full_reads = []
    real = pydicom.dcmread

    def counting(path, *args, **kwargs):
        if not kwargs.get("stop_before_pixels"):
            full_reads.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    read_dicom_series(tmp_path)
    assert sorted(full_reads) == sorted(str(p) for p in written.files)


def test_a_folder_of_localisers_only_has_no_image_series(tmp_path):
    add_localizer(tmp_path, name="A.dcm")
    with pytest.raises(InputError, match=r"no DICOM image series found \(skipped: 1 localisers\)"):
        read_dicom_series(tmp_path)
