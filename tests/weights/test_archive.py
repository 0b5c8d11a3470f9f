"""Safe extraction: nothing escapes the target, no links, caps against archive bombs."""
from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import pytest

from tests.weights.factories import payload
from volseg.errors import ModelError
from volseg.segmenters.weights.archive import ArchiveLimits, safe_extract


def make_zip(path, members: dict[str, bytes], *, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path, add):
    with tarfile.open(path, "w:gz") as tf:
        add(tf)
    return path


def tar_file(tf, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def tar_link(tf, name: str, target: str, kind=tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tf.addfile(info)


def written_anywhere(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_good_zip_extracts_exactly(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"d/x.bin": payload(1, 1000), "y.txt": b"hello"})
    names = safe_extract(archive, tmp_path / "out")
    assert names == ["d/x.bin", "y.txt"]
    assert (tmp_path / "out" / "d" / "x.bin").read_bytes() == payload(1, 1000)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.mark.parametrize("evil", ["../escape.txt", "a/../../escape.txt", "/abs/escape.txt", "C:/escape.txt",
                                  "a\\..\\..\\escape.txt"])
def test_zip_members_escaping_the_target_are_rejected(tmp_path, evil):
    work = tmp_path / "work"
    work.mkdir()
    archive = make_zip(tmp_path / "evil.zip", {"ok.txt": b"fine", evil: b"pwned"})
    with pytest.raises(ModelError, match="absolute path|escapes the target"):
        safe_extract(archive, work / "out")
    assert written_anywhere(work) == [] and not (tmp_path / "escape.txt").exists()


def test_zip_symlink_is_rejected(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ModelError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("add, message", [
    (lambda tf: tar_file(tf, "../escape.txt", b"x"), "escapes the target"),
    (lambda tf: tar_file(tf, "/tmp/escape.txt", b"x"), "absolute path"),
    (lambda tf: tar_link(tf, "passwd", "/etc/passwd"), "is a link"),
    (lambda tf: tar_link(tf, "inside", "../../outside", tarfile.LNKTYPE), "is a link"),
    (lambda tf: tar_link(tf, "fifo", "", tarfile.FIFOTYPE), "not a regular file"),
])
def test_tar_escapes_links_and_devices_are_rejected(tmp_path, add, message):
    work = tmp_path / "work"
    work.mkdir()
    archive = make_tar(tmp_path / "evil.tar.gz", lambda tf: (tar_file(tf, "ok.txt", b"ok"), add(tf)))
    with pytest.raises(ModelError, match=message):
        safe_extract(archive, work / "out")
    assert written_anywhere(work) == []


def test_good_tar_extracts(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", lambda tf: tar_file(tf, "./m/w.pt", b"weights"))
    assert safe_extract(archive, tmp_path / "out") == ["m/w.pt"]
    assert (tmp_path / "out" / "m" / "w.pt").read_bytes() == b"weights"


def test_member_count_cap(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}": b"x" for i in range(11)})
    with pytest.raises(ModelError, match="11 members, more than the limit 10"):
        safe_extract(archive, tmp_path / "out", limits=ArchiveLimits(max_members=10))


def test_total_size_cap(tmp_path):
    archive = make_zip(tmp_path / "big.zip", {"a": payload(1, 600), "b": payload(2, 600)})
    with pytest.raises(ModelError, match="would expand to 1200 bytes"):
        safe_extract(archive, tmp_path / "out", limits=ArchiveLimits(max_total_bytes=1000))
    assert not (tmp_path / "out").exists()


def test_compression_bomb_is_rejected(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"zeros": bytes(8 << 20)}, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelError, match="archive bomb"):
        safe_extract(archive, tmp_path / "out", limits=ArchiveLimits(max_ratio=100))


def test_member_size_cap(tmp_path):
    archive = make_tar(tmp_path / "t.tar.gz", lambda tf: tar_file(tf, "a", payload(1, 5000)))
    with pytest.raises(ModelError, match="is 5000 bytes, more than the limit"):
        safe_extract(archive, tmp_path / "out", limits=ArchiveLimits(max_member_bytes=4000))


def test_existing_target_is_not_overwritten(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"x": b"1"})
    (tmp_path / "out").mkdir()
    with pytest.raises(ModelError, match="already exists"):
        safe_extract(archive, tmp_path / "out")


def test_not_an_archive(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable zip"):
        safe_extract(bad, tmp_path / "out")
