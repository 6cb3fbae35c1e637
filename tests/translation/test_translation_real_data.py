"""MSD Task01 and BraTS readers on NIfTI fixtures written here in the real layouts; the ITK two-contrast slice."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from course_lib.translation.real_data import ITK_DATA, itk_brain_slices, read_brats, read_msd_brain, volume_slices

X, Y, Z = 20, 20, 10  # a tiny (x, y, z) volume; slice k is volume[:, :, k]


def volumes():
    """FLAIR, T1 and labels with known slice rules.

    z = 0, 1: 10 % brain (dropped: <= 30 %); z = 2..9: 64 % brain (an 16 x 16 square of 400 px).
    z = 4, 5: tumour on 4 x 4 = 16 px = 6.25 % of the 256 brain px (tumour slices);
    z = 6: tumour on 2 px = 0.8 % (under 1 %: healthy); others: none.
    """
    flair = np.zeros((X, Y, Z), np.float32)
    flair[2:18, 2:18, 2:] = 100.0  # 256 brain px
    flair[0:4, 0:10, :2] = 100.0  # 40 px = 10 %
    t1 = flair * 2.0
    seg = np.zeros((X, Y, Z), np.uint8)
    seg[5:9, 5:9, 4] = 1  # oedema
    seg[5:9, 5:9, 5] = 3  # enhancing tumour
    seg[5, 5:7, 6] = 2  # 2 px
    return flair, t1, seg


def expected_tumour():
    return np.array([False, False, True, True, False, False, False, False])  # kept z = 2..9


def save(array: np.ndarray, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))


def write_msd(root, n_cases=2):
    """Task01_BrainTumour layout: dataset.json, imagesTr/BRATS_NNN.nii.gz (4-D), labelsTr/BRATS_NNN.nii.gz."""
    flair, t1, seg = volumes()
    image = np.stack([flair, t1, t1 * 1.1, flair * 0.9], axis=-1)  # (X, Y, Z, 4): FLAIR, T1w, T1gd, T2w
    training = []
    for k in range(1, n_cases + 1):
        save(image, root / "imagesTr" / f"BRATS_{k:03d}.nii.gz")
        save(seg, root / "labelsTr" / f"BRATS_{k:03d}.nii.gz")
        training.append({"image": f"./imagesTr/BRATS_{k:03d}.nii.gz", "label": f"./labelsTr/BRATS_{k:03d}.nii.gz"})
    (root / "dataset.json").write_text(json.dumps({
        "name": "BRATS", "tensorImageSize": "4D",
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
        "numTraining": n_cases, "training": training, "test": []}))
    return root


def write_brats(root, names=("BraTS20_Training_001", "BraTS20_Training_002")):
    """BraTS layout: <case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz; labels 0, 1, 2, 4."""
    flair, t1, seg = volumes()
    seg = np.where(seg == 3, 4, seg).astype(np.uint8)
    for name in names:
        for suffix, array in (("flair", flair), ("t1", t1), ("t1ce", t1), ("t2", flair), ("seg", seg)):
            save(array, root / name / f"{name}_{suffix}.nii.gz")
    return root


def test_volume_slices_apply_the_brain_and_tumour_rules():
    flair, t1, seg = volumes()
    slices = volume_slices(flair, t1, seg, size=16)
    assert len(slices) == 8, "z = 0, 1 have 10 % brain (<= 30 %) and are dropped"
    assert np.array_equal(slices.tumour, expected_tumour())
    assert slices.flair.shape == (8, 16, 16) and 0 <= slices.flair.min() and slices.flair.max() <= 1
    assert slices.mask[2].any() and not slices.mask[0].any()


def test_volume_slices_refuses_unequal_volumes():
    flair, t1, seg = volumes()
    with pytest.raises(ValueError, match=r"`flair` \(shape \(20, 20, 10\)\), `t1` \(shape \(20, 20, 9\)\)"):
        volume_slices(flair, t1[..., :9], seg)


def test_msd_reader_on_the_task01_layout(tmp_path):
    root = write_msd(tmp_path / "Task01_BrainTumour")
    slices = read_msd_brain(root, size=16)
    assert len(slices) == 16 and np.array_equal(np.unique(slices.subject), [0, 1])
    assert np.array_equal(slices.tumour[:8], expected_tumour())
    # channel 1 (T1w) is read as T1: in the fixture it is twice the FLAIR, and both are scaled to [0, 1]
    assert np.allclose(slices.t1, slices.flair, atol=1e-5)
    assert len(read_msd_brain(root, size=16, max_cases=1)) == 8


def test_msd_reader_names_what_is_missing_or_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.json not found: run `python -m data_scripts.msd_brain`"):
        read_msd_brain(tmp_path)
    root = write_msd(tmp_path / "Task01_BrainTumour")
    (root / "labelsTr" / "BRATS_002.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"BRATS_002.nii.gz \(listed in .*dataset.json\) not found"):
        read_msd_brain(root)
    flair, _, seg = volumes()
    save(flair, root / "imagesTr" / "BRATS_001.nii.gz")  # 3-D where MSD has 4-D
    with pytest.raises(ValueError, match=r"expected a 4-D \(X, Y, Z, 4\) image, got shape \(20, 20, 10\)"):
        read_msd_brain(root, max_cases=1)


def test_brats_reader_on_the_challenge_layout(tmp_path):
    root = write_brats(tmp_path / "brats")
    slices = read_brats(root, size=16)
    assert len(slices) == 16 and np.array_equal(slices.tumour[8:], expected_tumour())
    assert slices.mask.dtype == bool and slices.mask[2].any()


def test_brats_reader_names_a_missing_modality(tmp_path):
    root = write_brats(tmp_path / "brats", names=("BraTS2021_00000",))
    (root / "BraTS2021_00000" / "BraTS2021_00000_t1.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="BraTS2021_00000_t1.nii.gz not found"):
        read_brats(root)
    with pytest.raises(FileNotFoundError, match="no BraTS case folders"):
        read_brats(tmp_path / "empty")


def test_itk_slices_missing_package_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install insighttoolkit5-examples"):
        itk_brain_slices(tmp_path)


@pytest.mark.skipif(not (ITK_DATA / "BrainT1Slice.png").is_file(), reason="Debian insighttoolkit5-examples absent")
def test_itk_slices_are_one_registered_slice_in_two_contrasts():
    pd, t1 = itk_brain_slices()
    assert pd.shape == t1.shape and pd.ndim == 2 and pd.dtype == np.float32
    head = (pd > 0.05) & (t1 > 0.05)
    assert head.mean() > 0.3, "the same head in both images"
    assert np.corrcoef(pd[head], t1[head])[0, 1] < 0.95, "two contrasts, not one image twice"
