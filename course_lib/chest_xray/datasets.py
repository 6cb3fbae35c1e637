"""Torch datasets over the chest X-ray tables: one view per item, or a PA + lateral pair with a presence flag.

Items are dicts, the format shared with the synthetic multi-view generator and the fusion models::

    SingleViewDataset -> {"image": (1, S, S) float32, "labels": (L,) float32, "label_mask": (L,) float32,
                          "patient_id": str}
    PairedViewDataset -> {"pa": (1, S, S), "lateral": (1, S, S), "present": (2,) bool [pa, lateral],
                          "labels": (L,), "label_mask": (L,), "patient_id": str}

Images are read with :func:`course_lib.chest_xray.images.load_radiograph` (``[0, 1]``, bright = dense). A label
that is unknown (NaN in the table: not mentioned, or uncertain under U-Ignore) has ``labels = 0`` and
``label_mask = 0``, so a loss multiplied by the mask ignores it. A missing view is an all-zero image with
``present = False``; the models decide what to do with it (that is the missing-view lesson). The default
``collate_fn`` of a ``DataLoader`` batches these dicts (strings become a list).

On-disk layouts read by the convenience constructors (``root`` defaults to ``COURSE_DATA/<name>``; the scripts
``data_scripts/<name>.py`` download or explain how to get each dataset, then verify it)::

    nih/Data_Entry_2017_v2020.csv                 + nih/images/00000001_000.png        (8-bit PNG, 1024 x 1024)
    padchest/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz
                                                  + padchest/<ImageDir>/<ImageID>      (16-bit PNG)
    chexpert/CheXpert-v1.0-small/train.csv        + chexpert/CheXpert-v1.0-small/train/patient00001/study1/
                                                    view1_frontal.jpg                  (8-bit JPEG, ~320 px)
    mimic/mimic-cxr-2.0.0-metadata.csv.gz, mimic-cxr-2.0.0-chexpert.csv.gz, [mimic-cxr-2.0.0-split.csv.gz]
                                                  + mimic/files/p10/p10000032/s50414267/<dicom_id>.jpg

Any CSV may be plain or gzipped. When ``<root>/resized_<S>/`` exists (written by ``data_scripts/<name>.py
--resize S``, same relative paths) and ``size`` is ``S``, images are read from there: decoding a 224 px PNG is
far faster than a 3000 px one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from course_lib import config
from course_lib.chest_xray.images import FITS, _check_size, _check_window, load_radiograph
from course_lib.chest_xray.labels import (
    CHEXPERT_LABELS,
    NIH_LABELS,
    PADCHEST_LABELS,
    label_columns,
    pair_views,
    read_chexpert,
    read_mimic,
    read_nih,
    read_padchest,
)

__all__ = ["SingleViewDataset", "PairedViewDataset", "resized_root", "find_table", "nih_dataset",
           "padchest_pairs", "chexpert_pairs", "mimic_pairs"]

NIH_CSV = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
PADCHEST_CSV = ("PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv",)
CHEXPERT_DIRS = ("CheXpert-v1.0-small", "CheXpert-v1.0")
MIMIC_PREFIX = "mimic-cxr-2.0.0-"


def _label_arrays(frame: pd.DataFrame, labels) -> tuple[np.ndarray, np.ndarray]:
    labels = list(labels)
    if not labels:
        raise ValueError("`labels` must name at least one label column")
    missing = [c for c in labels if c not in frame.columns]
    if missing:
        raise ValueError(f"label columns {missing} are not in the frame (it has {list(frame.columns)})")
    values = frame[labels].to_numpy(dtype=np.float32)  # (N, L), NaN = unknown
    known = ~np.isnan(values)
    return np.where(known, values, 0.0).astype(np.float32), known.astype(np.float32)


def _check_options(size, fit, window) -> None:
    """Fail when the dataset is built, not at the first item inside a DataLoader worker."""
    _check_size(size)
    _check_window(window)
    if fit not in FITS:
        raise ValueError(f"`fit` must be one of {FITS}, got {fit!r}")


def _read(root: Path, relative, size, fit, window, transform) -> torch.Tensor:
    image = torch.from_numpy(load_radiograph(root / relative, size, fit=fit, window=window))[None]  # (1, S, S)
    return image if transform is None else transform(image)


class SingleViewDataset(Dataset):
    """One image per item: ``{"image", "labels", "label_mask", "patient_id"}`` (module docstring).

    Parameters
    ----------
    frame : DataFrame
        A tidy image table (``path``, ``patient_id`` and the label columns), e.g. from
        :func:`course_lib.chest_xray.labels.read_nih`.
    root : path
        Folder that ``frame.path`` is relative to.
    labels : sequence of str
        Label columns, in the order of the output vector.
    size : int or None
        Output side ``S``; ``None`` keeps native sizes (then batches need equal sizes).
    transform : callable, optional
        Applied to the ``(1, S, S)`` image tensor.
    fit, window
        Passed to :func:`~course_lib.chest_xray.images.load_radiograph`.

    Attributes
    ----------
    frame : DataFrame
        The rows, index reset (item ``i`` is row ``i``).
    """

    def __init__(self, frame: pd.DataFrame, root, labels, size: int | None = 224, transform=None, *,
                 fit: str = "stretch", window="auto"):
        if "path" not in frame.columns or "patient_id" not in frame.columns:
            raise ValueError("`frame` needs 'path' and 'patient_id' columns (see course_lib.chest_xray.labels)")
        _check_options(size, fit, window)
        self.frame = frame.reset_index(drop=True)
        self.root, self.labels, self.size = Path(root), list(labels), size
        self.transform, self.fit, self.window = transform, fit, window
        self._values, self._mask = _label_arrays(self.frame, self.labels)

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, i: int) -> dict:
        row = self.frame.iloc[i]
        return {"image": _read(self.root, row["path"], self.size, self.fit, self.window, self.transform),
                "labels": torch.from_numpy(self._values[i]), "label_mask": torch.from_numpy(self._mask[i]),
                "patient_id": str(row["patient_id"])}


class PairedViewDataset(Dataset):
    """A PA and a lateral image per study: ``{"pa", "lateral", "present", "labels", "label_mask", "patient_id"}``.

    Parameters
    ----------
    paired_frame : DataFrame
        From :func:`course_lib.chest_xray.labels.pair_views` (``pa_path``, ``lateral_path``, ``has_pa``,
        ``has_lateral``, ``patient_id``, labels). Every row needs at least one view.
    root, labels, size, transform, fit, window
        As in :class:`SingleViewDataset`; ``transform`` is applied to each present view separately.
        With ``size=None`` a missing view gets the shape of the present one.
    """

    def __init__(self, paired_frame: pd.DataFrame, root, labels, size: int | None = 224, transform=None, *,
                 fit: str = "stretch", window="auto"):
        needed = ["pa_path", "lateral_path", "has_pa", "has_lateral", "patient_id"]
        missing = [c for c in needed if c not in paired_frame.columns]
        if missing:
            raise ValueError(f"`paired_frame` lacks {missing}; build it with course_lib.chest_xray.labels.pair_views")
        _check_options(size, fit, window)
        self.frame = paired_frame.reset_index(drop=True)
        self.present = self.frame[["has_pa", "has_lateral"]].to_numpy(dtype=bool)  # (N, 2)
        empty = np.flatnonzero(~self.present.any(axis=1))
        if len(empty):
            raise ValueError(f"{len(empty)} rows of `paired_frame` have neither view (first: row {empty[0]}, "
                             f"study {self.frame['study_id'].iloc[empty[0]] if 'study_id' in self.frame else '?'})")
        self.root, self.labels, self.size = Path(root), list(labels), size
        self.transform, self.fit, self.window = transform, fit, window
        self._values, self._mask = _label_arrays(self.frame, self.labels)

    def __len__(self) -> int:
        return len(self.frame)

    def label_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, label_mask)``: (N, L) float32 arrays of every item, without reading an image."""
        return self._values.copy(), self._mask.copy()

    def __getitem__(self, i: int) -> dict:
        row, present = self.frame.iloc[i], self.present[i]
        views = [_read(self.root, row[column], self.size, self.fit, self.window, self.transform) if here else None
                 for column, here in zip(("pa_path", "lateral_path"), present, strict=True)]
        shape = next(v.shape for v in views if v is not None)
        pa, lateral = (v if v is not None else torch.zeros(shape) for v in views)  # missing view: zeros
        return {"pa": pa, "lateral": lateral, "present": torch.from_numpy(present.copy()),
                "labels": torch.from_numpy(self._values[i]), "label_mask": torch.from_numpy(self._mask[i]),
                "patient_id": str(row["patient_id"])}


