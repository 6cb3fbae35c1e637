"""Decoy digits: Ross et al.'s Decoy MNIST protocol on scikit-learn's bundled 8x8 digits.

Decoy MNIST puts a grey swatch in a random corner of every image. In the training set its shade encodes the class
(``255 − 25 y``); in the test set the shade is random. A network can read the class off the swatch and ignore the
digit; Ross et al. report 55 % decoy-free test accuracy for a plain MLP on Decoy MNIST (96 % on plain MNIST), and
accuracy close to plain MNIST's with the RRR loss and the swatches annotated.

Here, with scikit-learn's 1,797 digits (8x8 pixels, values 0..16, no download):

* each digit is scaled to [0, 1] and padded by ``pad`` px of zeros on every side (12x12 by default);
* a ``pad`` x ``pad`` swatch goes in a random corner (inside the padding, so it never covers the digit) with shade
  ``1 − y / 10`` in training and validation (the paper's 255 − 25y, scaled) and ``1 − r / 10`` for a random class
  ``r`` in the **decoy-free test** (the swatch is still there, it just says nothing);
* the region of interest is the central 8x8 square, where the digit is: the annotation ``A = 1`` is everything else.

The split is fixed: ``n_train`` training, ``n_val`` validation and the remaining test images, drawn by ``seed``.
That the swatch lies outside the ROI, and is pure decoy, holds by construction.

Example
-------
>>> data = decoy_digits(seed=0)
>>> data["train"].images.shape, data["test"].roi.shape, len(data["val"])
((1000, 1, 12, 12), (497, 1, 12, 12), 300)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DecoyDigits", "decoy_digits", "swatch_shade"]


@dataclass(frozen=True)
class DecoyDigits:
    """One split. ``images``, ``roi``: (N, 1, S, S); ``labels``: (N,) int64; ``shades``: (N,) the swatch grey."""

    images: np.ndarray
    labels: np.ndarray
    roi: np.ndarray
    shades: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def swatch_shade(classes) -> np.ndarray:
    """The swatch grey that encodes a class: ``1 - y / 10`` (Ross et al.'s ``255 - 25 y`` on a [0, 1] scale)."""
    classes = np.asarray(classes)
    if classes.size and (classes.min() < 0 or classes.max() > 9):
        raise ValueError(f"`classes` must be digits 0..9, got values from {classes.min()} to {classes.max()}")
    return 1.0 - classes / 10.0


def _decorate(digits: np.ndarray, labels: np.ndarray, decoy: bool, pad: int, rng: np.random.Generator) -> DecoyDigits:
    n = len(digits)
    size = 8 + 2 * pad
    images = np.zeros((n, 1, size, size), dtype=np.float32)
    images[:, 0, pad:pad + 8, pad:pad + 8] = digits / 16.0  # (N, 8, 8) in [0, 1]
    shown = labels if decoy else rng.integers(0, 10, n)  # the class the swatch says
    shades = swatch_shade(shown).astype(np.float32)
    corners = rng.integers(0, 4, n)  # 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
    for i in range(n):
        r = 0 if corners[i] < 2 else size - pad
        c = 0 if corners[i] % 2 == 0 else size - pad
        images[i, 0, r:r + pad, c:c + pad] = shades[i]
    roi = np.zeros((n, 1, size, size), dtype=bool)
    roi[:, 0, pad:pad + 8, pad:pad + 8] = True
    return DecoyDigits(images, labels.astype(np.int64), roi, shades)


def decoy_digits(seed: int = 0, *, n_train: int = 1000, n_val: int = 300, pad: int = 2) -> dict[str, DecoyDigits]:
    """Train / validation splits with the decoy swatch and a decoy-free test split.

    Parameters
    ----------
    seed : int
        Draws the split, the corners and the test shades.
    n_train, n_val : int
        Sizes; the test split gets the other ``1797 - n_train - n_val`` digits.
    pad : int
        Padding and swatch side in px (image side ``8 + 2 * pad``).

    Returns
    -------
    dict
        ``{"train": DecoyDigits, "val": DecoyDigits, "test": DecoyDigits}``; train and validation carry the decoy,
        test does not.

    Raises
    ------
    ValueError
        If the sizes leave no test images or ``pad`` is not positive.
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    total = len(digits.target)
    if n_train < 1 or n_val < 1 or n_train + n_val >= total:
        raise ValueError(f"`n_train` + `n_val` must leave test images out of {total}, got {n_train} + {n_val}")
    if pad < 1:
        raise ValueError(f"`pad` must be a positive number of pixels, got {pad}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(total)
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return {name: _decorate(digits.images[idx], digits.target[idx], name != "test", pad, rng)
            for name, idx in parts.items()}
