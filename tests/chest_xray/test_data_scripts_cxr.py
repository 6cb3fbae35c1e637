"""data_scripts/nih.py, padchest.py, chexpert.py and mimic.py on fixtures made here: --help, the access steps,
the dry run listing the 12 NIH archives, downloads with MD5 checks from a local HTTP server (never the internet),
safe extraction refusing malicious archives, verification naming missing and corrupt images, and 224 px copies."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_lib.chest_xray.datasets import padchest_pairs
from course_lib.chest_xray.images import load_radiograph
from course_lib.chest_xray.labels import read_nih
from course_lib.data.archives import safe_extract, verify_archive
from data_scripts import chexpert, mimic, nih, padchest

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


trees = load(Path(__file__).with_name("test_cxr_datasets.py"), "_cxr_dataset_trees")


def png_bytes(value: int, shape=(40, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(shape, value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:max(len(data) // 2, 16)])  # a download cut short: the format's magic bytes survive


# --- every script --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("script", "option"), [("nih", "--dry-run"), ("padchest", "--extract"),
                                                ("chexpert", "--archive"), ("mimic", "--root")])
def test_help(script, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        {"nih": nih, "padchest": padchest, "chexpert": chexpert, "mimic": mimic}[script].main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and option in out and "--resize {224,256}" in out and "--partial" in out


@pytest.mark.parametrize(("script", "expected"), [
    (padchest, ["https://bimcv.cipf.es/bimcv-projects/padchest/", "--extract", "PADCHEST_chest_x_ray_images_labels"]),
    (chexpert, ["https://stanfordmlgroup.github.io/competitions/chexpert/", "CheXpert-v1.0-small.zip"]),
    (mimic, ["https://physionet.org/content/mimic-cxr-jpg/2.0.0/",
             "wget -r -N -c -np --user <you> --ask-password https://physionet.org/files/mimic-cxr-jpg/2.0.0/"]),
])
def test_registration_scripts_print_the_access_steps(script, expected, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert script.main([]) == 0
    out = capsys.readouterr().out
    assert all(text in out for text in expected) and "nothing is downloaded" in out
    assert not any(tmp_path.iterdir())


# --- NIH -------------------------------------------------------------------------------------------------------------

def test_nih_dry_run_lists_the_12_archives(tmp_path, capsys):
    dest = tmp_path / "nih"
    assert nih.main(["--dry-run", "--dest", str(dest)]) == 0
    lines = capsys.readouterr().out.splitlines()
    fetches = [line for line in lines if line.startswith("would fetch")]
    assert len(fetches) == 12 and len(set(fetches)) == 12
    assert fetches[0] == ("would fetch https://nihcc.box.com/shared/static/vfk49d74nhbxq3nqjg0900w5nvkorp5c.gz -> "
                          f"{dest / 'archives' / 'images_001.tar.gz'} (md5 fe8ed0a6961412fddcbb3603c11b3698)")
    assert fetches[11].endswith(f"{dest / 'archives' / 'images_012.tar.gz'} (md5 dc9fda1757c2de0032b63347a7d2895c)")
    assert all("https://nihcc.box.com/shared/static/" in line for line in fetches)
    assert any(line.startswith("would copy Data_Entry_2017_v2020.csv from") for line in lines)
    assert not dest.exists()  # a dry run writes nothing


@pytest.fixture
def box(tmp_path, monkeypatch):
    """Two NIH-style archives served over HTTP from a local folder; the script's ARCHIVES point at them."""
    served = tmp_path / "served"
    served.mkdir()
    rows = trees.NIH_ROWS
    archives = {"images_001.tar.gz": rows[:2], "images_002.tar.gz": rows[2:]}
    for name, members in archives.items():
        make_tar(served / name, {f"images/{image}": png_bytes(round(value * 255)) for image, *_, value in members})
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    entries = [(name, f"{base}/{name}", hashlib.md5((served / name).read_bytes()).hexdigest()) for name in archives]
    monkeypatch.setattr(nih, "ARCHIVES", entries)
    csv = trees.write_nih_tree(tmp_path / "labels") / "Data_Entry_2017_v2020.csv"
    yield served, csv
    httpd.shutdown()
    httpd.server_close()