def resized_root(root, size: int) -> Path:
    """Where ``data_scripts/<name>.py --resize size`` writes the resized copy: ``<root>/resized_<size>``."""
    return Path(root) / f"resized_{int(size)}"


def find_table(folder, names, script: str) -> Path:
    """The first of ``names`` (or ``name.gz``) in ``folder``.

    Raises
    ------
    FileNotFoundError
        None is there; the message names the expected file and the script that gets it.
    """
    folder = Path(folder)
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{folder / names[0]} (or .gz) not found; run `python data_scripts/{script}.py` "
                            f"for how to get the dataset, then point `root` or COURSE_DATA at it")


def _dataset_root(root, name: str) -> Path:
    root = Path(config.data_dir(name) if root is None else root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} not found; run `python data_scripts/{name}.py` for how to "
                                f"get {name}, then point `root` or COURSE_DATA at it")
    return root


def _image_root(root: Path, size, image_root) -> Path:
    if image_root is not None:
        return Path(image_root)
    resized = resized_root(root, size) if size is not None else None
    return resized if resized is not None and resized.is_dir() else root


def _select(frame: pd.DataFrame, patients, image_root: Path, skip_missing: bool) -> pd.DataFrame:
    if patients is not None:
        frame = frame[frame["patient_id"].isin({str(p) for p in patients})]
    if skip_missing:  # a partial download: keep the images that are on disk
        frame = frame[[(image_root / p).is_file() for p in frame["path"]]]
    return frame


