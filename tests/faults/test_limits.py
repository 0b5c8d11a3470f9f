"""Class 2, resource limits: a header's claim is refused from the header alone, before allocation."""
from __future__ import annotations

import gzip
import resource

import numpy as np
import pytest

from tests.faults.makers import header_claiming, nifti_bytes, ramp, write
from volseg.cli.main import main
from volseg.errors import GeometryError, InputError
from volseg.io import read_image

FOUR_GB = (2048, 2048, 512)  # int16: 4 GiB


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_tiny_gz_claiming_4_gb_is_refused_without_allocating(tmp_path, capsys):
    path = write(tmp_path / "bomb.nii.gz", gzip.compress(header_claiming(FOUR_GB), mtime=0))
    assert path.stat().st_size < 100
    before = _peak_rss_mb()
    with pytest.raises(InputError, match=r"claims 2048×2048×512 voxels \(4.0 GiB\) but the compressed "
                                         r"file is \d+ bytes") as info:
        read_image(path)
    assert info.value.exit_code == 3 and _peak_rss_mb() - before < 100
    assert main(["info", str(path)]) == 3 and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(4096, 4096, 1280), (32767, 32767, 12800)])  # 42 GB, 27 TB claims
def test_bigger_claims_likewise(tmp_path, shape):
    path = write(tmp_path / "big.nii.gz", gzip.compress(header_claiming(shape), mtime=0))
    with pytest.raises(InputError, match="claims .* but the compressed file"):
        read_image(path)


def test_uncompressed_claim_beyond_the_file_size(tmp_path):
    path = write(tmp_path / "lie.nii", header_claiming(FOUR_GB) + bytes(700))
    before = _peak_rss_mb()
    with pytest.raises(InputError, match="from byte 352\\) but the file is 1052 bytes"):
        read_image(path)
    assert _peak_rss_mb() - before < 100


def test_memory_check_uses_what_is_available(tmp_path, monkeypatch):
    from volseg.io import limits

    path = write(tmp_path / "ok.nii.gz", gzip.compress(nifti_bytes(ramp()), mtime=0))
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 100)
    with pytest.raises(InputError, match="image needs 432 bytes of memory, 100 bytes available"):
        read_image(path)
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 10_000)
    assert read_image(path).volume.shape == (6, 6, 6)


def test_dicom_claiming_65535_squared_is_refused_before_decoding(tmp_path, capsys):
    import pydicom

    from tests.factories.dicom_series import write_series

    folder = tmp_path / "series"
    files = write_series(folder, np.zeros((4, 4, 3), np.int16), np.diag([0.7, 0.7, 2.0, 1.0]))
    for f in files.files:
        ds = pydicom.dcmread(f)
        ds.Rows = ds.Columns = 65535
        ds.save_as(f)
    before = _peak_rss_mb()
    with pytest.raises(InputError, match=r"header claims 8.0 GiB of pixel data .* but the file is \d+ bytes"):
        read_image(folder)
    assert _peak_rss_mb() - before < 100
    assert main(["info", str(folder)]) == 3 and "Traceback" not in capsys.readouterr().err


def test_mha_claiming_more_than_it_holds(tmp_path):
    import SimpleITK as sitk

    path = tmp_path / "small.mha"
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkInt16), str(path))
    text = path.read_bytes().replace(b"DimSize = 4 4 4", b"DimSize = 4096 4096 512")
    path.write_bytes(text)
    with pytest.raises(InputError, match="claims 4096×4096×512 voxels"):
        read_image(path)


def test_nifti_without_any_spacing_is_a_geometry_error(tmp_path, capsys):
    path = write(tmp_path / "nospacing.nii.gz", gzip.compress(nifti_bytes(ramp(), no_geometry=True)))
    with pytest.raises(GeometryError, match="no usable voxel spacing: sform and qform codes are 0 "
                                            "and pixdim is 0×0×0") as info:
        read_image(path)
    assert info.value.exit_code == 4
    assert main(["info", str(path)]) == 4


def test_archive_bomb_of_many_small_members_is_refused_before_writing(tmp_path):
    import zipfile

    from volseg.errors import ModelError
    from volseg.segmenters.weights.archive import ArchiveLimits, safe_extract

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(200):  # 200 MiB of zeros in ~0.2 MB; the had 2,000
            zf.writestr(f"m{i:04d}.bin", bytes(1 << 20))
    with pytest.raises(ModelError, match="an archive bomb"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".extract-*"))
    with pytest.raises(ModelError, match=r"archive expands to 209715200 bytes; the disk has \d+ bytes free"):
        safe_extract(archive, tmp_path / "out", limits=ArchiveLimits(max_ratio=1e9, min_free_bytes=1 << 60))


def test_bundle_install_applies_the_same_limits(tmp_path, monkeypatch):
    import zipfile

    from volseg.errors import ModelError
    from volseg.segmenters.weights import install_from_source

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("volseg-bundle.json", "{}")
        for i in range(100):
            zf.writestr(f"models/x/{i}.bin", bytes(1 << 20))
    with pytest.raises(ModelError, match="an archive bomb") as info:
        install_from_source(archive)
    assert info.value.exit_code == 7
