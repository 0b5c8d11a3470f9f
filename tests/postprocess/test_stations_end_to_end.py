"""Lymph-node stations end to end from classic-ct's airways: the landmark step, the station
assignment, and ``api.segment`` of the lymph-node model with a fake node segmenter.

Known answers: the chest phantom's trachea ends at the carina (0, 20, 75) mm RAS and its main
bronchi run to (±48, 8, 52); soft-tissue spheres (40 HU, radius 5 mm) are painted into the CT at
chosen places and are the node label map.
"""
from __future__ import annotations

import csv
import shutil
import subprocess

import numpy as np
import pytest

from volseg import api
from volseg.phantom import make_phantom
from volseg.postprocess.landmarks import find_landmarks
from volseg.postprocess.stations import StationMapper
from volseg.segmenters.catalogue import get_entry
from volseg.segmenters.landmarks import (
    CLASSIC,
    landmark_sources,
    split_airways,
    study_landmarks,
)
from volseg.volume import Volume

NODE_RADIUS_MM = 5.0
NODES = {  # name -> (centre RAS mm, expected station)
    "paratracheal_right": ((18.0, 20.0, 95.0), "unknown"),  # 2R/4R need the sternum and vessels
    "paratracheal_left": ((-18.0, 20.0, 95.0), "unknown"),  # 2L/4L need the aortic arch
    "subcarinal": ((0.0, 12.0, 62.0), "7"),
    "hilar_right": ((24.0, 2.0, 63.5), "10R"),  # 1.5 mm from the right main bronchus lumen
    "hilar_left": ((-24.0, 2.0, 63.5), "10L"),
}


@pytest.fixture(scope="module")
def chest():
    """(CT with the nodes painted in, node label map 1..5 in NODES order) on the phantom grid."""
    phantom = make_phantom()
    hu, affine = phantom.image.array.copy(), phantom.image.affine
    idx = np.indices(hu.shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ idx + affine[:3, 3:4]).T.reshape(*hu.shape, 3)
    nodes = np.zeros(hu.shape, dtype=np.uint8)
    for k, (centre, _) in enumerate(NODES.values(), start=1):
        sphere = ((xyz - np.asarray(centre)) ** 2).sum(axis=-1) <= NODE_RADIUS_MM ** 2
        hu[sphere], nodes[sphere] = 40, k
    return Volume(hu, affine, {"modality": "CT"}), nodes


@pytest.fixture(scope="module")
def landmark_map(chest):
    return study_landmarks(chest[0], (CLASSIC,))


def _stations(landmark_map, chest):
    volume, nodes = chest
    mapper = StationMapper(find_landmarks(landmark_map.volume.array, volume.affine, landmark_map.table.names()))
    out = {}
    for k, name in enumerate(NODES, start=1):
        pts = np.argwhere(nodes == k) @ volume.affine[:3, :3].T + volume.affine[:3, 3]
        out[name] = mapper.assign(pts)
    return out


def test_catalogue_declares_landmark_sources_best_first():
    assert landmark_sources("raidionics-ct-lymphnodes") == ("total", "total-fast", CLASSIC)
    assert landmark_sources("classic-ct") == ()


def test_classic_landmarks_hold_trachea_bronchi_and_lungs(landmark_map, chest):
    assert landmark_map.source == CLASSIC
    assert landmark_map.provenance()["structures"] == ["airway_bronchi", "lung_left", "lung_right", "trachea"]
    lm = find_landmarks(landmark_map.volume.array, chest[0].affine, landmark_map.table.names())
    assert lm.level("carina") == pytest.approx(75.0, abs=4.0)
    assert lm.level("lower_lobe_bronchus_top") == pytest.approx(52.0, abs=3.0)
    assert sum(b.generation == 1 for b in lm.airway_branches) == 2


