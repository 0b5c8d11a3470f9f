"""Any label map in: the same physical grid stored differently is reoriented losslessly, a different
grid is refused saying how; DICOM SEG; label names from JSON, Slicer .ctbl and ITK-SNAP files."""
from __future__ import annotations

import numpy as np
import pytest

from volseg import api
from volseg.errors import GeometryError, InputError
from volseg.io.nifti import write_nifti
from volseg.io.regrid import onto_grid
from volseg.labels import LabelInfo, LabelTable, read_labels
from volseg.reports.colour_tables import itksnap_labels, slicer_ctbl
from volseg.volume import Volume

SHAPE = (6, 5, 4)
AFFINE = np.array([[-2.0, 0, 0, 10], [0, -1.5, 0, 20], [0, 0, 3.0, -30], [0, 0, 0, 1]])


def _labels() -> np.ndarray:
    array = np.zeros(SHAPE, np.uint8)
    array[0:2, 0:3, 1:4] = 1  # 18 voxels
    array[4, 4, 0] = 2  # 1 voxel
    return array


def _stored_otherwise(volume: Volume) -> Volume:
    """The same grid, k axis first and the (new) second axis reversed, with the matching affine."""
    array = np.flip(np.transpose(volume.array, (2, 0, 1)), axis=1)
    cols = volume.affine[:3, :3][:, [2, 0, 1]].copy()
    origin = volume.affine[:3, 3] + cols[:, 1] * (SHAPE[0] - 1)
    cols[:, 1] *= -1
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = cols, origin
    return Volume(np.ascontiguousarray(array), affine)


def test_a_permuted_and_flipped_label_map_comes_back_exactly():
    grid = Volume(np.zeros(SHAPE, np.int16), AFFINE)
    truth = Volume(_labels(), AFFINE)
    other = _stored_otherwise(truth)
    assert other.shape == (4, 6, 5) and not other.same_grid(grid)
    back = onto_grid(other, grid)
    assert np.array_equal(back.array, truth.array)
    assert np.allclose(back.affine, AFFINE)


