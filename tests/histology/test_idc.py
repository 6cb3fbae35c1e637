"""Kaggle IDC reader on a fixture tree in the real on-disk format, written by the test with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.data.splits import patient_split
from course_lib.histology.idc import (
    IDCDataset,
    IDCPatch,
    class_counts,
    parse_idc_name,
    patient_mosaic,
    scan_idc,
)

# (patient, x, y, label, (h, w)): patient 8863 has a 2x2 block plus an edge patch cut to 33 columns
PATCHES = [
    ("8863", 1, 1, 0, (50, 50)),
    ("8863", 51, 1, 1, (50, 50)),
    ("8863", 1, 51, 0, (50, 50)),
    ("8863", 51, 51, 1, (50, 50)),
    ("8863", 101, 51, 0, (50, 33)),
    ("10253", 1001, 1051, 0, (50, 50)),
    ("10253", 1051, 1051, 1, (50, 50)),
    ("9036", 0, 0, 1, (50, 50)),
]


def colour(i: int) -> tuple[int, int, int]:
    return (10 * i + 5, 200 - 10 * i, 100)  # one distinct colour per fixture patch


def write_tree(root: Path, patches=PATCHES) -> Path:
    """``<root>/<pid>/<label>/<pid>_idx5_x<X>_y<Y>_class<label>.png`` like the Kaggle archive."""
    for i, (pid, x, y, label, shape) in enumerate(patches):
        folder = root / pid / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{pid}_idx5_x{x}_y{y}_class{label}.png"
        Image.fromarray(np.full(shape + (3,), colour(i), np.uint8)).save(folder / name)
    return root


@pytest.fixture
def tree(tmp_path):
    root = write_tree(tmp_path / "idc")
    (root / "IDC_regular_ps50_idx5").mkdir()  # the archive's duplicate folder: not a patient, ignored
    (root / "8863" / "0" / ".DS_Store").write_bytes(b"")  # hidden files are ignored
    return root


@pytest.mark.parametrize(
    "name, expected",
    [
        ("10253_idx5_x1001_y1051_class0.png", IDCPatch("10253", 1001, 1051, 0)),
        ("9036_idx5_x0_y2401_class1.png", IDCPatch("9036", 0, 2401, 1)),
    ],
)
def test_parse_good_names(name, expected):
    assert parse_idc_name(name) == expected


@pytest.mark.parametrize(
    "name",
    ["10253_idx5_x1001_y1051_class2.png", "10253_idx5_x1001_y1051_class0.jpg", "10253_idx4_x1_y1_class0.png",
     "abc_idx5_x1_y1_class0.png", "10253_idx5_x1001_y1051_class0.png.bak", "10253_idx5_y1_x1_class0.png"],
)
def test_parse_rejects_anything_else(name):
    with pytest.raises(ValueError, match=rf"'{name}' is not an IDC patch name"):
        parse_idc_name(name)


def test_scan_finds_every_patch_sorted_by_patient(tree):
    records = scan_idc(tree)
    assert len(records) == len(PATCHES)
    assert [r.patient for r in records] == ["8863"] * 5 + ["9036"] + ["10253"] * 2  # numeric order
    assert all(r.path.is_file() and r.path.parent.name == str(r.label) for r in records)
    assert class_counts(records) == {0: 4, 1: 4}
    assert len(scan_idc(tree, patients=["9036"])) == 1


def test_bad_file_names_are_named(tree):
    bad = tree / "9036" / "1" / "9036_idx5_x0_y0_class1 (copy).png"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match=r"9036_idx5_x0_y0_class1 \(copy\)\.png.*is not an IDC patch name"):
        scan_idc(tree)
    bad.unlink()
    (tree / "9036" / "0").mkdir()
    (tree / "9036" / "0" / "9036_idx5_x0_y50_class1.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"name says patient 9036, class 1 but the file lies in 9036/0/"):
        scan_idc(tree)


def test_missing_root_points_to_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere not found; run `python -m data_scripts\.idc`"):
        scan_idc(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"patient folder\(s\) not found: .*123"):
        scan_idc(tmp_path, patients=["123"])


def test_dataset_items_and_edge_padding(tree):
    ds = IDCDataset(tree)
    assert len(ds) == len(PATCHES) and ds.labels.tolist() == [r.label for r in ds.records]
    image, label = ds[0]  # 8863 class 0 at (1, 1): PATCHES[0]
    assert image.shape == (3, 50, 50) and image.dtype == torch.float32 and label == 0
    assert torch.allclose(image[:, 0, 0], torch.tensor(colour(0), dtype=torch.float32) / 255)
    edge = next(i for i, r in enumerate(ds.records) if r.x == 101)
    image, _ = ds[edge]  # 50 x 33 on disk: columns 33..49 are padded with white
    assert torch.allclose(image[:, :, :33], torch.tensor(colour(4), dtype=torch.float32)[:, None, None] / 255)
    assert (image[:, :, 33:] == 1.0).all()
    assert len(IDCDataset(tree, small="skip")) == len(PATCHES) - 1
    with pytest.raises(ValueError, match="`small` must be 'pad' or 'skip', got 'crop'"):
        IDCDataset(tree, small="crop")


def test_patient_split_is_disjoint_complete_and_seeded():
    patients = [str(i) for i in range(100, 120)] * 3  # duplicates collapse: 20 patients
    train, val, test = patient_split(patients, (0.6, 0.2, 0.2), seed=0)
    assert (len(train), len(val), len(test)) == (12, 4, 4)  # round(20 * [0.6, 0.8, 1.0]) = 12, 16, 20
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert sorted(train + val + test) == sorted(set(patients))
    assert patient_split(patients, (0.6, 0.2, 0.2), seed=0) == (train, val, test)
    assert patient_split(patients, (0.6, 0.2, 0.2), seed=1) != (train, val, test)
    with pytest.raises(ValueError, match=r"`fractions` must be non-negative and sum to 1, got \[0.5, 0.6\]"):
        patient_split(patients, (0.5, 0.6))


def test_split_datasets_share_no_patient(tree):
    train_ids, test_ids = patient_split([r.patient for r in scan_idc(tree)], (0.67, 0.33), seed=0)
    train, test = IDCDataset(tree, patients=train_ids), IDCDataset(tree, patients=test_ids)
    assert len(train) + len(test) == len(PATCHES)
    assert not {r.patient for r in train.records} & {r.patient for r in test.records}


def test_patient_mosaic_puts_patches_back(tree):
    mosaic, labels = patient_mosaic(tree, "8863")
    # H = max(y) + 50 = 101, W = max(x) + 50 = 151
    assert mosaic.shape == (101, 151, 3) and labels.shape == (101, 151)
    for i, (_, x, y, label, (h, w)) in enumerate(PATCHES[:5]):
        assert (mosaic[y:y + h, x:x + w] == colour(i)).all(), f"patch {i} not at (y={y}, x={x})"
        assert (labels[y:y + h, x:x + w] == label).all()
    assert (mosaic[0, :] == 255).all() and (labels[0, :] == -1).all()  # row 0: above every patch
    assert (labels[1:51, 101:] == -1).all()  # no patch at (y=1, x=101)
    assert (labels[51:, 134:] == -1).all()  # right of the 33-column edge patch
    with pytest.raises(FileNotFoundError, match="patient folder"):
        patient_mosaic(tree, "1")