def _pairs(frame, root, image_root, labels, size, patients, skip_missing, require_both, **kwargs):
    image_root = _image_root(root, size, image_root)
    paired = pair_views(_select(frame, patients, image_root, skip_missing), labels)
    if require_both:
        paired = paired[paired["has_pa"] & paired["has_lateral"]]
    return PairedViewDataset(paired, image_root, labels, size, **kwargs)


def nih_dataset(root=None, labels=NIH_LABELS, size: int | None = 224, *, views=("PA", "AP"), patients=None,
                image_root=None, skip_missing: bool = False, transform=None, fit: str = "stretch",
                window="auto") -> SingleViewDataset:
    """NIH ChestX-ray14 as a :class:`SingleViewDataset` (frontal views only: NIH has no laterals).

    Parameters
    ----------
    root : path, optional
        Dataset folder (default ``COURSE_DATA/nih``) holding ``Data_Entry_2017_v2020.csv`` and ``images/``.
    labels : sequence of str
        Default: the 14 findings.
    views : sequence of str
        Keep these ``view`` values (``"PA"``, ``"AP"``).
    patients : iterable, optional
        Keep only these patients (one group of :func:`~course_lib.data.splits.patient_split`).
    image_root : path, optional
        Where the image paths point to; default ``<root>/resized_<size>`` if it exists, else ``root``.
    skip_missing : bool
        Drop rows whose image file is absent (a partial download) instead of failing when read.

    Raises
    ------
    FileNotFoundError
        ``root`` or the CSV is missing (names it and ``data_scripts/nih.py``).
    """
    root = _dataset_root(root, "nih")
    frame = read_nih(find_table(root, NIH_CSV, "nih"))
    frame = frame[frame["view"].isin(views)]
    image_root = _image_root(root, size, image_root)
    frame = _select(frame, patients, image_root, skip_missing)
    return SingleViewDataset(frame, image_root, labels, size, transform, fit=fit, window=window)


