"""course_lib.data.archives: every data script's one safe extraction, on zip and tar fixtures made here."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from course_lib.data.archives import member_path, safe_extract, verify_archive

FILES = {"set/images/001.png": b"a" * 10, "set/images/002.png": b"b" * 20, "set/README.txt": b"hello"}


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, files: dict[str, bytes], *, link: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


@pytest.fixture(params=["zip", "tar.gz"])
def archive(request, tmp_path):
    maker = make_zip if request.param == "zip" else make_tar
    return maker(tmp_path / f"set.{request.param}", FILES)


def test_extracts_every_file_with_its_bytes(archive, tmp_path):
    assert safe_extract(archive, tmp_path / "out", progress=False) == 3
    for name, data in FILES.items():
        assert (tmp_path / "out" / name).read_bytes() == data
    assert not list((tmp_path / "out").rglob("*.part"))  # temporary names are renamed away


def test_a_rerun_writes_nothing_again(archive, tmp_path):
    safe_extract(archive, tmp_path / "out", progress=False)
    assert safe_extract(archive, tmp_path / "out", progress=False) == 0


def test_select_flattens_and_skips(archive, tmp_path):
    def images_only(path: PurePosixPath):
        return path.name if path.suffix == ".png" else None

    assert safe_extract(archive, tmp_path / "flat", select=images_only, progress=False) == 2
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["001.png", "002.png"]


def test_two_members_to_one_file_is_an_error_unless_first_is_asked(archive, tmp_path):
    with pytest.raises(ValueError, match="would both be written to"):
        safe_extract(archive, tmp_path / "out", select=lambda p: "same.bin", progress=False)
    assert safe_extract(archive, tmp_path / "out", select=lambda p: "same.bin", duplicates="first",
                        progress=False) == 1


@pytest.mark.parametrize("evil", ["../escape.txt", "/abs/path.txt", "C:/windows.txt", "a/../../up.txt"])
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_path_traversal_refuses_the_whole_archive(evil, kind, tmp_path):
    maker = make_zip if kind == "zip" else make_tar
    path = maker(tmp_path / f"evil.{kind}", {"good.txt": b"ok", evil: b"pwned"})
    with pytest.raises(ValueError, match="path traversal"):
        safe_extract(path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing written, not even the good member
    assert not (tmp_path / "escape.txt").exists()


def test_links_are_refused(tmp_path):
    tar = make_tar(tmp_path / "link.tar.gz", {"good.txt": b"ok"}, link="innocent")
    with pytest.raises(ValueError, match="symbolic link"):
        safe_extract(tar, tmp_path / "out", progress=False)
    zpath = tmp_path / "link.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        info = zipfile.ZipInfo("innocent")
        info.external_attr = 0o120777 << 16  # S_IFLNK
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        safe_extract(zpath, tmp_path / "out", progress=False)


def test_verify_counts_files_and_names_a_truncated_archive(archive, tmp_path):
    assert verify_archive(archive, progress=False) == 3
    truncated = tmp_path / f"truncated{''.join(archive.suffixes)}"
    truncated.write_bytes(archive.read_bytes()[: len(archive.read_bytes()) // 2])
    with pytest.raises(ValueError, match="truncated"):
        verify_archive(truncated, progress=False)


def test_verify_names_the_member_that_fails_its_crc(tmp_path):
    path = make_zip(tmp_path / "crc.zip", {"data.bin": b"x" * 5000})
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"data.bin") + len("data.bin") + 10] ^= 0xFF  # flip a byte of the compressed data
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="data.bin|corrupt"):
        verify_archive(path, progress=False)


def test_not_an_archive_and_missing_file(tmp_path):
    (tmp_path / "page.html").write_text("<html>login required</html>")
    with pytest.raises(ValueError, match="neither a zip nor a tar"):
        verify_archive(tmp_path / "page.html", progress=False)
    with pytest.raises(FileNotFoundError, match="not found"):
        safe_extract(tmp_path / "nope.zip", tmp_path / "out", progress=False)


def test_bad_duplicates_option(archive, tmp_path):
    with pytest.raises(ValueError, match="`duplicates`"):
        safe_extract(archive, tmp_path / "out", duplicates="last", progress=False)


def test_member_path_keeps_plain_relative_names():
    assert member_path("a\\b.png") == PurePosixPath("a/b.png")  # Windows separators read as folders
