"""segment, batch and slurm-script declare their common options once (volseg.cli.flags)."""
import pytest
from typer.main import get_command

from volseg.cli.app import app

SHARED = ("html", "dicom", "rtstruct", "anonymize", "keep_phi", "masks", "trust_bundle", "force", "json_log",
          "step", "tta", "precision", "export", "members")


def _params(command: str) -> dict:
    return {p.name: p for p in get_command(app).commands[command].params}


@pytest.mark.parametrize("command", ["batch", "slurm-script"])
def test_batch_and_slurm_script_take_segments_options_with_the_same_flags_and_help(command):
    segment, other = _params("segment"), _params(command)
    for name in SHARED:
        assert (other[name].opts, other[name].secondary_opts, other[name].help) == (
            segment[name].opts, segment[name].secondary_opts, segment[name].help), name


def test_segment_options_from_flags_put_the_engine_flags_into_engine():
    from volseg.cli.flags import segment_options

    options = segment_options(html=None, masks=False, force=True, tta=True, step=None, precision="fp32", members=2)
    assert options.html and not options.masks and options.force
    assert options.engine_flags() == {"tta": True, "precision": "fp32", "members": 2}
    assert options.engine.members == 2


def test_batch_masks_flag_reaches_every_study(tmp_path, monkeypatch):
    from volseg import api
    from volseg.cli.main import main

    seen = {}

    def fake_batch(input_dir, out_dir, *, options, on_event):
        seen["options"] = options
        from volseg.batch.events import BatchSummary

        return BatchSummary(out_dir=out_dir, shard="0/1", done=(), skipped=(), failed=(), log_file=None,
                            cohort={}, skipped_inputs=0, seconds=0.0)

    monkeypatch.setattr(api, "batch", fake_batch)
    (tmp_path / "in").mkdir()
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--masks", "--rtstruct",
                 "--no-tta", "--no-html"]) == 0
    segment = seen["options"].segment
    assert (segment.masks, segment.rtstruct, segment.html, segment.engine.mirror) == (True, True, False, False)


def test_slurm_script_forwards_members_to_every_array_task():
    from volseg.batch import BatchOptions
    from volseg.batch.slurm import batch_args
    from volseg.cli.flags import segment_options

    options = BatchOptions(segment=segment_options(members=3))
    assert batch_args(options)[-2:] == ["--members", "3"]
