"""--anonymize-ids / --id-map: no input-derived name in any output (issue 17)."""
from __future__ import annotations

import csv

import pytest

from tests.batch.cohort import write_cohort
from volseg import api
from volseg.batch import BatchOptions
from volseg.batch.ids import ID_MAP
from volseg.errors import UsageError
from volseg.options import SegmentOptions

NO_HTML = SegmentOptions(html=False)  # BatchOptions(segment=NO_HTML): no report.html

NAMES = ["Roe_Jane/ct.nii.gz", "Doe_John/ct.nii.gz"]


def _run(input_dir, out, events=None, **options):
    sink = events.append if events is not None else None
    return api.batch(input_dir, out, options=BatchOptions(**options), on_event=sink)


def _mentions(out, word):
    hits = []
    for path in out.rglob("*"):
        if path.name == ID_MAP:
            continue
        if word in str(path.relative_to(out)) or (path.is_file() and word.encode() in path.read_bytes()):
            hits.append(str(path.relative_to(out)))
    return hits


def _rows(path):
    with open(path, newline="") as fh:
        return [(r["path"], r["study_id"]) for r in csv.DictReader(fh)]


def test_anonymized_ids_follow_sorted_paths_and_no_output_names_the_inputs(tmp_path):
    write_cohort(tmp_path / "in", 2, names=NAMES)
    (tmp_path / "in" / "Doe_John" / "ct.nii.gz").write_bytes(b"broken")  # a failure names no path either
    out = tmp_path / "out"
    events = []
    summary = _run(tmp_path / "in", out, events, anonymize_ids=True)
    assert summary.done == ("study-0002",)
    assert [(f.study_id, f.stage) for f in summary.failed] == [("study-0001", "read")]
    assert _rows(out / ID_MAP) == [("Doe_John/ct.nii.gz", "study-0001"), ("Roe_Jane/ct.nii.gz", "study-0002")]
    for word in ("Doe", "Roe", "Jane", "John"):
        assert _mentions(out, word) == []  # folders, report.json, CSVs, HTML, records, log
    assert all("Doe" not in e.to_json() and "Roe" not in e.to_json() for e in events)
    assert (out / "study-0002" / "report.json").is_file() and (out / "cohort_volumetry.csv").is_file()

    write_cohort(tmp_path / "in", 1, names=["Abe_Zed/ct.nii.gz"])  # a new input sorts first...
    again = _run(tmp_path / "in", out, anonymize_ids=True)
    assert again.skipped == ("study-0002",) and again.done == ("study-0003",)  # ...but ids are kept
    assert _rows(out / ID_MAP)[-1] == ("Abe_Zed/ct.nii.gz", "study-0003")


def test_an_id_map_gives_the_ids_and_must_cover_every_input(tmp_path):
    write_cohort(tmp_path / "in", 2, names=NAMES)
    id_map = tmp_path / "ids.csv"
    id_map.write_text("path,study_id\nDoe_John/ct.nii.gz,P-17\n")
    with pytest.raises(UsageError, match=r"1 input\(s\) not in the id map, e\.g\. the input #2") as caught:
        _run(tmp_path / "in", tmp_path / "out", id_map=str(id_map), segment=NO_HTML)
    assert "Roe" not in str(caught.value)
    id_map.write_text("path,study_id\nDoe_John/ct.nii.gz,P-17\nRoe_Jane/ct.nii.gz,P-03\n")
    summary = _run(tmp_path / "in", tmp_path / "out", id_map=str(id_map), segment=NO_HTML)
    assert summary.done == ("P-03", "P-17")
    assert _rows(tmp_path / "out" / ID_MAP) == [("Roe_Jane/ct.nii.gz", "P-03"), ("Doe_John/ct.nii.gz", "P-17")]
    id_map.write_text("path,study_id\nDoe_John/ct.nii.gz,../x\nRoe_Jane/ct.nii.gz,P-03\n")
    with pytest.raises(UsageError, match="invalid study_id"):
        _run(tmp_path / "in", tmp_path / "out", id_map=str(id_map), segment=NO_HTML)
