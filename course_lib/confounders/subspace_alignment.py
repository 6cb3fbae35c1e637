"""Subspace alignment (Fernando et al. 2013): move one site's principal axes onto the other's.

Each site's images, flattened to vectors of ``D`` pixels, mostly vary along a few principal directions. Take the
top ``d`` principal axes of the source site, ``P_s`` (D, d), and of the target site, ``P_t`` (D, d). The alignment
matrix ``M = P_sᵀ P_t`` (d, d) minimises ``‖P_s M − P_t‖_F``; source images are then described by ``(x − μ_s) P_s M``
and target images by ``(x − μ_t) P_t``, both in the target's coordinates, and one classifier is trained on both::

    z_source = (x - mu_s) @ P_s @ M        (N, D) -> (N, d)
    z_target = (x - mu_t) @ P_t            (N, D) -> (N, d)

Centring each site on its own mean already removes every artefact that is the same in all images of a site (the
synthetic marker and background offset of :mod:`~course_lib.confounders.synthetic_sites`: this part holds by
construction). What survives is what varies inside a site; the alignment then matches the directions of variation.
It needs the site of every image at test time, and it is linear: it cannot undo a nonlinear artefact.

Reference: Fernando, Habrard, Sebban & Tuytelaars (2013), Unsupervised visual domain adaptation using subspace
alignment, ICCV. Their Algorithm 1 is ``fit`` below (they also z-score the features first; here the pixels share
one unit, so centring is enough).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> source, target = rng.normal(size=(50, 16)), rng.normal(size=(60, 16)) + 3.0
>>> sa = SubspaceAlignment(dim=4).fit(source, target)
>>> sa.transform(source, site="source").shape, sa.transform(target, site="target").shape
((50, 4), (60, 4))
"""

from __future__ import annotations

import numpy as np

__all__ = ["pca_basis", "SubspaceAlignment"]


def _as_matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"`{name}` must be (N, D) vectors or (N, ...) images, got shape {x.shape}")
    return x.reshape(len(x), -1)  # (N, ...) -> (N, D)


def pca_basis(x, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top ``dim`` principal axes of the rows of ``x``.

    Parameters
    ----------
    x : (N, D) or (N, ...) array
        Samples; images are flattened.
    dim : int
        Number of axes, ``1 <= dim <= min(N, D)``.

    Returns
    -------
    mean : (D,) ndarray
    basis : (D, dim) ndarray
        Orthonormal columns, ordered by decreasing variance; each column's sign is fixed so that its largest
        entry (in absolute value) is positive, which makes the basis unique for distinct variances.

    Raises
    ------
    ValueError
        If ``dim`` is out of range.
    """
    x = _as_matrix(x, "x")
    if not isinstance(dim, (int, np.integer)) or not 1 <= dim <= min(x.shape):
        raise ValueError(f"`dim` must be an int in [1, min(N, D)] = [1, {min(x.shape)}], got {dim!r}")
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)  # rows of vt: principal axes, by variance
    basis = vt[:dim].T  # (D, dim)
    signs = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(dim)])
    return mean, basis * signs


class SubspaceAlignment:
    """Align the source site's PCA subspace to the target site's (Fernando et al., Algorithm 1).

    Parameters
    ----------
    dim : int
        Subspace dimension ``d``.

    Attributes (after :meth:`fit`)
    ----------
    mean_source, mean_target : (D,) ndarray
    basis_source, basis_target : (D, d) ndarray
    alignment : (d, d) ndarray
        ``M = P_sᵀ P_t``.
    """

    def __init__(self, dim: int):
        self.dim = dim

    def fit(self, source, target) -> SubspaceAlignment:
        """Learn both bases and ``M`` from unlabelled images of each site: (N_s, D) and (N_t, D)."""
        source, target = _as_matrix(source, "source"), _as_matrix(target, "target")
        if source.shape[1] != target.shape[1]:
            raise ValueError(f"`source` ({source.shape[1]} values per sample) and `target` ({target.shape[1]}) "
                             "must have the same number of pixels")
        self.mean_source, self.basis_source = pca_basis(source, self.dim)
        self.mean_target, self.basis_target = pca_basis(target, self.dim)
        self.alignment = self.basis_source.T @ self.basis_target  # (d, D) @ (D, d) -> (d, d)
        return self

    def projection(self, site: str) -> tuple[np.ndarray, np.ndarray]:
        """``(mean (D,), W (D, d))`` such that ``transform(x, site) = (x - mean) @ W``."""
        if not hasattr(self, "alignment"):
            raise ValueError("call `fit(source, target)` first")
        if site == "source":
            return self.mean_source, self.basis_source @ self.alignment  # (D, d) @ (d, d)
        if site == "target":
            return self.mean_target, self.basis_target
        raise ValueError(f"`site` must be 'source' or 'target', got {site!r}")

    def transform(self, x, site: str) -> np.ndarray:
        """Coordinates in the target subspace: (N, D) or (N, ...) images -> (N, d)."""
        mean, weights = self.projection(site)
        x = _as_matrix(x, "x")
        if x.shape[1] != len(mean):
            raise ValueError(f"`x` has {x.shape[1]} values per sample, the alignment was fitted on {len(mean)}")
        return (x - mean) @ weights
