"""Full mode: a site-confounded chest X-ray mix from two real datasets (Zech et al.'s setting, made on purpose).

Two datasets (two "hospitals", e.g. NIH ChestX-ray14 and CheXpert) label the same finding. Draw ``n`` frontal
images, half positive, so that the dataset agrees with the label at a chosen rate: at ``confound = 0.9`` nine
positives in ten come from site 1 and nine negatives in ten from site 0. Each site has its own scanners, markers,
text overlays and processing, so a network can tell the sites apart, and then the confound lets it read the label
off the site. The same three test mixes as for the synthetic data (correlation kept, removed, reversed) measure
how much it did.

Real radiographs have no ROI annotation here. :func:`central_roi` gives a coarse one: a central ellipse that covers
the lung fields of a centred frontal film and leaves out the corners and borders, where the markers, text and
collimation edges of a site usually are. It is an approximation of "the lungs", stated as such.

The tables come from :mod:`course_lib.chest_xray.labels` (``read_nih``, ``read_chexpert``, ...), whose tidy frames
have a ``path``, a ``patient_id`` and a ``view`` column and one column per finding (1, 0 or NaN). Nothing is
downloaded here; ``data_scripts/`` prepares the datasets.

Mixes are kept apart **by patient**, never by image: a patient with several films (follow-ups, both views) whose
films land in training and in test lets a model recognise the patient instead of the finding. ``exclude`` takes
patient ids, and a patient id is compared as a string across both tables: the same id in both sources counts as
one patient, which can only exclude too much, never leak.

Example
-------
>>> import pandas as pd
>>> site0 = pd.DataFrame({"path": [f"a{i}.png" for i in range(10)], "patient_id": [f"a{i}" for i in range(10)],
...                       "view": "PA", "Effusion": [0, 1] * 5})
>>> site1 = pd.DataFrame({"path": [f"b{i}.png" for i in range(10)], "patient_id": [f"b{i}" for i in range(10)],
...                       "view": "PA", "Effusion": [1, 0] * 5})
>>> mix = confounded_table(site0, site1, "Effusion", n=8, confound=0.75, seed=0)
>>> float((mix.site == mix.label).mean()), int(mix.label.sum())
(0.75, 4)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from course_lib.confounders.synthetic_sites import SiteData

__all__ = ["confounded_table", "shifted_tables", "central_roi", "mix_images"]


def _pool(frame: pd.DataFrame, label: str, value: int, views) -> pd.DataFrame:
    if label not in frame.columns:
        raise ValueError(f"`label` {label!r} is not a column of the table (columns: {list(frame.columns)[:12]}...)")
    if "patient_id" not in frame.columns:
        raise ValueError("the tables need a `patient_id` column: mixes are kept apart by patient (columns: "
                         f"{list(frame.columns)[:12]}...)")
    rows = frame[label] == value
    if views is not None and "view" in frame.columns:
        rows &= frame["view"].isin(views)
    return frame[rows]


def confounded_table(site0: pd.DataFrame, site1: pd.DataFrame, label: str, n: int, confound: float, seed: int,
                     *, views=("PA", "AP"), exclude=None) -> pd.DataFrame:
    """Draw ``n`` images, half positive, with ``P(site == label) = confound`` (rounded to whole images).

    Parameters
    ----------
    site0, site1 : DataFrame
        Tidy tables with ``path`` and the ``label`` column (1 positive, 0 negative, NaN unknown: never drawn).
    label : str
        The finding.
    n : int
        Even number of images.
    confound : float in [0, 1]
    seed : int
    views : tuple of str or None
        Keep these views (frontal by default); None keeps all.
    exclude : iterable of str, optional
        Patient ids none of whose images may be drawn (e.g. the test patients, when drawing a training mix).

    Returns
    -------
    DataFrame
        Columns ``path``, ``patient_id`` (str), ``site`` (0 or 1), ``label`` (0 or 1), shuffled. One mix may hold
        several images of a patient.

    Raises
    ------
    ValueError
        If ``n`` is odd or not positive, ``confound`` is outside [0, 1], or a site has too few images of a class.
    """
    if not isinstance(n, (int, np.integer)) or n < 2 or n % 2:
        raise ValueError(f"`n` must be a positive even int (half positives), got {n!r}")
    if not 0.0 <= confound <= 1.0:
        raise ValueError(f"`confound` must lie in [0, 1], got {confound!r}")
    rng = np.random.default_rng(seed)
    half = n // 2
    agree = int(round(confound * half))  # positives from site 1 = negatives from site 0
    excluded = {str(p) for p in (() if exclude is None else exclude)}
    parts = []
    for value, counts in ((1, {1: agree, 0: half - agree}), (0, {0: agree, 1: half - agree})):
        for site, frame in ((0, site0), (1, site1)):
            pool = _pool(frame, label, value, views)
            pool = pool[~pool["patient_id"].astype(str).isin(excluded)]
            need = counts[site]
            if len(pool) < need:
                raise ValueError(f"site {site} has {len(pool)} images with {label} = {value}, the mix needs {need}")
            chosen = pool.iloc[rng.choice(len(pool), size=need, replace=False)]
            parts.append(pd.DataFrame({"path": chosen["path"].to_numpy(),
                                       "patient_id": chosen["patient_id"].astype(str).to_numpy(), "site": site,
                                       "label": value}))
    table = pd.concat(parts, ignore_index=True)
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def shifted_tables(site0: pd.DataFrame, site1: pd.DataFrame, label: str, n: int, train_confound: float, seed: int,
                   *, exclude=None) -> dict[str, pd.DataFrame]:
    """Test mixes with the correlation kept, removed (0.5) and reversed; no patient in two of them or in ``exclude``
    (patient ids)."""
    used = {str(p) for p in (() if exclude is None else exclude)}
    out = {}
    for k, (name, confound) in enumerate((("kept", train_confound), ("removed", 0.5),
                                          ("reversed", 1.0 - train_confound))):
        out[name] = confounded_table(site0, site1, label, n, confound, seed + k, exclude=used)
        used |= set(out[name]["patient_id"])
    return out


def central_roi(size: int, *, width: float = 0.80, height: float = 0.85) -> np.ndarray:
    """A central ellipse covering ``width`` x ``height`` of a ``size`` x ``size`` image: (size, size) bool.

    A coarse stand-in for the lung fields of a centred frontal film; corners and borders (markers, text,
    collimation) lie outside it.
    """
    if size < 4 or not (0 < width <= 1 and 0 < height <= 1):
        raise ValueError(f"`size` must be >= 4 and the fractions in (0, 1], got {size}, {width}, {height}")
    centre = (size - 1) / 2
    rows, cols = np.mgrid[:size, :size]
    return ((rows - centre) / (height * size / 2)) ** 2 + ((cols - centre) / (width * size / 2)) ** 2 <= 1.0


def mix_images(table: pd.DataFrame, roots: Mapping[int, Path], size: int, confound: float,
               reader: Callable[..., np.ndarray] | None = None) -> SiteData:
    """Read the images of a mix into a :class:`~course_lib.confounders.synthetic_sites.SiteData`.

    Parameters
    ----------
    table : DataFrame
        From :func:`confounded_table` (``path``, ``site``, ``label``).
    roots : mapping site -> folder
        The folder each site's ``path`` is relative to.
    size : int
        Image side; every image gets the same :func:`central_roi`.
    confound : float
        Recorded on the result.
    reader : callable, optional
        ``reader(path, size) -> (size, size)`` float array in [0, 1]; default
        :func:`course_lib.chest_xray.images.load_radiograph`.

    Returns
    -------
    SiteData
        ``images`` (N, 1, size, size) float32, ``labels``, ``sites``, ``roi`` (the central ellipse).
    """
    if reader is None:
        from course_lib.chest_xray.images import load_radiograph as reader
    missing = {int(s) for s in table["site"].unique()} - set(roots)
    if missing:
        raise ValueError(f"`roots` has no folder for site(s) {sorted(missing)}")
    images = np.stack([np.asarray(reader(Path(roots[site]) / path, size), dtype=np.float32)
                       for path, site in zip(table["path"], table["site"], strict=True)])[:, None]  # (N, 1, S, S)
    if images.shape[2:] != (size, size):
        raise ValueError(f"`reader` returned images of shape {images.shape[2:]}, expected ({size}, {size})")
    roi = np.broadcast_to(central_roi(size), images.shape).copy()
    return SiteData(images, table["label"].to_numpy(np.int64), table["site"].to_numpy(np.int64), roi,
                    float(confound))
