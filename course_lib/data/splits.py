"""Patient-level splits: every image of a patient lands in the same group (train, validation or test).

Splitting images instead of patients leaks: two radiographs or two tissue patches of one patient look more alike
than any two patients' do, so a model scored on the "unseen" test images has partly seen them. ChestX-ray14
has 30,805 patients for 112,120 images; an image-level 80/20 split puts thousands of patients on both sides
(chapter 1 counts them). One function serves every chapter: a list of patient ids in, or a table of images with a
``patient_id`` column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["patient_split"]


def _groups_of_patients(unique: list[str], fractions: np.ndarray, seed: int) -> list[list[str]]:
    """Sorted patient ids per group, from a seeded shuffle of the sorted unique ids."""
    order = np.random.default_rng(seed).permutation(len(unique))
    bounds = np.round(np.concatenate([[0.0], np.cumsum(fractions)]) * len(unique)).astype(int)
    return [sorted(unique[i] for i in order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def patient_split(patients, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> tuple:
    """Split patients into disjoint groups (train/val/test): no patient is in two groups.

    Parameters
    ----------
    patients : iterable of str, or DataFrame
        Patient ids (duplicates collapse, so ``[r.patient for r in records]`` can be passed as is), or a table
        with a ``patient_id`` column (images or paired studies), whose *rows* are then split by patient.
    fractions : sequence of float
        Share of *patients* per group, summing to 1. Group k gets the patients between
        ``round(n * sum(fractions[:k]))`` and ``round(n * sum(fractions[:k+1]))`` of a seeded shuffle of the
        sorted unique ids, so the same ids and seed always give the same groups.
    seed : int

    Returns
    -------
    tuple
        One group per fraction: a sorted list of ids, or (for a table) a DataFrame with the group's rows in
        their original order and index.

    Raises
    ------
    ValueError
        If ``fractions`` are negative or do not sum to 1, or a table has no ``patient_id`` column.

    Examples
    --------
    >>> train, test = patient_split(["1", "2", "3", "4", "5", "1"], fractions=(0.6, 0.4), seed=0)
    >>> len(train), len(test), set(train) & set(test)
    (3, 2, set())
    >>> frame = pd.DataFrame({"patient_id": ["a", "a", "b", "c", "d", "e"]})
    >>> train, test = patient_split(frame, fractions=(0.6, 0.4))
    >>> sorted(set(train.patient_id) | set(test.patient_id)), set(train.patient_id) & set(test.patient_id)
    (['a', 'b', 'c', 'd', 'e'], set())
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or len(fractions) < 1 or (fractions < 0).any() or abs(fractions.sum() - 1) > 1e-6:
        raise ValueError(f"`fractions` must be non-negative and sum to 1, got {fractions.tolist()}")
    if isinstance(patients, pd.DataFrame):
        if "patient_id" not in patients.columns:
            raise ValueError(f"`patients` table needs a 'patient_id' column, got columns {list(patients.columns)}")
        ids = patients["patient_id"].astype(str)
        groups = _groups_of_patients(sorted(ids.unique()), fractions, seed)
        return tuple(patients[ids.isin(set(group)).to_numpy()] for group in groups)
    return tuple(_groups_of_patients(sorted({str(p) for p in patients}), fractions, seed))
