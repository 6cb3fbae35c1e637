"""data_scripts for the chapter-3 counting sets, on fixture archives built here (never the internet).

vgg_cells.py downloads from a local HTTP server; bbbc005.py and bone_marrow.py take --archive copies; adipocyte.py
has its download replaced by a copy of a fixture repository zip. Checked: --help, dry-run output, extraction into the
readers' layout, a re-run that writes nothing, malicious zips refused with nothing written, corrupt and missing
files named, and the reader on the prepared folder.
"""

from __future__ import annotations

import functools
import io
import shutil
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from course_lib.counting.datasets import read_adipocyte, read_bbbc005, read_bone_marrow, read_vgg_cells
from data_scripts import adipocyte, bbbc005, bone_marrow
from data_scripts import vgg_cells as vgg

ROOT = Path(__file__).resolve().parents[2]




SCRIPTS = {"vgg_cells": vgg, "bbbc005": bbbc005, "bone_marrow": bone_marrow, "adipocyte": adipocyte}


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def tif(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


def dots_png(dots, side: int = 16, grey: bool = False) -> bytes:
    marks = np.zeros((side, side) if grey else (side, side, 3), np.uint8)
    for r, c in dots:
        marks[r, c] = 255 if grey else (255, 0, 0)
    return png(marks)


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


VGG_DOTS = {1: [(1, 1), (8, 8), (15, 0)], 2: [(3, 4)], 3: [(0, 0), (9, 9), (10, 9), (12, 2)]}  # 8 cells


def vgg_members(dots=VGG_DOTS) -> dict[str, bytes]:
    members = {}
    for n, d in dots.items():
        members[f"cells/{n:03d}cell.png"] = png(np.full((16, 16, 3), (0, 0, 90 + n), np.uint8))
        members[f"cells/{n:03d}dots.png"] = dots_png(d)
    members["__MACOSX/cells/._001cell.png"] = b"resource fork"  # junk that real zips carry: skipped
    members["cells/readme.txt"] = b"VGG cells"
    return members


@pytest.fixture
def server(tmp_path):
    """A local folder served over HTTP; yields (folder, base URL)."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# --- every script: --help and the dry run -----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_and_dry_run(name, tmp_path, capsys):
    script = SCRIPTS[name]
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0 and "--dry-run" in capsys.readouterr().out
    dest = tmp_path / name
    assert script.main(["--dry-run", "--dest", str(dest)]) == 0
    lines = capsys.readouterr().out.splitlines()
    fetches = [line for line in lines if line.startswith("would fetch ")]
    assert len(fetches) == (2 if name == "bbbc005" else 1)
    for line in fetches:  # "would fetch <url> -> <dest>/downloads/<file> (<size>)"
        url, rest = line[len("would fetch "):].split(" -> ")
        assert url.startswith(("http://", "https://")) and rest.startswith(str(dest / "downloads") + "/")
    assert lines[-1].startswith("would extract ") and lines[-1].endswith(f"into {dest}")
    assert script.main(["--dry-run", "--dest", str(dest), "--archive", str(tmp_path / "copy.zip")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"would verify {tmp_path / 'copy.zip'}"
    assert not dest.exists()  # a dry run touches nothing


def test_dry_run_names_the_published_urls(capsys, tmp_path):
    vgg.main(["--dry-run", "--dest", str(tmp_path)])
    bbbc005.main(["--dry-run", "--dest", str(tmp_path)])
    out = capsys.readouterr().out
    assert "http://www.robots.ox.ac.uk/~vgg/research/counting/cells.zip -> " in out
    assert "https://data.broadinstitute.org/bbbc/BBBC005/BBBC005_v1_images.zip -> " in out
    assert "https://data.broadinstitute.org/bbbc/BBBC005/BBBC005_v1_ground_truth.zip -> " in out


# --- VGG cells: download from a local server, prepare, read ----------------------------------------------------

def test_vgg_download_extract_verify_and_read(server, tmp_path, monkeypatch, capsys):
    folder, url = server
    make_zip(folder / "cells.zip", vgg_members())
    monkeypatch.setattr(vgg, "NUMBERS", range(1, 4))  # the fixture holds 3 of the 200 pairs
    dest = tmp_path / "vgg_cells"
    assert vgg.main(["--dest", str(dest), "--url", f"{url}/cells.zip", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "sha256 " in out and "all CRCs OK" in out and "extracted 6 files from cells.zip" in out
    assert "3 VGG cells images, 8 annotated cells: 2.7 +- 1.2 per image (min 1, max 4)" in out
    assert sorted(p.name for p in dest.iterdir()) == ["001cell.png", "001dots.png", "002cell.png", "002dots.png",
                                                      "003cell.png", "003dots.png", "downloads"]
    assert [r.count for r in read_vgg_cells(dest)] == [3, 1, 4]
    # a re-run finds the verified download and the extracted files: nothing is fetched or written again
    (folder / "cells.zip").unlink()
    assert vgg.main(["--dest", str(dest), "--url", f"{url}/cells.zip", "--no-progress"]) == 0
    assert "extracted 0 files" in capsys.readouterr().out
    assert vgg.main(["--dest", str(tmp_path / "other"), "--url", f"{url}/gone.zip", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "error: downloading" in err and "HTTP 404" in err


def test_vgg_missing_and_corrupt_files_are_named(tmp_path, monkeypatch, capsys):
    members = vgg_members()
    members["cells/002cell.png"] = members["cells/002cell.png"][:40]  # truncated PNG, stored as such: CRC is fine
    archive = make_zip(tmp_path / "cells.zip", members)
    monkeypatch.setattr(vgg, "NUMBERS", range(1, 5))  # 004 is expected but absent
    assert vgg.main(["--archive", str(archive), "--dest", str(tmp_path / "vgg"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "error: 2 VGG cells files missing: 004cell.png, 004dots.png" in err
    assert "error: 002cell.png: " in err and "is corrupt or not an image" in err
    members["cells/003dots.png"] = b"\x89PNG not really"
    archive = make_zip(tmp_path / "cells2.zip", members)
    assert vgg.main(["--archive", str(archive), "--dest", str(tmp_path / "vgg2"), "--no-progress"]) == 1
    assert "003dots.png is corrupt or not an image" in capsys.readouterr().err


def test_corrupt_zip_is_named(tmp_path, capsys):
    good = make_zip(tmp_path / "good.zip", {"cells/001dots.png": dots_png([(1, 1)])}, compression=zipfile.ZIP_STORED)
    data = bytearray(good.read_bytes())
    data[data.index(b"IDAT") + 10] ^= 0xFF  # flip one byte inside the stored PNG: its CRC no longer matches
    (tmp_path / "flipped.zip").write_bytes(bytes(data))
    assert vgg.main(["--archive", str(tmp_path / "flipped.zip"), "--dest", str(tmp_path / "v")]) == 1
    assert "member 'cells/001dots.png' is corrupt (Bad CRC-32" in capsys.readouterr().err
    (tmp_path / "cut.zip").write_bytes(good.read_bytes()[:50])
    assert vgg.main(["--archive", str(tmp_path / "cut.zip"), "--dest", str(tmp_path / "v")]) == 1
    assert "cut.zip is neither a zip nor a tar archive" in capsys.readouterr().err


@pytest.mark.parametrize("member", ["../001cell.png", "/tmp/001cell.png", "cells/../../001cell.png",
                                    "C:/001cell.png", "symlink"])
def test_malicious_archives_are_refused_and_nothing_is_written(tmp_path, member, capsys):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("cells/001dots.png", dots_png([(1, 1)]))
        if member == "symlink":
            info = zipfile.ZipInfo("cells/001cell.png")
            info.external_attr = 0o120777 << 16  # S_IFLNK: a symbolic link member
            zf.writestr(info, "/etc/passwd")
        else:
            zf.writestr(member, b"x")
    dest = tmp_path / "deep" / "vgg"
    assert vgg.main(["--archive", str(archive), "--dest", str(dest), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "unsafe member" in err and ("symbolic link" in err if member == "symlink" else "path traversal" in err)
    assert not dest.exists() and not (tmp_path / "deep" / "001cell.png").exists()


# --- BBBC005: two archives, names parsed, plate and masks checked ----------------------------------------------

BBBC_WELLS = {"A05": (18, 1), "B05": (18, 4)}  # well -> (count, focus): the fixture's 2-well plate


def bbbc_archives(tmp_path: Path, extra: dict[str, bytes] | None = None, drop_mask: str | None = None):
    images, masks = {}, {}
    for well, (count, focus) in BBBC_WELLS.items():
        for site in (1, 2):
            for stain in (1, 2):
                name = f"SIMCEPImages_{well}_C{count}_F{focus}_s{site:02d}_w{stain}.TIF"
                images[f"BBBC005_v1_images/{name}"] = tif(np.full((8, 10), site * 10 + stain, np.uint8))
                if focus == 1 and name != drop_mask:
                    masks[f"BBBC005_v1_ground_truth/{name}"] = tif(np.zeros((8, 10), np.uint8))
    images.update(extra or {})
    return (make_zip(tmp_path / "BBBC005_v1_images.zip", images),
            make_zip(tmp_path / "BBBC005_v1_ground_truth.zip", masks))


@pytest.fixture
def small_plate(monkeypatch):
    monkeypatch.setattr(bbbc005, "WELLS", list(BBBC_WELLS))
    monkeypatch.setattr(bbbc005, "SITES", range(1, 3))


def test_bbbc005_archives_are_prepared_and_read(tmp_path, small_plate, capsys):
    images, masks = bbbc_archives(tmp_path)
    dest = tmp_path / "bbbc005"
    args = ["--archive", str(images), "--archive", str(masks), "--dest", str(dest), "--no-progress"]
    assert bbbc005.main(args) == 0
    out = capsys.readouterr().out
    assert "extracted 8 files from BBBC005_v1_images.zip" in out and "extracted 4 files" in out
    assert ("8 BBBC005 images (4 cell body, 4 nuclei), 4 masks; 1 cell counts 18-18, 2 focus levels 1-4"
            in out)
    records = read_bbbc005(dest)
    assert [(r.meta["well"], r.meta["site"], r.count) for r in records] == [("A05", 1, 18), ("A05", 2, 18),
                                                                           ("B05", 1, 18), ("B05", 2, 18)]
    assert [r.meta["mask"] is not None for r in records] == [True, True, False, False]
    assert (dest / "ground_truth" / "SIMCEPImages_A05_C18_F1_s01_w2.TIF").is_file()


def test_bbbc005_bad_names_and_missing_files_are_named(tmp_path, small_plate, capsys):
    bad = "SIMCEPImages_A05_C18_F1_w2.TIF"
    images, masks = bbbc_archives(tmp_path, extra={f"BBBC005_v1_images/{bad}": tif(np.zeros((2, 2), np.uint8))})
    assert bbbc005.main(["--archive", str(images), "--dest", str(tmp_path / "a"), "--no-progress"]) == 1
    assert f"'{bad}' is not a BBBC005 image name" in capsys.readouterr().err
    odd = "SIMCEPImages_B05_C30_F4_s01_w2.TIF"  # B05 is the C18 column: a C30 file there is renamed or misplaced
    images, masks = bbbc_archives(tmp_path, extra={f"BBBC005_v1_images/{odd}": tif(np.zeros((2, 2), np.uint8))},
                                  drop_mask="SIMCEPImages_A05_C18_F1_s02_w1.TIF")
    gone = "BBBC005_v1_images/SIMCEPImages_A05_C18_F1_s01_w1.TIF"
    with zipfile.ZipFile(images) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist() if i.filename != gone}
    make_zip(images, members)
    args = ["--archive", str(images), "--archive", str(masks), "--dest", str(tmp_path / "b"), "--no-progress"]
    assert bbbc005.main(args) == 1
    err = capsys.readouterr().err
    assert "error: 1 plate positions (images) missing: A05 s01 w1" in err
    assert "error: well B05 mixes (count, focus) [(18, 4), (30, 4)]" in err
    assert "error: 1 ground-truth masks of F1 images missing: SIMCEPImages_A05_C18_F1_s02_w1.TIF" in err
    assert "error: 1 masks without an image, e.g. ['SIMCEPImages_A05_C18_F1_s01_w1.TIF']" in err


# --- bone marrow and adipocytes: repository-style archives ------------------------------------------------------

def test_bone_marrow_from_a_repository_zip(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bone_marrow, "SOURCES", ["0001_01", "0020_01"])
    monkeypatch.setattr(bone_marrow, "CROPS", range(2))
    members = {"countception-master/README.md": b"# Count-ception"}
    for i, (source, crop) in enumerate([("0001_01", 0), ("0001_01", 1), ("0020_01", 0), ("0020_01", 1)]):
        stem = f"countception-master/MBM_data/BM_GRAZ_HE_{source}_"
        members[f"{stem}{crop:03d}.png"] = png(np.full((16, 16, 3), 100 + i, np.uint8))
        members[f"{stem}dots_{crop:03d}.png"] = dots_png([(j, j) for j in range(i + 1)], grey=True)
    archive = make_zip(tmp_path / "countception-master.zip", members)
    dest = tmp_path / "bone_marrow"
    assert bone_marrow.main(["--archive", str(archive), "--dest", str(dest), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "extracted 8 files" in out and "4 bone marrow crops from 2 images, 10 annotated cells" in out
    assert [r.count for r in read_bone_marrow(dest)] == [1, 2, 3, 4]
    monkeypatch.setattr(bone_marrow, "CROPS", range(3))
    assert bone_marrow.main(["--archive", str(archive), "--dest", str(dest), "--no-progress"]) == 1
    assert ("4 bone marrow files missing: BM_GRAZ_HE_0001_01_002.png, BM_GRAZ_HE_0001_01_dots_002.png, "
            "BM_GRAZ_HE_0020_01_002.png, BM_GRAZ_HE_0020_01_dots_002.png") in capsys.readouterr().err


def blob_jpeg(centres, side: int = 32) -> bytes:
    marks = np.zeros((side, side, 3), np.uint8)
    for r, c in centres:
        marks[r - 1:r + 2, c - 1:c + 2] = (255, 0, 0)
    return jpeg(marks)


def test_adipocyte_download_keeps_only_its_folder(tmp_path, monkeypatch, capsys):
    stems = {"10200-13600_GTEX-Y5V5_Adipose-Subcutaneous": [(5, 5), (20, 20), (5, 25)],
             "0-11900_GTEX-13QJC_Adipose-Subcutaneous": [(16, 16)]}
    members = {"countception-master/MBM_data/BM_GRAZ_HE_0001_01_000.png": png(np.zeros((4, 4, 3), np.uint8)),
               "countception-master/adipocyte_data_overview.png": png(np.zeros((4, 4, 3), np.uint8))}
    for stem, centres in stems.items():
        members[f"countception-master/adipocyte_data/images/{stem}.jpeg"] = jpeg(np.full((32, 32, 3), 220, np.uint8))
        members[f"countception-master/adipocyte_data/annotations/{stem}.jpeg"] = blob_jpeg(centres)
    fixture = make_zip(tmp_path / "fixture.zip", members)
    seen = []

    def fake_download(url, dest, **kwargs):  # the network stand-in: copy the fixture where the download would go
        seen.append(url)
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(fixture, dest))

    monkeypatch.setattr(adipocyte.common, "download", fake_download)
    monkeypatch.setattr(adipocyte, "EXPECTED_PAIRS", 2)
    dest = tmp_path / "adipocyte"
    assert adipocyte.main(["--dest", str(dest), "--no-progress", "--delete-archive"]) == 0
    out = capsys.readouterr().out
    assert seen == [adipocyte.URL] and "extracted 4 files" in out
    assert "2 adipocyte images from 2 GTEx donors, 4 annotated cells" in out
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.jpeg")) == sorted(
        f"{kind}/{stem}.jpeg" for kind in ("annotations", "images") for stem in stems)
    assert not (dest / "downloads" / "countception-master.zip").exists()  # --delete-archive
    assert {r.name: r.count for r in read_adipocyte(dest)} == {s: len(c) for s, c in stems.items()}
    monkeypatch.setattr(adipocyte, "EXPECTED_PAIRS", 200)
    assert adipocyte.main(["--archive", str(fixture), "--dest", str(dest), "--no-progress"]) == 1
    assert "expected 200 image/annotation pairs, found 2" in capsys.readouterr().err
