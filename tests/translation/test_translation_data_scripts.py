"""data_scripts/msd_brain.py and brats.py on fixture archives in the real layouts (never the internet)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
from test_translation_real_data import expected_tumour, write_brats, write_msd

from course_lib.translation.real_data import read_brats, read_msd_brain
from data_scripts import brats
from data_scripts import msd_brain as msd


def msd_tar(tmp_path: Path, extra: list[tuple[str, bytes]] = ()) -> Path:
    """Task01_BrainTumour.tar as published: the task folder, plus macOS ._ junk files."""
    task = write_msd(tmp_path / "src" / "Task01_BrainTumour")
    path = tmp_path / "Task01_BrainTumour.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(task, arcname="Task01_BrainTumour")
        for name, data in [("Task01_BrainTumour/imagesTr/._BRATS_001.nii.gz", b"junk"), *extra]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_msd_dry_run_touches_nothing(tmp_path, capsys):
    assert msd.main(["--dest", str(tmp_path / "d"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert msd.URL in out and msd.MD5 in out and "7.1 GB" in out
    assert not (tmp_path / "d").exists()


def test_msd_download_from_a_file_url_verifies_extracts_and_reads(tmp_path, capsys):
    archive = msd_tar(tmp_path)
    dest = tmp_path / "msd"
    argv = ["--dest", str(dest), "--url", archive.as_uri(), "--md5", md5(archive), "--no-progress", "--check-cases",
            "2"]
    assert msd.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 training cases" in out and "2 cases read: 16 slices, 4 tumour slices" in out
    assert not (dest / "Task01_BrainTumour" / "imagesTr" / "._BRATS_001.nii.gz").exists(), "macOS junk skipped"
    slices = read_msd_brain(dest / "Task01_BrainTumour", size=16)
    assert np.array_equal(slices.tumour[:8], expected_tumour())
    assert msd.main(argv) == 0 and "extracted 0 new files" in capsys.readouterr().out, "a re-run writes nothing"


def test_msd_wrong_checksum_is_refused(tmp_path, capsys):
    archive = msd_tar(tmp_path)
    assert msd.main(["--dest", str(tmp_path / "m"), "--archive", str(archive), "--md5", "0" * 32]) == 1
    assert f"MD5 of {archive} is {md5(archive)}, expected {'0' * 32}" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_msd_unsafe_archive_is_refused_with_nothing_written(tmp_path, capsys):
    archive = msd_tar(tmp_path, extra=[("../evil.txt", b"x")])
    assert msd.main(["--dest", str(tmp_path / "m"), "--archive", str(archive), "--md5", "", "--no-progress"]) == 1
    assert "unsafe member '../evil.txt'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists() and not (tmp_path / "evil.txt").exists()


def test_msd_missing_case_is_named(tmp_path, capsys):
    archive = msd_tar(tmp_path)
    dest = tmp_path / "m"
    assert msd.main(["--dest", str(dest), "--archive", str(archive), "--md5", "", "--no-progress"]) == 0
    (dest / "Task01_BrainTumour" / "labelsTr" / "BRATS_002.nii.gz").unlink()
    missing, _ = msd.check(dest / "Task01_BrainTumour")
    assert missing == [str(dest / "Task01_BrainTumour" / "./labelsTr/BRATS_002.nii.gz")]


def test_brats_prints_the_registration_steps(capsys):
    assert brats.main([]) == 0
    out = capsys.readouterr().out
    assert "Synapse" in out and "syn25829067" in out and "data_scripts.msd_brain" in out


def test_brats_prepares_complete_cases_from_an_archive_and_names_incomplete_ones(tmp_path, capsys):
    src = write_brats(tmp_path / "download" / "BraTS2021_Training_Data",
                      names=("BraTS2021_00000", "BraTS2021_00002", "BraTS2021_00003"))
    (src / "BraTS2021_00003" / "BraTS2021_00003_t1ce.nii.gz").unlink()
    archive = tmp_path / "BraTS2021_Training_Data.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(src, arcname="BraTS2021_Training_Data")
    dest = tmp_path / "brats"
    assert brats.main(["--archive", str(archive), "--dest", str(dest), "--no-progress", "--check-cases", "2"]) == 0
    captured = capsys.readouterr()
    assert "2 complete cases" in captured.out and "2 cases read: 16 slices, 4 tumour slices" in captured.out
    assert "BraTS2021_00003: missing BraTS2021_00003_t1ce.nii.gz" in captured.err
    assert sorted(p.name for p in dest.iterdir()) == ["BraTS2021_00000", "BraTS2021_00002"]
    assert len(read_brats(dest, size=16)) == 16


def test_brats_refuses_an_unsafe_archive(tmp_path, capsys):
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../../etc/x_seg.nii.gz")
        tar.addfile(info, io.BytesIO(b""))
    assert brats.main(["--archive", str(archive), "--dest", str(tmp_path / "b")]) == 1
    assert "unsafe member" in capsys.readouterr().err and not (tmp_path / "b").exists()
