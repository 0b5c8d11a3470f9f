import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from volseg.cli.main import main

VOLSEG = [sys.executable, "-m", "volseg.cli.main"]
# Most tests call the CLI in this process (the ``cli`` fixture of tests/conftest.py); a subprocess
# only where a fresh interpreter is the point: the imports of --help and the real process exit code.


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from volseg.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'numpy', 'nibabel', 'scipy', 'pydicom', 'SimpleITK') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_version():
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([*VOLSEG, "--version"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("volseg ")


def _assert_one_line_error(proc, exit_code, *fragments):
    assert proc.returncode == exit_code, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("volseg: error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_truncated_nifti(tmp_path, cli):
    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).integers(-1000, 1000, (40, 40, 40)).astype(np.int16), np.eye(4)), src)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    proc = cli("segment", src, "-o", tmp_path / "out")
    _assert_one_line_error(proc, 3, "ct.nii.gz", "truncated or corrupt")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_text_file_named_nifti(tmp_path, cli):
    src = tmp_path / "scan.nii.gz"
    src.write_text("hello\n")
    proc = cli("segment", src, "-o", tmp_path / "out")
    _assert_one_line_error(proc, 3, "scan.nii.gz", "not a readable NIfTI")
    assert not any((tmp_path / "out").iterdir())


def test_two_dimensional_image(tmp_path, cli):
    src = tmp_path / "slice.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((64, 64, 1), np.int16), np.eye(4)), src)
    proc = cli("segment", src, "-o", tmp_path / "out")
    _assert_one_line_error(proc, 4, "slice.nii.gz", "2-D image")
    assert not any((tmp_path / "out").iterdir())


def test_output_folder_not_writable(tmp_path, cli):
    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4)), src)
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the output folder should be")
    proc = cli("segment", src, "-o", blocker)
    _assert_one_line_error(proc, 6, "taken", "not writable")
    assert blocker.read_text().startswith("a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_output_folder_without_permission(tmp_path, cli):
    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4)), src)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    proc = cli("segment", src, "-o", locked / "out")
    _assert_one_line_error(proc, 6, "not writable")


def test_unknown_model_suggests_the_closest(tmp_path, cli):
    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4)), src)
    proc = cli("segment", src, "-o", tmp_path / "out", "--model", "clasic-ct")
    _assert_one_line_error(proc, 7, "unknown model 'clasic-ct'", "did you mean 'classic-ct'?")


def test_mr_like_input_is_refused_by_classic_ct(tmp_path, cli):
    src = tmp_path / "mr.nii.gz"
    data = np.random.default_rng(0).integers(0, 800, (32, 32, 32)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), src)
    proc = cli("segment", src, "-o", tmp_path / "out")
    _assert_one_line_error(proc, 7, "do not look like CT")
    assert not any((tmp_path / "out").iterdir())


def test_demo_prints_measured_and_true_volumes(tmp_path, cli):
    proc = cli("-q", "demo", "-o", tmp_path / "demo")
    assert proc.returncode == 0, proc.stderr
    assert "true_ml" in proc.stdout and "measured_ml" in proc.stdout and "lung_left" in proc.stdout
    report = json.loads((tmp_path / "demo" / "phantom_ct" / "report.json").read_text())
    assert report["schema_version"].startswith("1.")
    assert {"segmentation.nii.gz", "labels.json", "report.json", "volumetry.csv"} <= {
        p.name for p in (tmp_path / "demo" / "phantom_ct").iterdir()
    }


def test_in_process_main_returns_exit_codes(tmp_path):
    assert main(["info", str(tmp_path / "absent.nii.gz")]) == 3
    assert main(["models", "list"]) == 0


def _phantom_series(folder, **kwargs):
    from tests.factories.dicom_series import write_series

    data = np.random.default_rng(1).integers(-1000, 1000, (16, 16, 6)).astype(np.int16)
    return write_series(folder, data, spacing=(0.8, 0.8, 2.0), **kwargs)


def test_folder_with_two_series_needs_series_choice(tmp_path, cli):
    _phantom_series(tmp_path / "dicom" / "a", series_number=3, description="venous")
    _phantom_series(tmp_path / "dicom" / "b", series_number=4, description="arterial")
    proc = cli("segment", tmp_path / "dicom", "-o", tmp_path / "out")
    _assert_one_line_error(proc, 5, "dicom", "--series")
    assert "#3" in proc.stderr and "#4" in proc.stderr
    assert not any((tmp_path / "out").iterdir())
    listing = cli("info", tmp_path / "dicom")
    assert listing.returncode == 0, listing.stderr
    assert "venous" in listing.stdout and "arterial" in listing.stdout


def test_dicom_series_with_a_missing_slice(tmp_path, cli):
    _phantom_series(tmp_path / "dicom", drop_slices=(3,))
    proc = cli("segment", tmp_path / "dicom", "-o", tmp_path / "out")
    _assert_one_line_error(proc, 4, "dicom", "missing")
    assert not any((tmp_path / "out").iterdir())
