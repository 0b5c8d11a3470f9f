"""The study's outputs are the same whether the label map's files, the overview pictures and the
structures' measurements are made in a forked child beside the clinical measurements (a large
map), after them with the lesions shared out over forked workers (a small map), or all in one
process (``VOLSEG_WORKERS=1``)."""
import json
import re
import sys

import pytest

from tests.reports.factories import LESION_LABELS, lesion_study
from volseg import api, parallel
from volseg.io.nifti import write_nifti
from volseg.pipeline import measure

PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _outputs(tmp_path, workers: str, monkeypatch, *, beside_from: int = measure.BESIDE_MIN_VOXELS
             ) -> tuple[dict, list[str], bytes]:
    monkeypatch.setenv(parallel.WORKERS_ENV, workers)
    monkeypatch.setattr(measure, "BESIDE_MIN_VOXELS", beside_from)
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
    assert report_1["structures"] and report_1["instances"] and len(pictures_1) >= 4
    for name, beside_from in (("beside", 0), ("workers", 1 << 40)):
        report_n, pictures_n, volumetry_n = _outputs(tmp_path / name, "3", monkeypatch, beside_from=beside_from)
        assert report_n == report_1, name
        assert pictures_n == pictures_1, name  # overview, airway and lesion PNGs, byte for byte
        assert volumetry_n == volumetry_1, name