def padchest_pairs(root=None, labels=PADCHEST_LABELS, size: int | None = 224, *, patients=None, image_root=None,
                   skip_missing: bool = False, require_both: bool = False, transform=None, fit: str = "stretch",
                   window="auto") -> PairedViewDataset:
    """PadChest PA + lateral pairs as a :class:`PairedViewDataset` (``root`` default ``COURSE_DATA/padchest``).

    ``labels`` may be ``"all"`` (every PadChest label). ``require_both=True`` keeps only studies that have both
    views; otherwise studies with one view come with the other marked missing. Other parameters as in
    :func:`nih_dataset`.
    """
    root = _dataset_root(root, "padchest")
    frame = read_padchest(find_table(root, PADCHEST_CSV, "padchest"), labels)
    labels = label_columns(frame) if isinstance(labels, str) else labels  # "all"
    return _pairs(frame, root, image_root, labels, size, patients, skip_missing, require_both,
                  transform=transform, fit=fit, window=window)


def chexpert_pairs(root=None, labels=CHEXPERT_LABELS, size: int | None = 224, *, split: str = "train",
                   uncertain: str = "ignore", blank: str = "nan", patients=None, image_root=None,
                   skip_missing: bool = False, require_both: bool = False, transform=None, fit: str = "stretch",
                   window="auto") -> PairedViewDataset:
    """CheXpert PA + lateral pairs (``root`` default ``COURSE_DATA/chexpert``, holding ``CheXpert-v1.0-small/``).

    ``split`` picks ``train.csv`` or ``valid.csv``; ``uncertain``/``blank`` as in
    :func:`~course_lib.chest_xray.labels.read_chexpert`. Other parameters as in :func:`padchest_pairs`.
    """
    if split not in ("train", "valid"):
        raise ValueError(f"`split` must be 'train' or 'valid', got {split!r}")
    root = _dataset_root(root, "chexpert")
    folders = [root / d for d in CHEXPERT_DIRS if (root / d).is_dir()] or [root / CHEXPERT_DIRS[0]]
    frame = read_chexpert(find_table(folders[0], (f"{split}.csv",), "chexpert"), uncertain, blank)
    return _pairs(frame, root, image_root, labels, size, patients, skip_missing, require_both,
                  transform=transform, fit=fit, window=window)


def mimic_pairs(root=None, labels=CHEXPERT_LABELS, size: int | None = 224, *, split: str | None = None,
                uncertain: str = "ignore", blank: str = "nan", patients=None, image_root=None,
                skip_missing: bool = False, require_both: bool = False, transform=None, fit: str = "stretch",
                window="auto") -> PairedViewDataset:
    """MIMIC-CXR-JPG PA + lateral pairs (``root`` default ``COURSE_DATA/mimic``).

    ``split`` (``"train"``, ``"validate"``, ``"test"``) keeps that official split, read from
    ``mimic-cxr-2.0.0-split.csv(.gz)``; ``None`` keeps all. Other parameters as in :func:`chexpert_pairs`.
    """
    if split not in (None, "train", "validate", "test"):
        raise ValueError(f"`split` must be None, 'train', 'validate' or 'test', got {split!r}")
    root = _dataset_root(root, "mimic")
    tables = [find_table(root, (f"{MIMIC_PREFIX}{name}.csv",), "mimic") for name in ("metadata", "chexpert")]
    split_csv = find_table(root, (f"{MIMIC_PREFIX}split.csv",), "mimic") if split is not None else None
    frame = read_mimic(*tables, split_csv, uncertain=uncertain, blank=blank)
    if split is not None:
        frame = frame[frame["split"] == split]
    return _pairs(frame, root, image_root, labels, size, patients, skip_missing, require_both,
                  transform=transform, fit=fit, window=window)
