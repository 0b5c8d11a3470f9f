"""Progress everywhere: plain throttled lines off a terminal, JSON events, -q/-v anywhere."""
from __future__ import annotations

import io
import json
import re

import pytest

from volseg import api
from volseg.cli.main import hoist_global_flags, main
from volseg.cli.progress import JsonProgress, LineProgress, format_seconds, rich_progress
from volseg.io.nifti import write_nifti
from volseg.phantom import make_phantom


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(interval_s: float = 30.0):
    clock, lines = FakeClock(), []
    view = LineProgress(lines.append, clock=clock, interval_s=interval_s, wall=lambda: "12:00:00")
    return view, clock, lines


def test_line_progress_throttles_to_the_interval_and_estimates_the_remaining_time():
    view, clock, lines = _lines()
    view("sliding window", 0, 40)
    assert lines == ["[12:00:00] progress: sliding window 0/40, elapsed 0 s, remaining unknown"]
    for done in range(1, 10):  # 9 windows in 29 s: one line, the first estimate after the first window
        clock.now += 29 / 9
        view("sliding window", done, 40)
    assert lines[1:] == ["[12:00:00] progress: sliding window 1/40, elapsed 3 s, remaining ~2 min 06 s"]
    clock.now = 1040.0
    view("sliding window", 10, 40)  # over 30 s after the last line: 10 of 40 in 40 s → 120 s to go
    assert lines[-1] == "[12:00:00] progress: sliding window 10/40, elapsed 40 s, remaining ~2 min 00 s"
    clock.now += 10
    view("sliding window", 20, 40)
    assert len(lines) == 3  # throttled again
    clock.now += 20
    view("sliding window", 40, 40)  # a stage's end is always written
    assert lines[-1].endswith("sliding window 40/40, elapsed 1 min 10 s, done")
    assert len(lines) == 4


def test_line_progress_writes_a_line_at_each_stage_change():
    view, clock, lines = _lines()
    for stage in ("read", "classic-ct", "measuring", "pictures"):
        view(stage, 0, 1)
        clock.now += 1
    assert [re.search(r"progress: (\S+) 0/1", line).group(1) for line in lines] == \
        ["read", "classic-ct", "measuring", "pictures"]


def test_heartbeat_repeats_the_current_stage_when_nothing_is_reported():
    view, clock, lines = _lines()
    view("export", 3, 10)
    clock.now += 29
    view.tick()
    assert len(lines) == 1
    clock.now += 1
    view.tick()
    assert len(lines) == 2 and "export 3/10, elapsed 30 s" in lines[-1]
    assert "remaining" in lines[-1]


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 42.4, 65, 3725)] == ["0 s", "42 s", "1 min 05 s", "1 h 02 min"]


def test_json_progress_has_the_batch_event_shape_and_is_throttled():
    clock, lines = FakeClock(), []
    view = JsonProgress(lines.append, clock=clock, interval_s=0.2)
    view.start("ct")
    view("sliding window", 0, 4)
    view("sliding window", 1, 4)  # same instant: dropped
    clock.now += 0.25
    view("sliding window", 2, 4)
    view("sliding window", 4, 4)  # the end always goes out
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["study_started"] + ["study_progress"] * 3
    assert [(e["done"], e["total"]) for e in events[1:]] == [(0, 4), (2, 4), (4, 4)]
    assert {e["study_id"] for e in events} == {"ct"} and events[1]["stage"] == "sliding window"


def test_rich_display_covers_successive_stages():
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with rich_progress(console) as update:
        for stage in ("read", "classic-ct", "measuring", "read"):
            update(stage, 0, 2)
            update(stage, 2, 2)


@pytest.mark.parametrize("args, expected", [
    (["segment", "ct.nii.gz", "-o", "out", "-q"], ["-q", "segment", "ct.nii.gz", "-o", "out"]),
    (["models", "list", "-vv", "--format", "tsv"], ["-vv", "models", "list", "--format", "tsv"]),
    (["-q", "info", "x"], ["-q", "info", "x"]),
    (["info", "x", "--", "-q"], ["info", "x", "--", "-q"]),
])
def test_verbosity_flags_are_hoisted_before_the_subcommand(args, expected):
    assert hoist_global_flags(args) == expected


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory):
    phantom = make_phantom((60, 48, 24), (5.8, 5.8, 10.0))
    return write_nifti(phantom.image, tmp_path_factory.mktemp("ct") / "ct.nii.gz")


