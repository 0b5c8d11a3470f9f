"""The study's outputs are the same whether the label map's files, the overview pictures and the
structures' measurements are made in forked children beside the clinical measurements or all in
one process (``VOLSEG_WORKERS=1``)."""
import json
import re
import sys

import pytest

from tests.reports.factories import LESION_LABELS, lesion_study
from volseg import api, parallel
from volseg.io.nifti import write_nifti

PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _outputs(tmp_path, workers: str, monkeypatch) -> tuple[dict, list[str], bytes]:
    monkeypatch.setenv(parallel.WORKERS_ENV, workers)
    tmp_path.mkdir()
    image, labels, _ = lesion_study()
    ct, seg = write_nifti(image, tmp_path / "ct.nii.gz"), write_nifti(labels, tmp_path / "seg.nii.gz")
    (tmp_path / "labels.json").write_text(LESION_LABELS.to_json())
    result = api.measure(seg, tmp_path / "out", image=ct, labels=tmp_path / "labels.json")
    report = json.loads(result.outputs["report"].read_text())
    report["provenance"].pop("timings_s")
    report["provenance"].pop("created_utc", None)
    pictures = PNG.findall(result.outputs["html"].read_text(encoding="utf-8"))
    return report, pictures, result.outputs["volumetry"].read_bytes()


@pytest.mark.skipif(sys.platform != "linux", reason="children are forked on Linux only")
def test_forked_and_single_process_outputs_are_equal(tmp_path, monkeypatch):
    report_1, pictures_1, volumetry_1 = _outputs(tmp_path / "one", "1", monkeypatch)
    report_n, pictures_n, volumetry_n = _outputs(tmp_path / "forked", "3", monkeypatch)
    assert report_1["structures"] and report_1["instances"]
    assert report_n == report_1
    assert len(pictures_1) >= 4 and pictures_n == pictures_1  # overview, airway and lesion PNGs, bytes
    assert volumetry_n == volumetry_1
