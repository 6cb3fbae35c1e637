"""Kaggle IDC (invasive ductal carcinoma) breast histopathology patches: reader, patient split, mosaics.

The dataset (Janowczyk & Madabhushi 2016; Cruz-Roa et al. 2014) has 277,524 RGB patches of 50x50
pixels cut from 162 whole-mount slides scanned at 40x and downsampled 4x, about 28 % IDC-positive.
On disk (``data_scripts/idc.py`` prepares it under ``COURSE_DATA/idc``)::

    <root>/<patient_id>/0/<patient_id>_idx5_x<X>_y<Y>_class0.png
    <root>/<patient_id>/1/<patient_id>_idx5_x<X>_y<Y>_class1.png

``X, Y`` are the patch's top-left pixel in the (downsampled) slide, multiples of 50 — enough to
put a patient's patches back together into a mosaic of the slide (:func:`patient_mosaic`).

Two lessons live here. **Split by patient** (:func:`course_lib.data.splits.patient_split`): neighbouring patches of one
slide look alike, so a random patch split leaks the test set into training and inflates accuracy.
**Class imbalance**: :func:`class_counts` shows it; ``course_lib.histology.sampling`` corrects it.

Edge patches: some patches at a slide's right or bottom border are smaller than 50x50. The dataset
pads them to 50x50 with white (``small="pad"``, the glass they would have shown) or leaves them out
(``small="skip"``, which reads every image header once when indexing).

Folders whose name is not all digits are ignored (the Kaggle archive repeats every patient inside
``IDC_regular_ps50_idx5/``), as are hidden files such as ``.DS_Store``; any other file in a class
folder must match the naming scheme exactly, or a ``ValueError`` names it.

References
----------
Cruz-Roa et al. (2014). Automatic detection of invasive ductal carcinoma in whole slide images with CNNs. SPIE 9041.
Janowczyk & Madabhushi (2016). Deep learning for digital pathology image analysis. J Pathol Inform 7:29.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from course_lib import config

__all__ = ["PATCH", "IDCPatch", "parse_idc_name", "scan_idc", "IDCDataset", "class_counts",
           "patient_mosaic", "idc_root"]

PATCH = 50  # patch side in pixels
NAME = re.compile(r"(?P<pid>\d+)_idx5_x(?P<x>\d+)_y(?P<y>\d+)_class(?P<label>[01])\.png")


class IDCPatch(NamedTuple):
    patient: str  # patient id as in the folder name, e.g. "10253"
    x: int  # column of the patch's top-left pixel in the slide
    y: int  # row of the patch's top-left pixel in the slide
    label: int  # 1 = IDC, 0 = not IDC
    path: Path | None = None


def parse_idc_name(name: str) -> IDCPatch:
    """Parse ``<pid>_idx5_x<X>_y<Y>_class<0|1>.png``.

    Raises
    ------
    ValueError
        If ``name`` does not match exactly (the message names it).

    Examples
    --------
    >>> parse_idc_name("10253_idx5_x1001_y1051_class0.png")
    IDCPatch(patient='10253', x=1001, y=1051, label=0, path=None)
    """
    match = NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not an IDC patch name <pid>_idx5_x<X>_y<Y>_class<0|1>.png")
    return IDCPatch(match["pid"], int(match["x"]), int(match["y"]), int(match["label"]))


def idc_root() -> Path:
    """Default dataset folder, ``COURSE_DATA/idc``."""
    return config.data_dir("idc")


def _check_root(root) -> Path:
    root = Path(idc_root() if root is None else root)
    if not root.is_dir():
        raise FileNotFoundError(f"IDC dataset folder {root} not found; run `python -m data_scripts.idc` for the "
                                "download steps (Kaggle account needed), then point `root` or COURSE_DATA at it")
    return root


def _patient_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def _scan_patient(folder: Path) -> list[IDCPatch]:
    records = []
    for label in (0, 1):
        class_dir = folder / str(label)
        if not class_dir.is_dir():
            continue
        for file in class_dir.iterdir():
            if file.name.startswith("."):
                continue
            try:
                rec = parse_idc_name(file.name)
            except ValueError as error:
                raise ValueError(f"{file}: {error}") from None
            if rec.patient != folder.name or rec.label != label:
                raise ValueError(f"{file}: name says patient {rec.patient}, class {rec.label} but the file lies in "
                                 f"{folder.name}/{label}/")
            records.append(rec._replace(path=file))
    return sorted(records, key=lambda r: (r.label, r.y, r.x))


def scan_idc(root=None, patients=None) -> list[IDCPatch]:
    """Index every patch under ``root`` (default :func:`idc_root`), optionally only some ``patients``.

    Returns
    -------
    list of IDCPatch
        Sorted by patient (numerically), then class, then (y, x); ``path`` is set.

    Raises
    ------
    FileNotFoundError
        ``root`` (or a requested patient folder) does not exist.
    ValueError
        A file with a name that breaks the scheme, or lies in the wrong folder.
    """
    root = _check_root(root)
    if patients is None:
        folders = _patient_dirs(root)
    else:
        folders = [root / str(pid) for pid in patients]
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            raise FileNotFoundError(f"patient folder(s) not found: {', '.join(missing)}")
    return [rec for folder in folders for rec in _scan_patient(folder)]


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:  # reads the header only
        return image.size


def _pad(patch: np.ndarray) -> np.ndarray:
    """Pad an edge patch (h, w, 3) with white at the bottom/right to (50, 50, 3)."""
    h, w = patch.shape[:2]
    if h > PATCH or w > PATCH:
        raise ValueError(f"patch of shape {patch.shape} is larger than {PATCH}x{PATCH}")
    return np.pad(patch, ((0, PATCH - h), (0, PATCH - w), (0, 0)), constant_values=255)


class IDCDataset(Dataset):
    """Torch dataset of IDC patches: ``(image (3, 50, 50) float32 in [0, 1], label int)``.

    Parameters
    ----------
    root : path, optional
        Dataset folder; default ``COURSE_DATA/idc``.
    patients : iterable of str, optional
        Only these patients (e.g. one split from :func:`course_lib.data.splits.patient_split`); default all.
    small : {"pad", "skip"}
        What to do with edge patches smaller than 50x50 (see the module docstring).
    transform : callable, optional
        Applied to the image tensor.

    Attributes
    ----------
    records : list of IDCPatch
    labels : (N,) int64 ndarray
        For class counts and :func:`course_lib.histology.sampling.balanced_sampler`.
    """

    def __init__(self, root=None, patients=None, *, small: str = "pad", transform=None):
        if small not in ("pad", "skip"):
            raise ValueError(f"`small` must be 'pad' or 'skip', got {small!r}")
        records = scan_idc(root, patients)
        if small == "skip":
            records = [r for r in records if _size(r.path) == (PATCH, PATCH)]
        self.records, self.transform = records, transform
        self.labels = np.array([r.label for r in records], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        record = self.records[i]
        image = torch.from_numpy(_pad(_load(record.path))).permute(2, 0, 1).float() / 255  # (50, 50, 3) -> (3, 50, 50)
        if self.transform is not None:
            image = self.transform(image)
        return image, record.label


def class_counts(records) -> dict[int, int]:
    """Number of patches per class, ``{0: n_negative, 1: n_positive}``, from records or labels."""
    labels = [r.label if isinstance(r, IDCPatch) else int(r) for r in records]
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)
    return {int(c): int(n) for c, n in enumerate(counts)}


def patient_mosaic(root, patient: str) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild one patient's slide from its patches, using the coordinates in the file names.

    Parameters
    ----------
    root : path or None
        Dataset folder (None: ``COURSE_DATA/idc``).
    patient : str
        Patient id (folder name).

    Returns
    -------
    mosaic : (H, W, 3) uint8 ndarray
        White where there is no patch (the dataset keeps only tissue patches). ``H = max(y) + 50``,
        ``W = max(x) + 50``.
    labels : (H, W) int8 ndarray
        1 under IDC patches, 0 under other patches, -1 where there is no patch.
    """
    records = scan_idc(root, [str(patient)])
    if not records:
        raise ValueError(f"patient {patient} has no patches under {_check_root(root)}")
    height = max(r.y for r in records) + PATCH
    width = max(r.x for r in records) + PATCH
    mosaic = np.full((height, width, 3), 255, np.uint8)
    labels = np.full((height, width), -1, np.int8)
    for r in records:
        patch = _load(r.path)
        h, w = patch.shape[:2]
        mosaic[r.y:r.y + h, r.x:r.x + w] = patch
        labels[r.y:r.y + h, r.x:r.x + w] = r.label
    return mosaic, labels
