"""lesions.csv and the 1.1.0 report fields, written through api.measure and the CLI."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.postprocess.synthetic import centred_affine, ellipsoid
from volseg import api
from volseg.errors import UsageError
from volseg.io.nifti import write_nifti
from volseg.reports.model import SCHEMA_VERSION
from volseg.reports.schema import load_report
from volseg.reports.tables import LESIONS_COLUMNS
from volseg.volume import Volume

SPACING, SHAPE = (0.8, 0.8, 2.0), (120, 100, 30)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A liver (label 1) holding two tumours (label 2) of known axes, and two lymph nodes (label 3)."""
    affine = centred_affine(SPACING, np.diag([-1.0, -1.0, 1.0]), SHAPE)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[ellipsoid(SHAPE, affine, (0, 0, 0), (35, 28, 20))] = 1
    labels[ellipsoid(SHAPE, affine, (-15, 5, 0), (12, 8, 8))] = 2  # long axis 24 mm, short 16 mm
    labels[ellipsoid(SHAPE, affine, (18, -10, 4), (6, 5, 6))] = 2  # long axis 12 mm
    labels[ellipsoid(SHAPE, affine, (-38, 30, 0), (7, 6, 6))] = 3  # short axis 12 mm
    labels[ellipsoid(SHAPE, affine, (38, 30, -10), (4, 3, 4))] = 3  # short axis 6 mm
    folder = tmp_path_factory.mktemp("study")
    seg = write_nifti(Volume(labels, affine), folder / "seg.nii.gz")
    names = folder / "labels.json"
    names.write_text(json.dumps({"1": "liver", "2": "liver_tumor", "3": "lymph_nodes"}))
    return seg, names


