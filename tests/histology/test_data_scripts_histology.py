"""data_scripts/idc.py and data_scripts/camelyon.py on fixtures made here: Kaggle instructions without a token,
zip verification and safe extraction, ASAP XML parsing and rasterisation, patch extraction from a small pyramidal
TIFF, and downloads with checksums from a local HTTP server (never the internet)."""

from __future__ import annotations

import functools
import hashlib
import io
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from course_lib.data.archives import verify_archive
from data_scripts import camelyon, idc

ROOT = Path(__file__).resolve().parents[2]






# --- IDC -------------------------------------------------------------------------------------------------------

IDC_FILES = {  # archive member -> label; patient 10253 twice: at the top and in the duplicate folder
    "10253/0/10253_idx5_x1001_y1051_class0.png": 0,
    "10253/1/10253_idx5_x1051_y1051_class1.png": 1,
    "9036/0/9036_idx5_x0_y0_class0.png": 0,
    "IDC_regular_ps50_idx5/10253/0/10253_idx5_x1001_y1051_class0.png": 0,
    "IDC_regular_ps50_idx5/10253/1/10253_idx5_x1051_y1051_class1.png": 1,
}


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((50, 50, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def no_kaggle_token(monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no_kaggle"))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)


def test_idc_without_token_prints_the_exact_steps(no_kaggle_token, tmp_path, capsys):
    assert idc.main(["--dest", str(tmp_path / "idc")]) == 0
    out = capsys.readouterr().out
    assert "Kaggle API token: NOT found" in out
    assert f"kaggle datasets download -d paultimothymooney/breast-histopathology-images -p {tmp_path}" in out
    assert "chmod 600 ~/.kaggle/kaggle.json" in out and "--archive" in out
    assert idc.main(["--download", "--dest", str(tmp_path / "idc")]) == 1  # refuses without a token


def test_idc_token_is_detected(monkeypatch, no_kaggle_token):
    assert not idc.kaggle_credentials()
    monkeypatch.setenv("KAGGLE_USERNAME", "student")
    monkeypatch.setenv("KAGGLE_KEY", "0123")
    assert idc.kaggle_credentials()


def test_idc_archive_is_verified_extracted_and_checked(tmp_path, capsys):
    archive = make_zip(tmp_path / "breast-histopathology-images.zip",
                       {name: png_bytes(100 + i) for i, name in enumerate(IDC_FILES)})
    dest = tmp_path / "data" / "idc"
    assert idc.main(["--archive", str(archive), "--dest", str(dest), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "all CRCs OK" in out and "extracted 3 files" in out  # the duplicate folder is folded, not doubled
    assert "2 patients, 3 patches: 2 IDC-negative (class 0), 1 IDC-positive (class 1)" in out
    assert sorted(p.name for p in dest.iterdir()) == ["10253", "9036"]


@pytest.mark.parametrize("member", ["../evil.png", "/tmp/evil.png", "a/../../evil.png", "C:/evil.png"])
def test_idc_extraction_refuses_path_traversal(tmp_path, member):
    archive = make_zip(tmp_path / "bad.zip", {"10253/0/ok.png": b"x", member: b"x"})
    with pytest.raises(ValueError, match="unsafe member"):
        idc.extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.png").exists()  # nothing written at all


def test_idc_extraction_refuses_symlinks(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("10253/0/link.png")
        info.external_attr = (0o120777 << 16)  # S_IFLNK: a symbolic link member
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        idc.extract(archive, tmp_path / "out", progress=False)


def test_idc_corrupt_archives_are_named(tmp_path, capsys):
    good = make_zip(tmp_path / "good.zip", {"9036/0/9036_idx5_x0_y0_class0.png": png_bytes(7)},
                    compression=zipfile.ZIP_STORED)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"truncated\.zip is neither a zip nor a tar archive"):
        verify_archive(truncated)
    data = bytearray(good.read_bytes())
    data[data.index(b"IDAT") + 10] ^= 0xFF  # flip one byte of the stored PNG: the member's CRC no longer matches
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"member '9036/0/9036_idx5_x0_y0_class0.png' is corrupt \(Bad CRC-32"):
        verify_archive(flipped)
    assert idc.main(["--archive", str(tmp_path / "missing.zip")]) == 1
    assert "archive" in capsys.readouterr().err


# --- CAMELYON ---------------------------------------------------------------------------------------------------

ASAP_XML = """<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
    <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="_0" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="2" X="8.5" Y="6.5" />
        <Coordinate Order="0" X="1.5" Y="1.5" />
        <Coordinate Order="1" X="8.5" Y="1.5" />
        <Coordinate Order="3" X="1.5" Y="6.5" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Polygon" PartOfGroup="_2" Color="#64FE2E">
      <Coordinates>
        <Coordinate Order="0" X="3.5" Y="2.5" /><Coordinate Order="1" X="5.5" Y="2.5" />
        <Coordinate Order="2" X="5.5" Y="4.5" /><Coordinate Order="3" X="3.5" Y="4.5" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Dot" Type="Dot" PartOfGroup="_0"><Coordinates>
      <Coordinate Order="0" X="0" Y="9" /></Coordinates></Annotation>
  </Annotations>
  <AnnotationGroups><Group Name="_0" PartOfGroup="None" Color="#ff0000" /></AnnotationGroups>
</ASAP_Annotations>
"""


def test_asap_xml_is_parsed_in_order_as_yx(tmp_path):
    (tmp_path / "tumor_001.xml").write_text(ASAP_XML)
    tumour, excluded, dot = camelyon.parse_asap_xml(tmp_path / "tumor_001.xml")
    assert (tumour.name, tumour.group, excluded.group) == ("Annotation 0", "_0", "_2")
    # sorted by Order, columns (y, x): the XML's X and Y swapped
    assert tumour.points.tolist() == [[1.5, 1.5], [1.5, 8.5], [6.5, 8.5], [6.5, 1.5]]
    assert dot.points.shape == (1, 2)


def test_rasterisation_fills_tumour_and_cuts_exclusions(tmp_path):
    (tmp_path / "a.xml").write_text(ASAP_XML)
    mask = camelyon.rasterise(camelyon.parse_asap_xml(tmp_path / "a.xml"), (10, 10))
    # tumour: pixel centres with 1.5 < y < 6.5 and 1.5 < x < 8.5 -> rows 2..6, cols 2..8 = 5 * 7 = 35 pixels;
    # exclusion (group _2): rows 3..4, cols 4..5 = 4 pixels cut out; the dot has no area
    expected = np.zeros((10, 10), bool)
    expected[2:7, 2:9] = True
    expected[3:5, 4:6] = False
    assert np.array_equal(mask, expected) and mask.sum() == 31
    half = camelyon.rasterise(camelyon.parse_asap_xml(tmp_path / "a.xml"), (5, 5), downsample=2)
    # vertices divided by 2: tumour 0.75 < y < 3.25, 0.75 < x < 4.25 -> rows 1..3, cols 1..4; exclusion
    # 1.25 < y < 2.25, 1.75 < x < 2.75 -> pixel (2, 2)
    expected = np.zeros((5, 5), bool)
    expected[1:4, 1:5] = True
    expected[2, 2] = False
    assert np.array_equal(half, expected)


def test_bad_xml_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"annotation file .*missing\.xml not found"):
        camelyon.parse_asap_xml(tmp_path / "missing.xml")
    (tmp_path / "cut.xml").write_text(ASAP_XML[:300])
    with pytest.raises(ValueError, match=r"cut\.xml is not valid XML"):
        camelyon.parse_asap_xml(tmp_path / "cut.xml")
    (tmp_path / "nox.xml").write_text('<A><Annotation Name="t"><Coordinate Order="0" Y="1"/></Annotation></A>')
    with pytest.raises(ValueError, match=r"annotation 't' has a coordinate without numeric X and Y"):
        camelyon.parse_asap_xml(tmp_path / "nox.xml")
    (tmp_path / "empty.xml").write_text("<ASAP_Annotations/>")
    with pytest.raises(ValueError, match="has no <Annotation> elements"):
        camelyon.parse_asap_xml(tmp_path / "empty.xml")


def test_patch_extraction_from_a_small_pyramid(tmp_path):
    # level 0 (256, 256): glass, with pink tissue in rows 0..127 (all columns); the XML outlines x, y < 64 as tumour
    image = np.full((256, 256, 3), 240, np.uint8)
    image[:128] = (200, 110, 170)
    slide = tmp_path / "tumor_009.tif"
    with tifffile.TiffWriter(slide) as tif:
        tif.write(image, tile=(64, 64), subifds=1, photometric="rgb")
        tif.write(image[::2, ::2].copy(), tile=(64, 64), subfiletype=1, photometric="rgb")
    xml = tmp_path / "tumor_009.xml"
    xml.write_text(ASAP_XML.replace('X="8.5"', 'X="64"').replace('Y="6.5"', 'Y="64"')
                   .replace('X="1.5"', 'X="0"').replace('Y="1.5"', 'Y="0"'))
    counts = camelyon.extract_patches(slide, tmp_path / "out", xml_path=xml, level=1, patch_size=32)
    # level-1 patches of 32 px are 64 level-0 px: 2 rows of tissue x 4 columns = 8 patches; the one at (0, 0) is
    # tumour (the exclusion square y 2.5..4.5 x 3.5..5.5 is tiny), the others are not
    assert counts == {0: 7, 1: 1}
    rows = (tmp_path / "out" / "tumor_009" / "index.csv").read_text().splitlines()
    assert rows[0] == "file,y0,x0,level,tissue_fraction,tumour_fraction,label" and len(rows) == 9
    assert rows[1].startswith("1/tumor_009_y0_x0.png,0,0,1,1.000,")
    patch = np.asarray(Image.open(tmp_path / "out" / "tumor_009" / "1" / "tumor_009_y0_x0.png"))
    assert patch.shape == (32, 32, 3) and (patch == (200, 110, 170)).all()
    assert camelyon.extract_patches(slide, tmp_path / "few", level=0, patch_size=64, max_patches=3) == {0: 3, 1: 0}
    with pytest.raises(ValueError, match=r"`level` 5 does not exist: tumor_009.tif has levels 0..1"):
        camelyon.extract_patches(slide, tmp_path / "out", level=5)
    assert camelyon.main(["patches", str(tmp_path / "missing.tif")]) == 1


def test_dry_run_lists_urls_without_network(tmp_path, capsys):
    assert camelyon.main(["download", "--dry-run", "--dest", str(tmp_path), "--slides", "tumor_001", "normal_001"]) == 0
    out = capsys.readouterr().out.splitlines()
    base = "https://camelyon-dataset.s3.us-west-2.amazonaws.com/CAMELYON16"
    assert out == [f"would fetch {base}/checksums.md5 -> {tmp_path / 'checksums.md5'}",
                   f"would fetch {base}/images/tumor_001.tif -> {tmp_path / 'images' / 'tumor_001.tif'}",
                   f"would fetch {base}/annotations/tumor_001.xml -> {tmp_path / 'annotations' / 'tumor_001.xml'}",
                   f"would fetch {base}/images/normal_001.tif -> {tmp_path / 'images' / 'normal_001.tif'}"]
    assert not any(tmp_path.iterdir())


def test_list_file_accepts_names_and_checksum_lines(tmp_path):
    (tmp_path / "list.txt").write_text("# my slides\ntumor_005\n"
                                       "0123abcd  images/normal_010.tif\n"
                                       "4567ef01 *masks/tumor_005_mask.tif\n"
                                       "89ab  annotations/tumor_005.xml\n")
    assert camelyon.read_list_file(tmp_path / "list.txt") == ["tumor_005", "normal_010"]
    with pytest.raises(FileNotFoundError, match="slide list"):
        camelyon.read_list_file(tmp_path / "none.txt")
    with pytest.raises(ValueError, match=r"slide name '../x' must look like 'tumor_001'"):
        camelyon.plan(["../x"], tmp_path)


@pytest.fixture
def bucket(tmp_path, monkeypatch):
    """A local folder served over HTTP in the bucket's layout; the script's BASE_URL points at it."""
    root = tmp_path / "bucket"
    (root / "CAMELYON16" / "images").mkdir(parents=True)
    (root / "CAMELYON16" / "annotations").mkdir()
    files = {"images/tumor_001.tif": b"slide bytes" * 100, "annotations/tumor_001.xml": ASAP_XML.encode()}
    for key, data in files.items():
        (root / "CAMELYON16" / key).write_bytes(data)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(camelyon, "BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
    yield root / "CAMELYON16", files
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_published_md5(bucket, tmp_path):
    remote, files = bucket
    lines = [f"{hashlib.md5(data).hexdigest()}  {key}" for key, data in files.items()]
    (remote / "checksums.md5").write_text("\n".join(lines) + "\n")
    camelyon.fetch(["tumor_001"], tmp_path / "local")
    for key, data in files.items():
        assert (tmp_path / "local" / key).read_bytes() == data
    # a published digest that the served bytes do not match: the download is refused and removed
    (remote / "images" / "tumor_002.tif").write_bytes(b"corrupt")
    (remote / "checksums.md5").write_text(f"{'0' * 32}  images/tumor_002.tif\n")
    (tmp_path / "local" / "checksums.md5").unlink()  # fetch the new list
    with pytest.raises(ValueError, match=r"md5 of downloaded tumor_002\.tif is [0-9a-f]{32}, expected 0{32}"):
        camelyon.fetch(["tumor_002"], tmp_path / "local")
    assert not (tmp_path / "local" / "images" / "tumor_002.tif").exists()
