"""The study pipeline and the options vocabulary: one home each (issue 14)."""
import ast
from pathlib import Path

import pytest

from volseg.errors import UsageError
from volseg.options import SegmentOptions, engine_overrides

SRC = Path(__file__).resolve().parents[2] / "src" / "volseg"


def _imported_modules(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("package", ["batch", "pipeline"])
def test_batch_and_the_pipeline_never_import_the_api_or_the_cli(package):
    imported = _imported_modules(SRC / package)
    assert "volseg.batch.options" in imported or package == "pipeline"  # the walk sees imports
    assert {m for m in imported if m.startswith(("volseg.api", "volseg.cli"))} == set()


def test_output_options_come_from_the_segment_options_once():
    from volseg.pipeline.outputs import OutputOptions

    options = SegmentOptions(html=False, dicom=True, rtstruct=True, anonymize=True, masks=True)
    assert OutputOptions.of(options) == OutputOptions(html=False, dicom=True, rtstruct=True, anonymize=True,
                                                      masks=True)
    assert OutputOptions.of(SegmentOptions()) == OutputOptions()  # html only, as `volseg measure` writes


def test_provenance_options_keep_their_keys_and_order(tmp_path):
    from volseg.pipeline.write import provenance_options

    class Model:
        name = "classic-ct"

    options = SegmentOptions(keep_phi=True, roi_subset=("liver", "spleen"))
    recorded = provenance_options(Model(), options, input=tmp_path / "ct.nii.gz")
    assert list(recorded) == ["model", "device", "series", "html", "dicom", "rtstruct", "anonymize", "keep_phi",
                              "fast", "masks", "roi_subset", "landmarks", "input_path"]
    assert recorded["roi_subset"] == ["liver", "spleen"] and recorded["input_path"] == str(tmp_path / "ct.nii.gz")
    assert "input_path" not in provenance_options(Model(), SegmentOptions(), input=tmp_path / "ct.nii.gz")


def test_batch_options_hold_segment_options_and_keep_the_default_run_key():
    from volseg.batch import BatchOptions

    assert BatchOptions().output_options() == {"html": True, "dicom": False, "keep_phi": False}
    masks = BatchOptions(segment=SegmentOptions(masks=True, rtstruct=True, engine=engine_overrides(export="nearest")))
    assert masks.output_options() == {"html": True, "dicom": False, "keep_phi": False, "rtstruct": True,
                                      "masks": True, "export": "nearest"}


@pytest.mark.parametrize("given, flag", [({"fast": True}, "--fast"), ({"roi_subset": ("liver",)}, "--roi-subset"),
                                         ({"model": "total"}, "--model"), ({"series": "2"}, "--series")])
def test_batch_refuses_segment_options_it_does_not_honour(given, flag):
    from volseg.batch import BatchOptions

    with pytest.raises(UsageError, match=flag):
        BatchOptions(segment=SegmentOptions(**given))


def test_slurm_forwards_every_changed_option_by_its_flag_name():
    from volseg.batch import BatchOptions
    from volseg.batch.slurm import batch_args

    assert batch_args(BatchOptions()) == []
    options = BatchOptions(retry_failed=True, gpus="0", models=("classic-ct",), shard="0/2", segment=SegmentOptions(
        html=False, masks=True, rtstruct=True, trust_bundle=True, engine=engine_overrides(tta=False, step=0.75)))
    assert batch_args(options, json_log=True) == [
        "--retry-failed", "--gpus", "0", "--no-html", "--rtstruct", "--trust-bundle", "--masks",
        "--step", "0.75", "--no-tta", "--json-log"]