def test_nih_download_extract_verify_resize(box, tmp_path, capsys):
    _, csv = box
    dest = tmp_path / "nih"
    args = ["--dest", str(dest), "--csv", str(csv), "--resize", "224", "--no-progress"]
    assert nih.main(args) == 0
    out = capsys.readouterr().out
    assert "images_001.tar.gz: MD5 OK, 2 files, 2 extracted" in out and "images_002.tar.gz: MD5 OK" in out
    assert "NIH ChestX-ray14: 4 images, 3 patients" in out and "4 of 4 images on disk" in out
    assert "resized to 224: 4 written" in out and "verification OK" in out
    assert sorted(p.name for p in (dest / "images").iterdir()) == [row[0] for row in trees.NIH_ROWS]
    assert not list((dest / "archives").glob("*.tar.gz"))  # deleted after extraction
    small = dest / "resized_224" / "images" / "00000002_000.png"
    with Image.open(small) as image:
        assert image.size == (224, 224) and image.mode == "L"
    assert np.allclose(load_radiograph(small, None), 0.6, atol=1 / 255)
    assert nih.main(args) == 0  # a re-run: nothing fetched or written again
    out = capsys.readouterr().out
    assert "images_001.tar.gz: already extracted, skipped" in out and "0 written, 4 already there" in out


def test_nih_labels_come_from_the_shipped_copy(tmp_path):
    csv = nih.install_csv(tmp_path / "nih", None)  # torchxrayvision's gzipped copy, decompressed
    assert csv == tmp_path / "nih" / "Data_Entry_2017_v2020.csv" and not csv.with_name(f"{csv.name}.part").exists()
    assert csv.read_text().splitlines()[0].startswith("Image Index,Finding Labels,Follow-up #,Patient ID")
    assert len(read_nih(csv)) == 112_120
    assert nih.install_csv(tmp_path / "nih", tmp_path / "ignored.csv") == csv  # already there: kept


def test_nih_md5_mismatch_is_refused(box, tmp_path, monkeypatch, capsys):
    _, csv = box
    name, url, _ = nih.ARCHIVES[0]
    monkeypatch.setattr(nih, "ARCHIVES", [(name, url, "0" * 32)])
    assert nih.main(["--dest", str(tmp_path / "nih"), "--csv", str(csv), "--no-progress"]) == 1
    assert f"md5 of downloaded {name} is" in capsys.readouterr().err
    assert not (tmp_path / "nih" / "images").exists()


def test_nih_missing_images_fail_unless_partial(box, tmp_path, capsys):
    _, csv = box
    dest = tmp_path / "nih"
    assert nih.main(["--dest", str(dest), "--csv", str(csv), "--archives", "1", "--no-progress"]) == 0  # a subset
    assert "2 of 4 images on disk" in capsys.readouterr().out
    assert nih.main(["--dest", str(dest), "--csv", str(csv), "--no-download", "--no-progress"]) == 1
    assert "2 images are missing" in capsys.readouterr().err


# --- safe extraction ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("member", ["../evil.png", "/tmp/evil.png", "images/../../evil.png", "C:/evil.png"])
def test_tar_extraction_refuses_path_traversal(tmp_path, member):
    archive = make_tar(tmp_path / "bad.tar.gz", {"images/ok.png": png_bytes(1), member: png_bytes(2)})
    with pytest.raises(ValueError, match="unsafe member"):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.png").exists()  # nothing written at all


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_tar_extraction_refuses_links_and_devices(tmp_path, kind):
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("images/ok.png")
        info.type, info.linkname = kind, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match=r"unsafe member 'images/ok\.png' in archive: (symbolic|hard) link|device"):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_truncated_archives_are_named(tmp_path):
    archive = make_tar(tmp_path / "images_003.tar.gz", {f"images/{i}.png": np.random.default_rng(i).bytes(50_000)
                                                        for i in range(3)})
    assert verify_archive(archive, progress=False) == 3
    archive.write_bytes(archive.read_bytes()[:60_000])
    with pytest.raises(ValueError, match=r"images_003\.tar\.gz: corrupt or truncated archive"):
        verify_archive(archive, progress=False)


