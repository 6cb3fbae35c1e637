"""Test helpers: chest X-ray dataset trees in the real on-disk layouts, written by the tests themselves.

``write_image`` writes one constant image (used by the small trees of test_cxr_datasets.py). The study trees
below hold synthetic PA + lateral studies (:mod:`course_lib.chest_xray.synthetic`) saved as each dataset saves its
images — CheXpert-small as 8-bit JPEGs under ``CheXpert-v1.0-small/train/patientXXXXX/study1/``, PadChest as
16-bit PNGs under ``<ImageDir>/`` with the real 36-column gzipped label table — so that the real-data path of the
fusion experiment can train and score on them in seconds. Findings map to real label names by
:data:`FINDING_NAMES`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from course_lib.chest_xray.labels import CHEXPERT_LABELS
from course_lib.chest_xray.synthetic import LABELS, TwoViewConfig, make_studies
from course_lib.data.sample_images import cxr_metadata_csv

SHAPE = (40, 48)  # (H, W) of the constant images: not square, so the resize path is exercised
PADCHEST_CSV = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"
FINDING_NAMES = {"chexpert": {"cardiomegaly": "Cardiomegaly", "effusion": "Pleural Effusion",
                              "retrocardiac_opacity": "Consolidation"},
                 "padchest": {"cardiomegaly": "cardiomegaly", "effusion": "pleural effusion",
                              "emphysema": "emphysema", "nodule": "nodule"}}


def write_image(path: Path, value, kind: str, shape=SHAPE) -> Path:
    """A constant ``value`` in [0, 1] of ``shape``, or a 2-D array in [0, 1], as ``png8``, ``png16`` or ``jpeg``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full(shape, value, np.float64) if np.ndim(value) == 0 else np.asarray(value, np.float64)
    if kind == "png16":
        Image.fromarray(np.round(pixels * 65535).astype(np.uint16)).save(path, format="PNG")
    else:
        Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path, format="PNG" if kind == "png8"
                                                                      else "JPEG", quality=95)
    return path


def _studies(n: int, size: int, seed: int) -> dict:
    """``n`` synthetic studies at ``size`` px; every 6th lacks its lateral, every 10th its PA (as real data)."""
    studies = make_studies(n, TwoViewConfig(size=size, prevalence=0.4), seed=seed)
    studies["present"][::6, 1] = False
    studies["present"][5::10, 0] = False
    return studies


def write_chexpert_studies(root: Path, n: int = 80, size: int = 32, seed: int = 0) -> Path:
    """CheXpert-small layout: ``train.csv`` with the real header, one patient per study, 1.0 / 0.0 labels."""
    folder = root / "CheXpert-v1.0-small"
    folder.mkdir(parents=True, exist_ok=True)
    studies = _studies(n, size, seed)
    lines = ["Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(CHEXPERT_LABELS)]
    for i in range(n):
        names = {FINDING_NAMES["chexpert"][k]: f"{studies['clean_labels'][i, j]:.1f}"
                 for j, k in enumerate(LABELS) if k in FINDING_NAMES["chexpert"]}
        labels = ",".join(names.get(name, "") for name in CHEXPERT_LABELS)
        for view, kind, appa, k in (("frontal", "Frontal", "PA", 0), ("lateral", "Lateral", "", 1)):
            if studies["present"][i, k]:
                path = f"patient{i + 1:05d}/study1/view{k + 1}_{view}.jpg"
                write_image(folder / "train" / path, studies["pa" if k == 0 else "lateral"][i, 0], "jpeg")
                lines.append(f"CheXpert-v1.0-small/train/{path},Female,60,{kind},{appa},{labels}")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def write_padchest_studies(root: Path, n: int = 80, size: int = 32, seed: int = 1) -> Path:
    """PadChest layout: the gzipped table with the real header, 16-bit PNGs in three ``ImageDir`` folders."""
    header = pd.read_csv(cxr_metadata_csv("padchest"), nrows=0).columns
    studies = _studies(n, size, seed)
    rows = []
    for i in range(n):
        found = [FINDING_NAMES["padchest"][k] for j, k in enumerate(LABELS)
                 if k in FINDING_NAMES["padchest"] and studies["clean_labels"][i, j]]
        labels = str(found or ["normal"])
        for view, k in (("PA", 0), ("L", 1)):
            if studies["present"][i, k]:
                image = f"s{i}_{view.lower()}.png"
                rows.append({"ImageID": image, "ImageDir": i % 3, "StudyID": f"s{i}", "PatientID": f"p{i}",
                             "Projection": view, "MethodLabel": "Physician", "Labels": labels})
                write_image(root / str(i % 3) / image, studies["pa" if k == 0 else "lateral"][i, 0], "png16")
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=header).to_csv(root / PADCHEST_CSV, index=False, compression="gzip")
    return root
