"""Histogram matching: the simplest unpaired "translator", one brightness curve fitted between two domains.

Given pixels of a source domain (FLAIR) and, from other patients, pixels of a target domain (T1), the monotone
curve that gives the source the target's histogram needs no pairs at all. It is the baseline every learned
translator should be compared with (ch04a): it matches the *distribution* of intensities, as the adversarial loss
asks, but it cannot reverse the order of two tissues, which FLAIR -> T1 must do for tumour and white matter.

The algorithm is scikit-image's ``exposure.match_histograms`` for one channel (its test oracle): each distinct
source value is sent to the target value at the same quantile, with linear interpolation between the target's
distinct values.
"""

from __future__ import annotations

import numpy as np


def match_histograms(source, reference) -> np.ndarray:
    """Map ``source`` intensities monotonically so that their histogram becomes ``reference``'s.

    Parameters
    ----------
    source : array_like, any shape, non-empty
        Intensities to map (e.g. ``(N, H, W)`` FLAIR slices); every pixel counts, the shape is kept.
    reference : array_like, any shape, non-empty
        Intensities of the target domain (e.g. T1 slices of other patients); need not be paired with ``source``
        nor have its size.

    Returns
    -------
    matched : float64 ndarray, ``source.shape``
        Equal source values map to equal values, larger ones to values at least as large, all within
        ``[reference.min(), reference.max()]``; the value at source quantile ``q`` is the reference's at ``q``.

    Examples
    --------
    >>> import numpy as np
    >>> match_histograms(np.array([0.0, 1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0, 40.0])).tolist()
    [10.0, 20.0, 30.0, 40.0]
    >>> match_histograms(np.array([[5.0, 5.0], [1.0, 9.0]]), np.array([0.0, 1.0]))  # ties stay tied
    array([[0.5, 0.5],
           [0. , 1. ]])
    """
    source, reference = np.asarray(source), np.asarray(reference)
    for name, values in (("source", source), ("reference", reference)):
        if values.size == 0:
            raise ValueError(f"`{name}` is empty: histogram matching needs at least one {name} intensity")
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise TypeError(f"`{name}` must hold real numbers, got dtype {values.dtype}")
        if not np.isfinite(values).all():
            raise ValueError(f"`{name}` holds NaN or infinite values: mask them out before matching")
    src_values, src_index, src_counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    ref_values, ref_counts = np.unique(reference.ravel(), return_counts=True)
    src_quantiles = np.cumsum(src_counts) / source.size  # (S,) share of source pixels <= each distinct value
    ref_quantiles = np.cumsum(ref_counts) / reference.size  # (R,)
    mapped = np.interp(src_quantiles, ref_quantiles, ref_values.astype(np.float64))  # (S,) one value per level
    return mapped[src_index].reshape(source.shape)