def test_stations_from_classic_airways(landmark_map, chest):
    got = _stations(landmark_map, chest)
    assert {name: r.station for name, r in got.items()} == {name: s for name, (_, s) in NODES.items()}
    assert got["subcarinal"].zone == "subcarinal"
    assert got["hilar_right"].zone == got["hilar_left"].zone == "hilar_interlobar"


def test_missing_landmark_is_named(landmark_map, chest):
    got = _stations(landmark_map, chest)
    for name in ("paratracheal_right", "paratracheal_left"):
        assert got[name].station == "unknown"
        assert "sternum" in got[name].note  # classic-ct has no manubrium (nor vessels)


def test_split_airways_cuts_at_the_carina(chest):
    from volseg.segmenters.classic import segment_masks
    from volseg.volume import reorient

    ras = reorient(make_phantom().image, "RAS")
    trachea, bronchi = split_airways(segment_masks(ras)["airways"], ras.affine)
    z = lambda m: np.argwhere(m)[:, 2] * ras.affine[2, 2] + ras.affine[2, 3]  # noqa: E731
    assert z(trachea).min() == pytest.approx(75.0, abs=4.0) and z(bronchi).max() < z(trachea).max()
    assert not (trachea & bronchi).any()


def test_reused_masks_give_the_same_map(chest, landmark_map):
    from volseg.segmenters.classic import segment_masks
    from volseg.volume import reorient

    reused = study_landmarks(chest[0], ("not-a-model", CLASSIC), classic_masks=segment_masks(reorient(chest[0], "RAS")))
    assert np.array_equal(reused.volume.array, landmark_map.volume.array)


class _FakeNodeModel:
    """The lymph-node model's name and classes, predicting a fixed node map (no weights)."""

    name = "raidionics-ct-lymphnodes"
    entry = get_entry("raidionics-ct-lymphnodes")  # declares the lesion-type classes

    def __init__(self, nodes: np.ndarray):
        from volseg.labels import LabelTable

        self._nodes = (nodes > 0).astype(np.uint8)
        self.labels = LabelTable.from_names({1: "lymph_nodes"})

    def predict(self, volume, *, modality=None, progress=None):
        return volume.with_array(self._nodes)

    def provenance(self):
        return {"model": self.name, "version": "0"}