@pytest.mark.parametrize(("affine", "shape", "words"), [
    (AFFINE, (6, 5, 5), "shape (6, 5, 5) vs image (6, 5, 4)"),
    (np.diag([2.0, 1.5, 2.5, 1.0]) @ np.diag([-1, -1, 1, 1]) + np.array([[0, 0, 0, 10], [0, 0, 0, 20], [0, 0, 0, -30], [0, 0, 0, 0]]),
     SHAPE, "spacing (2, 1.5, 2.5) mm vs image (2, 1.5, 3) mm"),
    (AFFINE + np.array([[0, 0, 0, 5.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]), SHAPE, "origin (corner)"),
])
def test_a_really_different_grid_is_refused_saying_how(affine, shape, words):
    grid = Volume(np.zeros(SHAPE, np.int16), AFFINE)
    with pytest.raises(GeometryError, match="does not match the image grid") as info:
        onto_grid(Volume(np.zeros(shape, np.uint8), affine), grid, path="seg.nii.gz")
    assert words in info.value.message


def test_measure_takes_a_reoriented_label_map(tmp_path):
    image = write_nifti(Volume(np.full(SHAPE, 40, np.int16), AFFINE), tmp_path / "ct.nii.gz")
    seg = write_nifti(_stored_otherwise(Volume(_labels(), AFFINE)), tmp_path / "seg.nii.gz")
    report = api.measure(seg, tmp_path / "out", image=image).report
    assert report.structure("label_1").voxel_count == 18
    assert report.structure("label_2").voxel_count == 1
    assert report.structure("label_1").volume_ml == pytest.approx(18 * 9.0 / 1000)


def test_organs_are_reoriented_too(tmp_path):
    seg = write_nifti(Volume(_labels(), AFFINE), tmp_path / "seg.nii.gz")
    organs = write_nifti(_stored_otherwise(Volume(_labels(), AFFINE)), tmp_path / "organs.nii.gz")
    assert api.measure(seg, tmp_path / "out", organs=organs).report.structure("label_1").voxel_count == 18


def test_totalsegmentator_map_of_the_dicom_example(shared_data, tmp_path):
    example = shared_data / "totalseg-example"
    report = api.measure(example / "example_seg_dicom.nii.gz", tmp_path / "out",
                         image=example / "example_ct_dicom").report
    assert sum(s.voxel_count for s in report.structures) > 0
    assert report.structures[0].mean_hu is not None


def test_dicom_seg_of_dcmqi(shared_data, tmp_path):
    folder = shared_data / "dcmqi-ct3"
    report = api.measure(folder / "liver.dcm", tmp_path / "out", image=folder / "ct-3slice").report
    assert [s.name for s in report.structures] == ["liver"]
    assert report.structure("liver").voxel_count == 107098
    alone = api.measure(folder / "liver.dcm", tmp_path / "out2").report  # on the SEG's own frames
    assert alone.structure("liver").voxel_count == 107098


# ---- label names from other files -----------------------------------------------------------------

TABLE = LabelTable([LabelInfo(1, "kidney_left", "Kidney left", (10, 20, 30)),
                    LabelInfo(7, "liver", "Liver", (200, 100, 0))])


@pytest.mark.parametrize(("file_name", "render"), [("segmentation.ctbl", slicer_ctbl),
                                                   ("segmentation.itksnap.txt", itksnap_labels)])
def test_colour_tables_volseg_writes_read_back(tmp_path, file_name, render):
    path = tmp_path / file_name
    path.write_text(render(TABLE))
    back = read_labels(path)
    assert back.names() == {1: "kidney_left", 7: "liver"}
    assert back[1].color == (10, 20, 30) and back[7].display_name == "Liver"
    assert back[1].display_name == "Kidney left"


def test_itksnap_free_text_labels_become_names(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text('    0     0    0    0        0  0  0    "Clear Label"\n'
                    '    3   255    0    0        1  1  1    "Left kidney (cortex)"\n')
    table = read_labels(path)
    assert table.names() == {3: "left_kidney_cortex"} and table[3].display_name == "Left kidney (cortex)"


def test_plain_json_and_a_broken_table(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text('{"1": "spleen", "2": "liver"}')
    assert read_labels(plain).names() == {1: "spleen", 2: "liver"}
    broken = tmp_path / "broken.ctbl"
    broken.write_text("1 spleen 10 20\n")
    with pytest.raises(InputError, match="not 'index name R G B A'"):
        read_labels(broken)


def test_measure_names_from_a_ctbl(tmp_path):
    seg = write_nifti(Volume(_labels(), AFFINE), tmp_path / "seg.nii.gz")
    ctbl = tmp_path / "names.ctbl"
    ctbl.write_text("0 background 0 0 0 0\n1 spleen 1 2 3 255\n2 liver 4 5 6 255\n")
    report = api.measure(seg, tmp_path / "out", labels=ctbl).report
    assert report.structure("spleen").voxel_count == 18 and report.structure("liver").voxel_count == 1


def test_a_partial_label_map_fills_the_grid_only_when_allowed():
    grid = Volume(np.zeros(SHAPE, np.int16), AFFINE)
    part = np.ones((2, 5, 1), np.uint8)
    affine = AFFINE.copy()
    affine[:3, 3] = Volume(part, AFFINE).index_to_world(np.array([3, 0, 2]))  # starts at voxel (3, 0, 2)
    sub = Volume(part, affine)
    with pytest.raises(GeometryError, match="shape"):
        onto_grid(sub, grid)
    placed = onto_grid(sub, grid, allow_subgrid=True).array
    assert placed.sum() == 10 and placed[3:5, :, 2].all() and placed[:, :, 3].sum() == 0