def test_segment_reports_every_stage_through_the_callback(small_ct, tmp_path):
    seen = []
    api.segment(small_ct, tmp_path / "out", progress=lambda *call: seen.append(call))
    for stage in ("read", "writing", "pictures"):
        assert (stage, 0, 1) in seen and (stage, 1, 1) in seen, stage
    assert [c for c in seen if c[0] == "measuring"] == [("measuring", k, 2) for k in range(3)]  # clinical, structures
    stages = [s for s, _, _ in seen]
    assert stages.index("read") < stages.index("measuring") < stages.index("writing") < stages.index("pictures")


def test_segment_off_a_terminal_writes_plain_progress_lines(small_ct, tmp_path, capsys):
    assert main(["segment", str(small_ct), "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "volumes" in captured.out and "lung_left" in captured.out
    progress = [line for line in captured.err.splitlines() if "progress:" in line]
    for stage in ("read", "measuring", "pictures", "writing"):
        assert any(re.search(f"progress: {stage} 0/[12],", line) for line in progress), stage
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] progress: .+, elapsed \d+ s, (remaining .+|done)$", line)
               for line in progress)


def test_quiet_anywhere_prints_no_table_and_no_messages(small_ct, tmp_path, capsys):
    assert main(["segment", str(small_ct), "-o", str(tmp_path / "out"), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert (tmp_path / "out" / "report.json").is_file()


def test_quiet_still_prints_errors(tmp_path, capsys):
    assert main(["info", str(tmp_path / "absent.nii.gz"), "-q"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("volseg: error:") and len(err.strip().splitlines()) == 1


def test_segment_json_log_writes_only_json_events(small_ct, tmp_path, capsys):
    assert main(["segment", str(small_ct), "-o", str(tmp_path / "out"), "--json-log"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] in ("log", "study_started") and "study_started" in kinds and kinds[-1] == "study_done"
    progress = [e for e in events if e["event"] == "study_progress"]
    assert {"read", "measuring", "pictures", "writing"} <= {e["stage"] for e in progress}
    assert all(e["study_id"] == "ct" and {"done", "total", "time"} <= set(e) for e in progress)
    done = events[-1]
    assert done["study_id"] == "ct" and "report.json" in done["outputs"] and done["seconds"] > 0


def test_segment_json_log_reports_a_failed_study(tmp_path, capsys):
    bad = tmp_path / "bad.nii.gz"
    bad.write_text("not a nifti")
    assert main(["segment", str(bad), "-o", str(tmp_path / "out"), "--json-log"]) != 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    failed = [e for e in events if e["event"] == "study_failed"]
    assert len(failed) == 1 and failed[0]["study_id"] == "bad" and failed[0]["exit_code"] == 3
    assert {"stage", "error_class", "error", "previous"} <= set(failed[0])


def test_blast_ct_reports_preprocessing_windows_and_export(shared_data):
    """The real BLAST-CT network (one member) on a small head-CT crop: every stage reports."""
    import numpy as np

    from volseg.io import read_image
    from volseg.segmenters import catalogue
    from volseg.segmenters.backends.blast_ct import BlastCTOptions, BlastCTSegmenter
    from volseg.volume import Volume

    entry = catalogue.load_catalogue()["blast-ct"]
    options = BlastCTOptions.model_validate(entry.backend_options)
    model = BlastCTSegmenter([shared_data / "blast-ct-v1" / "model_1.pt"], entry=entry, options=options,
                             device="cpu")
    head = read_image(shared_data / "head-ct" / "cranium_ct_0051.nii.gz").volume
    crop = Volume(np.ascontiguousarray(head.array[104:136, 104:136, 50:62]), head.affine)
    seen = []
    model.predict(crop, progress=lambda *call: seen.append(call))
    stages = [s for s, _, _ in seen]
    assert stages[0] == "preprocessing" and stages[-1] == "export"
    assert ("preprocessing", 1, 1) in seen and ("export", 0, 1) in seen and ("export", 1, 1) in seen
    windows = [(d, t) for s, d, t in seen if s == "sliding window"]
    assert windows[0][0] == 0 and windows[-1][0] == windows[-1][1] > 0


def test_quiet_silences_model_manager_messages(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    assert main(["models", "verify"]) == 0
    assert "no models installed" in capsys.readouterr().err
    assert main(["models", "verify", "-q"]) == 0
    assert capsys.readouterr().err == ""
