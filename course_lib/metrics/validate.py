"""Input checks shared by the metric functions: one place, clear messages."""

from __future__ import annotations

import numpy as np
import torch


def as_numpy(x, name: str) -> np.ndarray:
    """Return ``x`` as a NumPy array; accept arrays, tensors, lists. Reject strings and objects."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:  # NumPy has no bfloat16 (autocast outputs on GPUs)
            x = x.float()
        x = x.numpy()
    elif not isinstance(x, np.ndarray):
        if isinstance(x, (str, bytes)) or not isinstance(x, (list, tuple, int, float, bool, np.generic)):
            raise TypeError(f"`{name}` must be a NumPy array or torch Tensor, got {type(x).__name__}")
        x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise TypeError(f"`{name}` must have a boolean, integer or float dtype, got {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(f"`{name}` must be real-valued, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError(f"`{name}` (shape {x.shape}) contains NaN")
    return x


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"`{name_a}` (shape {a.shape}) must have the same shape as `{name_b}` (shape {b.shape}); "
            "masks are never broadcast against each other"
        )


def as_binary(x, name: str) -> np.ndarray:
    """Validate a binary mask (bool, or numbers that are all 0 or 1) and return it as bool."""
    x = as_numpy(x, name)
    if x.dtype == np.bool_:
        return x
    values = np.unique(x)
    if not np.isin(values, (0, 1)).all():
        bad = values[~np.isin(values, (0, 1))][:5]
        raise ValueError(
            f"`{name}` (shape {x.shape}, dtype {x.dtype}) must be binary (0/1 or bool); "
            f"found values such as {bad.tolist()}. Threshold probabilities first, e.g. `probs > 0.5`."
        )
    return x.astype(bool)


def as_labels(x, name: str, num_classes: int) -> np.ndarray:
    """Validate an integer label map with values in ``[0, num_classes)``."""
    x = as_numpy(x, name)
    if x.dtype == np.bool_:
        x = x.astype(np.int64)
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(x == np.round(x)):
            raise ValueError(f"`{name}` (shape {x.shape}) must hold integer class labels, found fractions")
        x = x.astype(np.int64)
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(
            f"`{name}` (shape {x.shape}) has labels in [{x.min()}, {x.max()}], "
            f"outside [0, num_classes={num_classes})"
        )
    return x.astype(np.int64, copy=False)


def check_choice(value, name: str, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}")