def test_zip_extraction_refuses_traversal_and_links(tmp_path):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("0/ok.png", b"x")
        zf.writestr("../evil.png", b"x")
    with pytest.raises(ValueError, match=r"unsafe member '\.\./evil\.png'"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "out", progress=False)
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        info = zipfile.ZipInfo("0/link.png")
        info.external_attr = 0o120777 << 16  # S_IFLNK
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        safe_extract(tmp_path / "link.zip", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


# --- verification of registration-only datasets ----------------------------------------------------------------------

def test_padchest_verification_names_missing_and_corrupt_images(tmp_path, capsys):
    root = trees.write_padchest_tree(tmp_path / "padchest")
    (root / "1" / "c_l.png").unlink()
    corrupt(root / "0" / "a_l.png")
    assert padchest.main(["--root", str(root), "--sample", "0", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "PadChest: 7 images, 3 patients, 5 studies" in out
    assert "studies with a PA and a lateral (LATERAL/LL) image: 2" in out
    assert "checked 7 of 7 referenced images: 1 missing, 1 corrupt" in out
    assert "    1/c_l.png\n" in out and "    0/a_l.png: corrupt or undecodable image" in out
    assert padchest.main(["--root", str(root), "--sample", "0", "--partial", "--no-progress"]) == 1  # still corrupt
    assert padchest.main(["--root", str(tmp_path / "nothing"), "--no-progress"]) == 1
    assert "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv (or .gz) not found" in capsys.readouterr().err


def test_padchest_zips_are_extracted_then_resized(tmp_path, capsys):
    source = trees.write_padchest_tree(tmp_path / "source")
    root = tmp_path / "padchest"
    root.mkdir()
    (root / trees.PADCHEST_CSV).write_bytes((source / trees.PADCHEST_CSV).read_bytes())
    for folder in ("0", "1", "2"):  # BIMCV's <N>.zip: the images of ImageDir N
        with zipfile.ZipFile(root / f"{folder}.zip", "w") as zf:
            for image in (source / folder).iterdir():
                zf.write(image, image.name)
    assert padchest.main(["--root", str(root), "--extract", "--resize", "224", "--sample", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0.zip: 2 files extracted" in out and "resized to 224: 7 written" in out and "verification OK" in out
    small = root / "resized_224" / "0" / "a_pa.png"
    with Image.open(small) as image:
        assert image.size == (224, 224) and image.mode.startswith("I")  # 16-bit in, 16-bit out
    assert np.allclose(load_radiograph(small, None), 0.1, atol=1e-4)
    dataset = padchest_pairs(root, ["cardiomegaly"], size=224)  # picks the resized copy by itself
    assert str(dataset.root).endswith("resized_224") and dataset[0]["pa"].shape == (1, 224, 224)


def test_chexpert_archive_and_verification(tmp_path, capsys):
    source = trees.write_chexpert_tree(tmp_path / "source")
    archive = tmp_path / "CheXpert-v1.0-small.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((source / "CheXpert-v1.0-small").rglob("*")):
            zf.write(path, path.relative_to(source).as_posix())
    root = tmp_path / "chexpert"
    assert chexpert.main(["--root", str(root), "--archive", str(archive), "--sample", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "CheXpert: 5 images, 3 patients, 4 studies" in out and "PA and a lateral (LATERAL/LL) image: 1" in out
    missing = root / "CheXpert-v1.0-small/train/patient00003/study1/view1_lateral.jpg"
    missing.unlink()
    corrupt(root / "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg")
    assert chexpert.main(["--root", str(root), "--sample", "0", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "1 missing, 1 corrupt" in out and "CheXpert-v1.0-small/train/patient00003/study1/view1_lateral.jpg" in out
    assert "patient00002/study2/view1_frontal.jpg: corrupt or undecodable image" in out


def test_mimic_verification_with_published_sha256(tmp_path, capsys):
    root = trees.write_mimic_tree(tmp_path / "mimic")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    sums = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    tampered = next(name for name in sums if name.endswith(".jpg"))
    sums[tampered] = "f" * 64  # a file whose bytes do not match the published digest
    (root / "SHA256SUMS.txt").write_text("".join(f"{digest} {name}\n" for name, digest in sums.items()))
    assert mimic.main(["--root", str(root), "--sample", "0", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "MIMIC-CXR-JPG: 7 images, 3 patients, 4 studies" in out and "tables OK" in out
    assert "0 missing, 1 corrupt" in out and f"{tampered}: sha256" in out and "differs from the published" in out
    sums[tampered] = hashlib.sha256((root / tampered).read_bytes()).hexdigest()
    (root / "SHA256SUMS.txt").write_text("".join(f"{digest} {name}\n" for name, digest in sums.items()))
    assert mimic.main(["--root", str(root), "--sample", "3", "--resize", "256", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "checked 3 of 7" in out and "resized to 256: 7 written" in out
    with Image.open(root / "resized_256" / tampered) as image:
        assert image.size == (256, 256) and image.format == "JPEG"
