"""An unexpected exception (a bug) is one line and exit code 70; the traceback goes to a log file."""
from __future__ import annotations

from tests.batch.cohort import write_cohort
from volseg.cli.main import INTERNAL_ERROR_EXIT_CODE, main


def test_a_bug_is_one_line_with_exit_70_and_the_traceback_in_a_crash_log(tmp_path, monkeypatch, capsys):
    import volseg.api

    def boom(*args, **kwargs):
        raise RuntimeError("unexpected\nstate")

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(volseg.api, "batch", boom)
    write_cohort(tmp_path / "in", 1)
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == INTERNAL_ERROR_EXIT_CODE == 70
    err = capsys.readouterr().err
    [crash] = sorted((tmp_path / "home" / "logs").glob("crash-*.log"))
    assert err.strip() == (f"volseg: internal error: RuntimeError: unexpected state — this is a bug; "
                           f"the traceback is in {crash}")
    assert "Traceback" not in err and "Traceback" in crash.read_text() and "in boom" in crash.read_text()


def test_a_bug_inside_a_batch_puts_its_traceback_in_the_run_log(tmp_path, monkeypatch, capsys):
    from volseg.batch import engine

    def boom(*args, **kwargs):
        raise KeyError("worker table")

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(engine, "_execute", boom)
    write_cohort(tmp_path / "in", 1)
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--no-html"]) == 70
    err = capsys.readouterr().err
    [run_log] = sorted((tmp_path / "out" / "logs").glob("batch-*.log"))
    assert f"volseg: internal error: KeyError: 'worker table' — this is a bug; the traceback is in {run_log}" in err
    assert "Traceback" not in err and "Traceback" in run_log.read_text()
    assert not (tmp_path / "home" / "logs").exists()
    assert not (tmp_path / "out" / ".volseg-work").exists()


def test_with_v_the_traceback_is_also_on_stderr(tmp_path, monkeypatch, capsys):
    import volseg.api

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(volseg.api, "batch", boom)
    write_cohort(tmp_path / "in", 1)
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-v"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("volseg: internal error: RuntimeError")


def test_batch_flags_reach_the_api(tmp_path, monkeypatch):
    import volseg.api

    seen = {}

    def fake(input_dir, output, *, options, on_event):
        seen["options"] = options
        raise SystemExit(0)

    monkeypatch.setattr(volseg.api, "batch", fake)
    ids = tmp_path / "ids.csv"
    assert main(["batch", str(tmp_path), "-o", str(tmp_path / "out"), "--wait", "--anonymize-ids",
                 "--id-map", str(ids)]) == 0
    options = seen["options"]
    assert options.wait and options.anonymize_ids and options.id_map == str(ids) and options.renames_ids