def test_segment_lymph_nodes_reports_stations(chest, tmp_path, monkeypatch):
    import volseg.segmenters.registry as registry

    monkeypatch.setattr(registry, "is_installed", lambda name: name == CLASSIC)  # no total here
    volume, nodes = chest
    result = api.segment(volume, tmp_path / "out", segmenter=_FakeNodeModel(nodes), study_id="phantom")
    report = result.report
    assert report.provenance.options["landmarks"]["source"] == CLASSIC
    by_station = sorted((r.station, r.station_zone) for r in report.instances)
    assert by_station == sorted([("unknown", "unknown"), ("unknown", "unknown"), ("7", "subcarinal"),
                                 ("10R", "hilar_interlobar"), ("10L", "hilar_interlobar")])
    from volseg.postprocess.lymph_nodes import short_axis_class

    for r in report.instances:  # 10 mm spheres on 1.75 x 1.75 x 2.5 mm voxels
        assert r.short_axis_mm == pytest.approx(2 * NODE_RADIUS_MM, abs=2.0)
        assert r.short_axis_class == short_axis_class(r.short_axis_mm) is not None
    assert {r.station_note for r in report.instances if r.station == "unknown"} == {
        "no sternum/manubrium top: station 1 and 2 cannot be told apart"}
    with open(result.outputs["lesions"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["station"] for r in rows) == sorted(s for _, s in NODES.values())
    assert all(float(r["short_axis_mm"]) > 0 for r in rows)
    assert {r["station_note"] for r in rows if r["station"] == "unknown"} == {
        "no sternum/manubrium top: station 1 and 2 cannot be told apart"}


def test_raidionics_lymph_nodes_reuse_the_crop_classic_ct_as_landmarks(tmp_path, monkeypatch):
    """The catalogued model installed from tiny archives (tests/factories/raidionics_model.py):
    ``segment -m raidionics-ct-lymphnodes`` runs classic-ct once, for the crop and the landmarks."""
    pytest.importorskip("onnxruntime")
    import json

    import volseg.segmenters.classic as classic
    from tests.factories.raidionics_model import install_lymph_node_model
    from volseg.cli.main import main
    from volseg.io.nifti import write_nifti

    entry = install_lymph_node_model(tmp_path, monkeypatch)
    calls = []
    real = classic.segment_masks
    monkeypatch.setattr(classic, "segment_masks", lambda ras, **kw: calls.append(ras.shape) or real(ras, **kw))
    image = make_phantom((96, 80, 40), (3.5, 3.5, 6.0), orientation="LPS", seed=5).image
    path = write_nifti(image, tmp_path / "ct.nii.gz")
    assert main(["segment", str(path), "--model", entry.name, "--device", "cpu", "-o", str(tmp_path / "o")]) == 0
    assert len(calls) == 1
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["provenance"]["options"]["landmarks"]["source"] == CLASSIC
    assert "trachea" in report["provenance"]["options"]["landmarks"]["structures"]
    assert all(r["station"] is not None for r in report["instances"] if r["kind"] == "lymph_node")


def test_sr_holds_the_node_station(tmp_path):
    """A lymph-node instance with a station -> its TID 1501 group carries the station (private code)."""
    hd = pytest.importorskip("highdicom")
    from tests.reports.factories import lesion_study, write_ct_series
    from volseg.io import read_image
    from volseg.io.nifti import write_nifti
    from volseg.labels import LabelTable
    from volseg.reports.dicom_outputs import write_dicom_outputs

    image, labels, instance = lesion_study(shape=(96, 90, 24))
    nodes = labels.with_array(np.where(np.asarray(labels.array) == 2, 1, 0).astype(np.uint8))
    table = LabelTable.from_names({1: "lymph_nodes"})
    write_ct_series(image, tmp_path / "series")
    loaded = read_image(tmp_path / "series")
    report = api.measure(write_nifti(nodes, tmp_path / "labels.nii.gz"), tmp_path / "m",
                         labels=None, image=write_nifti(image, tmp_path / "ct.nii.gz")).report
    node = {**instance, "label": 1, "instance_id": "lymph_nodes-1", "kind": "lymph_node", "station": "7"}
    written = write_dicom_outputs(tmp_path / "out", report, table, loaded.volume.with_array(nodes.array),
                                  loaded.source, anonymize=True, instances=[node])
    (group,) = hd.sr.srread(written["dicom_sr"]).content.get_image_measurement_groups()
    (evaluation,) = group.get_qualitative_evaluations()
    assert evaluation.name.meaning == "IASLC lymph node station" and evaluation.value.value == "7"
    assert {m.name.value for m in group.get_measurements()} >= {"103339001", "103340004"}  # long, short axis
    if shutil.which("dciodvfy"):
        out = subprocess.run(["dciodvfy", str(written["dicom_sr"])], capture_output=True, text=True, check=False)
        assert not [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]


def test_landmarks_that_cannot_run_warn_instead_of_failing(monkeypatch):
    import volseg.segmenters.registry as registry
    from volseg.segmenters.landmarks import segmenter_landmarks

    monkeypatch.setattr(registry, "is_installed", lambda name: name == CLASSIC)
    mr = Volume(np.zeros((8, 8, 8), dtype=np.float32), np.eye(4), {"modality": "MR"})
    warnings: list[str] = []
    assert segmenter_landmarks(_FakeNodeModel(np.zeros((8, 8, 8))), mr, warnings) is None
    assert len(warnings) == 1 and warnings[0].startswith("lymph-node stations left unknown: no landmarks")
    assert "classic-ct segments CT only" in warnings[0]
    assert segmenter_landmarks(type("Other", (), {"name": "classic-ct"})(), mr, warnings) is None  # no sources
    assert len(warnings) == 1
