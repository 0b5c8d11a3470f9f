"""The GPU check's cheapest dry run on the CPU, so that the script cannot rot before a device is lent."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_cpu_dry_run_writes_one_table(gpu_check, tmp_path, capsys):
    out = tmp_path / "check.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--skip-wall-times", "--out", str(out)]) == 0
    rows = {r["check"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["fp32 labels, device vs CPU"]["pass"] == "yes"
    assert rows["bf16 autocast vs fp32"]["pass"] == "yes"
    assert rows["fp16 autocast vs fp32"]["pass"] == "skipped"  # fp16 is refused on the CPU
    assert rows["out-of-memory fallback"]["pass"] == "skipped" and "needs CUDA" in rows["out-of-memory fallback"]["note"]
    table = out.with_suffix(".md").read_text()
    assert table.count("\n|") == len(rows) + 2 and table in capsys.readouterr().out


def test_smooth_net_labels_are_the_nearest_class_mean(gpu_check):
    image = gpu_check.smooth_image((20, 18, 16), 5, seed=7)
    labels, run = gpu_check.engine_labels(image, gpu_check.SmoothNet(5), device="cpu", patch=(16, 16, 16))
    interior = (slice(2, -2),) * 3
    expected = (image[0].numpy() - 0.5).astype(int)
    assert run.precision == "fp32" and len(set(labels.ravel())) >= 3
    assert (labels[interior] == expected[interior]).mean() > 0.9  # the blur moves only region edges