def _rows(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_lesions_csv_has_one_row_per_instance_matching_the_report(study, tmp_path):
    seg, names = study
    result = api.measure(seg, tmp_path / "out", labels=names)
    report = result.report
    assert report.schema_version == SCHEMA_VERSION and tuple(map(int, SCHEMA_VERSION.split("."))) >= (1, 1, 0)
    assert report.lesion_classes == ["liver_tumor", "lymph_nodes"]
    header, rows = _rows(result.outputs["lesions"])
    assert tuple(header) == LESIONS_COLUMNS
    assert [r["instance_id"] for r in rows] == [m.instance_id for m in report.instances] == [
        "liver_tumor-1", "liver_tumor-2", "lymph_nodes-1", "lymph_nodes-2"]
    big = report.instances[0]
    assert big.long_axis_mm == pytest.approx(24.0, abs=np.linalg.norm(SPACING))
    assert big.short_axis_mm == pytest.approx(16.0, abs=np.linalg.norm(SPACING))
    assert big.host_organ == "liver"
    for row, m in zip(rows, report.instances):
        assert float(row["long_axis_mm"]) == pytest.approx(m.long_axis_mm, rel=1e-5)
        assert float(row["volume_ml"]) == pytest.approx(m.volume_ml, rel=1e-5)
        assert row["recist_target"] == str(int(m.recist_target))
        assert float(row["centroid_r_mm"]) == pytest.approx(m.centroid_ras_mm[0], abs=1e-3)
    node = report.instances[2]
    assert node.kind == "lymph_node" and node.short_axis_class == "10-<15 mm"
    assert node.station == "unknown"  # an abdominal map has no thoracic landmarks
    nodes = next(b for b in report.burden if b.class_name == "lymph_nodes")
    assert nodes.short_axis_class_counts == {"<10 mm": 1, "10-<15 mm": 1, ">=15 mm": 0}
    assert next(b for b in report.burden if b.class_name == "liver_tumor").short_axis_class_counts is None
    # both tumours are measurable (>= 10 mm); nodes need a short axis >= 15 mm
    assert [m.instance_id for m in report.instances if m.recist_target] == ["liver_tumor-1", "liver_tumor-2"]
    again = load_report(result.outputs["report"])
    assert again.instances == report.instances and again.burden == report.burden
    assert {s.name: s.qc_flags for s in again.structures}["liver"] == ["volume_out_of_range"]  # 82 mL


def test_header_only_when_lesion_classes_are_empty_and_none_without_them(study, tmp_path):
    seg, _ = study
    names = tmp_path / "other.json"
    names.write_text(json.dumps({"1": "liver", "2": "spleen", "3": "kidney_cyst_left", "4": "pancreas"}))
    result = api.measure(seg, tmp_path / "out", labels=names, instances=["pancreas"])
    header, rows = _rows(result.outputs["lesions"])
    assert tuple(header) == LESIONS_COLUMNS and rows == []
    result = api.measure(seg, tmp_path / "out2", labels=names, instances=[])
    assert "lesions" not in result.outputs and not (tmp_path / "out2" / "lesions.csv").exists()


def test_unknown_instance_class_is_a_usage_error(study, tmp_path):
    seg, names = study
    with pytest.raises(UsageError, match="no class 'liver_tumour'") as info:
        api.measure(seg, tmp_path / "out", labels=names, instances=["liver_tumour"])
    assert "liver_tumor" in info.value.hint


def test_organ_map_must_share_the_grid(study, tmp_path):
    seg, names = study
    other = write_nifti(Volume(np.zeros((4, 4, 4), np.uint8), np.eye(4)), tmp_path / "organs.nii.gz")
    with pytest.raises(Exception, match="does not match"):
        api.measure(seg, tmp_path / "out", labels=names, organs=other)


def test_a_1_0_report_is_still_readable(study, tmp_path):
    seg, names = study
    path = api.measure(seg, tmp_path / "out", labels=names).outputs["report"]
    payload = json.loads(path.read_text())
    payload["schema_version"] = "1.0.0"
    for key in ("instances", "burden", "airway", "lesion_classes"):
        payload.pop(key)
    for row in payload["structures"]:
        row.pop("qc_flags"), row.pop("qc_notes")
    path.write_text(json.dumps(payload))
    old = load_report(path)
    assert old.instances == [] and old.airway is None and old.structures[0].qc_flags == []


def test_cli_passes_instances_and_organs_to_the_api(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from volseg.cli.app import app

    seen = {}

    def fake_measure(segmentation, output, **kw):
        seen.update(kw, segmentation=segmentation)
        raise UsageError("stop here")

    monkeypatch.setattr(api, "measure", fake_measure)
    result = CliRunner().invoke(app, ["measure", "seg.nii.gz", "-o", str(tmp_path), "--instances",
                                      "liver_tumor, lymph_nodes", "--organs", "org.nii.gz",
                                      "--organ-labels", "org.json", "--min-instance-mm3", "5"])
    assert isinstance(result.exception, UsageError)
    assert seen["instances"] == ["liver_tumor", "lymph_nodes"]
    assert str(seen["organs"]) == "org.nii.gz" and str(seen["organ_labels"]) == "org.json"
    assert seen["options"].min_instance_volume_mm3 == 5.0


class _FixedSegmenter:
    """A segmenter whose prediction is a fixed label map on the input grid (no model)."""

    name = "not-in-the-catalogue"
    entry = None  # no catalogue entry

    def __init__(self, labels: np.ndarray, names: dict[int, str]):
        from volseg.labels import LabelTable

        self._labels = labels
        self.labels = LabelTable.from_names(names)

    def predict(self, volume, *, modality=None, progress=None):
        return volume.with_array(self._labels)

    def provenance(self):
        return {"model": self.name, "version": "0"}


def test_segment_writes_lesions_csv_for_lesion_classes(study, tmp_path):
    from volseg.io import read_image

    seg, _ = study
    labels = read_image(seg).volume
    image = write_nifti(labels.with_array(np.where(labels.array > 0, 60, -1000).astype(np.int16)),
                        tmp_path / "ct.nii.gz")
    segmenter = _FixedSegmenter(np.asarray(labels.array), {1: "liver", 2: "liver_tumor", 3: "lymph_nodes"})
    result = api.segment(image, tmp_path / "out", segmenter=segmenter)
    _, rows = _rows(result.outputs["lesions"])
    assert len(rows) == 4 and rows[0]["instance_id"] == "liver_tumor-1"
    assert float(rows[0]["mean_hu"]) == pytest.approx(60.0)


def test_catalogue_instance_classes_must_be_model_classes():
    from pydantic import ValidationError

    from volseg.segmenters.catalogue import ModelEntry, get_entry

    base = get_entry("classic-ct").model_dump()
    assert ModelEntry.model_validate({**base, "instance_classes": ["airways"]}).instance_classes == ("airways",)
    with pytest.raises(ValidationError, match="not classes of this model"):
        ModelEntry.model_validate({**base, "instance_classes": ["liver_tumor"]})
