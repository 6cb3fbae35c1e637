"""A small ``COURSE_DATA`` folder in each real dataset's on-disk layout, for the notebooks' full-mode smoke runs.

Full mode reads real data wherever it is prepared; on this machine none is. These trees put a few hundred small
synthetic images where each reader looks, in the layout the data scripts leave behind, so that a notebook run with
``COURSE_MODE=full COURSE_SMOKE=1`` takes every real-data branch once:

* ``chexpert/`` — CheXpert-small (JPEG studies, ``train.csv``): ch01b section 6, ch05a's NIH + CheXpert mix;
* ``nih/`` — NIH ChestX-ray14 (8-bit PNG, ``Data_Entry_2017_v2020.csv``): ch05a's mix;
* ``idc/`` — Kaggle IDC (``<patient>/<label>/<patient>_idx5_x<X>_y<Y>_class<label>.png``, 50 px RGB): ch02a;
* ``msd_brain/Task01_BrainTumour/`` — MSD Task01 (4-D NIfTI, ``dataset.json``): ch04b;
* ``vgg_cells/`` — VGG cells (``NNNcell.png`` with the cells in blue, ``NNNdots.png`` with one red pixel a cell,
  numbers 001-200; 32 px here, 256 in the real set): ch03b section 8.

The pixels are synthetic (chest studies from :mod:`course_lib.chest_xray.synthetic`, noise patches, block brains):
they test readers, splits and full-size models, never a number.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from PIL import Image

from course_lib.chest_xray.synthetic import TwoViewConfig, make_studies

_TESTS = Path(__file__).resolve().parents[1]
NIH_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
              "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")


def _cxr_trees():
    """tests/chest_xray/cxr_trees.py, the writer of the CheXpert study tree, loaded by path (no package)."""
    spec = importlib.util.spec_from_file_location("_cxr_trees_for_notebooks", _TESTS / "chest_xray" / "cxr_trees.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_nih(root: Path, n: int = 240, size: int = 32, seed: int = 2) -> Path:
    """NIH layout: the label table and ``images/<index>.png``; one patient per film, every other one with effusion."""
    studies = make_studies(n, TwoViewConfig(size=size), seed=seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = [NIH_HEADER]
    for i in range(n):
        name = f"{i + 1:08d}_000.png"
        Image.fromarray(np.round(studies["pa"][i, 0] * 255).astype(np.uint8)).save(root / "images" / name)
        finding = "Effusion" if i % 2 else "No Finding"  # half positive: the confounded mixes draw from both
        lines.append(f"{name},{finding},0,{i + 1},58,M,{('PA', 'AP')[i % 2]},2682,2749,0.143,0.143")
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    return root


def write_idc(root: Path, patients: int = 10, per_class: int = 6, seed: int = 3) -> Path:
    """Kaggle IDC layout: 50 x 50 RGB patches of each class for each patient (tumour patches pinker)."""
    rng = np.random.default_rng(seed)
    for p in range(patients):
        pid = str(9000 + p)
        for label in (0, 1):
            folder = root / pid / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                base = np.array([200, 150, 200] if label else [230, 200, 220], float)
                patch = np.clip(base + rng.normal(0, 25, (50, 50, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(patch).save(folder / f"{pid}_idx5_x{50 * k + 1}_y{50 * label + 1}_class{label}.png")
    return root


def write_msd_brain(root: Path, cases: int = 12, side: int = 40, depth: int = 12, seed: int = 4) -> Path:
    """MSD Task01 layout: ``dataset.json``, ``imagesTr/BRATS_NNN.nii.gz`` (X, Y, Z, 4) and ``labelsTr/``.

    Each case is a block brain with a tumour blob on some of its slices, FLAIR bright and T1 dark there.
    """
    rng = np.random.default_rng(seed)
    training = []
    for k in range(1, cases + 1):
        brain = np.zeros((side, side, depth), np.float32)
        brain[4:side - 4, 6:side - 6, 1:] = 1.0
        seg = np.zeros(brain.shape, np.uint8)
        r, c = rng.integers(10, side - 14, 2)
        first = int(rng.integers(2, depth - 5))
        seg[r:r + 6, c:c + 6, first:first + 4] = rng.choice([1, 2, 3])
        noise = rng.normal(0, 0.05, brain.shape).astype(np.float32)
        flair = 100 * (brain * (0.5 + noise) + 0.6 * (seg > 0))
        t1 = 100 * (brain * (0.8 + noise) - 0.4 * (seg > 0))
        image = np.stack([flair, t1, t1 * 1.1, flair * 0.9], axis=-1)
        for folder, array in (("imagesTr", image), ("labelsTr", seg)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(array, np.eye(4)), str(root / folder / f"BRATS_{k:03d}.nii.gz"))
        training.append({"image": f"./imagesTr/BRATS_{k:03d}.nii.gz", "label": f"./labelsTr/BRATS_{k:03d}.nii.gz"})
    (root / "dataset.json").write_text(json.dumps({
        "name": "BRATS", "tensorImageSize": "4D", "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
        "numTraining": cases, "training": training, "test": []}))
    return root


def write_vgg_cells(root: Path, n: int = 200, side: int = 32, seed: int = 5) -> Path:
    """``n`` pairs in the VGG cells layout: 1-6 blurred blue cells an image, a red dot on each centre."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:side, :side]
    for number in range(1, n + 1):
        centres = rng.integers(3, side - 3, size=(rng.integers(1, 7), 2))
        blue = sum(np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 4.5) for r, c in centres)
        cell = np.zeros((side, side, 3), np.uint8)
        cell[..., 2] = np.clip(200 * blue + 10, 0, 255).astype(np.uint8)
        dots = np.zeros((side, side, 3), np.uint8)
        dots[centres[:, 0], centres[:, 1]] = (255, 0, 0)
        Image.fromarray(cell).save(root / f"{number:03d}cell.png")
        Image.fromarray(dots).save(root / f"{number:03d}dots.png")
    return root


def write_course_data(root: Path) -> Path:
    """Every tree above under ``root`` (the folder to point ``COURSE_DATA`` at)."""
    chexpert = _cxr_trees().write_chexpert_studies(root / "chexpert", n=240, size=32)
    # every other patient with effusion: ch05a's confounded mixes need many of both classes from each source
    table = chexpert / "CheXpert-v1.0-small" / "train.csv"
    frame = pd.read_csv(table)
    patient = frame["Path"].str.extract(r"patient(\d+)", expand=False).astype(int)
    frame["Pleural Effusion"] = (patient % 2).astype(float)
    frame.to_csv(table, index=False)
    write_nih(root / "nih")
    write_idc(root / "idc")
    write_msd_brain(root / "msd_brain" / "Task01_BrainTumour")
    write_vgg_cells(root / "vgg_cells")
    return root
