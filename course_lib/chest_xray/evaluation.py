"""Scoring chest X-ray models as the papers do: per-label AUROC with CIs, and F1 against readers.

* :func:`per_label_auroc` — one AUROC per finding with a percentile bootstrap CI, over the studies whose
  label is known; :func:`paired_auroc_difference` — AUROC(a) - AUROC(b) on the *same* resamples (is the
  fusion better than PA-only on this finding?); :func:`auroc_table` — models x findings as a table.
* The CheXNet comparison with radiologists (Rajpurkar et al. 2017), on simulated readers: there is no
  ground truth, so each reader is scored against the majority vote of the *other* readers, and the model
  against each of those majority votes (its F1 averaged over them). :func:`simulate_readers` draws
  readers of a chosen sensitivity / specificity; :func:`compare_with_readers` builds the table with
  bootstrap CIs and the paired CI of "model minus readers".

AUROCs reuse :func:`course_lib.metrics.auroc`; F1 CIs and paired differences reuse
:func:`course_lib.metrics.f1_bootstrap_ci` and :func:`course_lib.metrics.paired_f1_difference`, on the
resamples of :func:`course_lib.metrics.bootstrap_indices`. Only the AUROC of many resamples at once is
new here: it ranks all resamples in one call, ~100x faster than a Python loop over ``auroc``.

References
----------
Rajpurkar et al. (2017). CheXNet: radiologist-level pneumonia detection on chest X-rays with deep
learning. arXiv:1711.05225. Hanley & McNeil (1982). The meaning and use of the area under a ROC curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from course_lib.metrics import ConfidenceInterval, auroc, bootstrap_indices, f1_bootstrap_ci, paired_f1_difference
from course_lib.metrics.bootstrap import f1_of_resamples
from course_lib.metrics.validate import as_binary, as_numpy, check_same_shape

__all__ = ["auroc_of_resamples", "per_label_auroc", "paired_auroc_difference", "auroc_table",
           "simulate_readers", "majority_vote", "best_f1_threshold", "compare_with_readers"]


def auroc_of_resamples(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row, vectorised: (R, N) labels and scores -> (R,); NaN for a row with one class only.

    Same formula as :func:`course_lib.metrics.auroc` (Mann-Whitney U with average ranks for ties).
    """
    ranks = rankdata(scores, axis=-1)  # (R, N)
    n_pos = y_true.sum(axis=-1)
    n_neg = y_true.shape[-1] - n_pos
    u = (ranks * y_true).sum(axis=-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def _ci(estimate: float, values: np.ndarray, confidence: float) -> ConfidenceInterval:
    """Percentile CI, ignoring resamples where the statistic is undefined (one class only)."""
    alpha = (1 - confidence) / 2
    low, high = np.nanpercentile(values, [100 * alpha, 100 * (1 - alpha)])
    return ConfidenceInterval(float(estimate), float(low), float(high))


def _check_scores(y_true, scores, label_mask, names):
    t = as_binary(y_true, "y_true")
    s = as_numpy(scores, "scores").astype(np.float64)
    check_same_shape(s, t, "scores", "y_true")
    if t.ndim == 1:
        t, s = t[:, None], s[:, None]
    if t.ndim != 2:
        raise ValueError(f"`y_true` must have shape (N,) or (N, L), got {t.shape}")
    m = np.ones(t.shape, bool) if label_mask is None else as_binary(label_mask, "label_mask")
    if m.ndim == 1:
        m = m[:, None]
    check_same_shape(m, t, "label_mask", "y_true")
    names = [f"label_{j}" for j in range(t.shape[1])] if names is None else list(names)
    if len(names) != t.shape[1]:
        raise ValueError(f"`labels` has {len(names)} names for {t.shape[1]} label columns")
    return t, s, m, names


def per_label_auroc(y_true, scores, *, label_mask=None, labels: Sequence[str] | None = None,
                    n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict[str, ConfidenceInterval]:
    """AUROC of each label with a percentile bootstrap CI, over the studies where the label is known.

    Parameters
    ----------
    y_true : (N,) or (N, L) array_like of {0, 1}
    scores : same shape, float
        Probabilities or logits (only the order matters).
    label_mask : same shape, {0, 1}, optional
        1 where the label is known; unknown entries are left out of that label's AUROC.
    labels : sequence of str, optional
        Names of the L columns (default ``label_0``, ...).
    n_resamples, confidence, seed
        Bootstrap options; resamples with a single class are skipped.

    Returns
    -------
    dict
        ``{label: ConfidenceInterval(estimate, low, high)}``.

    Raises
    ------
    ValueError
        A label whose known entries hold a single class (AUROC undefined).

    Examples
    --------
    >>> res = per_label_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], labels=["effusion"], n_resamples=200)
    >>> res["effusion"].estimate
    0.75
    """
    t, s, m, names = _check_scores(y_true, scores, label_mask, labels)
    out = {}
    for j, name in enumerate(names):
        rows = np.flatnonzero(m[:, j])
        tj, sj = t[rows, j], s[rows, j]
        estimate = auroc(tj, sj) if rows.size else np.nan
        idx = bootstrap_indices(rows.size, n_resamples, seed)  # (R, n)
        out[name] = _ci(estimate, auroc_of_resamples(tj[idx], sj[idx]), confidence)
    return out


def paired_auroc_difference(y_true, scores_a, scores_b, *, label_mask=None, labels: Sequence[str] | None = None,
                            n_resamples: int = 2000, confidence: float = 0.95,
                            seed: int = 0) -> dict[str, ConfidenceInterval]:
    """AUROC(a) - AUROC(b) per label, with a CI from the *same* bootstrap resamples for both models.

    Pairing cancels the luck of which studies were drawn, so the CI is narrower than comparing two separate
    CIs; a CI above 0 says model ``a`` ranks that finding better on this test set.

    Examples
    --------
    >>> y = [0, 0, 1, 1]
    >>> d = paired_auroc_difference(y, [0.1, 0.2, 0.8, 0.9], [0.1, 0.4, 0.35, 0.8], n_resamples=200)
    >>> d["label_0"].estimate   # 1.0 - 0.75
    0.25
    """
    t, a, m, names = _check_scores(y_true, scores_a, label_mask, labels)
    _, b, _, _ = _check_scores(y_true, scores_b, label_mask, labels)
    out = {}
    for j, name in enumerate(names):
        rows = np.flatnonzero(m[:, j])
        tj, aj, bj = t[rows, j], a[rows, j], b[rows, j]
        idx = bootstrap_indices(rows.size, n_resamples, seed)  # (R, n), shared by both models
        values = auroc_of_resamples(tj[idx], aj[idx]) - auroc_of_resamples(tj[idx], bj[idx])
        out[name] = _ci(auroc(tj, aj) - auroc(tj, bj), values, confidence)
    return out


def auroc_table(results: dict[str, dict[str, ConfidenceInterval]], *, digits: int = 3,
                with_ci: bool = True) -> pd.DataFrame:
    """Models x labels table of ``"0.912 (0.880, 0.941)"`` strings (or plain estimates), plus a mean column.

    Parameters
    ----------
    results : dict
        ``{model: {label: ConfidenceInterval}}`` as returned by :func:`per_label_auroc` for each model.
    digits : int
    with_ci : bool
        False: floats (the estimates) instead of strings.
    """
    rows = {}
    for model, per_label in results.items():
        row = {label: (f"{ci.estimate:.{digits}f} ({ci.low:.{digits}f}, {ci.high:.{digits}f})" if with_ci
                       else round(ci.estimate, digits)) for label, ci in per_label.items()}
        mean = float(np.mean([ci.estimate for ci in per_label.values()]))
        row["mean"] = f"{mean:.{digits}f}" if with_ci else round(mean, digits)
        rows[model] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def simulate_readers(y_true, n_readers: int = 4, sensitivity: float | Sequence[float] = 0.7,
                     specificity: float | Sequence[float] = 0.9, seed: int = 0) -> np.ndarray:
    """Binary reads of ``n_readers`` independent readers of known sensitivity and specificity.

    Parameters
    ----------
    y_true : (N,) array_like of {0, 1}
        The truth (which the CheXNet procedure itself never sees).
    n_readers : int
    sensitivity, specificity : float or (n_readers,) sequence of floats in [0, 1]
        One value for all readers, or one per reader.
    seed : int

    Returns
    -------
    (n_readers, N) bool ndarray

    Examples
    --------
    >>> reads = simulate_readers([1, 0] * 500, 3, sensitivity=0.8, specificity=1.0, seed=0)
    >>> reads.shape, bool(reads[:, 1::2].any()), bool(0.75 < reads[:, ::2].mean() < 0.85)
    ((3, 1000), False, True)
    """
    t = as_binary(y_true, "y_true")
    if t.ndim != 1:
        raise ValueError(f"`y_true` must be 1-D, got shape {t.shape}")
    if not isinstance(n_readers, int) or n_readers < 1:
        raise ValueError(f"`n_readers` must be a positive int, got {n_readers!r}")
    rates = {}
    for name, value in (("sensitivity", sensitivity), ("specificity", specificity)):
        v = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_readers,)) if np.ndim(value) == 0 \
            else np.asarray(value, dtype=np.float64)
        if v.shape != (n_readers,) or not np.all((v >= 0) & (v <= 1)):
            raise ValueError(f"`{name}` must be one value or {n_readers} values in [0, 1], got {value!r}")
        rates[name] = v[:, None]  # (R, 1)
    u = np.random.default_rng(seed).random((n_readers, t.size))  # (R, N)
    return np.where(t[None], u < rates["sensitivity"], u >= rates["specificity"])


