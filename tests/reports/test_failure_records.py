"""reports/failure_records reads what batch/records writes, without importing batch; no import circle
between the cohort tables and page; io/ and reports/ never import the layers above them."""
import ast
from pathlib import Path

from volseg.batch import failures, records
from volseg.batch.discover import Study
from volseg.batch.records import RunKey
from volseg.reports import failure_records

SRC = Path(failure_records.__file__).resolve().parents[1]  # src/volseg


def test_the_reader_agrees_with_the_writer(tmp_path):
    assert failure_records.FAILED_RECORD == records.FAILED
    assert failure_records.RECORD_SCHEMA == records.RECORD_SCHEMA
    assert failures.find_failures is failure_records.find_failures
    study = Study(study_id="s1", path=str(tmp_path / "in" / "s1.nii.gz"), kind="nifti", rel_path="s1.nii.gz")
    records.write_failed(tmp_path / "out" / "s1", study, RunKey(models=(("m", "1"), ("n", "2"))), fingerprint={},
                         stage="read", error_class="InputError", exit_code=3, error="s1: truncated\n data")
    (tmp_path / "out" / ".hidden").mkdir()
    (tmp_path / "out" / ".hidden" / records.FAILED).write_text((tmp_path / "out" / "s1" / records.FAILED).read_text())
    (tmp_path / "out" / "bad").mkdir()
    (tmp_path / "out" / "bad" / records.FAILED).write_text("{not json")
    [found] = failure_records.find_failures(tmp_path / "out")
    assert (found.study_id, found.folder, found.model, found.model_version) == ("s1", "s1", "m+n", "1+2")
    assert (found.stage, found.error_class, found.exit_code, found.error) == ("read", "InputError", 3,
                                                                             "s1: truncated data")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_io_and_reports_import_nothing_above_them_and_the_cohort_has_no_circle():
    above = ("volseg.batch", "volseg.api", "volseg.cli", "volseg.pipeline", "volseg.options", "torch")
    for package, also_above in (("io", ("volseg.reports", "volseg.segmenters", "volseg.postprocess")),
                                ("reports", ())):
        for path in (SRC / package).glob("*.py"):
            bad = [m for m in _imports(path) if m.startswith(above + also_above)]
            assert not bad, f"{package}/{path.name} imports {bad}"
    assert "volseg.reports.cohort" not in _imports(SRC / "reports" / "cohort_html.py")