def majority_vote(reads) -> np.ndarray:
    """(R, N) binary reads -> (N,) bool: positive when more than half of the readers say so (ties negative)."""
    r = as_binary(reads, "reads")
    if r.ndim != 2:
        raise ValueError(f"`reads` must have shape (R, N), got {r.shape}")
    return r.sum(axis=0) * 2 > r.shape[0]


def best_f1_threshold(y_true, scores) -> float:
    """The score threshold (``score >= threshold`` is positive) that maximises F1 — choose it on validation.

    Examples
    --------
    >>> best_f1_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])   # >= 0.35: TP 2, FP 1, F1 0.8
    0.35
    """
    t = as_binary(y_true, "y_true")
    s = as_numpy(scores, "scores").astype(np.float64)
    check_same_shape(s, t, "scores", "y_true")
    candidates = np.unique(s)  # (K,)
    pred = s[None, :] >= candidates[:, None]  # (K, N)
    return float(candidates[np.argmax(f1_of_resamples(np.broadcast_to(t, pred.shape), pred))])


def compare_with_readers(model_pred, reader_preds, *, y_true=None, n_resamples: int = 10_000,
                         confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """The CheXNet table: F1 (95 % CI) of each reader, their average and the model, without ground truth.

    Reader ``i`` is scored against the majority vote of the other readers; the model is scored against each
    of those majority votes and its F1 averaged ("Model"). Every CI comes from the same bootstrap resamples
    of the studies, so the row ``Model - Reader avg.`` is a paired difference: a CI above 0 means the model
    beats the average reader on this test set. The rows ``Model - Reader i`` are
    :func:`course_lib.metrics.paired_f1_difference` against reader ``i``'s reference.

    Parameters
    ----------
    model_pred : (N,) array_like of {0, 1}
        The model's thresholded predictions (threshold chosen on validation, e.g. :func:`best_f1_threshold`).
    reader_preds : (R, N) array_like of {0, 1}, R >= 2
    y_true : (N,) array_like of {0, 1}, optional
        The truth, if known (simulations): adds a column ``f1_vs_truth`` to see how far the majority-vote
        reference is from it.
    n_resamples, confidence, seed
        Bootstrap options.

    Returns
    -------
    pandas.DataFrame
        Index ``Reader 1 .. Reader R, Reader avg., Model, Model - Reader avg., Model - Reader 1 ..``; columns
        ``f1, low, high`` (and ``f1_vs_truth``).
    """
    m = as_binary(model_pred, "model_pred")
    r = as_binary(reader_preds, "reader_preds")
    if m.ndim != 1 or r.ndim != 2 or r.shape[1] != m.size or r.shape[0] < 2:
        raise ValueError(f"`reader_preds` (shape {r.shape}) must be (R >= 2, N) with N = {m.size} like `model_pred` "
                         f"(shape {m.shape})")
    n_readers = r.shape[0]
    refs = np.stack([majority_vote(np.delete(r, i, axis=0)) for i in range(n_readers)])  # (R, N)
    idx = bootstrap_indices(m.size, n_resamples, seed)  # (Rs, N), shared by every row
    # one reader at a time: (Rs, N) boolean arrays, not (R, Rs, N)
    reader_f1 = np.stack([f1_of_resamples(refs[i][idx], r[i][idx]) for i in range(n_readers)])  # (R, Rs)
    model_f1 = np.stack([f1_of_resamples(refs[i][idx], m[idx]) for i in range(n_readers)])  # (R, Rs)
    reader_full = f1_of_resamples(refs, r)  # (R,)
    model_full = f1_of_resamples(refs, m[None])  # (R,)
    rows = {}
    for i in range(n_readers):
        rows[f"Reader {i + 1}"] = f1_bootstrap_ci(refs[i], r[i], n_resamples=n_resamples, confidence=confidence,
                                                  seed=seed)
    rows["Reader avg."] = _ci(reader_full.mean(), reader_f1.mean(axis=0), confidence)
    rows["Model"] = _ci(model_full.mean(), model_f1.mean(axis=0), confidence)
    rows["Model - Reader avg."] = _ci(model_full.mean() - reader_full.mean(),
                                      model_f1.mean(axis=0) - reader_f1.mean(axis=0), confidence)
    for i in range(n_readers):
        rows[f"Model - Reader {i + 1}"] = paired_f1_difference(refs[i], m, r[i], n_resamples=n_resamples,
                                                               confidence=confidence, seed=seed)
    table = pd.DataFrame({name: {"f1": ci.estimate, "low": ci.low, "high": ci.high} for name, ci in rows.items()}).T
    if y_true is not None:
        t = as_binary(y_true, "y_true")
        check_same_shape(t, m, "y_true", "model_pred")
        truth = {f"Reader {i + 1}": f1_of_resamples(t, r[i]) for i in range(n_readers)}
        truth["Reader avg."] = float(np.mean(list(truth.values())))
        truth["Model"] = f1_of_resamples(t, m)
        table["f1_vs_truth"] = pd.Series({k: float(v) for k, v in truth.items()})
    return table
